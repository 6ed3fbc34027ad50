package vault

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The test cluster has only token auth, so AppRole and Kubernetes logins
// are checked against the fake, for what keyturn sends and does.

const metaRoute = "GET /v1/secret/metadata/smartcar/demo"

func loginAnswer(token string) map[string]any {
	return map[string]any{"auth": map[string]any{"client_token": token,
		"lease_duration": 0, "renewable": false}}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAppRole(t *testing.T) {
	tests := []struct {
		name       string
		wrapped    bool
		mount      string
		file       string
		wantUnwrap []string // tokens the unwraps were sent with
	}{
		{"plain secret id", false, "", "sid-123\n", nil},
		{"wrapped secret id, own mount", true, "ar", "wrap-token\n",
			[]string{"wrap-token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mount := tt.mount
			if mount == "" {
				mount = "approle"
			}
			login := "PUT /v1/auth/" + mount + "/login"
			routes := kvRoutes()
			routes["PUT /v1/sys/wrapping/unwrap"] = answer(200, map[string]any{
				"data": map[string]any{"secret_id": "sid-123"}})
			routes[login] = answer(200, loginAnswer("tok-approle"))
			f := newFake(t, routes)
			o := fakeOptions(t, f)
			o.Auth = AuthOptions{Method: "approle", RoleID: "role-abc",
				MountPath: tt.mount, Wrapped: tt.wrapped,
				SecretIDFile: writeFile(t, "secret-id", tt.file)}
			if _, err := open(t, o).List(ctx); err != nil {
				t.Fatalf("List: %v", err)
			}

			var unwraps []string
			for _, c := range f.callsTo("PUT /v1/sys/wrapping/unwrap") {
				unwraps = append(unwraps, c.Token)
			}
			if diff := cmp.Diff(tt.wantUnwrap, unwraps); diff != "" {
				t.Errorf("unwrap calls (-want +got):\n%s", diff)
			}
			logins := f.callsTo(login)
			wantBody := map[string]any{"role_id": "role-abc", "secret_id": "sid-123"}
			if len(logins) != 1 || !cmp.Equal(wantBody, logins[0].Body) {
				t.Errorf("logins: %+v, want one with %v", logins, wantBody)
			}
			got := f.callsTo(metaRoute)
			if len(got) != 1 || got[0].Token != "tok-approle" {
				t.Errorf("metadata read with %+v, want the login's token", got)
			}
		})
	}
}

// TestKubernetesRelogin revokes the token of a Kubernetes login: keyturn
// must notice (a lookup fails), log in again with the service account
// token the file holds by then, and repeat the request. A refusal of a
// live token is the policy's: no new login.
func TestKubernetesRelogin(t *testing.T) {
	var revoked, denied atomic.Bool
	routes := kvRoutes()
	routes["PUT /v1/auth/kubernetes/login"] = func(w http.ResponseWriter,
		r *http.Request) {
		reply(w, 200, loginAnswer("tok-"+strings.TrimPrefix(lastJWT(r), "jwt-")))
	}
	dead := func(r *http.Request) bool {
		return revoked.Load() && r.Header.Get("X-Vault-Token") == "tok-A"
	}
	routes["GET /v1/auth/token/lookup-self"] = func(w http.ResponseWriter,
		r *http.Request) {
		if dead(r) {
			reply(w, 403, map[string]any{"errors": []string{"permission denied"}})
			return
		}
		reply(w, 200, map[string]any{"data": map[string]any{"ttl": 0}})
	}
	routes[metaRoute] = func(w http.ResponseWriter, r *http.Request) {
		if dead(r) || denied.Load() {
			reply(w, 403, map[string]any{"errors": []string{"permission denied"}})
			return
		}
		reply(w, 404, map[string]any{"errors": []string{}})
	}
	f := newFake(t, routes)
	o := fakeOptions(t, f)
	jwt := writeFile(t, "jwt", "jwt-A")
	o.Auth = AuthOptions{Method: "kubernetes", Role: "keyturn", JWTFile: jwt}
	b := open(t, o)
	must(t, "List", listErr(b))

	revoked.Store(true)
	if err := os.WriteFile(jwt, []byte("jwt-B"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, "List with a revoked token", listErr(b))

	denied.Store(true)
	err := listErr(b)
	const refusal = `permission denied: the policy needs "read"`
	if err == nil || !strings.Contains(err.Error(), refusal) {
		t.Errorf("List refused by policy: got %v", err)
	}

	var got []map[string]any
	for _, c := range f.callsTo("PUT /v1/auth/kubernetes/login") {
		got = append(got, c.Body)
	}
	want := []map[string]any{{"role": "keyturn", "jwt": "jwt-A"},
		{"role": "keyturn", "jwt": "jwt-B"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logins (-want +got):\n%s", diff)
	}
}

// lastJWT returns the jwt a Kubernetes login sent.
func lastJWT(r *http.Request) string {
	var body struct{ JWT string }
	_ = json.NewDecoder(r.Body).Decode(&body)
	return body.JWT
}
