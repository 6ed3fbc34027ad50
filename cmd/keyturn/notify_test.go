package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

// TestNotifyTestAndFailingChannel sends a test message, then runs a
// rotation while one of two channels is a dead port: the rotation goes
// on, the working channel hears about the failing one, and every attempt
// is in the audit log.
func TestNotifyTestAndFailingChannel(t *testing.T) {
	tr := &transcript{}
	dir := t.TempDir()
	emu := emulator.New()
	emu.Start("127.0.0.1:0")
	defer emu.Close()
	emu.ImportSecret("client_restart", canarySecret, time.Now())
	rc := &receiver{key: []byte("hook-signing-key")}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	cfg := writeRestartConfig(t, dir, emu.TokenURL(), hook.URL)
	key := filepath.Join(dir, "secret-hook.key")
	text := strings.Replace(readFile(t, cfg), "    owners: [hook]",
		"    owners: [hook, dead]", 1)
	text = strings.Replace(text, "apps:\n", "  - {name: dead, type: webhook, "+
		"url: http://127.0.0.1:1/, signing_key_file: "+key+", retries: 2}\napps:\n", 1)
	os.WriteFile(cfg, []byte(text), 0o600)

	startProc(t, tr, "daemon", "--config", cfg)
	eventually(t, "daemon ready", func() bool { return kt(t, tr, cfg, "", "status").code == 0 })

	if r := kt(t, tr, cfg, "", "notify", "test", "hook"); r.code != 0 {
		t.Fatalf("notify test: %v", r)
	}
	if got := rc.prompts()[notify.KindTest]; got != 1 {
		t.Errorf("test messages received: %d", got)
	}
	r := kt(t, tr, cfg, "", "notify", "test", "nope")
	if r.code != 2 || !strings.Contains(r.stderr, "configured channels: dead, hook") {
		t.Errorf("unknown channel: %v", r)
	}
	if r := kt(t, tr, cfg, "", "notify", "test", "dead"); r.code != 1 {
		t.Errorf("dead channel test: %v", r)
	}

	if r := kt(t, tr, cfg, "", "rotate", "demo"); r.code != 0 {
		t.Fatalf("rotate: %v", r)
	}
	eventually(t, "the failing channel to be reported", func() bool {
		return rc.prompts()[notify.KindChannelFailing] == 1
	})
	if got := rc.prompts()[notify.KindPromptCreate]; got != 1 {
		t.Errorf("prompts on the working channel: %d", got)
	}
	if s := rotationState(t, tr, cfg); s != "await_new" {
		t.Errorf("rotation state %q", s)
	}
	r = kt(t, tr, cfg, "", "audit", "tail", "-n", "200")
	for _, want := range []string{"channel:dead", "outcome=failed", "outcome=retry",
		"channel:hook"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("audit lacks %q:\n%s", want, r.stdout)
		}
	}
	tr.add(rc.bodies.String())
	checkCanary(t, tr, []string{canarySecret, "hook-signing-key"}, dir)
}
