package main

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

// emergencyRig is a daemon with an env backend, the emulator and a
// webhook receiver, whose first secret is the canary.
type emergencyRig struct {
	tr  *transcript
	dir string
	cfg string
	emu *emulator.Emulator
	rc  *receiver
}

func newEmergencyRig(t *testing.T) *emergencyRig {
	t.Helper()
	g := &emergencyRig{tr: &transcript{}, dir: t.TempDir(), emu: emulator.New(),
		rc: &receiver{key: []byte("hook-signing-key")}}
	if _, err := g.emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.emu.Close() })
	g.emu.ImportSecret("client_restart", canarySecret, time.Now().Add(-time.Hour))
	hook := httptest.NewServer(g.rc)
	t.Cleanup(hook.Close)
	g.cfg = writeRestartConfig(t, g.dir, g.emu.TokenURL(), hook.URL)
	startProc(t, g.tr, "daemon", "--config", g.cfg)
	eventually(t, "daemon ready", func() bool {
		return kt(t, g.tr, g.cfg, "", "status").code == 0
	})
	return g
}

func (g *emergencyRig) oldID() string { return g.emu.Secrets("client_restart")[0].ID }

// TestEmergencyInteractive walks the playbook on a pseudo-terminal, as
// on-call would at 3 a.m.
func TestEmergencyInteractive(t *testing.T) {
	g := newEmergencyRig(t)
	if r := kt(t, g.tr, g.cfg, "", "check", "demo"); r.code != 0 {
		t.Fatalf("check: %v", r)
	}
	cmd := exec.Command(binary, "--config", g.cfg, "emergency", "demo")
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	out := &lockedBuffer{}
	go io.Copy(out, tty)
	waitFor := func(s string) {
		t.Helper()
		eventually(t, "the screen to show "+s, func() bool {
			return strings.Contains(out.String(), s)
		})
	}

	waitFor("(input hidden)")
	_, newSecret, _, _ := g.emu.CreateSecret("client_restart")
	io.WriteString(tty, newSecret+"\r")
	waitFor("Press Enter once it is deleted")
	g.emu.DeleteSecret("client_restart", g.oldID())
	io.WriteString(tty, "\r")
	waitFor("incident report:")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("emergency exited with %v:\n%s", err, out)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("emergency did not end:\n%s", out)
	}
	screen := out.String()
	if os.Getenv("SHOW_SCREEN") != "" {
		t.Log(screen)
	}
	for _, want := range []string{"EMERGENCY rotation", "[+00:", "revocation proven",
		"cannot be revoked", "await_delete", "done"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	if strings.Contains(screen, newSecret) {
		t.Error("the secret was echoed on the terminal")
	}

	reports, _ := filepath.Glob(filepath.Join(g.dir, "state", "audit", "incident-*.json"))
	if len(reports) != 1 {
		t.Fatalf("incident reports: %v", reports)
	}
	var inc struct {
		Compromised struct{ Fingerprint string } `json:"compromised"`
		Review      struct {
			Requests []struct{ Purpose string } `json:"requests"`
		} `json:"review"`
	}
	data, _ := os.ReadFile(reports[0])
	json.Unmarshal(data, &inc)
	if inc.Compromised.Fingerprint != string(secret.New(canarySecret).Fingerprint()) ||
		len(inc.Review.Requests) < 2 || inc.Review.Requests[0].Purpose != "check" {
		t.Errorf("incident report: %s", data)
	}
	g.tr.add(screen + g.rc.bodies.String())
	checkCanary(t, g.tr, []string{canarySecret, newSecret}, g.dir)
}

// TestEmergencyWithoutTerminal starts the playbook from a script: it
// returns at once with the next step, and submit/confirm-deleted drive it.
func TestEmergencyWithoutTerminal(t *testing.T) {
	g := newEmergencyRig(t)
	r := kt(t, g.tr, g.cfg, "", "emergency", "demo", "--revoke-first")
	if r.code != 2 || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("revoke-first without confirmation: %v", r)
	}
	r = kt(t, g.tr, g.cfg, "", "emergency", "demo", "--revoke-first", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "next: delete secret") {
		t.Fatalf("emergency: %v", r)
	}
	st := status(t, g.tr, g.cfg)
	if st[0].Rotation == nil || st[0].Rotation.Kind != "emergency" {
		t.Fatalf("status: %+v", st[0])
	}
	g.emu.DeleteSecret("client_restart", g.oldID())
	if r := kt(t, g.tr, g.cfg, "", "confirm-deleted", "demo"); r.code != 0 {
		t.Fatalf("confirm-deleted: %v", r)
	}
	_, newSecret, _, _ := g.emu.CreateSecret("client_restart")
	if r := kt(t, g.tr, g.cfg, newSecret, "submit", "demo"); r.code != 0 {
		t.Fatalf("submit: %v", r)
	}
	if s := rotationState(t, g.tr, g.cfg); s != "" {
		t.Errorf("rotation still running: %s", s)
	}
	checkCanary(t, g.tr, []string{canarySecret, newSecret}, g.dir)
}
