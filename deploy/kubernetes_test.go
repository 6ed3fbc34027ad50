package deploy

import (
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/config"
)

// variants are the kustomize roots and what each must add to the base.
var variants = []struct {
	dir   string
	check func(t *testing.T, objs []obj, cfg *config.Config)
}{
	{"kubernetes/base", func(*testing.T, []obj, *config.Config) {}},
	{"kubernetes/overlays/vault", checkVaultOverlay},
	{"kubernetes/overlays/aws", checkAWSOverlay},
}

// TestManifestsParse decodes every YAML file under deploy/kubernetes, so a
// file no kustomization lists still has to be valid.
func TestManifestsParse(t *testing.T) {
	err := filepath.WalkDir("kubernetes", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		objs := decodeFile(t, p)
		if len(objs) == 0 {
			t.Errorf("%s: no YAML documents", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKustomizationsListEveryFile catches a manifest written but never
// included.
func TestKustomizationsListEveryFile(t *testing.T) {
	for _, v := range variants {
		k := decodeFile(t, filepath.Join(v.dir, "kustomization.yaml"))[0]
		used := map[string]bool{"kustomization.yaml": true}
		for _, r := range list(k, "resources") {
			used[r.(string)] = true
		}
		for _, g := range list(k, "configMapGenerator") {
			for _, f := range list(g, "files") {
				used[f.(string)] = true
			}
		}
		for _, p := range list(k, "patches") {
			used[str(p, "path")] = true
		}
		files, _ := filepath.Glob(filepath.Join(v.dir, "*.yaml"))
		for _, f := range files {
			if !used[filepath.Base(f)] {
				t.Errorf("%s is not used by %s/kustomization.yaml", f, v.dir)
			}
		}
	}
}

// TestManifests renders the base and each overlay and checks what the
// issue asks of them, with render and, where installed, kubectl kustomize.
func TestManifests(t *testing.T) {
	kubectl, _ := exec.LookPath("kubectl")
	for _, v := range variants {
		t.Run(filepath.Base(v.dir)+"/render", func(t *testing.T) {
			objs := render(t, v.dir)
			v.check(t, objs, checkManifests(t, objs))
		})
		t.Run(filepath.Base(v.dir)+"/kubectl", func(t *testing.T) {
			if kubectl == "" {
				t.Skip("kubectl not found: render's output was checked alone")
			}
			out, err := exec.Command(kubectl, "kustomize", v.dir).CombinedOutput()
			if err != nil {
				t.Fatalf("kubectl kustomize %s: %v\n%s", v.dir, err, out)
			}
			objs, err := decodeAll(out)
			if err != nil {
				t.Fatalf("kubectl kustomize %s: %v", v.dir, err)
			}
			v.check(t, objs, checkManifests(t, objs))
		})
	}
}

// checkManifests checks one rendered set of objects and returns the
// config its ConfigMap holds.
func checkManifests(t *testing.T, objs []obj) *config.Config {
	t.Helper()
	for _, kind := range []string{"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"} {
		for _, o := range all(objs, kind) {
			t.Errorf("%s %s: keyturn calls no Kubernetes API and needs no RBAC", kind,
				str(o, "metadata", "name"))
		}
	}
	ns := all(objs, "Namespace")
	if len(ns) != 1 || str(ns[0], "metadata", "labels", "pod-security.kubernetes.io/enforce") !=
		"restricted" {
		t.Errorf("want one Namespace enforcing the restricted Pod Security Standard")
	}

	deps := all(objs, "Deployment")
	if len(deps) != 1 {
		t.Fatalf("%d Deployments, want 1", len(deps))
	}
	d := deps[0]
	if str(d, "spec", "replicas") != "1" || str(d, "spec", "strategy", "type") != "Recreate" {
		t.Errorf("Deployment: replicas %s, strategy %s; want 1 and Recreate (no leader "+
			"election yet)", str(d, "spec", "replicas"), str(d, "spec", "strategy", "type"))
	}
	pod := m(d, "spec", "template", "spec")
	checkPodSecurity(t, objs, pod)
	c := byName(list(pod, "containers"), "keyturn")
	if c == nil {
		t.Fatal("Deployment has no container named keyturn")
	}
	checkContainer(t, c)
	port := checkProbes(t, c)
	checkService(t, objs, d, port)
	checkNetworkPolicy(t, objs, d, port)
	cfg := checkConfig(t, objs, pod, c)
	if _, p, _ := net.SplitHostPort(cfg.Listen); p != strconv.Itoa(port) {
		t.Errorf("config listen %s, want port %d (the container's http port)", cfg.Listen, port)
	}
	return cfg
}

func checkPodSecurity(t *testing.T, objs []obj, pod obj) {
	t.Helper()
	sa := str(pod, "serviceAccountName")
	if sa == "" || find(objs, "ServiceAccount", sa) == nil {
		t.Errorf("serviceAccountName %q names no ServiceAccount here", sa)
	}
	if str(pod, "automountServiceAccountToken") != "false" ||
		str(find(objs, "ServiceAccount", sa), "automountServiceAccountToken") != "false" {
		t.Error("automountServiceAccountToken must be false on the pod and its account")
	}
	sc := m(pod, "securityContext")
	if str(sc, "runAsNonRoot") != "true" || str(sc, "runAsUser") == "0" ||
		str(sc, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("pod securityContext %v: want runAsNonRoot, a non-zero runAsUser and "+
			"seccompProfile RuntimeDefault", sc)
	}
}

func checkContainer(t *testing.T, c obj) {
	t.Helper()
	sc := m(c, "securityContext")
	want := map[string]string{"allowPrivilegeEscalation": "false",
		"readOnlyRootFilesystem": "true", "runAsNonRoot": "true", "privileged": "false"}
	for k, v := range want {
		if got := str(sc, k); got != v {
			t.Errorf("container securityContext.%s = %q, want %s", k, got, v)
		}
	}
	if !slices.Contains(strs(list(sc, "capabilities", "drop")), "ALL") ||
		len(list(sc, "capabilities", "add")) > 0 {
		t.Errorf("capabilities %v: want drop [ALL] and nothing added", m(sc, "capabilities"))
	}
	for _, kind := range []string{"requests", "limits"} {
		for _, r := range []string{"cpu", "memory"} {
			if str(c, "resources", kind, r) == "" {
				t.Errorf("resources.%s.%s is not set", kind, r)
			}
		}
	}
	image := str(c, "image")
	if !regexp.MustCompile(`^[^:@]+(:[^:]+|@sha256:[0-9a-f]{64})$`).MatchString(image) ||
		strings.HasSuffix(image, ":latest") {
		t.Errorf("image %q: want a tag (not latest) or a digest", image)
	}
	if args := strings.Join(strs(list(c, "args")), " "); args !=
		"daemon --config /etc/keyturn/keyturn.yaml" {
		t.Errorf("args %q, want daemon --config /etc/keyturn/keyturn.yaml", args)
	}
}

// checkProbes checks liveness and readiness and returns the http port.
func checkProbes(t *testing.T, c obj) int {
	t.Helper()
	var port int
	for _, p := range list(c, "ports") {
		if str(p, "name") == "http" {
			port, _ = strconv.Atoi(str(p, "containerPort"))
		}
	}
	if port == 0 {
		t.Fatal("container has no port named http")
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz",
		"readinessProbe": "/readyz"} {
		p := m(c, probe, "httpGet")
		if str(p, "path") != path || (str(p, "port") != "http" &&
			str(p, "port") != strconv.Itoa(port)) {
			t.Errorf("%s httpGet %v, want %s on the http port", probe, p, path)
		}
	}
	return port
}

func checkService(t *testing.T, objs []obj, d obj, port int) {
	t.Helper()
	svcs := all(objs, "Service")
	if len(svcs) != 1 {
		t.Fatalf("%d Services, want 1", len(svcs))
	}
	s := svcs[0]
	selects(t, "Service", m(s, "spec", "selector"), d)
	p := list(s, "spec", "ports")
	if len(p) != 1 || str(p[0], "port") != strconv.Itoa(port) ||
		(str(p[0], "targetPort") != "http" && str(p[0], "targetPort") != strconv.Itoa(port)) {
		t.Errorf("Service ports %v, want %d to the http port", p, port)
	}
}

// selects checks that a selector picks the Deployment's pods.
func selects(t *testing.T, what string, sel obj, d obj) {
	t.Helper()
	labels := m(d, "spec", "template", "metadata", "labels")
	if len(sel) == 0 {
		t.Errorf("%s has an empty selector", what)
	}
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("%s selects %s=%v, which keyturn's pods lack", what, k, v)
		}
	}
}

func checkNetworkPolicy(t *testing.T, objs []obj, d obj, port int) {
	t.Helper()
	nps := all(objs, "NetworkPolicy")
	if len(nps) != 1 {
		t.Fatalf("%d NetworkPolicies, want 1", len(nps))
	}
	np := m(nps[0], "spec")
	selects(t, "NetworkPolicy", m(np, "podSelector", "matchLabels"), d)
	if types := strs(list(np, "policyTypes")); !slices.Contains(types, "Ingress") ||
		!slices.Contains(types, "Egress") {
		t.Errorf("policyTypes %v, want Ingress and Egress", types)
	}
	for i, r := range list(np, "ingress") {
		ports := list(r, "ports")
		if len(list(r, "from")) == 0 || len(ports) != 1 ||
			str(ports[0], "port") != strconv.Itoa(port) {
			t.Errorf("ingress[%d] %v: want only port %d, from named peers", i, r, port)
		}
	}
	egress := map[string]bool{}
	for i, r := range list(np, "egress") {
		if len(list(r, "ports")) == 0 {
			t.Errorf("egress[%d] allows every port", i)
		}
		for _, p := range list(r, "ports") {
			egress[str(p, "port")+"/"+str(p, "protocol")] = true
		}
	}
	for _, want := range []string{"53/UDP", "53/TCP", "443/TCP"} {
		if !egress[want] {
			t.Errorf("egress lacks %s", want)
		}
	}
}

// checkConfig finds keyturn.yaml through the config volume, loads it as
// the daemon would, and checks that everything it writes is on a writable
// volume (the root filesystem is read-only).
func checkConfig(t *testing.T, objs []obj, pod, c obj) *config.Config {
	t.Helper()
	mounts := map[string]obj{} // mount path → volume
	writable := map[string]bool{}
	for _, vm := range list(c, "volumeMounts") {
		v := byName(list(pod, "volumes"), str(vm, "name"))
		if v == nil {
			t.Fatalf("volumeMount %s names no volume", str(vm, "name"))
		}
		mounts[str(vm, "mountPath")] = v
		writable[str(vm, "mountPath")] = str(vm, "readOnly") != "true"
	}
	cmName := str(mounts["/etc/keyturn"], "configMap", "name")
	cm := find(objs, "ConfigMap", cmName)
	if cm == nil {
		t.Fatalf("no ConfigMap %q mounted at /etc/keyturn", cmName)
	}
	data := str(cm, "data", "keyturn.yaml")
	cfg, err := config.Parse("/etc/keyturn/keyturn.yaml", []byte(data),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("ConfigMap %s keyturn.yaml does not validate:\n%v", cmName, err)
	}

	state := mounts[cfg.StateDir]
	claim := str(state, "persistentVolumeClaim", "claimName")
	if claim == "" || !writable[cfg.StateDir] {
		t.Fatalf("state_dir %s is not a writable PVC mount", cfg.StateDir)
	}
	pvc := find(objs, "PersistentVolumeClaim", claim)
	if pvc == nil || !slices.Contains(strs(list(pvc, "spec", "accessModes")), "ReadWriteOnce") {
		t.Errorf("PVC %s: want it defined, ReadWriteOnce", claim)
	}
	for what, p := range map[string]string{"socket": cfg.Socket, "audit.dir": cfg.Audit.Dir} {
		if !underWritable(p, writable) {
			t.Errorf("%s %s is not on a writable volume", what, p)
		}
	}
	if !strings.HasPrefix(cfg.Audit.Dir, cfg.StateDir+"/") {
		t.Errorf("audit.dir %s is not on the state volume, which is backed up", cfg.Audit.Dir)
	}
	return cfg
}

func underWritable(p string, writable map[string]bool) bool {
	for dir, w := range writable {
		if w && strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

func checkVaultOverlay(t *testing.T, objs []obj, cfg *config.Config) {
	t.Helper()
	b := cfg.Apps[0].Backend
	if b.Type != "vault" || b.Auth.Method != "kubernetes" || b.Auth.Role == "" {
		t.Fatalf("backend %+v: want vault with kubernetes auth and a role", b)
	}
	pod := m(find(objs, "Deployment", "keyturn"), "spec", "template", "spec")
	c := byName(list(pod, "containers"), "keyturn")
	var found bool
	for _, vm := range list(c, "volumeMounts") {
		v := byName(list(pod, "volumes"), str(vm, "name"))
		for _, src := range list(v, "projected", "sources") {
			tok := m(src, "serviceAccountToken")
			if tok == nil {
				continue
			}
			if str(tok, "audience") != "vault" {
				t.Errorf("projected token audience %q, want vault", str(tok, "audience"))
			}
			if filepath.Join(str(vm, "mountPath"), str(tok, "path")) == b.Auth.JWTFile {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("jwt_file %s is not a projected service account token", b.Auth.JWTFile)
	}
	np := m(find(objs, "NetworkPolicy", "keyturn"), "spec")
	if !strings.Contains(dump(np), "port: 8200") {
		t.Error("NetworkPolicy egress does not reach Vault on 8200")
	}
}

func checkAWSOverlay(t *testing.T, objs []obj, cfg *config.Config) {
	t.Helper()
	if b := cfg.Apps[0].Backend; b.Type != "awssm" || !strings.HasPrefix(b.SecretID,
		"smartcar/") {
		t.Errorf("backend %+v: want awssm with a secret named smartcar/… "+
			"(deploy/aws/iam-policy.json covers only those)", b)
	}
	sa := find(objs, "ServiceAccount", "keyturn")
	arn := str(sa, "metadata", "annotations", "eks.amazonaws.com/role-arn")
	if !regexp.MustCompile(`^arn:aws:iam::[A-Z0-9_]+:role/.+$`).MatchString(arn) {
		t.Errorf("ServiceAccount role-arn annotation %q, want an IAM role ARN", arn)
	}
}

// TestManifestConfigsMatchFiles guards render itself: the config checked
// above is the file in the folder.
func TestManifestConfigsMatchFiles(t *testing.T) {
	for _, v := range variants {
		objs := render(t, v.dir)
		want, err := os.ReadFile(filepath.Join(v.dir, "keyturn.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if got := str(find(objs, "ConfigMap", "keyturn-config"), "data",
			"keyturn.yaml"); got != string(want) {
			t.Errorf("%s: rendered ConfigMap does not hold %s/keyturn.yaml", v.dir, v.dir)
		}
	}
}
