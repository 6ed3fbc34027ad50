package rotator

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/backends/env"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

const clientID = "client_rot_test"

// clock is a settable time source shared by the engine and the emulator.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// events records what the engine asked to send, by channel.
type events struct {
	mu  sync.Mutex
	got []sent
	// critical counts the critical events by kind.
	critical map[notify.Kind]int
}

type sent struct {
	Channels []string
	Kind     notify.Kind
	State    string
	Reminder int
	Resolve  bool
}

func (ev *events) Send(_ context.Context, chs []string, e notify.Event) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.got = append(ev.got, sent{chs, e.Kind, e.State, e.Reminder, e.Resolve})
	if e.EffectiveSeverity() == notify.SeverityCritical {
		if ev.critical == nil {
			ev.critical = map[notify.Kind]int{}
		}
		ev.critical[e.Kind]++
	}
}

func (ev *events) take() []sent {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	out := ev.got
	ev.got = nil
	return out
}

type fixture struct {
	t      testing.TB
	dir    string
	clk    *clock
	emu    *emulator.Emulator
	be     backends.Backend
	store  *Store
	log    *audit.Log
	ev     *events
	eng    *Engine
	app    config.App
	oldSec string
}

func newFixture(t testing.TB, mutate func(*config.App)) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), ev: &events{},
		clk: &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}}
	f.emu = emulator.New(emulator.WithClock(f.clk.Now))
	url, err := f.emu.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.emu.Close() })
	f.app = config.App{Name: "demo", ClientID: clientID,
		Policy: config.Policy{MaxAge: config.Duration(90 * 24 * time.Hour),
			WarnBefore: config.Duration(14 * 24 * time.Hour)},
		Schedule: "0 10 * * *", Timezone: "UTC",
		Consumers: config.AppConsumers{Mode: "broker"},
		Owners:    []string{"ops"}, EscalateTo: []string{"oncall"},
		Prompts: config.Prompts{RemindEvery: config.Duration(time.Hour),
			EscalateAfter: config.Duration(4 * time.Hour)},
		DashboardURL: url + "/v1/apps/{client_id}/secrets"}
	if mutate != nil {
		mutate(&f.app)
	}
	f.be, err = env.New(env.Options{File: filepath.Join(f.dir, "demo.env"),
		StateDir: filepath.Join(f.dir, "envstate"), ClientID: clientID})
	if err != nil {
		t.Fatal(err)
	}
	_, f.oldSec, _, err = f.emu.CreateSecret(clientID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.be.Init(context.Background(), secret.New(f.oldSec), f.clk.Now()); err != nil {
		t.Fatal(err)
	}
	f.log, err = audit.Open(filepath.Join(f.dir, "audit"), audit.Options{Clock: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.log.Close() })
	f.restart(url)
	return f
}

