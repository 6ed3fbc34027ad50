package notify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/config"
)

// TestBuildErrors checks that a bad channel is refused at start-up with
// an error naming the channel and the file, and never a credential.
func TestBuildErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	notURL := writeFile(t, "slack-url", "xoxb-not-a-url-secretvalue\n")
	empty := writeFile(t, "empty", "\n")
	tests := []struct {
		name string
		ch   config.Channel
		want string
	}{
		{"missing routing key file",
			config.Channel{Name: "oncall", Type: "pagerduty", RoutingKeyFile: missing},
			`notify: pagerduty "oncall": read routing_key_file: open ` + missing +
				`: no such file or directory`},
		{"empty routing key file",
			config.Channel{Name: "oncall", Type: "pagerduty", RoutingKeyFile: empty},
			`notify: pagerduty "oncall": routing_key_file ` + empty + ` is empty`},
		{"slack url_file not a URL",
			config.Channel{Name: "ops", Type: "slack", URLFile: notURL},
			`notify: slack "ops": url_file ` + notURL + `: not an http(s) URL`},
		{"slack without url",
			config.Channel{Name: "ops", Type: "slack"},
			`notify: slack "ops": url or url_file missing`},
		{"unsigned webhook",
			config.Channel{Name: "hooks", Type: "webhook", URL: "https://h.example/in"},
			`notify: webhook "hooks": signing_key_file missing: receivers verify ` +
				`X-Keyturn-Signature with it`},
		{"missing smtp password file",
			config.Channel{Name: "mail", Type: "email", SMTP: config.SMTP{
				Host: "smtp.example", Username: "u", PasswordFile: missing}},
			`notify: email "mail": read smtp.password_file: open ` + missing},
		{"password without TLS",
			config.Channel{Name: "mail", Type: "email", SMTP: config.SMTP{
				Host: "smtp.example", Username: "u", TLS: "none"}},
			`notify: email "mail": smtp.username needs tls starttls or tls`},
		{"unknown type",
			config.Channel{Name: "x", Type: "carrier-pigeon"},
			`notify: carrier-pigeon "x": unknown channel type`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build([]config.Channel{tt.ch}, Options{})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant prefix %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "secretvalue") {
				t.Errorf("error shows the file's content: %v", err)
			}
		})
	}
}

// TestBuildAll builds one channel of each type and reports every broken
// one, not just the first.
func TestBuildAll(t *testing.T) {
	chs := []config.Channel{
		{Name: "ops", Type: "slack",
			URLFile: writeFile(t, "u", "https://hooks.example/x")},
		{Name: "hooks", Type: "webhook", URL: "https://h.example/in",
			SigningKeyFile: writeFile(t, "k", "key\r\n")},
		{Name: "oncall", Type: "pagerduty", RoutingKeyFile: writeFile(t, "r", "rk")},
		{Name: "mail", Type: "email", SMTP: config.SMTP{Host: "smtp.example",
			From: "a@example.com", To: []string{"b@example.com"}}},
		{Name: "log", Type: "log"},
		{Name: "bad1", Type: "pagerduty"},
		{Name: "log", Type: "log"},
	}
	ns, err := Build(chs, Options{})
	if len(ns) != 5 {
		t.Errorf("built %d channels, want 5", len(ns))
	}
	for _, want := range []string{`"bad1": routing_key_file missing`,
		`log "log": name used twice`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %s", err, want)
		}
	}
	if k := ns["hooks"].(*webhook).key; string(k) != "key" {
		t.Errorf("signing key %q: trailing newline not trimmed", k)
	}
	for name, n := range ns {
		if tu, ok := n.(Tuned); !ok || tu.Retries() != 3 || tu.Timeout() <= 0 {
			t.Errorf("%s: limits not set", name)
		}
	}
}

func TestReadCredentialWarnsOnLooseMode(t *testing.T) {
	p := writeFile(t, "k", "key")
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	log := slogTo(&logs)
	if _, err := readCredential("signing_key_file", p, log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "readable by others") {
		t.Errorf("no warning: %q", logs.String())
	}
}
