package reliability

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/server"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

// rigOptions shape one test's keyturn: its backend, apps and wiring.
type rigOptions struct {
	backend string   // env (default), awssm or vault
	apps    []string // default: demo
	// mode is the apps' consumers mode: backend (default, with the dump
	// hook and a 300 ms propagation window) or broker.
	mode string
	// proxyToken and proxyBackend put a fault proxy between the daemon
	// and the emulator's token endpoint, and the Vault or AWS server.
	proxyToken, proxyBackend bool
	// proxyHook puts one between the daemon and the webhook receiver.
	proxyHook bool
	// frontBackend puts an HTTP fault front (faultFront) between the
	// daemon and the Vault or AWS server.
	frontBackend bool
	timeout      string // smartcar timeout, default 2s
	consumers    string // the YAML of consumers:, if any
	notify       string // more notify channels, as YAML list items
	owners       string // the apps' owners, default [hook]
	// shared makes the folder and config readable by other users (the
	// auth tests run the CLI as nobody); the state dir stays 0700.
	shared bool
}

// rig is one keyturn under test: a folder, a config, the emulator, a
// webhook receiver and the apps' backends, each app holding the canary as
// its first secret.
type rig struct {
	t    testing.TB
	o    rigOptions
	dir  string
	cfg  string
	emu  *emulator.Emulator
	rc   *receiver
	id   string // names the rig's backend paths
	env  []string
	apps []string
	// oldIDs are the emulator ids of the apps' first secrets.
	oldIDs map[string]string
	// tokenURL, backendAddr and hookURL are where the daemon reaches
	// Smartcar, the backend's server and the webhook receiver; the
	// proxies are set when a fault proxy stands there.
	tokenURL, backendAddr, hookURL      string
	tokenProxy, backendProxy, hookProxy *faultProxy
	backendFront                        *faultFront
	vaultCA                             string // the CA file Vault clients trust
	closed                              sync.Once
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	o.backend = or(o.backend, "env")
	o.mode = or(o.mode, "backend")
	o.timeout = or(o.timeout, "2s")
	if len(o.apps) == 0 {
		o.apps = []string{"demo"}
	}
	requireBackend(t, o.backend)
	dir, err := os.MkdirTemp("", "ktr-")
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, o: o, dir: dir, emu: emulator.New(), rc: newReceiver(),
		id: filepath.Base(dir), apps: o.apps, oldIDs: map[string]string{}}
	t.Cleanup(r.close)
	if o.shared {
		os.Chmod(dir, 0o755)
	}
	if _, err := r.emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	r.proxies()
	os.MkdirAll(filepath.Join(dir, "state"), 0o700)
	r.writeFile("secret-hook.key", hookKey+"\n", 0o600)
	r.writeFile("hook.sh", hookScript, 0o755)
	for _, app := range o.apps {
		r.emu.ImportSecret(clientID(app), canarySecret, time.Now().Add(-time.Hour))
		r.oldIDs[app] = r.emu.Secrets(clientID(app))[0].ID
		if o.backend == "env" {
			r.writeFile(app+".env", fmt.Sprintf("SMARTCAR_CLIENT_ID=%s\n"+
				"SMARTCAR_CLIENT_SECRET=%s\n", clientID(app), canarySecret), 0o600)
		}
	}
	r.cfg = filepath.Join(dir, "keyturn.yaml")
	mode := os.FileMode(0o600)
	if o.shared {
		mode = 0o644
	}
	r.writeFile("keyturn.yaml", r.config(), mode)
	r.initBackends()
	return r
}

// hookScript is the apps' reload hook: it writes down its parent's and
// its own command line and its environment, for the canary check.
const hookScript = `#!/bin/sh
{
	echo "== hook $KEYTURN_ACTION"
	tr '\0' ' ' </proc/$PPID/cmdline; echo
	tr '\0' ' ' </proc/$$/cmdline; echo
	env
} >>"$(dirname "$0")/hookdump.txt"
`

