package smartcar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/secret"
)

const (
	testClientID = "client_abc123"
	canarySecret = "CANARY-secret-9f8e7d6c5b4a-do-not-leak"
	canaryToken  = "CANARY-token-1a2b3c4d5e6f-do-not-leak"
)

var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// newTestClient returns a Client for srv whose clock stands at fixedNow.
func newTestClient(url string, opts ...Option) *Client {
	c := NewClient(url, opts...)
	c.now = func() time.Time { return fixedNow }
	return c
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func answerWith(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		writeJSON(w, status, body)
	}
}

// resetConn answers with a TCP reset instead of an HTTP response.
func resetConn(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// truncate promises 100 bytes of body, sends 10 and hangs up.
func truncate(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Length", "100")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, `{"access_`)
	rc := http.NewResponseController(w)
	rc.Flush()
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// hang never answers. It reads the body first because the server only
// notices a client hanging up, and cancels r.Context, after that.
func hang(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

const okBody = `{"access_token":"` + canaryToken +
	`","token_type":"Bearer","expires_in":3600}`

type classCase struct {
	name       string
	handler    http.HandlerFunc
	timeout    time.Duration // Client timeout, when set
	cancel     bool          // call with a cancelled context
	closed     bool          // server closed before the call
	wantClass  string
	wantStatus int
	wantIs     []error
	wantRetry  time.Duration
}

var classCases = []classCase{
	{name: "200 ok", handler: answerWith(200, okBody),
		wantClass: ClassOK, wantStatus: 200},
	{name: "400 invalid_request",
		handler: answerWith(400, `{"error":"invalid_request",
			"error_description":"missing grant_type"}`),
		wantClass: ClassInvalidRequest, wantStatus: 400,
		wantIs: []error{ErrInvalidRequest}},
	{name: "400 unsupported_grant_type",
		handler:   answerWith(400, `{"error":"unsupported_grant_type"}`),
		wantClass: ClassInvalidRequest, wantStatus: 400,
		wantIs: []error{ErrInvalidRequest}},
	{name: "400 invalid_client",
		handler:   answerWith(400, `{"error":"invalid_client"}`),
		wantClass: ClassInvalidClient, wantStatus: 400,
		wantIs: []error{ErrInvalidClient}},
	{name: "401 invalid_client",
		handler: answerWith(401, `{"error":"invalid_client",
			"error_description":"client authentication failed"}`),
		wantClass: ClassInvalidClient, wantStatus: 401,
		wantIs: []error{ErrInvalidClient}},
	{name: "401 without a code is not proof of a dead secret",
		handler:   answerWith(401, `<html>login</html>`),
		wantClass: ClassOther, wantStatus: 401},
	{name: "200 carrying invalid_client",
		handler:   answerWith(200, `{"error":"invalid_client"}`),
		wantClass: ClassInvalidClient, wantStatus: 200,
		wantIs: []error{ErrInvalidClient}},
	{name: "429 retry-after seconds",
		handler:   answerWith(429, `{"error":"rate_limited"}`, "Retry-After", "30"),
		wantClass: ClassRateLimited, wantStatus: 429,
		wantIs: []error{ErrRateLimited}, wantRetry: 30 * time.Second},
	{name: "429 retry-after date",
		handler: answerWith(429, `{}`, "Retry-After",
			fixedNow.Add(2*time.Minute).Format(http.TimeFormat)),
		wantClass: ClassRateLimited, wantStatus: 429,
		wantIs: []error{ErrRateLimited}, wantRetry: 2 * time.Minute},
	{name: "429 without retry-after",
		handler:   answerWith(429, `slow down`),
		wantClass: ClassRateLimited, wantStatus: 429,
		wantIs: []error{ErrRateLimited}},
	{name: "500", handler: answerWith(500, `{"error":"server_error"}`),
		wantClass: ClassTransient, wantStatus: 500, wantIs: []error{ErrTransient}},
	{name: "503 html", handler: answerWith(503, `<h1>maintenance</h1>`),
		wantClass: ClassTransient, wantStatus: 503, wantIs: []error{ErrTransient}},
	{name: "200 malformed json", handler: answerWith(200, `{"access_token":`),
		wantClass: ClassTransient, wantStatus: 200, wantIs: []error{ErrTransient}},
	{name: "200 without access_token", handler: answerWith(200, `{"expires_in":1}`),
		wantClass: ClassTransient, wantStatus: 200, wantIs: []error{ErrTransient}},
	{name: "302 is not followed",
		handler:   answerWith(302, ``, "Location", "/elsewhere"),
		wantClass: ClassOther, wantStatus: 302},
	{name: "connection reset", handler: resetConn,
		wantClass: ClassTransient, wantIs: []error{ErrTransient}},
	{name: "truncated body", handler: truncate,
		wantClass: ClassTransient, wantStatus: 200, wantIs: []error{ErrTransient}},
	{name: "connection refused", handler: hang, closed: true,
		wantClass: ClassTransient, wantIs: []error{ErrTransient}},
	{name: "timeout", handler: hang, timeout: 50 * time.Millisecond,
		wantClass: ClassTransient,
		wantIs:    []error{ErrTransient, context.DeadlineExceeded}},
	{name: "cancelled by the caller", handler: hang, cancel: true,
		wantClass: ClassOther, wantIs: []error{context.Canceled}},
}

func TestTokenClasses(t *testing.T) {
	for _, tc := range classCases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			var opts []Option
			if tc.timeout > 0 {
				opts = append(opts, WithTimeout(tc.timeout))
			}
			ctx, cancel := context.WithCancel(t.Context())
			if tc.cancel {
				cancel()
			}
			defer cancel()
			if tc.closed {
				srv.Close()
			}

			c := newTestClient(srv.URL, opts...)
			tok, err := c.Token(ctx, testClientID, secret.New(canarySecret))
			checkClass(t, tc, tok, err)
		})
	}
}

