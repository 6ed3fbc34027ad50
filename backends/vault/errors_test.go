package vault

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/backends"
)

// TestSealed answers every request as a sealed Vault does; the test
// cluster cannot be sealed and unsealed again cheaply.
func TestSealed(t *testing.T) {
	f := newFake(t, nil)
	f.routes = map[string]http.HandlerFunc{}
	sealedAnswer := answer(503, map[string]any{"errors": []string{"Vault is sealed"}})
	for _, r := range []string{"GET /v1/auth/token/lookup-self",
		"GET /v1/sys/internal/ui/mounts/secret",
		"GET /v1/secret/metadata/smartcar/demo"} {
		f.routes[r] = sealedAnswer
	}
	b := open(t, fakeOptions(t, f))
	_, err := b.List(ctx)
	want := "vault at " + f.srv.URL + " is sealed; unseal it"
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Fatalf("List against a sealed vault: got %v, want it to end %q", err, want)
	}
	// The client retries 5xx, but a login does not retry a sealed Vault.
	if n := f.count("GET /v1/auth/token/lookup-self"); n != maxRetries+1 {
		t.Errorf("lookup-self asked %d times, want %d", n, maxRetries+1)
	}
	t.Log(err)
}

// TestNetworkFailure drops connections: a few drops are retried away, and
// endless drops end, after a bounded number of attempts, in an error
// naming the Vault that could not be reached.
func TestNetworkFailure(t *testing.T) {
	const route = "GET /v1/secret/metadata/smartcar/demo"
	tests := []struct {
		name      string
		drops     int32
		wantCalls int
		wantErr   string
	}{
		{"two drops", 2, 3, ""},
		{"every call dropped", 100, maxRetries + 1, "unreachable after 5 attempts: EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes := kvRoutes()
			var dropped atomic.Int32
			routes[route] = func(w http.ResponseWriter, r *http.Request) {
				if dropped.Add(1) <= tt.drops {
					hangUp(w, r)
					return
				}
				reply(w, 404, map[string]any{"errors": []string{}})
			}
			f := newFake(t, routes)
			_, err := open(t, fakeOptions(t, f)).List(ctx)
			if got := f.count(route); got != tt.wantCalls {
				t.Errorf("%d calls, want %d", got, tt.wantCalls)
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("List: %v", err)
			}
			if tt.wantErr != "" &&
				(err == nil || !strings.HasSuffix(err.Error(), tt.wantErr)) {
				t.Fatalf("List: got %v, want it to end %q", err, tt.wantErr)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	const addr = "https://vault:8200"
	rw := []string{"create", "update"}
	tests := []struct {
		name   string
		status int
		errs   []string
		caps   []string
		want   string
	}{
		{"sealed", 503, []string{"Vault is sealed"}, rw,
			"vault at https://vault:8200 is sealed; unseal it"},
		{"denied", 403, []string{"permission denied"}, rw,
			`permission denied: the policy needs "create" and "update" on that path`},
		{"denied, one capability", 403, []string{"permission denied"}, []string{"read"},
			`permission denied: the policy needs "read" on that path`},
		{"denied, login", 403, []string{"permission denied"}, nil, "permission denied"},
		{"cas", 400,
			[]string{"check-and-set parameter did not match the current version"}, rw,
			"the stored secret changed underneath this write: another writer " +
				"stored a new version first"},
		{"no mount", 404, []string{`no handler for route "kv/data/x". route entry ` +
			"not found."}, rw, "nothing is mounted at kv/: mount KV version 2 there: " +
			"vault secrets enable -path=kv kv-v2"},
		{"other", 500, []string{"1 error occurred:\n\t* internal error\n\n"}, rw,
			"vault answered 500: 1 error occurred: * internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re := &api.ResponseError{StatusCode: tt.status, Errors: tt.errs}
			err := explain(addr, "kv", tt.caps, re)
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if tt.name == "cas" && !errors.Is(err, backends.ErrCASConflict) {
				t.Errorf("a cas failure does not wrap ErrCASConflict")
			}
		})
	}
}

func TestJitterBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	for attempt, ceiling := range []time.Duration{100, 200, 400, 800, 1600, 2000, 2000} {
		ceiling *= time.Millisecond
		for range 50 {
			got := jitterBackoff(lo, hi, attempt, nil)
			if got < ceiling/2 || got > ceiling {
				t.Fatalf("attempt %d waited %v, want %v to %v", attempt, got,
					ceiling/2, ceiling)
			}
		}
	}
	resp := &http.Response{Header: http.Header{"Retry-After": {"60"}}}
	if got := jitterBackoff(lo, hi, 0, resp); got != hi {
		t.Errorf("Retry-After 60 waited %v, want it capped at %v", got, hi)
	}
}

// TestKV1Mount points keyturn at the test server's KV version 1 mount.
func TestKV1Mount(t *testing.T) {
	o := testOptions(t, uniquePath(t))
	o.Mount = "kv1"
	err := open(t, o).Init(ctx, first, epoch)
	want := `vault: check mount "sys/internal/ui/mounts/kv1": mount kv1/ is KV ` +
		"version 1; keyturn needs KV v2: vault kv enable-versioning kv1/"
	if err == nil || err.Error() != want {
		t.Errorf("Init on kv1/:\n got %v\nwant %s", err, want)
	}
}

// TestKV1Fallback is a Vault that will not say what a mount is: the
// answer to the first write gives KV version 1 away.
func TestKV1Fallback(t *testing.T) {
	routes := kvRoutes()
	routes["GET /v1/sys/internal/ui/mounts/secret"] = answer(403,
		map[string]any{"errors": []string{"permission denied"}})
	routes["PUT /v1/secret/data/smartcar/demo"] = func(w http.ResponseWriter,
		_ *http.Request) {
		w.WriteHeader(204)
	}
	b := open(t, fakeOptions(t, newFake(t, routes)))
	err := b.Init(ctx, first, epoch)
	want := `vault: write current "secret/data/smartcar/demo": mount secret/ is KV ` +
		"version 1; keyturn needs KV v2: vault kv enable-versioning secret/"
	if err == nil || err.Error() != want {
		t.Errorf("Init:\n got %v\nwant %s", err, want)
	}
}

// TestMissingMount names a mount the test server does not have.
func TestMissingMount(t *testing.T) {
	o := testOptions(t, uniquePath(t))
	o.Mount = "no-such-mount"
	_, err := open(t, o).List(ctx)
	want := "nothing is mounted at no-such-mount/"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("List: got %v, want it to say %q", err, want)
	}
}

func TestNewRefuses(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "")
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no path", Options{}, "vault: no path"},
		{"unknown method", Options{Path: "p", Auth: AuthOptions{Method: "ldap"}},
			"vault: auth method ldap: unknown; use token, approle or kubernetes"},
		{"no token", Options{Path: "p"},
			"vault: auth method token: no token_file, and VAULT_TOKEN is not set"},
		{"token file missing", Options{Path: "p", Auth: AuthOptions{TokenFile: missing}},
			"vault: auth method token: open " + missing + ": no such file or directory"},
		{"approle without role id", Options{Path: "p", Auth: AuthOptions{
			Method: "approle", SecretIDFile: missing}},
			"vault: auth method approle: role_id and secret_id_file are both needed"},
		{"kubernetes without role", Options{Path: "p", Auth: AuthOptions{
			Method: "kubernetes"}}, "vault: auth method kubernetes: no role"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(ctx, tt.o)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
