package awssm

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/backends/conformance"
	"github.com/keyturn/keyturn/secret"
)

// The crash test re-runs this test binary as a child that stops at a
// crash point and waits there to be killed.
const (
	crashAtEnv     = "KEYTURN_AWSSM_CRASH_AT"
	crashSecretEnv = "KEYTURN_AWSSM_CRASH_SECRET"
	crashStepsEnv  = "KEYTURN_AWSSM_CRASH_STEPS"
	stoppedLine    = "keyturn-awssm-child: stopped at "
)

var (
	first, second, tricky = conformance.First, conformance.Second, conformance.Tricky
)

// crashSteps are what a child runs, by name; the parent runs the same
// steps again after the kill, as a restarted keyturn would.
var crashSteps = map[string]func(b *Backend) error{
	"write-tricky": func(b *Backend) error {
		return b.WritePending(ctx, "rot-1", tricky, epoch)
	},
	"write-second": func(b *Backend) error {
		return b.WritePending(ctx, "rot-1", second, epoch)
	},
	"promote-second": func(b *Backend) error {
		return b.Promote(ctx, "rot-1", second.Fingerprint())
	},
	"rollback-second": func(b *Backend) error {
		return b.Rollback(ctx, "rot-1", second.Fingerprint())
	},
}

// TestCrashChild is the child's body; it is skipped in a normal run.
func TestCrashChild(t *testing.T) {
	at := os.Getenv(crashAtEnv)
	if at == "" {
		t.Skip("runs only as the crash test's child")
	}
	stepHook = func(name string) {
		if name != at {
			return
		}
		fmt.Println(stoppedLine + name)
		// Wait for SIGKILL; stdin closes only if the parent died first.
		_, _ = os.Stdin.Read(make([]byte, 1))
		os.Exit(3)
	}
	b := open(t, testOptions(t, os.Getenv(crashSecretEnv)))
	for _, step := range strings.Fields(os.Getenv(crashStepsEnv)) {
		if err := crashSteps[step](b); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	t.Fatalf("finished without reaching crash point %q", at)
}

// runAndKill starts the child, waits until it reports the crash point and
// kills it with SIGKILL.
func runAndKill(t *testing.T, name, at string, steps []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashAtEnv+"="+at, crashSecretEnv+"="+name,
		crashStepsEnv+"="+strings.Join(steps, " "))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the child: %v", err)
	}

	stopped := make(chan string, 1)
	go func() {
		var seen strings.Builder
		for sc := bufio.NewScanner(out); sc.Scan(); {
			if strings.HasPrefix(sc.Text(), stoppedLine) {
				stopped <- ""
				return
			}
			seen.WriteString(sc.Text() + "\n")
		}
		stopped <- seen.String()
	}()
	select {
	case early := <-stopped:
		if early != "" {
			_ = cmd.Wait()
			t.Fatalf("child ended before %s:\n%s%s", at, early, stderr.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("child did not reach %s within 60 s", at)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok ||
		ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL", err)
	}
}

type listed struct {
	Stage       backends.Stage
	Fingerprint secret.Fingerprint
	RotationID  string
}

func listOf(t *testing.T, b *Backend) []listed {
	t.Helper()
	got, err := b.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []listed
	for _, s := range got {
		out = append(out, listed{s.Stage, s.Fingerprint, s.RotationID})
	}
	return out
}

// TestCrashRecovery kills keyturn with SIGKILL between two AWS calls of a
// step, then runs the same steps again in a new Backend, as a restarted
// daemon does, and checks that every label ends on exactly one version.
func TestCrashRecovery(t *testing.T) {
	promoted := []listed{{backends.StageCurrent, second.Fingerprint(), "rot-1"},
		{backends.StagePrevious, first.Fingerprint(), ""}}
	promotedLabels := map[string]int{"AWSCURRENT": 1, "AWSPREVIOUS": 1}
	tests := []struct {
		name       string
		setup      []string // run before the child, in this process
		at         string   // the crash point the child is killed at
		steps      []string // run by the child, then again after the kill
		want       []listed
		wantLabels map[string]int // how many versions carry each label
		killed     map[string]int // the same, right after the kill
	}{
		{"after PutSecretValue, before the label move", nil, "after-put",
			[]string{"write-second", "promote-second"}, promoted, promotedLabels,
			map[string]int{"AWSCURRENT": 1, "AWSPENDING": 1}},
		{"after PutSecretValue of a corrected hand-off", []string{"write-tricky"},
			"after-put", []string{"write-second", "promote-second"},
			promoted, promotedLabels, map[string]int{"AWSCURRENT": 1, "AWSPENDING": 1}},
		{"after AWSCURRENT moved, before AWSPENDING is taken off", nil,
			"after-current-move", []string{"write-second", "promote-second"},
			promoted, promotedLabels,
			map[string]int{"AWSCURRENT": 1, "AWSPENDING": 1, "AWSPREVIOUS": 1}},
		{"inside rollback, after AWSCURRENT moved back",
			[]string{"write-second", "promote-second"}, "after-rollback-move",
			[]string{"rollback-second"},
			[]listed{{backends.StageCurrent, first.Fingerprint(), ""},
				{backends.StagePending, second.Fingerprint(), "rot-1"}},
			map[string]int{"AWSCURRENT": 1, "AWSPENDING": 1},
			map[string]int{"AWSCURRENT": 1, "AWSPENDING": 1, "AWSPREVIOUS": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := uniqueName(t)
			b := open(t, testOptions(t, name))
			if err := b.Init(ctx, first, epoch); err != nil {
				t.Fatalf("Init: %v", err)
			}
			runSteps(t, b, tt.setup)
			runAndKill(t, name, tt.at, tt.steps)
			if diff := cmp.Diff(tt.killed, labelCounts(t, name)); diff != "" {
				t.Errorf("versions per label after the kill (-want +got):\n%s", diff)
			}

			restarted := open(t, testOptions(t, name))
			runSteps(t, restarted, tt.steps)
			if diff := cmp.Diff(tt.want, listOf(t, restarted)); diff != "" {
				t.Errorf("List after restart (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLabels, labelCounts(t, name)); diff != "" {
				t.Errorf("versions per label (-want +got):\n%s", diff)
			}
		})
	}
}

func runSteps(t *testing.T, b *Backend, steps []string) {
	t.Helper()
	for _, step := range steps {
		if err := crashSteps[step](b); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
}

// labelCounts returns how many versions of secret name carry each label.
func labelCounts(t *testing.T, name string) map[string]int {
	counts := map[string]int{}
	for _, labels := range labelled(t, rawClient(t), name) {
		for _, l := range labels {
			counts[l]++
		}
	}
	return counts
}
