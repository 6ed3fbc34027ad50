package notify

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// t0 is the fixed "now" of every test.
var t0 = time.Date(2025, 3, 4, 9, 30, 0, 0, time.UTC)

func fixedClock() time.Time { return t0 }

// noSleep stands in for Options.Sleep: tests never wait.
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func zeroBackoff(int) time.Duration { return 0 }

// sampleEvent is a prompt with every field set, as the rotator sends it.
func sampleEvent(k Kind) Event {
	return Event{
		ID:           "ev_test",
		Kind:         k,
		Time:         t0,
		App:          "fleet-prod",
		ClientID:     "client_abc123",
		RotationID:   "rot_7",
		RotationKind: "routine",
		State:        "await_new",
		DashboardURL: "https://dashboard.smartcar.com/team/applications/client_abc123",
		Command:      "keyturn submit fleet-prod",
		Delete: &SecretRef{Fingerprint: "fp_00aa11bb22cc33dd",
			CreatedAt: time.Date(2024, 12, 1, 8, 0, 0, 0, time.UTC)},
		Deadline: t0.Add(4 * time.Hour),
		DedupKey: "keyturn/rot_7/await_new",
	}
}

// allKinds lists every Kind, so tests cover new ones by default.
var allKinds = []Kind{KindPromptCreate, KindPromptDelete, KindPromptUpdate, KindPage,
	KindWarning, KindRotationDone, KindRotationFailed, KindWindowClosed,
	KindChannelFailing, KindTest}

// writeFile writes content to a 0600 file in a test directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// request is what a receiver got.
type request struct {
	Path   string
	Header http.Header
	Body   []byte
}

// receiver is an HTTP server on loopback that records requests and
// answers with status(n) for the n-th request (from 0).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []request
	status func(n int) (int, string)
}

func newReceiver(t *testing.T, status func(n int) (int, string)) *receiver {
	t.Helper()
	r := &receiver{status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	n := len(r.reqs)
	r.reqs = append(r.reqs, request{req.URL.Path, req.Header.Clone(), body})
	r.mu.Unlock()
	code, text := r.status(n)
	w.WriteHeader(code)
	_, _ = io.WriteString(w, text)
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.reqs...)
}

func always(code int) func(int) (int, string) {
	return func(int) (int, string) { return code, "" }
}

// flush waits for d with a bound, so a bug hangs no test for long.
func flush(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// slogTo returns a text logger writing to w.
func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}