// proxies sets where the daemon reaches Smartcar and the backend, through
// fault proxies when asked.
func (r *rig) proxies() {
	r.tokenURL = r.emu.TokenURL()
	if r.o.proxyToken {
		r.tokenProxy = newFaultProxy(r.t, "smartcar-"+r.id, hostPort(r.emu.URL()))
		r.tokenURL = "http://" + r.tokenProxy.addr + "/oauth2/token"
	}
	r.hookURL = r.rc.srv.URL
	if r.o.proxyHook {
		r.hookProxy = newFaultProxy(r.t, "hook-"+r.id, hostPort(r.hookURL))
		r.hookURL = "http://" + r.hookProxy.addr
	}
	switch r.o.backend {
	case "awssm":
		r.backendAddr = os.Getenv("AWS_ENDPOINT_URL_SECRETS_MANAGER")
	case "vault":
		r.backendAddr = os.Getenv("VAULT_ADDR")
	}
	r.vaultCA = os.Getenv("VAULT_CACERT")
	if r.o.frontBackend && r.backendAddr != "" {
		r.backendFront = newFaultFront(r.t, r.dir, r.backendAddr)
		r.backendAddr = r.backendFront.srv.URL
		r.vaultCA = or(r.backendFront.caFile, r.vaultCA)
	}
	if r.o.proxyBackend && r.backendAddr != "" {
		r.backendProxy = newFaultProxy(r.t, r.o.backend+"-"+r.id, hostPort(r.backendAddr))
		scheme, _, _ := strings.Cut(r.backendAddr, "://")
		r.backendAddr = scheme + "://" + r.backendProxy.addr
	}
}

// hostPort is the host:port of a URL.
func hostPort(u string) string {
	_, rest, _ := strings.Cut(u, "://")
	host, _, _ := strings.Cut(rest, "/")
	return host
}

func clientID(app string) string { return "client_" + app }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (r *rig) writeFile(name, data string, mode os.FileMode) {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, name), []byte(data), mode); err != nil {
		r.t.Fatal(err)
	}
}

// close scans what the rig left for the canary and removes it, once.
func (r *rig) close() { r.closed.Do(r.closeNow) }

func (r *rig) closeNow() {
	r.emu.Close()
	r.rc.srv.Close()
	suiteCanary.scanFiles(r.dir)
	os.RemoveAll(r.dir)
}

func (r *rig) config() string {
	var b strings.Builder
	listen := "127.0.0.1:0"
	fmt.Fprintf(&b, "state_dir: %s/state\nsocket: %s/kt.sock\nlisten: %q\n", r.dir,
		r.dir, listen)
	b.WriteString("log: {level: debug}\n")
	fmt.Fprintf(&b, "smartcar: {token_url: %q, timeout: %s}\n",
		r.tokenURL, r.o.timeout)
	fmt.Fprintf(&b, "notify:\n  - {name: hook, type: webhook, url: %q, "+
		"signing_key_file: %s/secret-hook.key, retries: 1, timeout: 2s}\n",
		r.hookURL, r.dir)
	b.WriteString(strings.ReplaceAll(r.o.notify, "{dir}", r.dir))
	b.WriteString(r.o.consumers)
	b.WriteString("apps:\n")
	for _, app := range r.apps {
		fmt.Fprintf(&b, "  - name: %s\n    client_id: %s\n    backend: %s\n", app,
			clientID(app), r.backendYAML(app))
		if r.o.mode == "backend" {
			fmt.Fprintf(&b, "    consumers:\n      mode: backend\n      propagation: 300ms\n"+
				"      hooks: [{name: dump, type: exec, command: [%s/hook.sh], "+
				"timeout: 10s}]\n", r.dir)
		} else {
			fmt.Fprintf(&b, "    consumers: {mode: %s}\n", r.o.mode)
		}
		fmt.Fprintf(&b, "    prompts: {remind_every: 1000h, escalate_after: 1000h}\n"+
			"    owners: %s\n    escalate_to: [hook]\n", or(r.o.owners, "[hook]"))
	}
	return b.String()
}

