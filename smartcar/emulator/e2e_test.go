package emulator_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

// mangle is a RoundTripper standing for a broken proxy: it replaces the
// request's content type, so the emulator sees a malformed request.
type mangle struct{}

func (mangle) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Content-Type", "text/plain")
	return http.DefaultTransport.RoundTrip(r)
}

// TestClientAgainstEmulator checks that the token client reads every
// answer the emulator can give as the right class.
func TestClientAgainstEmulator(t *testing.T) {
	e := emulator.New()
	if _, err := e.Start(""); err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	oldID, oldSecret, _, _ := e.CreateSecret("app1")
	_, newSecret, _, _ := e.CreateSecret("app1")
	if err := e.DeleteSecret("app1", oldID); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		faults    emulator.Faults
		opts      []smartcar.Option
		secret    string
		wantClass string
		wantRetry time.Duration
	}{
		{name: "ok", secret: newSecret, wantClass: "ok"},
		{name: "deleted secret", secret: oldSecret, wantClass: "invalid_client"},
		{name: "wrong secret", secret: "nope", wantClass: "invalid_client"},
		{name: "malformed", secret: newSecret, wantClass: "invalid_request",
			opts: []smartcar.Option{smartcar.WithHTTPClient(
				&http.Client{Transport: mangle{}})}},
		{name: "rate limited", secret: newSecret, wantClass: "rate_limited",
			faults:    emulator.Faults{RateLimitNext: 1, RetryAfter: 7 * time.Second},
			wantRetry: 7 * time.Second},
		{name: "500", secret: newSecret, wantClass: "transient",
			faults: emulator.Faults{FailNext: 1}},
		{name: "reset", secret: newSecret, wantClass: "transient",
			faults: emulator.Faults{ResetNext: 1}},
		{name: "slow", secret: newSecret, wantClass: "transient",
			faults: emulator.Faults{Latency: time.Hour},
			opts:   []smartcar.Option{smartcar.WithTimeout(50 * time.Millisecond)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.SetFaults(tc.faults)
			defer e.SetFaults(emulator.Faults{})
			c := smartcar.NewClient(e.TokenURL(), tc.opts...)
			tok, err := c.Token(t.Context(), "app1", secret.New(tc.secret))
			if got := smartcar.Class(err); got != tc.wantClass {
				t.Fatalf("Class = %q, want %q (err: %v)", got, tc.wantClass, err)
			}
			var rl *smartcar.RateLimitError
			if errors.As(err, &rl) && rl.RetryAfter != tc.wantRetry {
				t.Errorf("RetryAfter = %v, want %v", rl.RetryAfter, tc.wantRetry)
			}
			if err == nil {
				checkToken(t, e, tok)
			}
		})
	}
}

func checkToken(t *testing.T, e *emulator.Emulator, tok smartcar.Token) {
	t.Helper()
	got := []any{e.TokenValid(tok.Value.Reveal()), tok.Type,
		tok.Expiry.Sub(tok.IssuedAt), tok.Status}
	want := []any{true, "Bearer", time.Hour, 200}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("token (-want +got):\n%s", diff)
	}
}
