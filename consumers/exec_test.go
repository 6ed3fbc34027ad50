package consumers

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/secret"
)

var testEvent = HookEvent{
	App: "fleet", ClientID: "client_abc", RotationID: "rot_1",
	Action:     ActionPromoted,
	CurrentFP:  secret.FingerprintOf([]byte("new-secret")),
	PreviousFP: secret.FingerprintOf([]byte("old-secret")),
	Time:       t0,
}

func execHook(name string, retries int, script string, args ...string) config.Hook {
	return config.Hook{Name: name, Type: "exec", Retries: retries,
		Timeout: config.Duration(2 * time.Second),
		Command: append([]string{"sh", "-c", script, name}, args...)}
}

func TestExecHookTries(t *testing.T) {
	tests := []struct {
		name    string
		hook    config.Hook
		wantErr string
		want    []Attempt
	}{{
		name: "ok at once",
		hook: execHook("reload", 2, "exit 0"),
		want: []Attempt{{Try: 1, Outcome: OutcomeOK}},
	}, {
		name:    "fails every try",
		hook:    execHook("reload", 2, "echo nope >&2; exit 3"),
		wantErr: `consumers: hook "reload": exit status 3 after 3 tries`,
		want: []Attempt{
			{Try: 1, Outcome: OutcomeFailed, ExitCode: 3, Error: "exit status 3"},
			{Try: 2, Outcome: OutcomeFailed, ExitCode: 3, Error: "exit status 3"},
			{Try: 3, Outcome: OutcomeFailed, ExitCode: 3, Error: "exit status 3"},
		},
	}, {
		name: "ok on the second try",
		hook: execHook("flaky", 2,
			`n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count;`+
				`[ "$n" -ge 1 ]`),
		want: []Attempt{
			{Try: 1, Outcome: OutcomeFailed, ExitCode: 1, Error: "exit status 1"},
			{Try: 2, Outcome: OutcomeOK},
		},
	}, {
		name: "program missing is not retried",
		hook: config.Hook{Name: "gone", Type: "exec", Retries: 2,
			Command: []string{"/nonexistent/reload"}},
		wantErr: `consumers: hook "gone": fork/exec /nonexistent/reload: ` +
			`no such file or directory after 1 try`,
		want: []Attempt{{Try: 1, Outcome: OutcomeError, ExitCode: -1,
			Error: "fork/exec /nonexistent/reload: no such file or directory"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newRig(t)
			tt.hook.Dir = t.TempDir()
			res, err := g.RunHooks(context.Background(), []config.Hook{tt.hook},
				testEvent)
			if got := errString(err); got != tt.wantErr {
				t.Errorf("error = %q, want %q", got, tt.wantErr)
			}
			for i := range tt.want {
				tt.want[i].Kind, tt.want[i].Name = KindHook, tt.hook.Name
			}
			if diff := cmp.Diff(tt.want, g.attempts); diff != "" {
				t.Errorf("OnAttempt (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, res[0].Attempts); diff != "" {
				t.Errorf("HookResult.Attempts (-want +got):\n%s", diff)
			}
			checkBackoff(t, g.sleeps, len(tt.want)-1)
		})
	}
}

// checkBackoff wants one wait before each retry, growing, with jitter
// inside its bounds.
func checkBackoff(t *testing.T, sleeps []time.Duration, retries int) {
	t.Helper()
	if len(sleeps) != retries {
		t.Fatalf("slept %d times, want %d", len(sleeps), retries)
	}
	for i, d := range sleeps {
		step := min(backoffBase<<i, backoffMax)
		if d < step/2 || d > step {
			t.Errorf("wait %d = %s, want within [%s, %s]", i+1, d, step/2, step)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestHooksStopAtFirstFailure(t *testing.T) {
	g := newRig(t)
	dir := t.TempDir()
	hooks := []config.Hook{
		execHook("first", 0, "exit 0"),
		execHook("second", 1, "exit 1"),
		execHook("third", 0, "touch third.ran"),
	}
	for i := range hooks {
		hooks[i].Dir = dir
	}
	res, err := g.RunHooks(context.Background(), hooks, testEvent)
	want := `consumers: hook "second": exit status 1 after 2 tries`
	if errString(err) != want {
		t.Errorf("error = %v, want %s", err, want)
	}
	var got []string
	for _, r := range res {
		got = append(got, r.Name+" "+map[bool]string{true: "ok", false: "failed"}[r.OK])
	}
	if diff := cmp.Diff([]string{"first ok", "second failed"}, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(dir, "third.ran")); err == nil {
		t.Error("the hook after the failed one ran")
	}
}

// TestExecHookEnvironment proves a hook sees only the minimal
// environment: none of the daemon's variables, no secret, stdin empty.
func TestExecHookEnvironment(t *testing.T) {
	t.Setenv("KEYTURN_TEST_CANARY", "canary-7f3a")
	t.Setenv("VAULT_TOKEN", "hvs.canary-token")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "canary-aws-key")
	t.Setenv("LANG", "C.UTF-8")
	dir := t.TempDir()
	hook := execHook("env", 0, "env > env.out; cat > stdin.out; pwd > pwd.out")
	hook.Dir = dir

	if _, err := newRig(t).RunHooks(context.Background(), []config.Hook{hook},
		testEvent); err != nil {
		t.Fatal(err)
	}
	out := readFile(t, filepath.Join(dir, "env.out"))
	for _, leak := range []string{"canary", "new-secret", "old-secret"} {
		if strings.Contains(out, leak) {
			t.Errorf("hook environment holds %q:\n%s", leak, out)
		}
	}
	got := map[string]string{}
	for line := range strings.Lines(out) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		got[k] = v
	}
	// The shell adds its own bookkeeping; everything else must be ours.
	for _, k := range []string{"PWD", "OLDPWD", "SHLVL", "_"} {
		delete(got, k)
	}
	want := map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": os.Getenv("HOME"), "LANG": "C.UTF-8",
		"KEYTURN_APP": "fleet", "KEYTURN_CLIENT_ID": "client_abc",
		"KEYTURN_ROTATION_ID": "rot_1", "KEYTURN_ACTION": "promoted",
		"KEYTURN_CURRENT_FP":  string(testEvent.CurrentFP),
		"KEYTURN_PREVIOUS_FP": string(testEvent.PreviousFP),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hook environment (-want +got):\n%s", diff)
	}
	if s := readFile(t, filepath.Join(dir, "stdin.out")); s != "" {
		t.Errorf("stdin gave %q, want nothing (/dev/null)", s)
	}
	if s := strings.TrimSpace(readFile(t, filepath.Join(dir, "pwd.out"))); s != dir {
		t.Errorf("working directory %q, want %q", s, dir)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestHungHookKilledWithChildren runs a hook that hangs with a child of
// its own, and wants both dead at the hook's timeout.
func TestHungHookKilledWithChildren(t *testing.T) {
	dir := t.TempDir()
	hook := execHook("hang", 0,
		`sleep 60 & echo $! > child.pid; echo $$ > pgid; sleep 60`)
	hook.Dir, hook.Timeout = dir, config.Duration(500*time.Millisecond)

	start := time.Now()
	_, err := newRig(t).RunHooks(context.Background(), []config.Hook{hook}, testEvent)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("hook ran %s, want it killed near its 500ms timeout", took)
	}
	want := `consumers: hook "hang": killed at its 500ms timeout after 1 try`
	if errString(err) != want {
		t.Errorf("error = %v, want %s", err, want)
	}
	pgid := readInt(t, filepath.Join(dir, "pgid"))
	child := readInt(t, filepath.Join(dir, "child.pid"))
	t.Cleanup(func() { killGroup(pgid) })
	waitFor(t, "the hook's process group to die", 2*time.Second, func() bool {
		return len(liveInGroup(t, pgid)) == 0
	})
	for _, pid := range liveInGroup(t, pgid) {
		t.Errorf("process %d of the hook's group survived", pid)
	}
	if child == pgid {
		t.Fatal("the child is the shell itself; the test proves nothing")
	}
}

// TestHookOutputLoggedCapped wants a failing hook's output in the log,
// cut to 2 KiB, and never in the Attempt.
func TestHookOutputLoggedCapped(t *testing.T) {
	g := newRig(t)
	hook := execHook("loud", 0,
		`echo start-marker; head -c 10000 /dev/zero | tr '\0' x; exit 1`)
	_, _ = g.RunHooks(context.Background(), []config.Hook{hook}, testEvent)

	var output string
	for line := range strings.Lines(g.logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["msg"] == "consumer hook try" {
			output, _ = rec[logOutput].(string)
		}
	}
	if !strings.HasPrefix(output, "start-marker\n") {
		t.Errorf("log output starts %.40q, want the hook's output", output)
	}
	kept, note, _ := strings.Cut(output, "\n[")
	if len(kept) != maxOutput || note != "7965 more bytes not kept]" {
		t.Errorf("kept %d bytes and noted %q, want %d and the rest counted",
			len(kept), note, maxOutput)
	}
	if diff := cmp.Diff([]Attempt{{Kind: KindHook, Name: "loud", Try: 1,
		Outcome: OutcomeFailed, ExitCode: 1, Error: "exit status 1"}}, g.attempts,
		cmpopts.IgnoreFields(Attempt{}, "Duration")); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
}

// TestHookMayLeaveProcessRunning: a hook that starts a service in the
// background and exits 0 succeeds, and the service is left alone.
func TestHookMayLeaveProcessRunning(t *testing.T) {
	dir := t.TempDir()
	hook := execHook("restart", 0, `sleep 30 & echo $! > bg.pid`)
	hook.Dir = dir

	start := time.Now()
	if _, err := newRig(t).RunHooks(context.Background(), []config.Hook{hook},
		testEvent); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("hook took %s; the background process held it up", took)
	}
	bg := readInt(t, filepath.Join(dir, "bg.pid"))
	t.Cleanup(func() { _ = syscall.Kill(bg, syscall.SIGKILL) })
	if err := syscall.Kill(bg, 0); err != nil {
		t.Errorf("the hook's background process is gone: %v", err)
	}
}
