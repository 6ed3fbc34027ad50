package emulator

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTokenGranted(t *testing.T) {
	e, clock := start(t)
	id, sec := mustCreate(t, e, "app1")

	a := mint(t, e, "app1", sec)
	tok, _ := a.Body["access_token"].(string)
	got := []any{a.Status, a.Body["token_type"], a.Body["expires_in"],
		a.Header.Get("Cache-Control"), len(tok) >= 40}
	want := []any{200, "Bearer", 3600.0, "no-store", true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("answer (-want +got):\n%s\n%s", diff, a.Raw)
	}
	if !e.TokenValid(tok) || e.TokenValid(tok+"x") {
		t.Errorf("TokenValid wrong for a fresh token or a forged one")
	}

	wantRec := []RequestRecord{{Time: clock.Now(), ClientID: "app1",
		AuthMethod: AuthPost, SecretID: id, Outcome: OutcomeOK, Status: 200}}
	if diff := cmp.Diff(wantRec, withoutAddr(e.Requests())); diff != "" {
		t.Errorf("Requests (-want +got):\n%s", diff)
	}
}

func withoutAddr(rs []RequestRecord) []RequestRecord {
	for i := range rs {
		rs[i].RemoteAddr = ""
	}
	return rs
}

func TestMalformedTokenRequests(t *testing.T) {
	e, _ := start(t)
	_, sec := mustCreate(t, e, "app1")
	good := tokenForm("app1", sec)
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range good {
			f[kk] = vv
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}

	tests := []struct {
		name       string
		method, ct string
		body       string
		query      string
		want       int
	}{
		{"GET", "GET", "", "", "", 405},
		{"PUT", "PUT", "", good.Encode(), "", 405},
		{"json body", "POST", "application/json", `{"grant_type":"x"}`, "", 400},
		{"no content type", "POST", "-", good.Encode(), "", 400},
		{"missing grant_type", "POST", "", with("grant_type", "").Encode(), "", 400},
		{"wrong grant_type", "POST", "", with("grant_type", "password").Encode(),
			"", 400},
		{"missing client_id", "POST", "", with("client_id", "").Encode(), "", 400},
		{"missing secret", "POST", "", with("client_secret", "").Encode(), "", 400},
		{"repeated parameter", "POST", "", good.Encode() + "&client_id=app1", "", 400},
		{"secret in the URL", "POST", "", with("client_secret", "").Encode(),
			"client_secret=" + sec, 400},
		{"bad form encoding", "POST", "", "grant_type=%zz", "", 400},
		{"body too large", "POST", "", good.Encode() + "&pad=" +
			strings.Repeat("a", maxForm), "", 400},
		{"form with charset is fine", "POST",
			"application/x-www-form-urlencoded; charset=utf-8", good.Encode(), "", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, e.TokenURL()+"?"+tc.query,
				strings.NewReader(tc.body))
			switch tc.ct {
			case "":
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			case "-":
			default:
				req.Header.Set("Content-Type", tc.ct)
			}
			a := do(t, req)
			if a.Status != tc.want {
				t.Fatalf("status = %d, want %d: %s", a.Status, tc.want, a.Raw)
			}
			if tc.want != 200 && a.Body["error"] != "invalid_request" {
				t.Errorf("error = %v, want invalid_request", a.Body["error"])
			}
		})
	}
}

func TestWrongSecretRefused(t *testing.T) {
	e, _ := start(t)
	_, sec := mustCreate(t, e, "app1")
	tests := []struct{ name, id, secret string }{
		{"wrong secret", "app1", sec[:len(sec)-1] + "x"},
		{"unknown client", "app2", sec},
		{"secret of another app", "app1", func() string {
			_, s := mustCreate(t, e, "app3")
			return s
		}()},
	}
	for _, tc := range tests {
		a := mint(t, e, tc.id, tc.secret)
		got := []any{a.Status, a.Body["error"], a.Body["access_token"]}
		want := []any{401, "invalid_client", nil}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestBasicAuth(t *testing.T) {
	e, _ := start(t)
	_, sec := mustCreate(t, e, "app:1") // ':' must be form-encoded in Basic
	basic := func(body url.Values, id, secret string) int {
		req := formRequest(t, "POST", e.TokenURL(), body)
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		a := do(t, req)
		if a.Status == 401 && a.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 to Basic without WWW-Authenticate")
		}
		return a.Status
	}
	grant := url.Values{"grant_type": {"client_credentials"}}

	tests := []struct {
		name string
		got  int
		want int
	}{
		{"basic", basic(grant, "app:1", sec), 200},
		{"basic with the same client_id", basic(url.Values{
			"grant_type": {"client_credentials"}, "client_id": {"app:1"}},
			"app:1", sec), 200},
		{"basic and a body secret", basic(tokenForm("app:1", sec), "app:1", sec), 400},
		{"basic with another client_id", basic(url.Values{
			"grant_type": {"client_credentials"}, "client_id": {"x"}},
			"app:1", sec), 400},
		{"basic with a wrong secret", basic(grant, "app:1", "nope"), 401},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, tc.got, tc.want)
		}
	}

	req := formRequest(t, "POST", e.TokenURL(), tokenForm("app:1", sec))
	req.Header.Set("Authorization", "Bearer abc")
	if got := do(t, req).Status; got != 400 {
		t.Errorf("Bearer Authorization: status %d, want 400", got)
	}
}

// TestTokenOutlivesItsSecret pins the fact the exposure window rests on:
// deleting a secret stops new tokens at once, but a token minted before
// stays valid for its full hour.
func TestTokenOutlivesItsSecret(t *testing.T) {
	e, clock := start(t)
	id, sec := mustCreate(t, e, "app1")
	tok := mint(t, e, "app1", sec).Body["access_token"].(string)

	clock.Advance(10 * time.Minute)
	if err := e.DeleteSecret("app1", id); err != nil {
		t.Fatal(err)
	}
	if got := mint(t, e, "app1", sec).Status; got != 401 {
		t.Errorf("token request after delete: %d, want 401", got)
	}

	tests := []struct {
		advance time.Duration // from the previous step
		want    bool
	}{
		{0, true},
		{49*time.Minute + 59*time.Second, true}, // 59:59 after minting
		{time.Second, false},                    // 60:00
	}
	for _, tc := range tests {
		clock.Advance(tc.advance)
		if got := e.TokenValid(tok); got != tc.want {
			t.Errorf("at %v: TokenValid = %v, want %v",
				clock.Now().Sub(epoch), got, tc.want)
		}
	}

	last := e.Requests()[1]
	got := []any{last.SecretID, last.SecretDeleted, last.Outcome}
	want := []any{id, true, OutcomeInvalidClient}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record of the refused request (-want +got):\n%s", diff)
	}
}

func TestRecordsNeverHoldValues(t *testing.T) {
	e, _ := start(t)
	_, sec := mustCreate(t, e, "app1")
	tok := mint(t, e, "app1", sec).Body["access_token"].(string)
	mint(t, e, "app1", "wrong-"+sec)

	for _, r := range e.Requests() {
		s := strings.Join([]string{r.ClientID, r.AuthMethod, r.SecretID,
			r.Outcome, r.RemoteAddr}, " ")
		if strings.Contains(s, sec) || strings.Contains(s, tok) {
			t.Errorf("record holds a value: %+v", r)
		}
	}
}