func checkClass(t *testing.T, tc classCase, tok Token, err error) {
	t.Helper()
	if got := Class(err); got != tc.wantClass {
		t.Fatalf("Class = %q, want %q (err: %v)", got, tc.wantClass, err)
	}
	for _, target := range tc.wantIs {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(err, %v) = false; err: %v", target, err)
		}
	}
	if err == nil {
		checkOK(t, tok)
		return
	}
	var re *RequestError
	if !errors.As(err, &re) {
		t.Fatalf("err is %T, want *RequestError", err)
	}
	got := []any{re.Status, re.Class}
	want := []any{tc.wantStatus, tc.wantClass}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RequestError (-want +got):\n%s", diff)
	}
	var rl *RateLimitError
	if errors.As(err, &rl) && rl.RetryAfter != tc.wantRetry {
		t.Errorf("RetryAfter = %v, want %v", rl.RetryAfter, tc.wantRetry)
	}
	if !strings.HasPrefix(err.Error(), "smartcar: token request: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
}

func checkOK(t *testing.T, tok Token) {
	t.Helper()
	got := []any{tok.Value.Reveal(), tok.Type, tok.IssuedAt, tok.Expiry, tok.Status}
	want := []any{canaryToken, "Bearer", fixedNow, fixedNow.Add(time.Hour), 200}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("token (-want +got):\n%s", diff)
	}
	if tok.Latency <= 0 {
		t.Errorf("Latency = %v, want > 0", tok.Latency)
	}
	wantFP := secret.New(canaryToken).Fingerprint()
	if got := tok.Fingerprint(); got != wantFP {
		t.Errorf("Fingerprint = %q, want %q", got, wantFP)
	}
}

