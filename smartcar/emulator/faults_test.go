package emulator

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRateLimit(t *testing.T) {
	e, clock := start(t, WithRateLimit(2, time.Minute))
	_, sec := mustCreate(t, e, "app1")
	_, other := mustCreate(t, e, "app2")

	type step struct {
		advance    time.Duration
		clientID   string
		secret     string
		want       int
		retryAfter string
	}
	steps := []step{
		{0, "app1", sec, 200, ""},
		{0, "app1", "wrong", 401, ""}, // refusals count too
		{0, "app1", sec, 429, "60"},
		{0, "app2", other, 200, ""}, // windows are per client ID
		{30 * time.Second, "app1", sec, 429, "30"},
		{30 * time.Second, "app1", sec, 200, ""}, // a new window
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		a := mint(t, e, s.clientID, s.secret)
		got := []any{a.Status, a.Header.Get("Retry-After")}
		if diff := cmp.Diff([]any{s.want, s.retryAfter}, got); diff != "" {
			t.Errorf("step %d (-want +got):\n%s", i, diff)
		}
	}
}

func TestFaultSwitches(t *testing.T) {
	e, _ := start(t)
	_, sec := mustCreate(t, e, "app1")
	e.SetFaults(Faults{FailNext: 1, RateLimitNext: 1, RetryAfter: 7 * time.Second})

	var got []any
	for range 3 {
		a := mint(t, e, "app1", sec)
		got = append(got, a.Status, a.Header.Get("Retry-After"))
	}
	want := []any{500, "", 429, "7", 200, ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Faults{RetryAfter: 7 * time.Second}, e.Faults()); diff != "" {
		t.Errorf("Faults left (-want +got):\n%s", diff)
	}
}

func TestResetFault(t *testing.T) {
	e, _ := start(t)
	_, sec := mustCreate(t, e, "app1")
	e.SetFaults(Faults{ResetNext: 1})

	req := formRequest(t, "POST", e.TokenURL(), tokenForm("app1", sec))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("got an answer (%d), want a reset", resp.StatusCode)
	}
	if got := mint(t, e, "app1", sec).Status; got != 200 {
		t.Errorf("after the reset: %d, want 200", got)
	}
	var outcomes []string
	for _, r := range e.Requests() {
		outcomes = append(outcomes, r.Outcome)
	}
	if diff := cmp.Diff([]string{OutcomeFaultReset, OutcomeOK}, outcomes); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func TestLatencyFault(t *testing.T) {
	e, _ := start(t)
	_, sec := mustCreate(t, e, "app1")
	e.SetFaults(Faults{Latency: time.Hour})

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req := formRequest(t, "POST", e.TokenURL(), tokenForm("app1", sec))
	_, err := http.DefaultClient.Do(req.WithContext(ctx))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a deadline", err)
	}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "192.0.2.1:0", "nonsense"} {
		if _, err := New().Start(addr); err == nil {
			t.Errorf("Start(%q) succeeded, want an error", addr)
		}
	}
	e, _ := start(t)
	if _, err := e.Start(""); err == nil {
		t.Errorf("second Start succeeded")
	}
	if got, want := e.TokenURL(), e.URL()+"/oauth2/token"; got != want {
		t.Errorf("TokenURL = %q, want %q", got, want)
	}
	if New().URL() != "" || New().TokenURL() != "" {
		t.Errorf("URL before Start is not empty")
	}
}

// TestConcurrentUse runs token requests while secrets come and go; the
// race detector does the checking.
func TestConcurrentUse(t *testing.T) {
	e, _ := start(t)
	_, sec := mustCreate(t, e, "app1")
	body := tokenForm("app1", sec).Encode()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				resp, err := http.Post(e.TokenURL(),
					"application/x-www-form-urlencoded", strings.NewReader(body))
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("token request: %v %v", err, resp)
					continue
				}
				resp.Body.Close()
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			id, _, _, err := e.CreateSecret("app1")
			e.Secrets("app1")
			if err == nil {
				e.DeleteSecret("app1", id)
			}
		}
	})
	wg.Wait()
	if got := len(e.Requests()); got != 160 {
		t.Errorf("%d records, want 160", got)
	}
}

// BenchmarkToken measures the token endpoint's handler, without sockets.
func BenchmarkToken(b *testing.B) {
	e := New()
	_, sec, _, _ := e.CreateSecret("app1")
	body := tokenForm("app1", sec).Encode()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			e.Handler().ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}
