package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/config"
)

// exampleEnv is what the example configs read from the environment.
var exampleEnv = []string{"VAULT_ADDR=https://vault.example.com:8200"}

// exampleConfigs are every config file under deploy/ that an operator
// might copy: the examples and the Kubernetes ConfigMaps' sources.
func exampleConfigs(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("examples/*.yaml")
	k8s, _ := filepath.Glob("kubernetes/*/keyturn.yaml")
	overlays, _ := filepath.Glob("kubernetes/overlays/*/keyturn.yaml")
	files = append(append(files, k8s...), overlays...)
	if len(files) < 4 {
		t.Fatalf("found only %v", files)
	}
	return files
}

// TestExamplesLoad loads every example as the daemon does.
func TestExamplesLoad(t *testing.T) {
	for _, kv := range exampleEnv {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	backends := map[string]bool{}
	channels := map[string]bool{}
	consumers := 0
	for _, f := range exampleConfigs(t) {
		cfg, err := config.Load(f)
		if err != nil {
			t.Errorf("%s:\n%v", f, err)
			continue
		}
		for _, a := range cfg.Apps {
			backends[a.Backend.Type] = true
		}
		for _, ch := range cfg.Notify {
			channels[ch.Type] = true
		}
		consumers += len(cfg.Consumers)
	}
	for _, want := range []string{"env", "vault", "awssm"} {
		if !backends[want] {
			t.Errorf("no example uses the %s backend", want)
		}
	}
	for _, want := range []string{"log", "slack", "pagerduty", "webhook", "email"} {
		if !channels[want] {
			t.Errorf("no example has a %s notify channel", want)
		}
	}
	if consumers == 0 {
		t.Error("no example configures a broker consumer")
	}
}

// TestExamplesValidate runs keyturn config validate on every example, as
// an operator would, and on a broken copy, which must fail with exit 2.
func TestExamplesValidate(t *testing.T) {
	for _, f := range exampleConfigs(t) {
		stdout, stderr, code := run(t, exampleEnv, "config", "validate", "--config", f)
		if code != 0 || !strings.Contains(stdout, ": ok (") {
			t.Errorf("keyturn config validate --config %s: exit %d\n%s%s", f, code,
				stdout, stderr)
		}
	}

	data := readFile(t, "examples/env-minimal.yaml")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	data = strings.Replace(data, "type: env", "type: s3", 1)
	if err := os.WriteFile(bad, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := run(t, nil, "config", "validate", "--config", bad)
	if code != 2 || !strings.Contains(stderr, `"s3" is not a backend`) {
		t.Errorf("a bad example: exit %d, want 2 naming the backend\n%s", code, stderr)
	}
}

// TestSystemdExampleMatchesUnit keeps the systemd example config and the
// unit agreeing on where the state dir and socket are.
func TestSystemdExampleMatchesUnit(t *testing.T) {
	cfg, err := config.Load("examples/systemd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	unit := parseUnit(t, "systemd/keyturn.service")
	state := "/var/lib/" + unit["Service.StateDirectory"][0]
	run := "/run/" + unit["Service.RuntimeDirectory"][0]
	if cfg.StateDir != state || filepath.Dir(cfg.Socket) != run {
		t.Errorf("example state_dir %s, socket %s; the unit gives %s and %s", cfg.StateDir,
			cfg.Socket, state, run)
	}
	if !slices.ContainsFunc(unit["Service.ExecStart"], func(s string) bool {
		return strings.HasSuffix(s, "--config /etc/keyturn/keyturn.yaml")
	}) {
		t.Error("the unit does not read /etc/keyturn/keyturn.yaml")
	}
}
