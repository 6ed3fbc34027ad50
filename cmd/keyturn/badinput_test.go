package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/smartcar/emulator"
)

// TestBadInput checks that each kind of bad input gets one clear error
// line, a hint, the contract's exit code, and changes nothing.
func TestBadInput(t *testing.T) {
	tr := &transcript{}
	dir := t.TempDir()
	emu := emulator.New()
	emu.Start("127.0.0.1:0")
	defer emu.Close()
	emu.ImportSecret("client_restart", canarySecret, time.Now())
	cfg := writeRestartConfig(t, dir, emu.TokenURL(), "http://127.0.0.1:1/")

	missing := filepath.Join(dir, "missing.yaml")
	os.WriteFile(missing, []byte(strings.Replace(readFile(t, cfg),
		dir+"/state", dir+"/nowhere", 1)), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apps:\n  - name: Demo\n    backend: {type: s3}\n"), 0o600)

	tests := []struct {
		name  string
		cfg   string
		args  []string
		code  int
		error string
		hint  string
	}{
		{"daemon not running", cfg, []string{"status"}, 1,
			"the keyturn daemon is not running", "keyturn daemon --config"},
		{"missing state dir", missing, []string{"daemon"}, 1,
			"state dir", "install -d -m 0700"},
		{"bad config", bad, []string{"config", "validate"}, 2,
			`apps[0].name: "Demo" is not a usable name`, "keyturn config validate"},
		{"no config", filepath.Join(dir, "none.yaml"), []string{"status"}, 2,
			"no such file", "--config FILE"},
		{"unknown flag", cfg, []string{"status", "--colour"}, 2,
			"unknown flag: --colour", "keyturn status --help"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := kt(t, tr, tt.cfg, "", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, "keyturn: error: ") ||
				!strings.Contains(r.stderr, tt.error) ||
				!strings.Contains(r.stderr, "keyturn: hint: ") ||
				!strings.Contains(r.stderr, tt.hint) {
				t.Errorf("got %v\nwant exit %d, error %q, hint %q", r, tt.code, tt.error,
					tt.hint)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nowhere")); err == nil {
		t.Error("a failed start created the missing state dir")
	}

	startProc(t, tr, "daemon", "--config", cfg)
	eventually(t, "daemon ready", func() bool { return kt(t, tr, cfg, "", "status").code == 0 })
	// A second daemon on the same state dir, and one on the same socket.
	other := filepath.Join(dir, "other.yaml")
	os.MkdirAll(filepath.Join(dir, "state2"), 0o700)
	os.WriteFile(other, []byte(strings.Replace(readFile(t, cfg), "state_dir: "+dir+"/state",
		"state_dir: "+dir+"/state2", 1)), 0o600)
	for _, c := range []struct{ cfg, want string }{
		{cfg, "locked by another keyturn daemon"},
		{other, "is in use by a running daemon"},
	} {
		r := kt(t, tr, c.cfg, "", "daemon")
		if r.code != 1 || !strings.Contains(r.stderr, c.want) ||
			!strings.Contains(r.stderr, "keyturn: hint: ") {
			t.Errorf("second daemon: %v, want %q", r, c.want)
		}
	}
	r := kt(t, tr, cfg, "", "rotate", "nope")
	if r.code != 2 || !strings.Contains(r.stderr, `no app is named "nope"`) {
		t.Errorf("unknown app: %v", r)
	}

	// A world-readable env file is refused, and no rotation starts.
	os.Chmod(filepath.Join(dir, "demo.env"), 0o644)
	r = kt(t, tr, cfg, "", "rotate", "demo")
	if r.code != 1 || !strings.Contains(r.stderr, "chmod 600") {
		t.Errorf("world-readable env file: %v", r)
	}
	if s := rotationState(t, tr, cfg); s != "" {
		t.Errorf("a refused rotate left a rotation in %s", s)
	}
	checkCanary(t, tr, []string{canarySecret}, dir)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
