package consumers

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
)

// receiver is a hook endpoint that verifies every request's signature
// and answers the statuses it is given, in order, then 200.
type receiver struct {
	t        *testing.T
	key      []byte
	now      func() time.Time
	mu       sync.Mutex
	statuses []int
	events   []HookEvent
	badSigs  int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		rc.t.Error(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	err = notify.VerifySignature(rc.key, r.Header.Get(notify.SignatureHeader), body,
		rc.now(), notify.DefaultSignatureTolerance)
	if err != nil {
		rc.badSigs++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev HookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.t.Errorf("body is not a HookEvent: %v", err)
	}
	rc.events = append(rc.events, ev)
	status := http.StatusOK
	if len(rc.statuses) > 0 {
		status, rc.statuses = rc.statuses[0], rc.statuses[1:]
	}
	w.WriteHeader(status)
}

func TestHTTPHook(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		keyOnDisk string // the receiver's key is always "hook-key"
		wantErr   string
		want      []int // HTTPStatus of each attempt
	}{
		{name: "accepted", statuses: []int{204}, want: []int{204}},
		{name: "retried until accepted", statuses: []int{503, 429, 202},
			want: []int{503, 429, 202}},
		{name: "refused is final", statuses: []int{400},
			wantErr: `consumers: hook "notify-app": 400 Bad Request after 1 try`,
			want:    []int{400}},
		{name: "server errors use up the tries", statuses: []int{500, 502, 500},
			wantErr: `consumers: hook "notify-app": 500 Internal Server Error ` +
				`after 3 tries`,
			want: []int{500, 502, 500}},
		{name: "wrong key", keyOnDisk: "other-key",
			wantErr: `consumers: hook "notify-app": 401 Unauthorized after 1 try`,
			want:    []int{401}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t)
			rc := &receiver{t: t, key: []byte("hook-key"), now: g.clockNow,
				statuses: tt.statuses}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			hook := httpHook(t, srv.URL, orString(tt.keyOnDisk, "hook-key")+"\n")

			_, err := g.RunHooks(context.Background(), []config.Hook{hook}, testEvent)
			if got := errString(err); got != tt.wantErr {
				t.Errorf("error = %q, want %q", got, tt.wantErr)
			}
			var got []int
			for _, a := range g.attempts {
				got = append(got, a.HTTPStatus)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("attempt statuses (-want +got):\n%s", diff)
			}
			checkBackoff(t, g.sleeps, len(tt.want)-1)
			for _, ev := range rc.events {
				if diff := cmp.Diff(testEvent, ev); diff != "" {
					t.Errorf("event received (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func httpHook(t *testing.T, url, key string) config.Hook {
	keyFile := filepath.Join(t.TempDir(), "hook.key")
	if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Hook{Name: "notify-app", Type: "http", URL: url,
		SigningKeyFile: keyFile, Retries: 2, Timeout: config.Duration(2 * time.Second)}
}

// TestHTTPHookBody pins the JSON a receiver gets: the event's fields
// and nothing else.
func TestHTTPHookBody(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter,
		r *http.Request) {
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			t.Error(err)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
	}))
	defer srv.Close()
	hook := httpHook(t, srv.URL, "k")
	if _, err := newRig(t).RunHooks(context.Background(), []config.Hook{hook},
		testEvent); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"app": "fleet", "client_id": "client_abc", "rotation_id": "rot_1",
		"action": "promoted", "current_fp": string(testEvent.CurrentFP),
		"previous_fp": string(testEvent.PreviousFP), "time": "2026-03-02T10:00:00Z",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestHTTPHookRefusedBeforeSending(t *testing.T) {
	tests := []struct {
		name    string
		hook    config.Hook
		wantErr string
	}{{
		name: "plain http to a remote host",
		hook: config.Hook{Name: "h", Type: "http", SigningKeyFile: "/dev/null",
			URL: "http://hooks.example.com/reload?token=abc"},
		wantErr: `consumers: hook "h": refusing url http://hooks.example.com/reload: ` +
			`plain http to a remote host; use https`,
	}, {
		name:    "no signing key",
		hook:    config.Hook{Name: "h", Type: "http", URL: "https://hooks.example.com/"},
		wantErr: `consumers: hook "h": signing_key_file missing`,
	}, {
		name: "empty signing key",
		hook: config.Hook{Name: "h", Type: "http", URL: "https://hooks.example.com/",
			SigningKeyFile: "/dev/null"},
		wantErr: `consumers: hook "h": signing_key_file /dev/null is empty`,
	}, {
		name:    "unknown type",
		hook:    config.Hook{Name: "h", Type: "ftp"},
		wantErr: `consumers: hook "h": unknown type "ftp"`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.hook.Retries = 3
			g := newRig(t)
			_, err := g.RunHooks(context.Background(), []config.Hook{tt.hook}, testEvent)
			if got := errString(err); got != tt.wantErr {
				t.Errorf("error = %q\nwant    %q", got, tt.wantErr)
			}
			if len(g.attempts) != 0 || len(g.sleeps) != 0 {
				t.Errorf("made %d tries of a hook that cannot run", len(g.attempts))
			}
		})
	}
}
