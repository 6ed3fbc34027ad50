package rotator

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/secret"
)

// consumer is the sample consumer, a real process reading the env file.
type consumer struct {
	cmd                       *exec.Cmd
	addr, pidFile, loadedFile string
}

func startConsumer(t *testing.T, f *fixture) *consumer {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sampleconsumer")
	if out, err := exec.Command("go", "build", "-o", bin,
		"../test/sampleconsumer").CombinedOutput(); err != nil {
		t.Fatalf("build sample consumer: %v\n%s", err, out)
	}
	c := &consumer{pidFile: filepath.Join(f.dir, "consumer.pid"),
		loadedFile: filepath.Join(f.dir, "consumer.loaded")}
	listen := filepath.Join(f.dir, "consumer.addr")
	c.cmd = exec.Command(bin, "-env-file", filepath.Join(f.dir, "demo.env"),
		"-token-url", f.emu.TokenURL(), "-listen-file", listen, "-pid-file", c.pidFile,
		"-loaded-file", c.loadedFile)
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if data, err := os.ReadFile(listen); err == nil && len(data) > 0 {
			c.addr = strings.TrimSpace(string(data))
			return c
		}
		if time.Now().After(deadline) {
			t.Fatal("sample consumer did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reloadHook sends SIGHUP and returns once the consumer holds the secret
// keyturn made current.
func (c *consumer) reloadHook() config.Hook {
	script := `kill -HUP "$(cat "$1")" || exit 1; i=0
while [ "$i" -lt 50 ]; do
  [ "$(cat "$2")" = "$KEYTURN_CURRENT_FP" ] && exit 0
  i=$((i+1)); sleep 0.1
done; exit 1`
	return config.Hook{Name: "reload", Type: "exec", Timeout: config.Duration(10 *
		time.Second), Command: []string{"/bin/sh", "-c", script, "reload", c.pidFile,
		c.loadedFile}}
}

func (c *consumer) loaded(t *testing.T) secret.Fingerprint {
	data, _ := os.ReadFile(c.loadedFile)
	return secret.Fingerprint(strings.TrimSpace(string(data)))
}

func TestHookAndGateThenDeletePrompt(t *testing.T) {
	f := newFixture(t, nil)
	c := startConsumer(t, f)
	f.app.Consumers = config.AppConsumers{Mode: "backend",
		Hooks: []config.Hook{c.reloadHook()},
		Gate: &config.Gate{URL: "http://" + c.addr + "/healthz", Successes: 2,
			Timeout: config.Duration(2 * time.Second)}}
	f.restart(f.emu.URL())

	f.eng.Rotate(ctx, "demo", "", "alice")
	_, v := f.newSecret()
	f.ev.take()
	r, err := f.eng.Submit(ctx, "demo", v, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StateAwaitDelete {
		t.Fatalf("state %s (%s)", r.State, r.LastError)
	}
	if got := c.loaded(t); got != v.Fingerprint() {
		t.Errorf("consumer holds %s, want the new secret %s", got, v.Fingerprint())
	}
	if !r.Consumers.GatePassed || len(r.Consumers.GateRuns) != 2 ||
		r.Consumers.Hooks[0] != "reload: ok" {
		t.Errorf("consumer step: %+v", r.Consumers)
	}
	if got := kinds(f.ev.take()); len(got) != 1 || got[0] != notify.KindPromptDelete {
		t.Errorf("events after the gate: %v, want only the delete prompt", got)
	}
	tail := auditSteps(t, f)
	for _, want := range []string{"hook:reload ok", "gate:gate ok"} {
		if !strings.Contains(tail, want) {
			t.Errorf("audit lacks %q:\n%s", want, tail)
		}
	}
}

func TestGateFailureRollsBack(t *testing.T) {
	f := newFixture(t, nil)
	c := startConsumer(t, f)
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "payments down", http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	f.app.Consumers = config.AppConsumers{Mode: "backend",
		Hooks: []config.Hook{c.reloadHook()},
		Gate:  &config.Gate{URL: sick.URL, Successes: 2, Timeout: config.Duration(time.Second)}}
	f.restart(f.emu.URL())

	f.eng.Rotate(ctx, "demo", "", "alice")
	_, v := f.newSecret()
	f.ev.take()
	r, err := f.eng.Submit(ctx, "demo", v, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StateStaged || r.Hold == "" {
		t.Fatalf("after a failed gate: state %s hold %q", r.State, r.Hold)
	}
	cur, _ := f.be.Get(ctx, backends.StageCurrent)
	pend, _ := f.be.Get(ctx, backends.StagePending)
	if cur.Value.Reveal() != f.oldSec || !pend.Value.Equal(v) {
		t.Errorf("after rollback current=%s pending=%s", cur.Fingerprint, pend.Fingerprint)
	}
	if got := c.loaded(t); got != cur.Fingerprint {
		t.Errorf("consumer holds %s after the rollback, want %s", got, cur.Fingerprint)
	}
	if err := f.works(secret.New(f.oldSec)); err != nil {
		t.Errorf("old secret after rollback: %v", err)
	}
	got := kinds(f.ev.take())
	if len(got) != 1 || got[0] != notify.KindRotationFailed {
		t.Errorf("events: %v, want the owners told of the rollback", got)
	}
	if len(f.emu.Secrets(clientID)) != 2 {
		t.Error("something was deleted")
	}
	f.eng.Tick(ctx)
	if s := f.state(); s != StateStaged {
		t.Errorf("a held rotation moved on by itself to %s", s)
	}
	if _, err := f.eng.Abort(ctx, "demo", "alice", "gate"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(auditSteps(t, f), "staged") {
		t.Error("no audit record of the rollback")
	}
}

func TestCrashDuringPropagationKeepsWindowEnd(t *testing.T) {
	f := newFixture(t, func(a *config.App) {
		a.Consumers = config.AppConsumers{Mode: "backend",
			Propagation: config.Duration(10 * time.Minute)}
	})
	f.eng.Rotate(ctx, "demo", "", "alice")
	_, v := f.newSecret()
	r, _ := f.eng.Submit(ctx, "demo", v, "alice")
	end := r.DrainUntil
	f.clk.Advance(6 * time.Minute)
	f.restart(f.emu.URL())
	f.eng.Tick(ctx)
	r, _ = f.eng.Get("demo")
	if r.State != StateDraining || !r.DrainUntil.Equal(end) {
		t.Fatalf("after restart: %s until %v, want draining until %v", r.State,
			r.DrainUntil, end)
	}
	f.clk.Advance(4 * time.Minute)
	f.eng.Tick(ctx)
	if s := f.state(); s != StateAwaitDelete {
		t.Errorf("at the window's end: %s", s)
	}
}

func TestManualConsumers(t *testing.T) {
	f := newFixture(t, func(a *config.App) { a.Consumers.Mode = "manual" })
	f.eng.Rotate(ctx, "demo", "", "alice")
	if _, err := f.eng.ConfirmUpdated(ctx, "demo", "bob"); !errors.Is(err, ErrWrongState) {
		t.Errorf("confirm-updated before promotion: %v", err)
	}
	_, v := f.newSecret()
	f.ev.take()
	r, _ := f.eng.Submit(ctx, "demo", v, "alice")
	if r.State != StateDraining {
		t.Fatalf("state %s", r.State)
	}
	if got := kinds(f.ev.take()); len(got) != 1 || got[0] != notify.KindPromptUpdate {
		t.Errorf("events: %v, want an update prompt", got)
	}
	r, err := f.eng.ConfirmUpdated(ctx, "demo", "bob")
	if err != nil || r.State != StateAwaitDelete {
		t.Fatalf("confirm-updated: %v %v", r, err)
	}
}

// auditSteps returns the log's rotation steps as "step outcome" lines.
func auditSteps(t *testing.T, f *fixture) string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(f.dir, "audit", "*.jsonl"))
	var b strings.Builder
	for _, p := range paths {
		data, _ := os.ReadFile(p)
		for _, line := range strings.Split(string(data), "\n") {
			if i := strings.Index(line, `"step":"`); i >= 0 {
				rest := line[i+8:]
				step := rest[:strings.Index(rest, `"`)]
				out := ""
				if j := strings.Index(line, `"outcome":"`); j >= 0 {
					o := line[j+11:]
					out = o[:strings.Index(o, `"`)]
				}
				b.WriteString(step + " " + out + "\n")
			}
		}
	}
	return b.String()
}
