package rotator

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

// crashAt makes the engine panic at a crash point, standing in for the
// SIGKILL the process tests use, and returns a function that runs fn and
// swallows that panic.
func crashAt(t *testing.T, point string) func(fn func()) {
	t.Helper()
	CrashHook = func(p string) {
		if p == point {
			panic("crash at " + p)
		}
	}
	t.Cleanup(func() { CrashHook = nil })
	return func(fn func()) {
		defer func() {
			if r := recover(); r == nil {
				t.Fatalf("crash point %s was not reached", point)
			}
			CrashHook = nil
		}()
		fn()
	}
}

func TestInterruptedRollbackIsFinished(t *testing.T) {
	f := newFixture(t, nil)
	f.app.Consumers = config.AppConsumers{Mode: "backend", Hooks: []config.Hook{{
		Name: "broken", Type: "exec", Command: []string{"/bin/false"},
		Timeout: config.Duration(time.Second)}}}
	f.restart(f.emu.URL())
	f.eng.Rotate(ctx, "demo", "", "alice")
	_, v := f.newSecret()
	crashAt(t, "rollback:decided")(func() { f.eng.Submit(ctx, "demo", v, "alice") })

	f.restart(f.emu.URL())
	f.eng.Tick(ctx)
	r, _ := f.eng.Get("demo")
	if r.State != StateStaged || r.Hold == "" {
		t.Fatalf("after restart: %s hold %q", r.State, r.Hold)
	}
	cur, _ := f.be.Get(ctx, backends.StageCurrent)
	if cur.Value.Reveal() != f.oldSec {
		t.Error("the interrupted rollback was not finished: the new secret is current")
	}
}

func TestFollowUpSurvivesCrash(t *testing.T) {
	f := newFixture(t, func(a *config.App) {
		a.Consumers = config.AppConsumers{Mode: "backend",
			Propagation: config.Duration(time.Hour)}
	})
	f.eng.Rotate(ctx, "demo", "", "alice")
	_, v := f.newSecret()
	f.eng.Submit(ctx, "demo", v, "alice")
	if _, err := f.eng.Emergency(ctx, "demo", EmergencyOptions{Secret: v.Fingerprint()}); err != nil {
		t.Fatal(err)
	}
	f.emu.DeleteSecret(clientID, f.oldID())
	crashAt(t, "done:saved")(func() { f.eng.ConfirmDeleted(ctx, "demo", "oncall") })

	f.restart(f.emu.URL())
	f.eng.Tick(ctx)
	next, _ := f.eng.Get("demo")
	if next == nil || next.Kind != KindEmergency || next.Old.Fingerprint != v.Fingerprint() {
		t.Fatalf("follow-up emergency after the crash: %+v", next)
	}
}

func TestNoRevocationWithoutProof(t *testing.T) {
	f := newFixture(t, nil)
	f.eng.Rotate(ctx, "demo", "", "alice")
	_, v := f.newSecret()
	r, _ := f.eng.Submit(ctx, "demo", v, "alice")
	// The backend lost the old secret (a Vault mount with max_versions 1).
	if err := f.be.RemovePrevious(ctx, r.Old.Fingerprint); err != nil {
		t.Fatal(err)
	}
	_, err := f.eng.ConfirmDeleted(ctx, "demo", "alice")
	if !errors.Is(err, ErrCannotProve) || Hint(err) == "" {
		t.Fatalf("confirm without the old secret: %v", err)
	}
	if s := f.state(); s != StateAwaitDelete {
		t.Errorf("state %s, want await_delete", s)
	}
}

func TestNoAbortAfterRevokeFirstDeletion(t *testing.T) {
	f := newFixture(t, nil)
	f.eng.Emergency(ctx, "demo", EmergencyOptions{RevokeFirst: true})
	f.emu.DeleteSecret(clientID, f.oldID())
	if _, err := f.eng.ConfirmDeleted(ctx, "demo", "oncall"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Abort(ctx, "demo", "oncall", ""); !errors.Is(err, ErrTooLate) {
		t.Errorf("abort after the revocation: %v", err)
	}
}

func TestRateLimitedStepWaitsForRetryAfter(t *testing.T) {
	f := newFixture(t, nil)
	f.eng.Rotate(ctx, "demo", "", "alice")
	_, v := f.newSecret()
	f.emu.SetFaults(emulatorFaults429(90 * time.Second))
	if _, err := f.eng.Submit(ctx, "demo", v, "alice"); !errors.Is(err, ErrRetrying) {
		t.Fatalf("submit while rate limited: %v", err)
	}
	r, _ := f.eng.Get("demo")
	if wait := r.RetryAt.Sub(f.clk.Now()); wait < 90*time.Second {
		t.Errorf("retry in %v, want at least Retry-After (90s)", wait)
	}
}

func emulatorFaults429(after time.Duration) emulator.Faults {
	return emulator.Faults{RateLimitNext: 1, RetryAfter: after}
}

// TestHookOutputScrubbed: a hook that prints the env file it reloads
// does not put the secret in keyturn's log.
func TestHookOutputScrubbed(t *testing.T) {
	var logs strings.Builder
	f := newFixture(t, nil)
	f.app.Consumers = config.AppConsumers{Mode: "backend", Hooks: []config.Hook{{
		Name: "chatty", Type: "exec", Timeout: config.Duration(5 * time.Second),
		Command: []string{"/bin/sh", "-c", "cat \"$1\"; exit 1", "chatty",
			filepath.Join(f.dir, "demo.env")}}}}
	f.restart(f.emu.URL())
	f.eng.log = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil))
	f.eng.Rotate(ctx, "demo", "", "alice")
	_, v := f.newSecret()
	f.eng.Submit(ctx, "demo", v, "alice")
	out := logs.String()
	if !strings.Contains(out, "SMARTCAR_CLIENT_SECRET=[redacted") {
		t.Errorf("the hook's output is not in the log, redacted:\n%s", out)
	}
	if strings.Contains(out, v.Reveal()) || strings.Contains(out, f.oldSec) {
		t.Error("a secret reached the log through a hook's output")
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