func (r *rig) backendYAML(app string) string {
	switch r.o.backend {
	case "awssm":
		return fmt.Sprintf("{type: awssm, secret_id: keyturn-rel/%s/%s, region: us-east-1}",
			r.id, app)
	case "vault":
		return fmt.Sprintf("{type: vault, address: %q, mount: secret, path: "+
			"keyturn-rel/%s/%s, ca_cert: %q}", r.backendAddr, r.id, app, r.vaultCA)
	}
	return fmt.Sprintf("{type: env, file: %s/%s.env}", r.dir, app)
}

// daemonEnv is what a daemon of this rig runs with beyond the test's own
// environment: a fault proxy in front of AWS, when asked.
func (r *rig) daemonEnv() []string {
	if r.o.backend == "awssm" {
		return []string{"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + r.backendAddr}
	}
	return nil
}

// initBackends stores the canary as each app's current secret, as an
// operator does before handing the credential to keyturn.
func (r *rig) initBackends() {
	if r.o.backend == "env" {
		return
	}
	for _, app := range r.apps {
		be := r.backend(app)
		err := be.Init(context.Background(), secret.New(canarySecret),
			time.Now().Add(-time.Hour))
		be.Close()
		if err != nil {
			r.t.Fatalf("init %s backend of %s: %v", r.o.backend, app, err)
		}
	}
}

// backend opens app's backend in the test process, straight to the real
// server (never through a fault proxy).
func (r *rig) backend(app string) backends.Backend {
	r.t.Helper()
	cfg, err := config.Load(r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		if a.Name != app {
			continue
		}
		if r.o.backend == "vault" {
			a.Backend.Address = os.Getenv("VAULT_ADDR")
			a.Backend.CACert = os.Getenv("VAULT_CACERT")
		}
		be, err := server.OpenBackend(context.Background(), cfg, a, nil)
		if err != nil {
			r.t.Fatalf("open backend of %s: %v", app, err)
		}
		return be
	}
	r.t.Fatalf("no app %s", app)
	return nil
}

// list returns app's tracked secrets, read by the test process.
func (r *rig) list(app string) []backends.Secret {
	r.t.Helper()
	be := r.backend(app)
	defer be.Close()
	list, err := be.List(context.Background())
	if err != nil {
		r.t.Fatalf("list %s: %v", app, err)
	}
	return list
}

// start runs a daemon (env adds to its environment) and waits until it
// answers.
func (r *rig) start(env ...string) *proc {
	r.t.Helper()
	p := startDaemon(r.t, "daemon of "+r.id, r.cfg, append(r.daemonEnv(), env...)...)
	poll(r.t, 30*time.Second, "the daemon to answer", func() bool {
		if !p.alive() {
			r.t.Fatalf("daemon exited at start:\n%s", p.stderr)
		}
		return r.kt("", "status").code == 0
	})
	return p
}

// kt runs the CLI against the rig's config.
func (r *rig) kt(stdin string, args ...string) result {
	r.t.Helper()
	return runCLI(r.t, nil, stdin, append([]string{"--config", r.cfg}, args...)...)
}

// status returns the credentials by app, or ok false when the daemon did
// not answer.
func (r *rig) status() (map[string]credStatus, bool) {
	return parseStatus(r.kt("", "status", "--output", "json"))
}

// mustStatus is status for app that fails the test when it cannot.
func (r *rig) mustStatus(app string) credStatus {
	r.t.Helper()
	st, ok := r.status()
	if !ok {
		r.t.Fatalf("keyturn status failed")
	}
	return st[app]
}

// create makes a new secret for app in the Dashboard (the emulator).
func (r *rig) create(app string) (id, value string) {
	r.t.Helper()
	id, value, _, err := r.emu.CreateSecret(clientID(app))
	if err != nil {
		r.t.Fatal(err)
	}
	suiteCanary.watch(value)
	return id, value
}

// tokenStatus asks the emulator directly for a token with value.
func (r *rig) tokenStatus(app, value string) int {
	r.t.Helper()
	resp, err := http.PostForm(r.emu.TokenURL(), url.Values{
		"grant_type": {"client_credentials"}, "client_id": {clientID(app)},
		"client_secret": {value}})
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// auditRecords reads the daemon's audit log.
func (r *rig) auditRecords() []audit.Record {
	r.t.Helper()
	segs, err := audit.Segments(filepath.Join(r.dir, "state", "audit"))
	if err != nil {
		r.t.Fatal(err)
	}
	var out []audit.Record
	for _, s := range segs {
		data, err := os.ReadFile(s)
		if err != nil {
			r.t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		// The last element is empty, or a line the daemon is writing.
		for _, line := range lines[:len(lines)-1] {
			rec, err := audit.ParseRecord([]byte(line))
			if err != nil {
				r.t.Fatalf("audit line of %s: %v", s, err)
			}
			out = append(out, rec)
		}
	}
	return out
}

// scrape reads the daemon's metrics for the canary check.
func (r *rig) scrape(addr string) string {
	r.t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	suiteCanary.scan("metrics scrape", body)
	return string(body)
}

// fp is the fingerprint keyturn gives value.
func fp(value string) string { return string(secret.New(value).Fingerprint()) }

var (
	loudOnce sync.Map
	probe    struct {
		once  sync.Once
		vault error
	}
)

// requireBackend skips t, loudly, when kind's server is not there, or
// fails it when CI is set: CI must run every backend.
func requireBackend(t testing.TB, kind string) {
	t.Helper()
	var why string
	switch kind {
	case "env":
		return
	case "awssm":
		if os.Getenv("AWS_ENDPOINT_URL_SECRETS_MANAGER") == "" {
			why = "AWS_ENDPOINT_URL_SECRETS_MANAGER is not set (scripts/test starts moto)"
		}
	case "vault":
		for _, v := range []string{"VAULT_ADDR", "VAULT_CACERT", "VAULT_TOKEN"} {
			if os.Getenv(v) == "" {
				why = v + " is not set (scripts/test starts a Vault cluster)"
			}
		}
		if why == "" {
			if err := vaultBuilt(); err != nil {
				why = err.Error()
			}
		}
	default:
		t.Fatalf("unknown backend %q", kind)
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI runs every backend, but the %s backend cannot: %s", kind, why)
	}
	if _, said := loudOnce.LoadOrStore(kind, true); !said {
		fmt.Fprintf(os.Stderr, "\n*** reliability: SKIPPING every %s test: %s ***\n\n",
			kind, why)
	}
	t.Skipf("%s backend: %s", kind, why)
}

// vaultBuilt reports whether this build of keyturn opens Vault backends.
func vaultBuilt() error {
	probe.once.Do(func() {
		dir, err := os.MkdirTemp("", "ktr-probe-")
		if err != nil {
			probe.vault = err
			return
		}
		defer os.RemoveAll(dir)
		a := &config.App{Name: "probe", ClientID: "client_probe",
			Backend: config.Backend{Type: "vault", Address: os.Getenv("VAULT_ADDR"),
				Mount: "secret", Path: "keyturn-rel/probe",
				CACert: os.Getenv("VAULT_CACERT"),
				Auth:   config.VaultAuth{Method: "token"}}}
		be, err := server.OpenBackend(context.Background(), &config.Config{StateDir: dir},
			a, nil)
		if err != nil && strings.Contains(err.Error(), "not available in this build") {
			probe.vault = fmt.Errorf("this build of keyturn has no vault backend: %v", err)
			return
		}
		if be != nil {
			be.Close()
		}
	})
	return probe.vault
}

// nobody is the credential of the user nobody, for the socket tests.
var nobody = &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true}
