package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/secret"
)

// TestEventHoldsNoSecretValue walks Event's type: no field, however deep,
// may hold a secret.Value, or an interface that could.
func TestEventHoldsNoSecretValue(t *testing.T) {
	valueType := reflect.TypeFor[secret.Value]()
	seen := map[reflect.Type]bool{}
	var walk func(tp reflect.Type, path string)
	walk = func(tp reflect.Type, path string) {
		if seen[tp] {
			return
		}
		seen[tp] = true
		switch tp.Kind() {
		case reflect.Interface:
			t.Errorf("%s is an interface and could hold a secret.Value", path)
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			walk(tp.Elem(), path+"[]")
		case reflect.Struct:
			if tp == valueType {
				t.Errorf("%s is a secret.Value", path)
				return
			}
			for f := range tp.Fields() {
				walk(f.Type, path+"."+f.Name)
			}
		}
	}
	walk(reflect.TypeFor[Event](), "Event")
}

// The canaries are the channels' credentials. None may appear in a
// message, an error, an attempt or a log line.
const (
	canarySlackPath = "/services/TCANARY/BCANARY/canary-slack-path-0001"
	canarySignKey   = "canary-webhook-signing-key-0002"
	canaryQuery     = "canary-webhook-query-token-0003"
	canaryRouting   = "canaryroutingkey0004"
	canaryPassword  = "canary-smtp-password-0005"
)

var canaries = []string{canarySlackPath, canarySignKey, canaryQuery, canaryRouting,
	canaryPassword, "canary-slack-path-0001"}

// echoCanaries is what a careless receiver answers, with a 500 so that
// the error text carries it: every credential, even other channels'.
var echoCanaries = strings.Join(canaries, " ")

// TestCredentialsNeverLeak sends every kind of event through every
// channel twice: once to working receivers, once to receivers that fail
// and echo the credentials back. The credentials may appear only where
// they belong (the Slack request path, PagerDuty's routing_key, SMTP
// AUTH); never in bodies, errors, attempts or logs.
func TestCredentialsNeverLeak(t *testing.T) {
	for _, failing := range []bool{false, true} {
		status := always(200)
		if failing {
			status = func(int) (int, string) { return 500, echoCanaries }
		}
		slack, hook := newReceiver(t, status), newReceiver(t, status)
		pd := newReceiver(t, func(n int) (int, string) {
			if c, s := status(n); c != 200 {
				return c, s
			}
			return 202, ""
		})
		smtpSrv := startSMTP(t, "starttls")
		var logs bytes.Buffer
		var rec attempts
		o := Options{
			Logger: slog.New(slog.NewJSONHandler(&logs,
				&slog.HandlerOptions{Level: slog.LevelDebug})),
			Clock: fixedClock, Backoff: zeroBackoff, Sleep: noSleep, OnAttempt: rec.add,
			PagerDutyURL: pd.URL,
			TLSConfig:    &tls.Config{RootCAs: smtpSrv.Pool, ServerName: "127.0.0.1"},
		}
		sendEveryKind(t, canaryChannels(t, slack.URL, hook.URL, smtpSrv, failing), o)

		var texts []string
		for _, r := range append(slack.requests(), hook.requests()...) {
			texts = append(texts, string(r.Body), headerText(r))
		}
		texts = append(texts, pdBodies(t, pd.requests(), failing)...)
		for _, m := range smtpSrv.messages() {
			texts = append(texts, string(m.Data))
		}
		for _, a := range rec.byChannel() {
			texts = append(texts, a.Err)
		}
		assertNoCanary(t, failing, append(texts, logs.String()))
		if n := len(rec.byChannel()); n < 5*2*len(allKinds) {
			t.Errorf("only %d attempts recorded", n)
		}
	}
}

// sendEveryKind sends each kind, as a prompt and as a resolve, to every
// channel in chs.
func sendEveryKind(t *testing.T, chs []config.Channel, o Options) {
	t.Helper()
	ns, err := Build(chs, o)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDispatcher(ns, o)
	var names []string
	for _, ch := range chs {
		names = append(names, ch.Name)
	}
	for _, k := range allKinds {
		for _, resolve := range []bool{false, true} {
			ev := sampleEvent(k)
			ev.Resolve, ev.Channel, ev.Detail = resolve, "hook", "detail"
			d.Send(context.Background(), names, ev)
		}
	}
	flush(t, d)
}

func canaryChannels(t *testing.T, slackURL, hookURL string, srv *smtpServer,
	failing bool) []config.Channel {
	mail := config.Channel{Name: "mail", Type: "email", SMTP: config.SMTP{
		Host: srv.Host, Port: srv.Port, Username: smtpUser,
		PasswordFile: writeFile(t, "pw", canaryPassword),
		From:         "keyturn@example.com", To: []string{"ops@example.com"}}}
	if failing {
		mail.SMTP.Port = 1 // nothing listens there
	}
	return []config.Channel{
		{Name: "slack", Type: "slack",
			URLFile: writeFile(t, "slack", slackURL+canarySlackPath)},
		{Name: "hook", Type: "webhook", URL: hookURL + "/in?token=" + canaryQuery,
			SigningKeyFile: writeFile(t, "sign", canarySignKey)},
		{Name: "pd", Type: "pagerduty",
			RoutingKeyFile: writeFile(t, "pd", canaryRouting)},
		mail,
		{Name: "log", Type: "log"},
	}
}

// pdBodies returns PagerDuty bodies with routing_key, the one field that
// must hold the key, checked and removed.
func pdBodies(t *testing.T, reqs []request, failing bool) []string {
	t.Helper()
	var out []string
	for _, r := range reqs {
		var m map[string]any
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatal(err)
		}
		if m["routing_key"] != canaryRouting {
			t.Errorf("routing_key = %v", m["routing_key"])
		}
		delete(m, "routing_key")
		b, _ := json.Marshal(m)
		out = append(out, string(b), headerText(r))
	}
	if len(reqs) == 0 && !failing {
		t.Error("PagerDuty got nothing")
	}
	return out
}

func headerText(r request) string {
	var b strings.Builder
	for k, vs := range r.Header {
		b.WriteString(k + ": " + strings.Join(vs, ", ") + "\n")
	}
	return b.String()
}

func assertNoCanary(t *testing.T, failing bool, texts []string) {
	t.Helper()
	for _, s := range texts {
		for _, c := range canaries {
			if strings.Contains(s, c) {
				t.Errorf("failing=%v: credential %q leaked into:\n%s", failing, c,
					oneLine(s, 600))
			}
		}
	}
}
