package reliability

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

// scenario is one kind of rotation a person drives from start to end.
type scenario struct {
	name   string
	start  []string // the command that starts it, after the app
	points []string // the crash points it passes, in order
	// prompts are the events a person gets in a run without a crash.
	prompts []notify.Kind
}

// statePoints names both crash points of each state.
func statePoints(states ...string) []string {
	var out []string
	for _, s := range states {
		out = append(out, s+":audited", s+":saved")
	}
	return out
}

var scenarios = []scenario{
	{
		name:  "routine",
		start: []string{"rotate", "demo", "--reason", "crash matrix"},
		points: append(statePoints("due", "await_new", "verify_new", "staged", "promoted",
			"draining", "await_delete", "verify_revoked", "retired", "done"),
			"backend:pending_written", "backend:promoted", "hooks:run",
			"verify_revoked:answered", "backend:previous_removed"),
		prompts: []notify.Kind{notify.KindPromptCreate, notify.KindPromptDelete,
			notify.KindRotationDone},
	},
	{
		name:  "emergency",
		start: []string{"emergency", "demo", "--yes"},
		points: append(statePoints("due", "await_new", "verify_new", "staged", "promoted",
			"draining", "await_delete", "verify_revoked", "retired", "done"),
			"backend:pending_written", "backend:promoted", "hooks:run",
			"verify_revoked:answered", "backend:previous_removed", "incident:written"),
		prompts: []notify.Kind{notify.KindPage, notify.KindPromptCreate,
			notify.KindPromptDelete, notify.KindRotationDone},
	},
	{
		name:  "revoke_first",
		start: []string{"emergency", "demo", "--revoke-first", "--yes"},
		points: append(statePoints("due", "await_delete", "verify_revoked", "await_new",
			"verify_new", "staged", "promoted", "draining", "retired", "done"),
			"backend:pending_written", "backend:promoted", "hooks:run",
			"verify_revoked:answered", "backend:previous_removed", "incident:written"),
		prompts: []notify.Kind{notify.KindPage, notify.KindPromptDelete,
			notify.KindPromptCreate, notify.KindRotationDone},
	},
}

// crashCase is one cell of the matrix.
type crashCase struct {
	backend string
	sc      scenario
	point   string
}

func (c crashCase) name() string { return c.backend + "/" + c.sc.name + "/" + c.point }

// crashOutcome is what one cell saw, for the summary.
type crashOutcome struct {
	name     string
	repeated []string      // person-steps done again after the restart
	lost     []notify.Kind // prompts a person never got
	took     time.Duration
}

// TestCrashMatrix kills the daemon with SIGKILL at every step boundary of
// a routine, an emergency and a revoke-first rotation, on every backend;
// a new daemon and the person finish the rotation, and the invariants of
// DESIGN.md are checked at the crash and at the end. With -short it runs
// the env column only.
func TestCrashMatrix(t *testing.T) {
	var cases []crashCase
	for _, be := range []string{"env", "awssm", "vault"} {
		if testing.Short() && be != "env" {
			continue
		}
		for _, sc := range scenarios {
			for _, p := range sc.points {
				cases = append(cases, crashCase{be, sc, p})
			}
		}
	}
	start := time.Now()
	outcomes := runPool(t, 8, cases)
	t.Logf("%d crash cases in %s", len(cases), time.Since(start).Round(time.Second))
	for _, o := range outcomes {
		if len(o.repeated) > 0 || len(o.lost) > 0 {
			t.Logf("%-48s took %-5s repeated %v, prompts lost %v", o.name,
				o.took.Round(100*time.Millisecond), o.repeated, o.lost)
		}
	}
}

