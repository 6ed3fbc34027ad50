package rotator

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
)

// inbox is one loopback receiver standing in for Slack, PagerDuty and a
// webhook endpoint, by path.
type inbox struct {
	mu  sync.Mutex
	got map[string][]string // path → bodies
}

func (in *inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	in.mu.Lock()
	in.got[r.URL.Path] = append(in.got[r.URL.Path], string(body))
	in.mu.Unlock()
	if r.URL.Path == "/v2/enqueue" {
		w.WriteHeader(http.StatusAccepted)
	}
}

func (in *inbox) count(path, substr string) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, b := range in.got[path] {
		if strings.Contains(b, substr) {
			n++
		}
	}
	return n
}

// TestPromptsOnEveryChannel runs a rotation through the real notify
// channels: its prompt reaches Slack, the webhook, email and (on
// escalation) PagerDuty, a reminder follows, and nothing carries a secret.
func TestPromptsOnEveryChannel(t *testing.T) {
	in := &inbox{got: map[string][]string{}}
	srv := httptest.NewServer(in)
	defer srv.Close()
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	os.WriteFile(key, []byte("signing-key"), 0o600)
	os.WriteFile(filepath.Join(dir, "pd"), []byte("pd-routing-key"), 0o600)
	chs := []config.Channel{
		{Name: "slack", Type: "slack", URL: srv.URL + "/slack"},
		{Name: "hook", Type: "webhook", URL: srv.URL + "/hook", SigningKeyFile: key},
		{Name: "pager", Type: "pagerduty", RoutingKeyFile: filepath.Join(dir, "pd")},
	}
	owners := []string{"slack", "hook"}
	maildir := os.Getenv("KEYTURN_TEST_SMTP_MAILDIR")
	if addr := os.Getenv("KEYTURN_TEST_SMTP_ADDR"); addr != "" {
		host, port, _ := strings.Cut(addr, ":")
		var p int
		json.Unmarshal([]byte(port), &p)
		chs = append(chs, config.Channel{Name: "mail", Type: "email", SMTP: config.SMTP{
			Host: host, Port: p, From: "keyturn@test", To: []string{"ops@test"}, TLS: "none"}})
		owners = append(owners, "mail")
	} else if os.Getenv("CI") != "" {
		t.Fatal("KEYTURN_TEST_SMTP_ADDR is unset in CI: scripts/test starts the SMTP server")
	} else {
		t.Log("KEYTURN_TEST_SMTP_ADDR unset: the email channel is left out")
	}
	for i := range chs {
		chs[i].Retries, chs[i].Timeout = 1, config.Duration(5*time.Second)
	}
	built, err := notify.Build(chs, notify.Options{PagerDutyURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	disp := notify.NewDispatcher(built, notify.Options{PagerDutyURL: srv.URL})
	defer disp.Close()

	f := newFixture(t, func(a *config.App) {
		a.Owners, a.EscalateTo = owners, []string{"pager"}
	})
	f.eng.deps.Notify = disp
	f.eng.Rotate(ctx, "demo", "", "alice")
	f.clk.Advance(time.Hour) // remind_every
	f.eng.Tick(ctx)
	f.clk.Advance(3 * time.Hour) // escalate_after
	f.eng.Tick(ctx)
	flush, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := disp.Flush(flush); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		path, substr string
		want         int
	}{
		{"/slack", "Create a new client secret for demo", 3},
		{"/slack", "reminder", 2},
		{"/hook", `"kind":"prompt_create"`, 3},
		{"/v2/enqueue", `"event_action":"trigger"`, 1},
		{"/v2/enqueue", `"dedup_key":"` + mustActive(t, f).ID + `:await_new"`, 1},
	} {
		if got := in.count(c.path, c.substr); got != c.want {
			t.Errorf("%s bodies with %q: %d, want %d", c.path, c.substr, got, c.want)
		}
	}
	if maildir != "" {
		mails, _ := filepath.Glob(filepath.Join(maildir, "new", "*"))
		found := 0
		for _, m := range mails {
			data, _ := os.ReadFile(m)
			if strings.Contains(string(data), mustActive(t, f).ID) {
				found++
			}
		}
		if found != 3 {
			t.Errorf("mails for this rotation: %d, want 3", found)
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for path, bodies := range in.got {
		for _, b := range bodies {
			if strings.Contains(b, f.oldSec) || strings.Contains(b, "signing-key") {
				t.Errorf("%s: a body carries a secret", path)
			}
		}
	}
}

func mustActive(t *testing.T, f *fixture) *Rotation {
	t.Helper()
	r, err := f.eng.Get("demo")
	if err != nil || r == nil {
		t.Fatalf("no active rotation: %v", err)
	}
	return r
}
