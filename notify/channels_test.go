package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/config"
)

// buildOne builds a single channel, failing the test on error.
func buildOne(t *testing.T, ch config.Channel, o Options) Notifier {
	t.Helper()
	ns, err := Build([]config.Channel{ch}, o)
	if err != nil {
		t.Fatal(err)
	}
	return ns[ch.Name]
}

// TestSlackBlockKit posts a prompt to a loopback incoming webhook and
// checks the Block Kit layout a person sees.
func TestSlackBlockKit(t *testing.T) {
	rcv := newReceiver(t, func(int) (int, string) { return 200, "ok" })
	url := rcv.URL + "/services/T0/B0/slacksecretpath"
	n := buildOne(t, config.Channel{Name: "ops", Type: "slack",
		URLFile: writeFile(t, "slack-url", url+"\n")}, Options{})

	ev := sampleEvent(KindPromptCreate)
	ev.HandoffURL = "https://keyturn.example/handoff/x"
	if err := n.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	reqs := rcv.requests()
	if len(reqs) != 1 || reqs[0].Path != "/services/T0/B0/slacksecretpath" {
		t.Fatalf("requests %+v", reqs)
	}
	var got slackMessage
	if err := json.Unmarshal(reqs[0].Body, &got); err != nil {
		t.Fatal(err)
	}
	m := Render(ev)
	if !strings.HasPrefix(got.Text, m.Title) {
		t.Errorf("fallback text %q", got.Text)
	}
	var types []string
	for _, b := range got.Blocks {
		types = append(types, b.Type)
	}
	want := []string{"header", "section", "section", "section", "section", "actions",
		"context"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("block types (-want +got):\n%s", diff)
	}
	checkSlackBlocks(t, got.Blocks, ev, m)
}

