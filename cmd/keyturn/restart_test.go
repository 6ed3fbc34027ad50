package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

// canarySecret is the first secret of the restart test's app: a value
// distinctive enough that finding it anywhere is proof of a leak.
const canarySecret = "CANARY-kt-7f3e9a1c-restart-secret-do-not-leak"

// receiver is a webhook endpoint that checks signatures and keeps every
// event it was sent.
type receiver struct {
	key    []byte
	mu     sync.Mutex
	events []notify.WebhookBody
	bodies strings.Builder
	bad    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.bodies.Write(body)
	err := notify.VerifySignature(rc.key, r.Header.Get(notify.SignatureHeader), body,
		time.Now(), time.Minute)
	var ev notify.WebhookBody
	if err != nil || json.Unmarshal(body, &ev) != nil {
		rc.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.events = append(rc.events, ev)
}

// prompts counts the prompts (not their resolutions) by kind.
func (rc *receiver) prompts() map[notify.Kind]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := map[notify.Kind]int{}
	for _, ev := range rc.events {
		if !ev.Resolve {
			n[ev.Kind]++
		}
	}
	return n
}

func writeRestartConfig(t *testing.T, dir, tokenURL, hookURL string) string {
	t.Helper()
	key := filepath.Join(dir, "secret-hook.key")
	os.WriteFile(key, []byte("hook-signing-key\n"), 0o600)
	env := fmt.Sprintf("SMARTCAR_CLIENT_ID=client_restart\nSMARTCAR_CLIENT_SECRET=%s\n",
		canarySecret)
	os.WriteFile(filepath.Join(dir, "demo.env"), []byte(env), 0o600)
	os.MkdirAll(filepath.Join(dir, "state"), 0o700)
	cfg := fmt.Sprintf(`state_dir: %[1]s/state
socket: %[1]s/kt.sock
listen: "off"
smartcar: {token_url: %[2]s, timeout: 2s}
notify:
  - {name: hook, type: webhook, url: %[3]s, signing_key_file: %[4]s, retries: 1}
apps:
  - name: demo
    client_id: client_restart
    backend: {type: env, file: %[1]s/demo.env}
    consumers: {mode: backend, propagation: 1s}
    owners: [hook]
`, dir, tokenURL, hookURL, key)
	path := filepath.Join(dir, "keyturn.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	return path
}

// TestRestartAfterSIGKILL kills the daemon right after submit and right
// after confirm-deleted; each new daemon carries on, and no person is
// prompted twice.
func TestRestartAfterSIGKILL(t *testing.T) {
	tr := &transcript{}
	dir := t.TempDir()
	emu := emulator.New()
	if _, err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	emu.ImportSecret("client_restart", canarySecret, time.Now().Add(-80*24*time.Hour))
	rc := &receiver{key: []byte("hook-signing-key")}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	cfg := writeRestartConfig(t, dir, emu.TokenURL(), hook.URL)
	oldID := emu.Secrets("client_restart")[0].ID

	start := func() *proc {
		p := startProc(t, tr, "daemon", "--config", cfg)
		eventually(t, "daemon ready", func() bool {
			return kt(t, tr, cfg, "", "status").code == 0
		})
		return p
	}
	a := start()
	if r := kt(t, tr, cfg, "", "rotate", "demo"); r.code != 0 {
		t.Fatal(r)
	}
	_, newSecret, _, _ := emu.CreateSecret("client_restart")
	if r := kt(t, tr, cfg, newSecret+"\n", "submit", "demo"); r.code != 0 {
		t.Fatal(r)
	}
	a.kill(syscall.SIGKILL)

	b := start()
	eventually(t, "await_delete after restart", func() bool {
		return rotationState(t, tr, cfg) == "await_delete"
	})
	emu.DeleteSecret("client_restart", oldID)
	emu.SetFaults(emulator.Faults{FailNext: 1000}) // Smartcar is down for a while
	r := kt(t, tr, cfg, "", "confirm-deleted", "demo")
	if r.code != 1 || !strings.Contains(r.stderr, "retries on its own") {
		t.Fatalf("confirm-deleted while smartcar fails: %v", r)
	}
	b.kill(syscall.SIGKILL)

	emu.SetFaults(emulator.Faults{})
	start()
	eventually(t, "the rotation to finish", func() bool {
		return rotationState(t, tr, cfg) == ""
	})
	if code := (dashboard{t: t, base: emu.URL(), clientID: "client_restart"}).
		tokenStatus(newSecret); code != 200 {
		t.Errorf("new secret answered %d", code)
	}
	if r := kt(t, tr, cfg, "", "audit", "verify"); r.code != 0 {
		t.Errorf("audit verify: %v", r)
	}

	eventually(t, "the done notification", func() bool {
		return rc.prompts()[notify.KindRotationDone] == 1
	})
	want := map[notify.Kind]int{notify.KindPromptCreate: 1, notify.KindPromptDelete: 1,
		notify.KindRotationDone: 1}
	if got := rc.prompts(); fmt.Sprint(got) != fmt.Sprint(want) || rc.bad != 0 {
		t.Errorf("prompts = %v (bad signatures %d), want %v", got, rc.bad, want)
	}
	tr.add(rc.bodies.String())
	checkCanary(t, tr, []string{canarySecret, newSecret}, dir)
}
