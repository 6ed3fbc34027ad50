package main

import (
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/smartcar/emulator"
)

// TestSIGHUPReload reloads a running daemon's config: a new app is picked
// up, a broken config is refused with the old one kept, and an app with a
// running rotation cannot be removed.
func TestSIGHUPReload(t *testing.T) {
	tr := &transcript{}
	dir := t.TempDir()
	emu := emulator.New()
	emu.Start("127.0.0.1:0")
	defer emu.Close()
	emu.ImportSecret("client_restart", canarySecret, time.Now())
	hook := httptest.NewServer(&receiver{key: []byte("hook-signing-key")})
	defer hook.Close()
	cfg := writeRestartConfig(t, dir, emu.TokenURL(), hook.URL)
	orig := readFile(t, cfg)
	d := startProc(t, tr, "daemon", "--config", cfg)
	// The CLI reads its own copy: the daemon's file is about to break.
	cli := dir + "/cli.yaml"
	os.WriteFile(cli, []byte(orig), 0o600)
	eventually(t, "daemon ready", func() bool { return kt(t, tr, cli, "", "status").code == 0 })
	apps := func() int { return len(status(t, tr, cli)) }
	hup := func() { d.cmd.Process.Signal(syscall.SIGHUP) }

	second := orig + `  - name: second
    client_id: client_second
    backend: {type: env, file: ` + dir + `/second.env}
`
	os.WriteFile(cfg, []byte(second), 0o600)
	hup()
	eventually(t, "the new app", func() bool {
		r := kt(t, tr, cli, "", "status", "--output", "json")
		return r.code == 0 && strings.Contains(r.stdout, `"app": "second"`)
	})

	os.WriteFile(cfg, []byte(second+"  - name: Broken!\n"), 0o600)
	hup()
	eventually(t, "the refusal in the log", func() bool {
		return strings.Contains(d.stderr.String(), "config reload refused")
	})
	if n := apps(); n != 2 {
		t.Errorf("after a broken config: %d apps, want the old 2", n)
	}

	if r := kt(t, tr, cli, "", "rotate", "demo"); r.code != 0 {
		t.Fatal(r)
	}
	os.WriteFile(cfg, []byte(strings.Replace(second, "  - name: demo\n",
		"  - name: demo-renamed\n", 1)), 0o600)
	hup()
	eventually(t, "the second refusal", func() bool {
		return strings.Count(d.stderr.String(), "config reload refused") == 2
	})
	if !strings.Contains(d.stderr.String(), "finish or abort it before removing the app") {
		t.Errorf("refusal does not say why:\n%s", d.stderr)
	}
	if s := rotationState(t, tr, cli); s != "await_new" {
		t.Errorf("rotation after a refused reload: %q", s)
	}
	if r := kt(t, tr, cli, "", "audit", "tail", "-n", "100"); !strings.Contains(r.stdout,
		"config_reload") {
		t.Errorf("reloads not audited:\n%s", r.stdout)
	}
}