func checkSlackBlocks(t *testing.T, bs []slackBlock, ev Event, m Message) {
	t.Helper()
	if diff := cmp.Diff(&slackText{"plain_text", m.Title}, bs[0].Text); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	wantFields := []slackText{{"mrkdwn", "*App*\nfleet-prod"},
		{"mrkdwn", "*Client ID*\n`client_abc123`"}}
	if diff := cmp.Diff(wantFields, bs[2].Fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if s := bs[3].Text.Text; !strings.HasPrefix(s, "1. Open the Smartcar Dashboard") ||
		!strings.Contains(s, "\n3. Hand it to keyturn") {
		t.Errorf("steps %q", s)
	}
	cmd := "Run:\n```keyturn submit fleet-prod```"
	if diff := cmp.Diff(cmd, bs[4].Text.Text); diff != "" {
		t.Errorf("command (-want +got):\n%s", diff)
	}
	var urls []string
	for _, e := range bs[5].Elements {
		urls = append(urls, e.URL)
	}
	if diff := cmp.Diff([]string{ev.DashboardURL, ev.HandoffURL}, urls); diff != "" {
		t.Errorf("buttons (-want +got):\n%s", diff)
	}
	first := bs[6].Elements[0].Text
	if first != "Deadline: 2025-03-04 13:30 UTC (in 4h)" {
		t.Errorf("context starts with %q", first)
	}
}

// TestPagerDutyEventsV2 triggers and then resolves one incident and
// checks both bodies against the Events API v2 fields.
func TestPagerDutyEventsV2(t *testing.T) {
	rcv := newReceiver(t, func(int) (int, string) {
		return 202, `{"status":"success","dedup_key":"x"}`
	})
	n := buildOne(t, config.Channel{Name: "oncall", Type: "pagerduty",
		RoutingKeyFile: writeFile(t, "pd", "R0UTINGKEY0123456789abcdef012345\n")},
		Options{PagerDutyURL: rcv.URL})

	ev := sampleEvent(KindPage)
	ev.RotationKind = "emergency"
	ev.Detail = strings.Repeat("long detail ", 200)
	for _, resolve := range []bool{false, true} {
		ev.Resolve = resolve
		if err := n.Send(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	reqs := rcv.requests()
	if len(reqs) != 2 || reqs[0].Path != "/v2/enqueue" {
		t.Fatalf("requests %+v", reqs)
	}
	var trigger pdEvent
	if err := json.Unmarshal(reqs[0].Body, &trigger); err != nil {
		t.Fatal(err)
	}
	if len([]rune(trigger.Payload.Summary)) > 1024 {
		t.Errorf("summary has %d runes", len([]rune(trigger.Payload.Summary)))
	}
	trigger.Payload.Summary, trigger.Payload.CustomDetails = "", nil
	want := pdEvent{
		RoutingKey: "R0UTINGKEY0123456789abcdef012345", EventAction: "trigger",
		DedupKey: "keyturn/rot_7/await_new", Client: "keyturn",
		Payload: &pdPayload{Source: "keyturn", Severity: "critical",
			Timestamp: "2025-03-04T09:30:00Z", Component: "fleet-prod",
			Group: "smartcar-credentials", Class: "page"},
		Links: []pdLink{{ev.DashboardURL, "Smartcar Dashboard"}},
	}
	if diff := cmp.Diff(want, trigger); diff != "" {
		t.Errorf("trigger (-want +got):\n%s", diff)
	}
	checkPDDetails(t, reqs[0].Body)
	wantResolve := `{"routing_key":"R0UTINGKEY0123456789abcdef012345",` +
		`"event_action":"resolve","dedup_key":"keyturn/rot_7/await_new"}`
	if diff := cmp.Diff(wantResolve, string(reqs[1].Body)); diff != "" {
		t.Errorf("resolve (-want +got):\n%s", diff)
	}
}

func checkPDDetails(t *testing.T, body []byte) {
	t.Helper()
	var raw struct {
		Payload struct {
			CustomDetails struct {
				Steps        []string `json:"steps"`
				Command      string   `json:"command"`
				DashboardURL string   `json:"dashboard_url"`
				Deadline     string   `json:"deadline"`
			} `json:"custom_details"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	cd := raw.Payload.CustomDetails
	if len(cd.Steps) == 0 || cd.Command != "keyturn submit fleet-prod" ||
		!strings.HasPrefix(cd.DashboardURL, "https://dashboard.smartcar.com/") ||
		cd.Deadline != "2025-03-04T13:30:00Z" {
		t.Errorf("custom_details %+v", cd)
	}
}

func TestPagerDutyResolveNeedsDedupKey(t *testing.T) {
	n := buildOne(t, config.Channel{Name: "oncall", Type: "pagerduty",
		RoutingKeyFile: writeFile(t, "pd", "key")},
		Options{PagerDutyURL: "http://127.0.0.1:1"})
	ev := sampleEvent(KindPromptCreate)
	ev.Resolve, ev.DedupKey = true, ""
	err := n.Send(context.Background(), ev)
	if !isPermanent(err) {
		t.Fatalf("err = %v, want a permanent error", err)
	}
}

// TestWebhookSigned posts to a receiver that verifies the signature the
// documented way, then replays and tampers with what it got.
func TestWebhookSigned(t *testing.T) {
	key := []byte("whsec_0123456789")
	var verr error
	rcv := newReceiver(t, always(204))
	now := t0
	n := buildOne(t, config.Channel{Name: "hooks", Type: "webhook", URL: rcv.URL + "/in",
		SigningKeyFile: writeFile(t, "key", string(key)+"\n")},
		Options{Clock: func() time.Time { return now }})

	ev := sampleEvent(KindPromptDelete)
	if err := n.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	r := rcv.requests()[0]
	sig := r.Header.Get(SignatureHeader)
	verr = VerifySignature(key, sig, r.Body, t0.Add(30*time.Second),
		DefaultSignatureTolerance)
	if verr != nil {
		t.Fatalf("receiver refused a fresh delivery: %v", verr)
	}
	var got WebhookBody
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	ev.Severity = SeverityInfo // filled in for receivers
	want := WebhookBody{Version: 1, Event: ev, Message: Render(ev)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}

	replay := VerifySignature(key, sig, r.Body, t0.Add(time.Hour),
		DefaultSignatureTolerance)
	if !errors.Is(replay, ErrSignatureExpired) {
		t.Errorf("replay an hour later: %v, want ErrSignatureExpired", replay)
	}
	tampered := bytes.Replace(r.Body, []byte("fleet-prod"), []byte("evil-prod"), 1)
	err := VerifySignature(key, sig, tampered, t0, DefaultSignatureTolerance)
	if !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("tampered body: %v, want ErrSignatureMismatch", err)
	}
}

// TestWebhookResignsEachAttempt checks that a retry carries a fresh time,
// so a delivery retried late is not refused as a replay.
func TestWebhookResignsEachAttempt(t *testing.T) {
	rcv := newReceiver(t, always(200))
	now := t0
	n := buildOne(t, config.Channel{Name: "hooks", Type: "webhook", URL: rcv.URL,
		SigningKeyFile: writeFile(t, "key", "k")},
		Options{Clock: func() time.Time { return now }})
	for range 2 {
		if err := n.Send(context.Background(), sampleEvent(KindTest)); err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Minute)
	}
	var ts []string
	for _, r := range rcv.requests() {
		t, _, _ := strings.Cut(r.Header.Get(SignatureHeader), ",")
		ts = append(ts, t)
	}
	if diff := cmp.Diff([]string{"t=1741080600", "t=1741081200"}, ts); diff != "" {
		t.Errorf("signature times (-want +got):\n%s", diff)
	}
}

func TestLogChannel(t *testing.T) {
	var buf bytes.Buffer
	o := Options{Logger: slog.New(slog.NewJSONHandler(&buf, nil))}
	n := buildOne(t, config.Channel{Name: "log", Type: "log"}, o)
	ev := sampleEvent(KindPromptCreate)
	ev.HandoffURL = "https://keyturn.example/handoff/one-time-token"
	if err := n.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"level": "INFO", "msg": "notification",
		"channel": "log", "kind": "prompt_create", "app": "fleet-prod",
		"client_id": "client_abc123", "command": "keyturn submit fleet-prod",
		"title": Render(ev).Title} {
		if diff := cmp.Diff(want, got[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	if strings.Contains(buf.String(), "one-time-token") {
		t.Errorf("log has the hand-off link: %s", buf.String())
	}
}

// TestHTTPErrors checks the error text of failed posts: lowercase, naming
// the channel and the status, never the Slack URL's path.
func TestHTTPErrors(t *testing.T) {
	rcv := newReceiver(t, func(int) (int, string) { return 500, "upstream  broke\n" })
	dead := newReceiver(t, always(200))
	dead.Close()
	tests := []struct {
		name, url, want string
	}{
		{"status", rcv.URL + "/services/T/B/secretpath",
			`notify: slack "ops": post: 500 Internal Server Error: upstream broke`},
		{"dead port", dead.URL + "/services/T/B/secretpath",
			`notify: slack "ops": post ` + dead.URL + `: dial tcp`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := buildOne(t, config.Channel{Name: "ops", Type: "slack", URL: tt.url},
				Options{})
			err := n.Send(context.Background(), sampleEvent(KindTest))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("err = %v, want prefix %q", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "secretpath") {
				t.Errorf("error shows the URL path: %v", err)
			}
		})
	}
}
