package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

const minimal = `
state_dir: /tmp/kt
apps:
  - name: demo
    client_id: client_1
    backend: {type: env}
`

func TestParseMinimalFillsDefaults(t *testing.T) {
	c, err := Parse("/etc/keyturn/keyturn.yaml", []byte(minimal), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	got := []string{c.Socket, c.Audit.Dir, a.Backend.File, a.Schedule, a.Timezone,
		a.Policy.MaxAge.String(), a.Consumers.Mode, c.Listen}
	want := []string{"/tmp/kt/keyturn.sock", "/tmp/kt/audit", "/tmp/kt/demo.env",
		DefaultSchedule, "UTC", "90d", "broker", DefaultListen}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // each a substring of one problem, in order
	}{
		{"unknown key with hint", minimal + "    polcy: {max_age: 30d}\n", nil,
			[]string{`7:5: apps[0].polcy: unknown key; did you mean "policy"?`}},
		{"bad duration", minimal + "    policy: {max_age: 9x}\n", nil,
			[]string{`7:23: apps[0].policy.max_age: "9x" is not a duration`}},
		{"unset variable", strings.Replace(minimal, "client_1", "$CID", 1), nil,
			[]string{"5:16: apps[0].client_id: environment variable CID is not set"}},
		{"many at once", `
listen: nowhere
apps:
  - name: Demo!
    client_id: ""
    backend: {type: s3}
    schedule: "61 * * * *"
    timezone: Mars/Olympus
    owners: [pager]
`, nil, []string{
			`2:9: listen: "nowhere" is not host:port`,
			`4:11: apps[0].name: "Demo!" is not a usable name`,
			`apps[0].client_id: missing`,
			`6:21: apps[0].backend.type: "s3" is not a backend`,
			`7:15: apps[0].schedule:`,
			`8:15: apps[0].timezone: "Mars/Olympus" is not a known time zone`,
			`9:14: apps[0].owners[0]: no notify channel is named "pager"`,
		}},
		{"syntax", "apps: [\n", nil, []string{"1: did not find expected node content"}},
		{"clear-text listener", "listen: 0.0.0.0:9271\n" + minimal, nil,
			[]string{"1:9: listen: 0.0.0.0:9271 is not loopback and tls is not set"}},
		{"webhook path never printed", minimal[:len(minimal)-len(
			"    backend: {type: env}\n")] + "    backend: {type: env}\n" +
			"notify:\n  - {name: s, type: slack, url: \"http://hooks.slack.com/T0/B0/SECRETPATH\"}\n",
			nil, []string{"http://hooks.slack.com/… is plain http to a remote host"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("k.yaml", []byte(tt.yaml), env(tt.env))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *config.Error", err)
			}
			if len(ce.Problems) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ce.Problems), len(tt.want), err)
			}
			if strings.Contains(err.Error(), "SECRETPATH") {
				t.Errorf("a URL's path reached the error: %v", err)
			}
			for i, w := range tt.want {
				if got := ce.Problems[i].String(); !strings.Contains(got, w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got, w)
				}
			}
		})
	}
}

func TestExpandAndEscape(t *testing.T) {
	y := strings.Replace(minimal, "client_1", "${CID}-x", 1) +
		"    dashboard_url: 'https://d/$literal'\n" +
		"    prompts: {quiet_hours: \"22:00-07:00\"}\n" +
		"    consumers:\n      hooks:\n        - type: exec\n          command:\n" +
		"            - /bin/sh\n            - |\n              echo $HOME\n"
	c, err := Parse("k.yaml", []byte(y), env(map[string]string{"CID": "client_9"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Apps[0].ClientID; got != "client_9-x" {
		t.Errorf("client_id = %q", got)
	}
	if got := c.Apps[0].DashboardURL; got != "https://d/$literal" {
		t.Errorf("single-quoted value was expanded: %q", got)
	}
	if got := c.Apps[0].Consumers.Hooks[0].Command[1]; got != "echo $HOME\n" {
		t.Errorf("block scalar was expanded: %q", got)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"10m", 10 * time.Minute, true},
		{"1.5h", 90 * time.Minute, true},
		{"d", 0, false},
		{"-3d", 0, false},
		{"", 0, false},
		{"5x", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got.D() != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", tt.in, got.D(), err,
				tt.want, tt.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte("apps: [{name: a, backend: {type: vault}}]"))
	f.Add([]byte("a: &x 1\nb: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data, env(nil))
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
	})
}
