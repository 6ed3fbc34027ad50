package reliability

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/notify"
)

// TestFaultBackendProxy puts a TCP fault proxy between keyturn and the
// real AWS Secrets Manager (moto) and Vault servers. A hand-off while the
// store resets fails before anything changed; a slow store only slows the
// rotation; a store that resets while the old secret is being proven dead
// parks the step, which finishes by itself once the store is back.
func TestFaultBackendProxy(t *testing.T) {
	t.Parallel()
	for _, be := range []string{"awssm", "vault"} {
		t.Run(be, func(t *testing.T) {
			t.Parallel()
			testBackendFaults(t, be)
		})
	}
}

func testBackendFaults(t *testing.T, be string) {
	r := newRig(t, rigOptions{backend: be, proxyBackend: true})
	r.start()
	px := r.backendProxy
	if res := r.kt("", "rotate", "demo"); res.code != 0 {
		t.Fatalf("rotate: %v", res)
	}
	_, value := r.create("demo")

	px.toxic("reset", "reset_peer", "upstream", map[string]int{"timeout": 0})
	res := r.kt(value+"\n", "submit", "demo")
	// The reset may meet the check that the secret is new, or the write.
	if res.code != 1 || !strings.Contains(res.stderr, "list secrets") &&
		!strings.Contains(res.stderr, "store the new secret as pending") {
		t.Fatalf("submit while the store resets: %v", res)
	}
	for _, s := range r.list("demo") {
		if s.Stage != "current" || string(s.Fingerprint) != fp(canarySecret) {
			t.Errorf("the failed hand-off changed the store: %s %s", s.Stage, s.Fingerprint)
		}
	}
	if rot := r.mustStatus("demo").Rotation; rot == nil || rot.State != "await_new" {
		t.Fatalf("status after the failed hand-off: %+v", rot)
	}

	px.clear()
	px.toxic("slow", "latency", "downstream", map[string]int{"latency": 150})
	if res := r.kt(value+"\n", "submit", "demo"); res.code != 0 {
		t.Fatalf("submit while the store is slow: %v", res)
	}
	poll(t, 30*time.Second, "await_delete", func() bool {
		rot := r.mustStatus("demo").Rotation
		return rot != nil && rot.State == "await_delete"
	})

	px.clear()
	px.toxic("reset", "reset_peer", "upstream", map[string]int{"timeout": 0})
	r.emu.DeleteSecret(clientID("demo"), r.oldIDs["demo"])
	res = r.kt("", "confirm-deleted", "demo")
	if res.code != 1 || !strings.Contains(res.stderr, "retries on its own") {
		t.Fatalf("confirm-deleted while the store resets: %v", res)
	}
	st := r.mustStatus("demo")
	if st.Rotation == nil || st.Rotation.State != "verify_revoked" ||
		st.Rotation.RetryAt.IsZero() ||
		!strings.Contains(st.Rotation.LastError, "read the old secret") {
		t.Errorf("status while the store resets: %+v", st.Rotation)
	}
	if st.Error == "" {
		t.Errorf("status does not say the store is unreachable")
	}
	px.clear()
	poll(t, 60*time.Second, "the rotation to finish by itself", func() bool {
		st, ok := r.status()
		return ok && st["demo"].Rotation == nil
	})

	list := r.list("demo")
	if len(list) != 1 || list[0].Stage != "current" || string(list[0].Fingerprint) != fp(value) {
		t.Errorf("the store at the end: %v", describe(list))
	}
	if n := r.rc.prompts()[promptKey{"", notify.KindPromptDelete}]; n != 0 {
		t.Errorf("prompts without a rotation: %d", n)
	}
	recs := r.auditRecords()
	checkProvenBeforeRetired(t, recs, fp(canarySecret))
	var confirms int
	for _, rec := range recs {
		if rec.Step == "confirm_deleted" {
			confirms++
		}
	}
	if confirms != 1 {
		t.Errorf("%d confirm-deleted actions, want 1: the step must resume by itself", confirms)
	}
	if res := r.kt("", "audit", "verify"); res.code != 0 {
		t.Errorf("audit verify: %v", res)
	}
}

// describe names secrets by stage and fingerprint.
func describe(list []backends.Secret) string {
	var out []string
	for _, s := range list {
		out = append(out, string(s.Stage)+"="+string(s.Fingerprint))
	}
	return strings.Join(out, ", ")
}

// TestFaultStoreRefuses puts a sealed Vault and a throttling AWS Secrets
// Manager (an HTTP front that answers as they do) in the rotation's way
// while it proves the old secret dead. The step parks with the store's
// own words in last_error, each call is retried a bounded number of
// times, and the rotation finishes by itself once the store answers.
func TestFaultStoreRefuses(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		backend, words string
		answer         func(http.ResponseWriter)
	}{
		{"vault", "sealed", sealedVault},
		{"awssm", "ThrottlingException", throttledAWS},
	} {
		t.Run(c.backend, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{backend: c.backend, frontBackend: true})
			r.start()
			if res := r.kt("", "rotate", "demo"); res.code != 0 {
				t.Fatalf("rotate: %v", res)
			}
			_, value := r.create("demo")
			if res := r.kt(value+"\n", "submit", "demo"); res.code != 0 {
				t.Fatalf("submit: %v", res)
			}
			poll(t, 30*time.Second, "await_delete", func() bool {
				rot := r.mustStatus("demo").Rotation
				return rot != nil && rot.State == "await_delete"
			})

			r.backendFront.set(c.answer)
			r.emu.DeleteSecret(clientID("demo"), r.oldIDs["demo"])
			res := r.kt("", "confirm-deleted", "demo")
			if res.code != 1 || !strings.Contains(res.stderr, "retries on its own") ||
				!strings.Contains(res.stderr, c.words) {
				t.Fatalf("confirm-deleted while the store refuses: %v", res)
			}
			// Every status call lists the store too: count them, to bound
			// the requests the front may see.
			calls := 0
			poll(t, 30*time.Second, "a second try", func() bool {
				calls++
				st := r.mustStatus("demo")
				return st.Rotation != nil && strings.Contains(st.Rotation.LastError,
					"(retry 2 at ")
			})
			st := r.mustStatus("demo")
			calls++
			if st.Rotation.State != "verify_revoked" ||
				!strings.Contains(st.Rotation.LastError, c.words) ||
				!strings.Contains(st.Error, c.words) {
				t.Fatalf("status while the store refuses: %+v", st)
			}
			m := retryRE.FindStringSubmatch(st.Rotation.LastError)
			tries, _ := strconv.Atoi(m[1])
			hits := r.backendFront.set(nil)
			// Each call is tried at most five times by the store's client:
			// the status calls, the rotation's tries, and one more try
			// that may have begun since status showed them.
			if ops := calls + tries + 1; hits > 5*ops {
				t.Errorf("the store saw %d requests for at most %d calls", hits, ops)
			}
			t.Logf("%s: %d requests refused for %d status calls and %d tries", c.backend,
				hits, calls, tries)
			poll(t, 30*time.Second, "the rotation to finish by itself", func() bool {
				st, ok := r.status()
				return ok && st["demo"].Rotation == nil
			})
			if list := r.list("demo"); len(list) != 1 || string(list[0].Fingerprint) != fp(value) {
				t.Errorf("the store at the end: %s", describe(list))
			}
			checkProvenBeforeRetired(t, r.auditRecords(), fp(canarySecret))
		})
	}
}