// restart builds a new Engine over the same store, as a new daemon would.
func (f *fixture) restart(url string) {
	f.t.Helper()
	if f.store != nil {
		f.store.Close()
	}
	var err error
	f.store, err = OpenStore(f.dir)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { f.store.Close() })
	cfg := &config.Config{Apps: []config.App{f.app}}
	f.eng, err = New(cfg, Deps{Store: f.store,
		Backends: map[string]backends.Backend{"demo": f.be},
		Tokens:   smartcar.NewClient(f.emu.TokenURL()), Audit: f.log, Notify: f.ev,
		Clock: f.clk.Now, AuditDir: filepath.Join(f.dir, "audit"),
		Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) state() State {
	f.t.Helper()
	r, err := f.eng.Get("demo")
	if err != nil {
		f.t.Fatal(err)
	}
	if r == nil {
		return ""
	}
	return r.State
}

func (f *fixture) newSecret() (id string, v secret.Value) {
	f.t.Helper()
	id, s, _, err := f.emu.CreateSecret(clientID)
	if err != nil {
		f.t.Fatal(err)
	}
	return id, secret.New(s)
}

func (f *fixture) oldID() string {
	for _, s := range f.emu.Secrets(clientID) {
		if s.Last4 == f.oldSec[len(f.oldSec)-4:] {
			return s.ID
		}
	}
	f.t.Fatal("old secret not at the emulator")
	return ""
}

func (f *fixture) works(v secret.Value) error {
	_, err := smartcar.NewClient(f.emu.TokenURL()).Token(context.Background(), clientID, v)
	return err
}

var ctx = context.Background()

func TestRoutineRotation(t *testing.T) {
	f := newFixture(t, func(a *config.App) {
		a.Consumers = config.AppConsumers{Mode: "backend",
			Propagation: config.Duration(10 * time.Minute)}
	})
	r, err := f.eng.Rotate(ctx, "demo", "test", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StateAwaitNew {
		t.Fatalf("after rotate: state %s", r.State)
	}

	// A wrong secret is refused after a real token request; still waiting.
	_, err = f.eng.Submit(ctx, "demo", secret.New("not-a-real-secret"), "alice")
	if !errors.Is(err, ErrSecretRefused) || Hint(err) == "" {
		t.Fatalf("wrong secret: got %v, want ErrSecretRefused with a hint", err)
	}
	if _, err := f.be.Get(ctx, backends.StagePending); !errors.Is(err, backends.ErrNotFound) {
		t.Errorf("refused secret left pending: %v", err)
	}

	_, newSec := f.newSecret()
	r, err = f.eng.Submit(ctx, "demo", newSec, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StateDraining {
		t.Fatalf("after submit: state %s", r.State)
	}
	cur, _ := f.be.Get(ctx, backends.StageCurrent)
	if !cur.Value.Equal(newSec) {
		t.Fatal("new secret is not current after promotion")
	}

	f.eng.Tick(ctx)
	if s := f.state(); s != StateDraining {
		t.Fatalf("drain ended early: %s", s)
	}
	f.clk.Advance(10 * time.Minute)
	f.eng.Tick(ctx)
	if s := f.state(); s != StateAwaitDelete {
		t.Fatalf("after drain: %s", s)
	}

	// Confirming before the deletion is caught by a real token request.
	_, err = f.eng.ConfirmDeleted(ctx, "demo", "alice")
	if !errors.Is(err, ErrStillAlive) {
		t.Fatalf("confirm before delete: got %v, want ErrStillAlive", err)
	}
	if _, err := f.be.Get(ctx, backends.StagePrevious); err != nil {
		t.Fatalf("old secret removed before it was proven dead: %v", err)
	}

	if err := f.emu.DeleteSecret(clientID, f.oldID()); err != nil {
		t.Fatal(err)
	}
	r, err = f.eng.ConfirmDeleted(ctx, "demo", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StateDone || r.RevokedAt.IsZero() {
		t.Fatalf("after confirm: state %s revoked %v", r.State, r.RevokedAt)
	}
	list, _ := f.be.List(ctx)
	if len(list) != 1 || !list[0].Value.Equal(newSec) {
		t.Fatalf("backend after rotation: %d secrets", len(list))
	}
	if err := f.works(newSec); err != nil {
		t.Errorf("new secret: %v", err)
	}
	if err := f.works(secret.New(f.oldSec)); !errors.Is(err, smartcar.ErrInvalidClient) {
		t.Errorf("old secret: got %v, want invalid_client", err)
	}
	if s := f.state(); s != "" {
		t.Errorf("rotation still active: %s", s)
	}
	wantStates := []State{StateDue, StateAwaitNew, StateVerifyNew, StateAwaitNew,
		StateVerifyNew, StateStaged, StatePromoted, StateDraining, StateAwaitDelete,
		StateVerifyRevoked, StateAwaitDelete, StateVerifyRevoked, StateRetired, StateDone}
	var got []State
	for _, m := range r.Timeline {
		got = append(got, m.State)
	}
	if diff := cmp.Diff(wantStates, got); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	checkAudit(t, f)
}

func checkAudit(t *testing.T, f *fixture) {
	t.Helper()
	if _, err := audit.Verify(filepath.Join(f.dir, "audit"), f.log.PublicKey()); err != nil {
		t.Errorf("audit chain: %v", err)
	}
}

func TestOneRotationAtATime(t *testing.T) {
	f := newFixture(t, nil)
	r, err := f.eng.Rotate(ctx, "demo", "", "alice")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.eng.Rotate(ctx, "demo", "", "bob")
	if !errors.Is(err, ErrRotationRunning) {
		t.Fatalf("second rotate: %v", err)
	}
	if want := r.ID; !contains(err.Error(), want) {
		t.Errorf("error %q does not name the running rotation %s", err, want)
	}
	if _, err := f.eng.Rotate(ctx, "nope", "", "bob"); !errors.Is(err, ErrUnknownApp) {
		t.Errorf("unknown app: %v", err)
	}
}

func contains(s, sub string) bool { return len(sub) > 0 && len(s) >= len(sub) && index(s, sub) }
func index(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestAbort(t *testing.T) {
	f := newFixture(t, nil)
	if _, err := f.eng.Rotate(ctx, "demo", "", "alice"); err != nil {
		t.Fatal(err)
	}
	r, err := f.eng.Abort(ctx, "demo", "alice", "mistake")
	if err != nil || r.State != StateAborted {
		t.Fatalf("abort: %v %v", r, err)
	}
	if _, err := f.eng.Abort(ctx, "demo", "alice", ""); !errors.Is(err, ErrNoRotation) {
		t.Errorf("abort with none running: %v", err)
	}

	// After promotion, abort would strand consumers: refused.
	f.eng.Rotate(ctx, "demo", "", "alice")
	_, v := f.newSecret()
	if _, err := f.eng.Submit(ctx, "demo", v, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Abort(ctx, "demo", "alice", ""); !errors.Is(err, ErrTooLate) {
		t.Errorf("abort after promotion: %v", err)
	}
}

func TestResumeAfterCrashBetweenWriteAndSave(t *testing.T) {
	f := newFixture(t, nil)
	r, _ := f.eng.Rotate(ctx, "demo", "", "alice")
	// The daemon wrote the pending secret, then died before saving state.
	_, v := f.newSecret()
	if err := f.be.WritePending(ctx, r.ID, v, f.clk.Now()); err != nil {
		t.Fatal(err)
	}
	f.ev.take()
	f.restart(f.emu.URL())
	f.eng.Tick(ctx)
	if s := f.state(); s != StateAwaitDelete {
		t.Fatalf("after restart: %s", s)
	}
	for _, e := range f.ev.take() {
		if e.Kind == notify.KindPromptCreate && !e.Resolve {
			t.Errorf("create prompt sent again after restart: %+v", e)
		}
	}
}

func TestRemindersEscalationAndRestart(t *testing.T) {
	f := newFixture(t, nil)
	f.eng.Rotate(ctx, "demo", "", "alice")
	want := []sent{{[]string{"ops"}, notify.KindPromptCreate, "await_new", 0, false}}
	if diff := cmp.Diff(want, f.ev.take()); diff != "" {
		t.Fatalf("first prompt (-want +got):\n%s", diff)
	}
	f.clk.Advance(59 * time.Minute)
	f.eng.Tick(ctx)
	if got := f.ev.take(); len(got) != 0 {
		t.Fatalf("reminder before remind_every: %+v", got)
	}
	f.clk.Advance(time.Minute)
	f.eng.Tick(ctx)
	f.restart(f.emu.URL()) // a restart at the same instant sends nothing again
	f.eng.Tick(ctx)
	want = []sent{{[]string{"ops"}, notify.KindPromptCreate, "await_new", 1, false}}
	if diff := cmp.Diff(want, f.ev.take()); diff != "" {
		t.Fatalf("reminder (-want +got):\n%s", diff)
	}
	f.clk.Advance(3 * time.Hour)
	f.eng.Tick(ctx)
	want = []sent{{[]string{"ops", "oncall"}, notify.KindPromptCreate, "await_new", 2, false}}
	if diff := cmp.Diff(want, f.ev.take()); diff != "" {
		t.Fatalf("escalation (-want +got):\n%s", diff)
	}
}

func TestScheduleStartsDueRotationAndCatchesUp(t *testing.T) {
	f := newFixture(t, nil)
	f.eng.Tick(ctx) // first sight: remembers the check time
	if s := f.state(); s != "" {
		t.Fatalf("fresh secret started a rotation: %s", s)
	}
	// 80 days later, keyturn was down across several 10:00 ticks.
	f.clk.Advance(80*24*time.Hour + 30*time.Minute)
	f.eng.Tick(ctx)
	r, _ := f.eng.Get("demo")
	if r == nil || r.StartedBy != "scheduler" {
		t.Fatalf("missed tick not caught up: %+v", r)
	}
	got := f.ev.take()
	if len(got) != 2 || got[0].Kind != notify.KindWarning || got[1].Kind != notify.KindPromptCreate {
		t.Errorf("events: %+v", got)
	}
}

// BenchmarkSubmitToPromoted measures the machine steps from submit to
// promoted on the env backend: the durable pending write, the token
// request at the loopback emulator, the promotion's two atomic rewrites
// and each step's fsynced audit record and bbolt commit.
// TestScheduleWaitsForTickAfterDue: a running daemon starts a due
// rotation at the schedule's next tick, not the moment it falls due.
func TestScheduleWaitsForTickAfterDue(t *testing.T) {
	f := newFixture(t, nil) // secret created 2026-12-01 09:00, due 76 days later
	for _, step := range []time.Duration{time.Hour, 24 * time.Hour,
		76*24*time.Hour - 25*time.Hour + 30*time.Minute} {
		f.clk.Advance(step)
		f.eng.Tick(ctx)
	}
	if s := f.state(); s != "" {
		t.Fatalf("started at %v (due 09:00, schedule 10:00): %s", f.clk.Now(), s)
	}
	f.clk.Advance(31 * time.Minute) // 10:01
	f.eng.Tick(ctx)
	if s := f.state(); s != StateAwaitNew {
		t.Fatalf("not started at the first tick after due: %q", s)
	}
}

func BenchmarkSubmitToPromoted(b *testing.B) {
	f := newFixture(b, nil)
	for b.Loop() {
		b.StopTimer()
		if _, err := f.eng.Rotate(ctx, "demo", "", "bench"); err != nil {
			b.Fatal(err)
		}
		id, v := f.newSecret()
		b.StartTimer()
		if _, err := f.eng.Submit(ctx, "demo", v, "bench"); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		f.emu.DeleteSecret(clientID, f.oldID())
		if _, err := f.eng.ConfirmDeleted(ctx, "demo", "bench"); err != nil {
			b.Fatal(err)
		}
		f.oldSec, _ = v.Reveal(), id
		b.StartTimer()
	}
}