func TestTokenRequestShape(t *testing.T) {
	type seen struct {
		Method, Path, ContentType, Authorization, UserAgent string
		Form                                                url.Values
	}
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter,
		r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		got = seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"),
			r.Header.Get("Authorization"), r.Header.Get("User-Agent"), form}
		writeJSON(w, 200, okBody)
	}))
	defer srv.Close()

	c := newTestClient(srv.URL+"/oauth2/token", WithUserAgent("keyturn-test/1"))
	_, err := c.Token(t.Context(), testClientID, secret.New(canarySecret))
	if err != nil {
		t.Fatal(err)
	}
	want := seen{
		Method: "POST", Path: "/oauth2/token",
		ContentType: "application/x-www-form-urlencoded",
		UserAgent:   "keyturn-test/1",
		Form: url.Values{
			"grant_type":    {"client_credentials"},
			"client_id":     {testClientID},
			"client_secret": {canarySecret},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func TestEveryCallIsARealRequest(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter,
		r *http.Request) {
		n.Add(1)
		writeJSON(w, 200, okBody)
	}))
	defer srv.Close()

	c := newTestClient(srv.URL)
	for range 3 {
		_, err := c.Token(t.Context(), testClientID, secret.New(canarySecret))
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := n.Load(); got != 3 {
		t.Errorf("server saw %d requests, want 3", got)
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	var followed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/other", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) {
		followed.Store(true)
		writeJSON(w, 200, okBody)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	_, err := newTestClient(srv.URL+"/token").Token(t.Context(), testClientID,
		secret.New(canarySecret))
	if got := Class(err); got != ClassOther || followed.Load() {
		t.Errorf("Class = %q, followed = %v; want other, false", got, followed.Load())
	}
}

func TestMissingCredentialsSendNothing(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter,
		r *http.Request) {
		n.Add(1)
	}))
	defer srv.Close()

	c := newTestClient(srv.URL)
	for _, tc := range []struct {
		id  string
		sec secret.Value
	}{{"", secret.New(canarySecret)}, {testClientID, secret.Value{}}} {
		_, err := c.Token(t.Context(), tc.id, tc.sec)
		if !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("Token(%q, …) = %v, want ErrInvalidRequest", tc.id, err)
		}
	}
	if n.Load() != 0 {
		t.Errorf("server saw %d requests, want 0", n.Load())
	}
}

// echo answers with the client secret it was sent, and a token, in every
// place a careless server might put them.
func echo(status int, tmpl string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		s := strings.ReplaceAll(tmpl, "SECRET", r.PostForm.Get("client_secret"))
		s = strings.ReplaceAll(s, "TOKEN", canaryToken)
		w.Header().Set("Retry-After", r.PostForm.Get("client_secret"))
		w.Header().Set("Content-Type", "application/json; x="+
			r.PostForm.Get("client_secret"))
		w.WriteHeader(status)
		io.WriteString(w, s)
	}
}

func TestErrorsNeverCarryCredentials(t *testing.T) {
	long := strings.Repeat("x", 190) // pushes the secret across the cut
	handlers := []http.HandlerFunc{
		echo(401, `{"error":"invalid_client","error_description":"bad SECRET"}`),
		echo(401, `{"error":"invalid_client","error_description":"`+long+`SECRET"}`),
		echo(400, `{"error":"SECRET","error_description":"SECRET"}`),
		echo(429, `{"error_description":"SECRET"}`),
		echo(500, `{"access_token":"TOKEN","client_secret":"SECRET"}`),
		echo(502, `SECRET TOKEN`),
		echo(200, `{"access_token":"TOKEN","error":"invalid_client"}`),
		echo(200, `not json SECRET TOKEN`),
		echo(302, `SECRET`),
	}
	for i, h := range handlers {
		srv := httptest.NewServer(h)
		_, err := newTestClient(srv.URL).Token(t.Context(), testClientID,
			secret.New(canarySecret))
		srv.Close()
		if err == nil {
			t.Fatalf("case %d: no error", i)
		}
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v %#v", err, err)} {
			if strings.Contains(s, canarySecret) || strings.Contains(s, canaryToken) {
				t.Errorf("case %d: error leaks a credential: %s", i, s)
			}
		}
	}
}

func TestErrorText(t *testing.T) {
	srv := httptest.NewServer(answerWith(401, `{"error":"invalid_client"}`))
	defer srv.Close()
	_, err := newTestClient(srv.URL).Token(t.Context(), testClientID,
		secret.New(canarySecret))
	want := "smartcar: token request: invalid_client: the client secret was " +
		"refused (wrong, or deleted in the Dashboard)"
	if got := fmt.Sprint(err); got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}