// runPool runs the cases as subtests, n at a time: the daemons spend most
// of their time waiting for ticks, so more run than there are cores.
func runPool(t *testing.T, n int, cases []crashCase) []crashOutcome {
	var (
		mu   sync.Mutex
		out  []crashOutcome
		wg   sync.WaitGroup
		work = make(chan crashCase)
	)
	for range n {
		wg.Go(func() {
			for c := range work {
				t.Run(c.name(), func(t *testing.T) {
					o := runCrashCase(t, c)
					mu.Lock()
					out = append(out, o)
					mu.Unlock()
				})
			}
		})
	}
	for _, c := range cases {
		work <- c
	}
	close(work)
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func runCrashCase(t *testing.T, c crashCase) crashOutcome {
	began := time.Now()
	r := newRig(t, rigOptions{backend: c.backend})
	p := &person{r: r, sc: c.sc, app: "demo"}

	first := r.start("KEYTURN_TEST_CRASH_AT=" + c.point)
	if res := r.kt("", "check", "demo"); res.code != 0 {
		t.Fatalf("check before the rotation: %v", res)
	}
	pollFor(30*time.Second, func() bool {
		if first.alive() {
			p.step()
		}
		return !first.alive()
	})
	if first.alive() {
		t.Fatalf("the daemon never reached crash point %s (person: %+v); its log:\n%s",
			c.point, p, first.stderr)
	}
	first.stop(syscall.SIGKILL)
	if !first.killedBy(syscall.SIGKILL) ||
		!strings.Contains(first.stderr.String(), "test crash point "+c.point+" reached") {
		t.Fatalf("the daemon did not die at %s: %v\n%s", c.point, first.cmd.ProcessState,
			first.stderr)
	}
	p.checkAtCrash(t)
	before := p.actions()

	second := r.start()
	if !pollFor(60*time.Second, p.step) {
		t.Fatalf("the rotation did not finish after the restart (person: %s); status:\n%s\n"+
			"the second daemon's log:\n%s", p, r.kt("", "status", "--output", "json").stdout,
			tail(second.stderr.String(), 40))
	}
	r.scrape(second.httpAddr(t))
	suiteCanary.scanProcs(second.cmd.Process.Pid)
	p.checkEnd(t)
	// SIGTERM flushes the notifications, so the counts below are final.
	second.stop(syscall.SIGTERM)
	if code := second.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the second daemon exited %d after SIGTERM:\n%s", code, second.stderr)
	}
	p.checkPrompts(t)
	return crashOutcome{name: c.name(), repeated: p.repeated(before),
		lost: p.lostPrompts(t), took: time.Since(began)}
}

// person does what an operator does, one look at `keyturn status` at a
// time: start the rotation, create and hand over a secret, delete the old
// one and confirm. After a crash they repeat whatever status still asks.
type person struct {
	r   *rig
	sc  scenario
	app string

	newID, newValue string
	deleted         bool
	starts, submits int
	confirms        int
}

// step does the next thing status asks for, and reports whether the
// rotation is over (no rotation, and the new secret is current).
func (p *person) step() bool {
	st, ok := p.r.status()
	if !ok {
		return false
	}
	c := st[p.app]
	switch rot := c.Rotation; {
	case rot == nil && p.newValue != "" && c.current() == fp(p.newValue):
		return true
	case rot == nil:
		if !p.notStarted() {
			return false
		}
		p.starts++
		p.r.kt("", p.sc.start...)
	case rot.State == "await_new":
		if p.newValue == "" {
			p.newID, p.newValue = p.r.create(p.app)
		}
		p.submits++
		p.r.kt(p.newValue+"\n", "submit", p.app)
	case rot.State == "await_delete":
		if !p.deleted {
			if err := p.r.emu.DeleteSecret(clientID(p.app), p.r.oldIDs[p.app]); err != nil {
				p.r.t.Errorf("delete the old secret in the Dashboard: %v", err)
			}
			p.deleted = true
		}
		p.confirms++
		p.r.kt("", "confirm-deleted", p.app)
	}
	return false
}

// notStarted reports whether status shows, twice in a row, no rotation
// and the old secret current. Status reads the backend before the state
// database, so one look taken while a rotation ends can show both.
func (p *person) notStarted() bool {
	for range 2 {
		st, ok := p.r.status()
		c := st[p.app]
		if !ok || c.Error != "" || c.Rotation != nil || c.current() != fp(canarySecret) {
			return false
		}
	}
	return true
}

type actionCount struct{ starts, submits, confirms int }

func (p *person) actions() actionCount {
	return actionCount{p.starts, p.submits, p.confirms}
}

// repeated names the person-steps taken again after the restart.
func (p *person) repeated(before actionCount) []string {
	var out []string
	if p.starts > before.starts {
		out = append(out, p.sc.start[0])
	}
	if p.submits > before.submits && before.submits > 0 {
		out = append(out, "submit")
	}
	if p.confirms > before.confirms && before.confirms > 0 {
		out = append(out, "confirm-deleted")
	}
	return out
}

