package emulator

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAtMostThreeSecrets(t *testing.T) {
	e, _ := start(t)
	u := e.URL() + "/v1/apps/app1/secrets"
	var got []int
	for range 4 {
		got = append(got, do(t, formRequest(t, "POST", u, nil)).Status)
	}
	want := []int{201, 201, 201, 409}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}

	a := do(t, formRequest(t, "POST", u, nil))
	desc, _ := a.Body["error_description"].(string)
	if a.Body["error"] != "too_many_secrets" ||
		!strings.Contains(desc, "delete one first") {
		t.Errorf("409 body = %s", a.Raw)
	}
	if _, _, _, err := e.CreateSecret("app1"); !errors.Is(err, ErrTooManySecrets) {
		t.Errorf("CreateSecret = %v, want ErrTooManySecrets", err)
	}
	if _, _, _, err := e.CreateSecret("app2"); err != nil {
		t.Errorf("another app is limited separately: %v", err)
	}
}

func TestSecretShownOnce(t *testing.T) {
	e, clock := start(t)
	u := e.URL() + "/v1/apps/app1/secrets"
	created := do(t, formRequest(t, "POST", u, nil))
	sec, _ := created.Body["secret"].(string)
	if len(sec) < 40 {
		t.Fatalf("secret %q is too short to be high entropy", sec)
	}
	if got := created.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}

	list := do(t, formRequest(t, "GET", u, nil))
	if strings.Contains(list.Raw, sec) || strings.Contains(list.Raw, `"secret"`) {
		t.Errorf("list shows a value: %s", list.Raw)
	}
	want := []SecretInfo{{ID: created.Body["id"].(string), CreatedAt: clock.Now(),
		Last4: sec[len(sec)-4:]}}
	if diff := cmp.Diff(want, e.Secrets("app1")); diff != "" {
		t.Errorf("Secrets (-want +got):\n%s", diff)
	}
	wantJSON := `[{"id":"` + want[0].ID + `","created_at":"2030-01-02T03:04:05Z",` +
		`"last4":"` + want[0].Last4 + `"}]` + "\n"
	if list.Raw != wantJSON {
		t.Errorf("list = %s, want %s", list.Raw, wantJSON)
	}
}

func TestSecretsDiffer(t *testing.T) {
	e := New()
	id1, s1 := mustCreate(t, e, "a")
	id2, s2 := mustCreate(t, e, "a")
	if id1 == id2 || s1 == s2 {
		t.Errorf("two secrets share an id or value")
	}
}

func TestDeleteSecret(t *testing.T) {
	e, clock := start(t)
	id1, _ := mustCreate(t, e, "app1")
	clock.Advance(time.Minute)
	id2, _ := mustCreate(t, e, "app1")
	base := e.URL() + "/v1/apps/app1/secrets/"

	tests := []struct {
		path string
		want int
	}{
		{base + id1, http.StatusNoContent},
		{base + id1, http.StatusNotFound},
		{base + "nope", http.StatusNotFound},
		{e.URL() + "/v1/apps/other/secrets/" + id2, http.StatusNotFound},
	}
	for _, tc := range tests {
		if got := do(t, formRequest(t, "DELETE", tc.path, nil)).Status; got != tc.want {
			t.Errorf("DELETE %s = %d, want %d", tc.path, got, tc.want)
		}
	}
	var got []string
	for _, s := range e.Secrets("app1") {
		got = append(got, s.ID)
	}
	if diff := cmp.Diff([]string{id2}, got); diff != "" {
		t.Errorf("secrets left (-want +got):\n%s", diff)
	}
	if err := e.DeleteSecret("app1", id1); !errors.Is(err, ErrNoSecret) {
		t.Errorf("DeleteSecret twice = %v, want ErrNoSecret", err)
	}
}

func TestListUnknownAppIsEmpty(t *testing.T) {
	e, _ := start(t)
	a := do(t, formRequest(t, "GET", e.URL()+"/v1/apps/ghost/secrets", nil))
	if a.Status != 200 || a.Raw != "[]\n" {
		t.Errorf("GET = %d %q, want 200 []", a.Status, a.Raw)
	}
}

func TestImportSecret(t *testing.T) {
	e, _ := start(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for range 2 { // the second import is a no-op
		if err := e.ImportSecret("app1", "imported-secret-value", at); err != nil {
			t.Fatal(err)
		}
	}
	got := e.Secrets("app1")
	if len(got) != 1 || !got[0].CreatedAt.Equal(at) || got[0].Last4 != "alue" {
		t.Fatalf("Secrets after import = %+v", got)
	}
	if err := e.ImportSecret("app1", "abc", at); err == nil {
		t.Error("a 3-character secret was imported")
	}
}
