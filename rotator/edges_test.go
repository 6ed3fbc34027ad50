package rotator

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar"
)

// sickGate is a health gate that always fails.
func sickGate(t *testing.T) *config.Gate {
	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "payments down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(sick.Close)
	return &config.Gate{URL: sick.URL, Successes: 1, Timeout: config.Duration(time.Second)}
}

// markHook is an exec hook that leaves a file behind, to show it ran.
func markHook(path string) config.Hook {
	return config.Hook{Name: "mark", Type: "exec", Timeout: config.Duration(5 * time.Second),
		Command: []string{"/bin/sh", "-c", `echo "$KEYTURN_CURRENT_FP" > "$1"`, "mark", path}}
}

func TestRevokeFirstStillMovesConsumers(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "reloaded")
	f := newFixture(t, func(a *config.App) {
		a.Consumers = config.AppConsumers{Mode: "backend",
			Propagation: config.Duration(10 * time.Minute), Hooks: []config.Hook{markHook(mark)}}
	})
	if _, err := f.eng.Emergency(ctx, "demo", EmergencyOptions{RevokeFirst: true}); err != nil {
		t.Fatal(err)
	}
	f.emu.DeleteSecret(clientID, f.oldID())
	if _, err := f.eng.ConfirmDeleted(ctx, "demo", "oncall"); err != nil {
		t.Fatal(err)
	}
	_, v := f.newSecret()
	r, err := f.eng.Submit(ctx, "demo", v, "oncall")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StateDone {
		t.Fatalf("state %s (%s), want done", r.State, r.LastError)
	}
	got, _ := os.ReadFile(mark)
	if string(got) != string(v.Fingerprint())+"\n" {
		t.Errorf("the reload hook saw %q, want the new secret %s", got, v.Fingerprint())
	}
}

// A stale New left in await_new (the pending secret vanished) must not
// make a revoke-first take-over skip asking for a new secret.
func TestRevokeFirstIgnoresStaleNewSecret(t *testing.T) {
	f := newFixture(t, nil)
	f.eng.Rotate(ctx, "demo", "", "alice")
	_, v := f.newSecret()
	// A crash left verify_new with a handed-over secret that is no longer
	// pending (someone aborted it in the backend by hand).
	r, _ := f.eng.Get("demo")
	r.State, r.New = StateVerifyNew, SecretInfo{v.Fingerprint(), f.clk.Now()}
	if err := f.store.Put(r); err != nil {
		t.Fatal(err)
	}
	f.eng.Tick(ctx) // finds the pending secret gone
	if r, _ = f.eng.Get("demo"); r.State != StateAwaitNew || r.New.Fingerprint != "" {
		t.Fatalf("after the pending secret vanished: %s, new %q", r.State, r.New.Fingerprint)
	}

	if _, err := f.eng.Emergency(ctx, "demo", EmergencyOptions{RevokeFirst: true}); err != nil {
		t.Fatal(err)
	}
	f.emu.DeleteSecret(clientID, f.oldID())
	r, err := f.eng.ConfirmDeleted(ctx, "demo", "oncall")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StateAwaitNew {
		t.Fatalf("after revocation: %s, want await_new for a replacement", r.State)
	}
}

func TestGateFailureAfterEarlyDeleteGoesForward(t *testing.T) {
	f := newFixture(t, func(a *config.App) {
		a.Consumers = config.AppConsumers{Mode: "backend",
			Propagation: config.Duration(10 * time.Minute), Gate: sickGate(t)}
	})
	f.eng.Rotate(ctx, "demo", "", "alice")
	_, v := f.newSecret()
	if r, err := f.eng.Submit(ctx, "demo", v, "alice"); err != nil || r.State != StateDraining {
		t.Fatalf("submit: %v", err)
	}
	// Someone deletes the old secret in the Dashboard during the window.
	f.emu.DeleteSecret(clientID, f.oldID())
	f.ev.take()
	f.clk.Advance(11 * time.Minute)
	f.eng.Tick(ctx)

	r, _ := f.eng.Get("demo")
	if r.State != StateAwaitDelete || r.Hold != "" {
		t.Fatalf("state %s hold %q, want await_delete and no rollback", r.State, r.Hold)
	}
	cur, _ := f.be.Get(ctx, backends.StageCurrent)
	if !cur.Value.Equal(v) {
		t.Errorf("current is %s, want the new secret %s", cur.Fingerprint, v.Fingerprint())
	}
	var failed []sent
	for _, s := range f.ev.take() {
		if s.Kind == notify.KindRotationFailed {
			failed = append(failed, s)
		}
	}
	if len(failed) != 1 || f.ev.critical[notify.KindRotationFailed] != 1 ||
		!cmp.Equal(failed[0].Channels, []string{"ops", "oncall"}) {
		t.Errorf("failure notices %+v, want one critical to owners and escalation", failed)
	}
	if r, err := f.eng.ConfirmDeleted(ctx, "demo", "alice"); err != nil || r.State != StateDone {
		t.Fatalf("confirm-deleted: %v", err)
	}
}

func TestResumeVerifiesTheSecretAgain(t *testing.T) {
	f := newFixture(t, func(a *config.App) {
		a.Consumers = config.AppConsumers{Mode: "backend", Gate: sickGate(t)}
	})
	f.eng.Rotate(ctx, "demo", "", "alice")
	id, v := f.newSecret()
	if r, _ := f.eng.Submit(ctx, "demo", v, "alice"); r.State != StateStaged || r.Hold == "" {
		t.Fatalf("no rollback: %s", r.State)
	}
	// While it waited, the person deleted the new secret.
	f.emu.DeleteSecret(clientID, id)
	r, err := f.eng.Resume(ctx, "demo", "alice")
	if !errors.Is(err, ErrSecretRefused) || r.State != StateAwaitNew {
		t.Fatalf("resume of a deleted secret: %v, state %s", err, r.State)
	}
	cur, _ := f.be.Get(ctx, backends.StageCurrent)
	if cur.Value.Reveal() != f.oldSec {
		t.Errorf("current is %s, want the old secret back", cur.Fingerprint)
	}
	if _, err := f.be.Get(ctx, backends.StagePending); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("the refused secret is still pending: %v", err)
	}
}

// An AWSPREVIOUS adopted from another tool, outside any rotation, that
// leaked: it only has to be deleted and proven dead.
func TestEmergencyForPreviousSecret(t *testing.T) {
	f := newFixture(t, nil)
	leaked := secret.New(f.oldSec)
	_, v := f.newSecret()
	if err := f.be.WritePending(ctx, "other-tool", v, f.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.be.Promote(ctx, "other-tool", v.Fingerprint()); err != nil {
		t.Fatal(err)
	}
	r, err := f.eng.Emergency(ctx, "demo", EmergencyOptions{Secret: leaked.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StateAwaitDelete {
		t.Fatalf("state %s, want await_delete at once", r.State)
	}
	f.emu.DeleteSecret(clientID, f.oldID())
	if r, err = f.eng.ConfirmDeleted(ctx, "demo", "oncall"); err != nil {
		t.Fatal(err)
	}
	if r.State != StateDone {
		t.Fatalf("end state %s (%s)", r.State, r.LastError)
	}
	if err := f.works(leaked); !errors.Is(err, smartcar.ErrInvalidClient) {
		t.Errorf("leaked secret: %v", err)
	}
	list, _ := f.be.List(ctx)
	if len(list) != 1 || !list[0].Value.Equal(v) || list[0].Stage != backends.StageCurrent {
		t.Errorf("backend after the drill: %+v", list)
	}
}