// checkAtCrash checks the backend as the crash left it: its current
// secret has passed a token request, and the old secret is gone only if
// Smartcar already refused it.
func (p *person) checkAtCrash(t *testing.T) {
	t.Helper()
	list := p.r.list(p.app)
	ids := map[string]string{fp(canarySecret): p.r.oldIDs[p.app]}
	if p.newValue != "" {
		ids[fp(p.newValue)] = p.newID
	}
	passed, refused := map[string]bool{}, map[string]bool{}
	for _, q := range p.r.emu.Requests() {
		switch q.Outcome {
		case emulator.OutcomeOK:
			passed[q.SecretID] = true
		case emulator.OutcomeInvalidClient:
			refused[q.SecretID] = true
		}
	}
	var stages []string
	hasOld, hasCurrent := false, false
	for _, s := range list {
		stages = append(stages, string(s.Stage)+"="+string(s.Fingerprint))
		if s.Stage == "current" {
			hasCurrent = true
			if !passed[ids[string(s.Fingerprint)]] {
				t.Errorf("invariant: the current secret %s never passed a token request",
					s.Fingerprint)
			}
		}
		hasOld = hasOld || string(s.Fingerprint) == fp(canarySecret)
	}
	if !hasCurrent {
		t.Errorf("invariant: no current secret after the crash: %v", stages)
	}
	if !hasOld && !refused[p.r.oldIDs[p.app]] {
		t.Errorf("invariant: the old secret was removed from the backend before Smartcar "+
			"refused it: %v", stages)
	}
}

// checkEnd checks the finished rotation.
func (p *person) checkEnd(t *testing.T) {
	t.Helper()
	r := p.r
	st := r.mustStatus(p.app)
	if st.Rotation != nil || len(st.Secrets) != 1 || st.current() != fp(p.newValue) {
		t.Errorf("status at the end: %+v, want no rotation and only %s current", st,
			fp(p.newValue))
	}
	var live []string
	for _, s := range r.emu.Secrets(clientID(p.app)) {
		live = append(live, s.ID)
	}
	if !slices.Equal(live, []string{p.newID}) {
		t.Errorf("secrets in the Dashboard: %v, want only the new one %s", live, p.newID)
	}
	if got := r.tokenStatus(p.app, p.newValue); got != 200 {
		t.Errorf("the new secret gets %d from Smartcar, want 200", got)
	}
	if got := r.tokenStatus(p.app, canarySecret); got != 401 {
		t.Errorf("the old secret gets %d from Smartcar, want 401", got)
	}
	if res := r.kt("", "audit", "verify"); res.code != 0 {
		t.Errorf("audit verify: %v", res)
	}
	checkProvenBeforeRetired(t, r.auditRecords(), fp(canarySecret))
}

// checkPrompts checks that no prompt went out twice.
func (p *person) checkPrompts(t *testing.T) {
	t.Helper()
	r := p.r
	for k, n := range r.rc.prompts() {
		if n > 1 {
			t.Errorf("%s was sent %d times for rotation %s", k.kind, n, k.rotation)
		}
	}
	if n := r.rc.badSignatures(); n > 0 {
		t.Errorf("%d notifications had bad signatures", n)
	}
}

// checkProvenBeforeRetired checks in the audit log that the old secret
// answered invalid_client before any rotation retired it.
func checkProvenBeforeRetired(t *testing.T, recs []audit.Record, oldFP string) {
	t.Helper()
	proven, retired := false, false
	for _, rec := range recs {
		switch {
		case rec.Kind == audit.KindTokenRequest && rec.Purpose == audit.PurposeVerifyRevoked &&
			rec.SecretFP == oldFP && rec.ErrorClass == "invalid_client":
			proven = true
		case rec.Kind == audit.KindRotationStep && rec.Step == "retired":
			retired = true
			if !proven {
				t.Errorf("invariant: audit record %d retires %s before it answered "+
					"invalid_client", rec.Seq, rec.SecretFP)
			}
		}
	}
	if !retired {
		t.Errorf("the audit log has no retired step")
	}
}

// lostPrompts names the prompts of the scenario that no rotation of the
// run sent: a crash between saving a prompt and sending it loses it
// until the first reminder.
func (p *person) lostPrompts(t *testing.T) []notify.Kind {
	got := map[notify.Kind]int{}
	for k, n := range p.r.rc.prompts() {
		got[k.kind] += n
	}
	var lost []notify.Kind
	for _, k := range p.sc.prompts {
		if got[k] == 0 {
			lost = append(lost, k)
		}
	}
	return lost
}

func (p *person) String() string {
	return fmt.Sprintf("starts %d, submits %d, confirms %d", p.starts, p.submits, p.confirms)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
