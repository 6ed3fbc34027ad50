package rotator

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar"
)

func kinds(ss []sent) []notify.Kind {
	var out []notify.Kind
	for _, s := range ss {
		if !s.Resolve {
			out = append(out, s.Kind)
		}
	}
	return out
}

func readIncident(t *testing.T, f *fixture, id string) Incident {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, "audit", "incident-"+id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var inc Incident
	if err := json.Unmarshal(data, &inc); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(f.dir, "audit", "incident-"+id+".md"))
	if err != nil || !strings.Contains(string(md), "revocation proven") {
		t.Errorf("markdown report: %v\n%s", err, md)
	}
	return inc
}

func TestEmergencyDrill(t *testing.T) {
	for _, revokeFirst := range []bool{false, true} {
		name := map[bool]string{false: "normal", true: "revoke-first"}[revokeFirst]
		t.Run(name, func(t *testing.T) { drill(t, revokeFirst) })
	}
}

func drill(t *testing.T, revokeFirst bool) {
	f := newFixture(t, func(a *config.App) {
		a.Consumers = config.AppConsumers{Mode: "backend",
			Propagation: config.Duration(10 * time.Minute)}
	})
	leaked := secret.New(f.oldSec)
	// Someone used the secret before the leak was noticed.
	if _, err := f.eng.Check(ctx, "demo", "test"); err != nil {
		t.Fatal(err)
	}
	r, err := f.eng.Emergency(ctx, "demo", EmergencyOptions{RevokeFirst: revokeFirst,
		Actor: "oncall"})
	if err != nil {
		t.Fatal(err)
	}
	got := f.ev.take()
	if got[0].Kind != notify.KindPage || !cmp.Equal(got[0].Channels, []string{"ops", "oncall"}) {
		t.Errorf("first event %+v, want a page to ops and oncall", got[0])
	}

	deleteOld := func() {
		f.emu.DeleteSecret(clientID, f.oldID())
		if r, err = f.eng.ConfirmDeleted(ctx, "demo", "oncall"); err != nil {
			t.Fatal(err)
		}
	}
	submitNew := func() secret.Value {
		_, v := f.newSecret()
		if r, err = f.eng.Submit(ctx, "demo", v, "oncall"); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var v secret.Value
	if revokeFirst {
		if r.State != StateAwaitDelete {
			t.Fatalf("revoke-first starts in %s, want await_delete", r.State)
		}
		deleteOld()
		if r.State != StateAwaitNew {
			t.Fatalf("after revocation: %s, want await_new", r.State)
		}
		v = submitNew()
	} else {
		v = submitNew()
		if r.State != StateAwaitDelete {
			t.Fatalf("emergency drained (state %s); it must skip the drain", r.State)
		}
		deleteOld()
	}
	if r.State != StateDone {
		t.Fatalf("end state %s", r.State)
	}
	if err := f.works(leaked); !errors.Is(err, smartcar.ErrInvalidClient) {
		t.Errorf("compromised secret: %v", err)
	}
	list, _ := f.be.List(ctx)
	if len(list) != 1 || !list[0].Value.Equal(v) || list[0].Stage != backends.StageCurrent {
		t.Errorf("backend after the drill: %+v", list)
	}

	inc := readIncident(t, f, r.ID)
	if inc.Compromised.Fingerprint != leaked.Fingerprint() ||
		inc.Timeline.RevocationProof.IsZero() || inc.Timeline.Promoted.IsZero() ||
		!inc.Timeline.WindowEnds.Equal(inc.Timeline.RevocationProof.Add(time.Hour)) {
		t.Errorf("incident: %+v", inc)
	}
	// check, (verify_revoked that failed), and the answer invalid_client.
	var purposes []string
	for _, q := range inc.Review.Requests {
		purposes = append(purposes, q.Purpose+"/"+q.Outcome)
	}
	want := []string{"check/ok", "verify_revoked/failed"}
	if diff := cmp.Diff(want, purposes); diff != "" {
		t.Errorf("reviewed requests (-want +got):\n%s", diff)
	}

	f.ev.take()
	f.clk.Advance(time.Hour)
	f.eng.Tick(ctx)
	f.eng.Tick(ctx)
	if got := kinds(f.ev.take()); !cmp.Equal(got, []notify.Kind{notify.KindWindowClosed}) {
		t.Errorf("after the residual window: %v, want one window_closed", got)
	}
}

func TestEmergencyTakesOverWaitingRoutine(t *testing.T) {
	f := newFixture(t, nil)
	routine, _ := f.eng.Rotate(ctx, "demo", "", "alice")
	f.ev.take()
	r, err := f.eng.Emergency(ctx, "demo", EmergencyOptions{Actor: "oncall"})
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != routine.ID || r.Kind != KindEmergency || r.State != StateAwaitNew {
		t.Fatalf("take-over: %s %s %s", r.ID, r.Kind, r.State)
	}
	want := []notify.Kind{notify.KindPage, notify.KindPromptCreate}
	if got := kinds(f.ev.take()); !cmp.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if _, err := f.eng.Emergency(ctx, "demo", EmergencyOptions{}); !errors.Is(err,
		ErrRotationRunning) {
		t.Errorf("second emergency: %v", err)
	}
}

func TestEmergencyForLeakedNewSecretFollowsUp(t *testing.T) {
	f := newFixture(t, func(a *config.App) {
		a.Consumers = config.AppConsumers{Mode: "backend",
			Propagation: config.Duration(time.Hour)}
	})
	f.eng.Rotate(ctx, "demo", "", "alice")
	_, v := f.newSecret()
	r, _ := f.eng.Submit(ctx, "demo", v, "alice")
	if r.State != StateDraining {
		t.Fatalf("state %s", r.State)
	}
	r, err := f.eng.Emergency(ctx, "demo", EmergencyOptions{Secret: v.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StateAwaitDelete {
		t.Fatalf("the drain was not cut short: %s", r.State)
	}
	f.emu.DeleteSecret(clientID, f.oldID())
	if r, err = f.eng.ConfirmDeleted(ctx, "demo", "oncall"); err != nil {
		t.Fatal(err)
	}
	next, _ := f.eng.Get("demo")
	if next == nil || next.Kind != KindEmergency || next.Old.Fingerprint != v.Fingerprint() ||
		next.State != StateAwaitNew {
		t.Fatalf("follow-up emergency: %+v", next)
	}
	// The first rotation revoked the routine's old secret, not the leaked
	// one: no residual window may say the leaked secret's tokens expire.
	data, err := os.ReadFile(filepath.Join(f.dir, "audit", "incident-"+r.ID+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var inc Incident
	if err := json.Unmarshal(data, &inc); err != nil {
		t.Fatal(err)
	}
	if !inc.Timeline.RevocationProof.IsZero() || !inc.Timeline.WindowEnds.IsZero() {
		t.Errorf("the first report claims the leaked secret revoked: %+v", inc.Timeline)
	}
	if st, _ := f.store.AppState("demo"); len(st.Windows) != 0 {
		t.Errorf("residual windows opened for a live secret: %+v", st.Windows)
	}
}

// BenchmarkEmergencyOverhead measures the playbook's machine time: the
// start with its page, the hand-off with verification and promotion, and
// the revocation proof with removal and the incident report. The waits
// for a person are outside the timer.
func BenchmarkEmergencyOverhead(b *testing.B) {
	f := newFixture(b, nil)
	for b.Loop() {
		if _, err := f.eng.Emergency(ctx, "demo", EmergencyOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_, v := f.newSecret()
		b.StartTimer()
		if _, err := f.eng.Submit(ctx, "demo", v, "bench"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		f.emu.DeleteSecret(clientID, f.oldID())
		f.oldSec = v.Reveal()
		b.StartTimer()
		if _, err := f.eng.ConfirmDeleted(ctx, "demo", "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
