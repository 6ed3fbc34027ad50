package consumers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/config"
)

// statusServer answers the statuses it is given, in order, then 200.
func statusServer(t *testing.T, statuses ...int) string {
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter,
		_ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		status := http.StatusOK
		if len(statuses) > 0 {
			status, statuses = statuses[0], statuses[1:]
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/healthz"
}

// checks builds the Runs a gate with a 5s interval records, from the
// details of its checks in order.
func checks(details ...string) []Check {
	var cs []Check
	for i, d := range details {
		ok := d == "200 OK" || d == "204 No Content" || d == "exit status 0"
		cs = append(cs, Check{At: t0.Add(time.Duration(i) * 5 * time.Second),
			OK: ok, Detail: d})
	}
	return cs
}

const (
	ok200  = "200 OK"
	bad503 = "503 Service Unavailable"
)

func TestGateURL(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		want     GateResult
	}{
		{name: "three in a row", want: GateResult{Passed: true,
			Runs: checks(ok200, ok200, ok200)}},
		{name: "a failure restarts the count", statuses: []int{200, 503},
			want: GateResult{Passed: true,
				Runs: checks(ok200, bad503, ok200, ok200, ok200)}},
		{name: "never healthy stops when three in a row cannot happen",
			statuses: []int{503, 503, 503, 503, 503, 503, 503},
			want:     GateResult{Runs: checks(bad503, bad503, bad503, bad503)}},
		{name: "recovers by the last check allowed",
			statuses: []int{200, 200, 503},
			want: GateResult{Passed: true,
				Runs: checks(ok200, ok200, bad503, ok200, ok200, ok200)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t)
			gate := config.Gate{URL: statusServer(t, tt.statuses...), Successes: 3,
				Interval: config.Duration(5 * time.Second),
				Timeout:  config.Duration(time.Second)}
			got, err := g.RunGate(context.Background(), gate)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("RunGate (-want +got):\n%s", diff)
			}
			if len(g.attempts) != len(got.Runs) {
				t.Errorf("%d attempts reported for %d checks", len(g.attempts),
					len(got.Runs))
			}
		})
	}
}

func TestGateCommand(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		script string
		want   GateResult
	}{
		{name: "exits 0", script: "exit 0",
			want: GateResult{Passed: true,
				Runs: checks("exit status 0", "exit status 0")}},
		{name: "exits 1", script: "exit 1",
			want: GateResult{Runs: checks("exit status 1", "exit status 1",
				"exit status 1", "exit status 1")}},
		{name: "fails once, then passes",
			script: `[ -e ` + dir + `/seen ] || { touch ` + dir + `/seen; exit 1; }`,
			want: GateResult{Passed: true,
				Runs: checks("exit status 1", "exit status 0", "exit status 0")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t)
			gate := config.Gate{Command: []string{"sh", "-c", tt.script},
				Successes: 2, Interval: config.Duration(5 * time.Second)}
			got, err := g.RunGate(context.Background(), gate)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("RunGate (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGateCommandTimeout(t *testing.T) {
	g := newRig(t)
	gate := config.Gate{Command: []string{"sleep", "10"}, Successes: 1,
		Timeout: config.Duration(200 * time.Millisecond)}
	got, err := g.RunGate(context.Background(), gate)
	if err != nil {
		t.Fatal(err)
	}
	d := "killed at its 200ms timeout"
	want := GateResult{Runs: []Check{{At: t0, Detail: d}, {At: t0, Detail: d},
		{At: t0, Detail: d}, {At: t0, Detail: d}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RunGate (-want +got):\n%s", diff)
	}
	if a := g.attempts[0]; a.Outcome != OutcomeTimeout || a.ExitCode != -1 {
		t.Errorf("attempt = %+v, want a timeout with exit code -1", a)
	}
}

func TestGateRefused(t *testing.T) {
	tests := []struct {
		name    string
		gate    config.Gate
		wantErr string
	}{{
		name: "plain http to a remote host",
		gate: config.Gate{URL: "http://app.internal:8080/healthz?key=k"},
		wantErr: "consumers: gate: refusing url http://app.internal:8080/healthz: " +
			"plain http to a remote host; use https, or set allow_insecure_url",
	}, {
		name:    "not a URL",
		gate:    config.Gate{URL: "app.internal/healthz"},
		wantErr: "consumers: gate: url is not an http(s) URL",
	}, {
		name:    "nothing to check",
		gate:    config.Gate{Successes: 3},
		wantErr: "consumers: gate: no url or command",
	}, {
		name: "both url and command",
		gate: config.Gate{URL: "https://app.example.com/healthz",
			Command: []string{"true"}},
		wantErr: "consumers: gate: set either url or command, not both",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t)
			got, err := g.RunGate(context.Background(), tt.gate)
			if errString(err) != tt.wantErr {
				t.Errorf("error = %v\nwant    %s", err, tt.wantErr)
			}
			if len(got.Runs) != 0 || len(g.attempts) != 0 {
				t.Errorf("a refused gate ran %d checks", len(got.Runs))
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url        string
		insecureOK bool
		ok         bool
	}{
		{"https://app.example.com/healthz", false, true},
		{"http://127.0.0.1:8080/healthz", false, true},
		{"http://[::1]:8080/healthz", false, true},
		{"http://localhost/healthz", false, true},
		{"http://app.internal/healthz", false, false},
		{"http://app.internal/healthz", true, true},
		{"http://10.0.0.5/healthz", false, false},
		{"ftp://127.0.0.1/x", true, false},
	}
	for _, tt := range tests {
		_, err := checkURL(tt.url, tt.insecureOK, "hint")
		if (err == nil) != tt.ok {
			t.Errorf("checkURL(%q, %v) = %v, want ok=%v", tt.url, tt.insecureOK,
				err, tt.ok)
		}
	}
}

func TestGateStopsWithContext(t *testing.T) {
	g := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gate := config.Gate{URL: statusServer(t, 503), Successes: 3}
	got, err := g.RunGate(ctx, gate)
	if err == nil || len(got.Runs) > 1 {
		t.Errorf("RunGate on a cancelled context = %+v, %v; want an error "+
			"and at most one check", got, err)
	}
}
