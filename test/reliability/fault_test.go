package reliability

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/audit"
)

// retryRE finds the attempt number in a parked step's last_error.
var retryRE = regexp.MustCompile(`\(retry (\d+) at `)

// retryWatch polls status and keeps, per app, the retry_at promised after
// each failed attempt and every last_error seen.
type retryWatch struct {
	mu      sync.Mutex
	retryAt map[string]map[int]time.Time
	errors  map[string]bool
	stop    chan struct{}
	done    chan struct{}
}

func watchRetries(r *rig) *retryWatch {
	w := &retryWatch{retryAt: map[string]map[int]time.Time{}, errors: map[string]bool{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			st, _ := r.status()
			w.note(st)
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *retryWatch) note(st map[string]credStatus) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for app, c := range st {
		rot := c.Rotation
		if rot == nil || rot.RetryAt.IsZero() {
			continue
		}
		w.errors[rot.LastError] = true
		m := retryRE.FindStringSubmatch(rot.LastError)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		if w.retryAt[app] == nil {
			w.retryAt[app] = map[int]time.Time{}
		}
		w.retryAt[app][n] = rot.RetryAt
	}
}

// allAttempted reports whether every app has parked n failed attempts.
func (w *retryWatch) allAttempted(apps []string, n int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, app := range apps {
		if len(w.retryAt[app]) < n {
			return false
		}
	}
	return true
}

func (w *retryWatch) close() {
	close(w.stop)
	<-w.done
}

// tokenRequests returns app's audited token requests for purpose.
func tokenRequests(recs []audit.Record, app, purpose string) []audit.Record {
	var out []audit.Record
	for _, rec := range recs {
		if rec.Kind == audit.KindTokenRequest && rec.App == app && rec.Purpose == purpose {
			out = append(out, rec)
		}
	}
	return out
}

// TestFaultTokenProxy cuts the line between keyturn and Smartcar with a
// TCP fault proxy while three rotations verify their new secrets: first
// resets, then stalls, then answers slower than keyturn waits. Each step
// parks with retry_at and last_error, retries on a growing and jittered
// schedule, and carries on by itself once the line is healthy: nobody
// hands a secret over twice.
func TestFaultTokenProxy(t *testing.T) {
	t.Parallel()
	apps := []string{"app1", "app2", "app3"}
	r := newRig(t, rigOptions{apps: apps, proxyToken: true, timeout: "1s"})
	d := r.start()
	values := map[string]string{}
	for _, app := range apps {
		if res := r.kt("", "rotate", app); res.code != 0 {
			t.Fatalf("rotate %s: %v", app, res)
		}
		_, values[app] = r.create(app)
	}

	px := r.tokenProxy
	px.toxic("reset", "reset_peer", "upstream", map[string]int{"timeout": 0})
	for _, app := range apps {
		res := r.kt(values[app]+"\n", "submit", app)
		if res.code != 1 || !strings.Contains(res.stderr, "keyturn retries on its own") {
			t.Fatalf("submit %s while Smartcar resets: %v", app, res)
		}
		rot := r.mustStatus(app).Rotation
		if rot == nil || rot.State != "verify_new" || rot.RetryAt.IsZero() ||
			!strings.Contains(rot.LastError, "verify the new secret") {
			t.Fatalf("status of %s while Smartcar resets: %+v", app, rot)
		}
	}
	// KeyturnRotationStepStuck fires on this series after an hour.
	if m := r.scrape(d.httpAddr(t)); !strings.Contains(m,
		`keyturn_rotation_state{app="app1",state="verify_new"} 1`) {
		t.Errorf("metrics do not show app1 parked in verify_new")
	}
	w := watchRetries(r)
	phases := []struct {
		name, typ, stream string
		attrs             map[string]int
	}{
		{"stall", "timeout", "upstream", map[string]int{"timeout": 0}},
		{"slow", "latency", "downstream", map[string]int{"latency": 1500}},
	}
	for i, ph := range phases {
		poll(t, 20*time.Second, fmt.Sprintf("%d failed attempts", i+1), func() bool {
			return w.allAttempted(apps, i+1)
		})
		px.clear()
		px.toxic(ph.name, ph.typ, ph.stream, ph.attrs)
	}
	poll(t, 20*time.Second, "a failed attempt while slow", func() bool {
		return w.allAttempted(apps, 3)
	})
	healed := time.Now()
	px.clear()
	for _, app := range apps {
		poll(t, 30*time.Second, app+" to go on by itself", func() bool {
			rot := r.mustStatus(app).Rotation
			return rot != nil && rot.State == "await_delete"
		})
	}
	w.close()

	recs := r.auditRecords()
	checkRetrySchedule(t, w, recs, apps)
	for _, app := range apps {
		if n := countHandoffs(recs, app); n != 1 {
			t.Errorf("%s: %d hand-offs, want 1: the rotation must resume by itself", app, n)
		}
	}
	var late int
	for _, q := range r.emu.Requests() {
		if q.Time.After(healed) && q.Outcome != "ok" {
			late++
		}
	}
	if late > 0 {
		t.Errorf("%d failed token requests at Smartcar after the line healed", late)
	}
	checkErrorsSeen(t, w, "connection reset", "context deadline exceeded")
	finishAll(t, r, apps, values)
}

// checkRetrySchedule checks each app's failed verify_new attempts: the
// n-th retry was promised for 2^(n-1)/2 to 2^(n-1) seconds later, taken
// no earlier than promised and within a tick and the apps' timeouts
// after, and the promises differ between apps (jitter). The requests are
// 1 s timeouts.
func checkRetrySchedule(t *testing.T, w *retryWatch, recs []audit.Record, apps []string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	// The engine's tick steps the apps one after another, so a retry
	// waits for the tick and for every other app's request to time out.
	lateBound := time.Second + time.Duration(len(apps))*time.Second + time.Second/2
	var fractions []string
	for _, app := range apps {
		reqs := tokenRequests(recs, app, audit.PurposeVerifyNew)
		n := 0
		for i, q := range reqs[:max(len(reqs)-1, 0)] {
			if q.Outcome == "ok" {
				continue
			}
			n++
			promised, ok := w.retryAt[app][n]
			if !ok {
				t.Errorf("%s: retry %d was never shown in status", app, n)
				continue
			}
			nominal := time.Second << (n - 1)
			d := promised.Sub(q.Time)
			if d < nominal/2-10*time.Millisecond || d > nominal+10*time.Millisecond {
				t.Errorf("%s: retry %d promised %s after the failure, want %s to %s", app,
					n, d, nominal/2, nominal)
			}
			fractions = append(fractions, fmt.Sprintf("%.4f", float64(d)/float64(nominal)))
			if early := promised.Sub(reqs[i+1].Time); early > 0 {
				t.Errorf("%s: retry %d came %s before its time", app, n, early)
			}
			if late := reqs[i+1].Time.Sub(promised); late > lateBound {
				t.Errorf("%s: retry %d came %s after its time", app, n, late)
			}
		}
		if n < 3 || n > 6 || len(reqs) == 0 || reqs[len(reqs)-1].Outcome != "ok" {
			t.Errorf("%s: %d failed verify_new attempts of %d, want 3 to 6 then a success",
				app, n, len(reqs))
		}
	}
	slices.Sort(fractions)
	if len(slices.Compact(fractions)) < len(fractions)/2 {
		t.Errorf("retry delays are not jittered: %v", fractions)
	}
	t.Logf("retry delays as a fraction of their nominal value: %v", fractions)
}

// checkErrorsSeen checks that status showed each failure kind.
func checkErrorsSeen(t *testing.T, w *retryWatch, want ...string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	all := strings.Join(slices.Sorted(maps.Keys(w.errors)), "\n")
	for _, s := range want {
		if !strings.Contains(all, s) {
			t.Errorf("status never showed a %q failure; it showed:\n%s", s, all)
		}
	}
}

func countHandoffs(recs []audit.Record, app string) int {
	n := 0
	for _, rec := range recs {
		if rec.Kind == audit.KindHandoff && rec.App == app {
			n++
		}
	}
	return n
}

// finishAll deletes the old secrets and confirms, then checks that each
// app ends with its new secret alone, and the audit chain.
func finishAll(t *testing.T, r *rig, apps []string, values map[string]string) {
	t.Helper()
	for _, app := range apps {
		poll(t, 30*time.Second, app+" in await_delete", func() bool {
			rot := r.mustStatus(app).Rotation
			return rot != nil && rot.State == "await_delete"
		})
		r.emu.DeleteSecret(clientID(app), r.oldIDs[app])
		if res := r.kt("", "confirm-deleted", app); res.code != 0 {
			t.Fatalf("confirm-deleted %s: %v", app, res)
		}
		st := r.mustStatus(app)
		if st.Rotation != nil || len(st.Secrets) != 1 || st.current() != fp(values[app]) {
			t.Errorf("%s at the end: %+v", app, st)
		}
	}
	if res := r.kt("", "audit", "verify"); res.code != 0 {
		t.Errorf("audit verify: %v", res)
	}
}
