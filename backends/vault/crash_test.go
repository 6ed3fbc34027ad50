package vault

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
)

// The crash test re-runs this test binary as a child that stops at a
// crash point and waits there to be killed.
const (
	crashAtEnv    = "KEYTURN_VAULT_CRASH_AT"
	crashPathEnv  = "KEYTURN_VAULT_CRASH_PATH"
	crashStepsEnv = "KEYTURN_VAULT_CRASH_STEPS"
	stoppedLine   = "keyturn-vault-child: stopped at "
)

// crashSteps are what a child runs, by name; the parent runs the same
// steps again after the kill, as a restarted keyturn would.
var crashSteps = map[string]func(b *Backend) error{
	"init-first": func(b *Backend) error { return b.Init(ctx, first, epoch) },
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
	"remove-first": func(b *Backend) error {
		return b.RemovePrevious(ctx, first.Fingerprint())
	},
}

// TestCrashChild is the child's body; it is skipped in a normal run.
func TestCrashChild(t *testing.T) {
	at := os.Getenv(crashAtEnv)
	if at == "" {
		t.Skip("runs only as the crash test's child")
	}
	b := open(t, testOptions(t, os.Getenv(crashPathEnv)))
	b.hook = func(name string) {
		if name != at {
			return
		}
		fmt.Println(stoppedLine + name)
		// Wait for SIGKILL; stdin closes only if the parent died first.
		_, _ = os.Stdin.Read(make([]byte, 1))
		os.Exit(3)
	}
	runSteps(t, b, strings.Fields(os.Getenv(crashStepsEnv)))
	t.Fatalf("finished without reaching crash point %q", at)
}

func runSteps(t *testing.T, b *Backend, steps []string) {
	t.Helper()
	for _, step := range steps {
		if err := crashSteps[step](b); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
}

var (
	cur2 = listed{backends.StageCurrent, second.Fingerprint(), "rot-1"}
	cur1 = listed{backends.StageCurrent, first.Fingerprint(), ""}
	prv1 = listed{backends.StagePrevious, first.Fingerprint(), ""}
	pnd2 = listed{backends.StagePending, second.Fingerprint(), "rot-1"}
)

// TestCrashRecovery kills keyturn with SIGKILL between two Vault requests
// of a step, checks what a reader sees then, runs the same steps again in
// a new Backend, as a restarted daemon does, and checks that they
// converge: the listing, the bookkeeping, and no stray copy of a secret.
func TestCrashRecovery(t *testing.T) {
	realVault(t)
	promoted := []string{"init-first", "write-second", "promote-second"}
	tests := []struct {
		name   string
		setup  []string // run before the child, in this process
		at     string   // the crash point the child is killed at
		steps  []string // run by the child, then again after the kill
		killed []listed // List right after the kill
		want   []listed
	}{
		{"init, after the write", nil, "after-init-write", []string{"init-first"},
			[]listed{cur1}, []listed{cur1}},
		{"corrected hand-off, before the replaced version is destroyed",
			[]string{"init-first", "write-tricky"}, "after-pending-write",
			[]string{"write-second", "promote-second"},
			[]listed{cur1, pnd2}, []listed{cur2, prv1}},
		{"promote, after the main write", []string{"init-first", "write-second"},
			"after-main-write", []string{"promote-second"},
			[]listed{cur2, prv1}, []listed{cur2, prv1}},
		{"promote, after the bookkeeping", []string{"init-first", "write-second"},
			"after-bookkeeping", []string{"promote-second"},
			[]listed{cur2, prv1}, []listed{cur2, prv1}},
		{"rollback, after re-pending", promoted, "after-pending-write",
			[]string{"rollback-second"}, []listed{cur2, prv1}, []listed{cur1, pnd2}},
		{"rollback, after the main write", promoted, "after-main-write",
			[]string{"rollback-second"}, []listed{cur1, pnd2}, []listed{cur1, pnd2}},
		{"remove previous, after the schedule", promoted, "after-schedule",
			[]string{"remove-first"}, []listed{cur2}, []listed{cur2}},
		{"remove previous, after the soft delete", promoted, "after-delete",
			[]string{"remove-first"}, []listed{cur2}, []listed{cur2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := uniquePath(t)
			runSteps(t, open(t, testOptions(t, path)), tt.setup)
			runAndKill(t, path, tt.at, tt.steps)
			afterKill := listOf(t, open(t, testOptions(t, path)))
			if diff := cmp.Diff(tt.killed, afterKill); diff != "" {
				t.Errorf("List after the kill (-want +got):\n%s", diff)
			}

			restarted := open(t, testOptions(t, path))
			runSteps(t, restarted, tt.steps)
			if diff := cmp.Diff(tt.want, listOf(t, restarted)); diff != "" {
				t.Errorf("List after restart (-want +got):\n%s", diff)
			}
			var removed []int
			if tt.steps[0] == "remove-first" {
				removed = []int{1}
			}
			checkTidy(t, path, removed)
		})
	}
}

// checkTidy checks what a finished step leaves: bookkeeping that names
// the newest version, no destruction still scheduled, nothing readable in
// the pending path's history but its newest version, and the removed
// main versions destroyed.
func checkTidy(t *testing.T, path string, removed []int) {
	t.Helper()
	m := rawMeta(t, path)
	if got := readBook(m.custom).current; got != m.current {
		t.Errorf("bookkeeping names version %d as current, newest is %d", got, m.current)
	}
	if s := schedule(m.custom); len(s) != 0 {
		t.Errorf("destruction still scheduled: %v", s)
	}
	for _, n := range removed {
		if !m.versions[n].destroyed {
			t.Errorf("main version %d still holds a removed secret", n)
		}
	}
	p := rawMeta(t, path+"/pending")
	for n, v := range p.versions {
		if n != p.current && !v.destroyed {
			t.Errorf("pending version %d of %d still holds a secret", n, p.current)
		}
	}
}

// runAndKill starts the child, waits until it reports the crash point and
// kills it with SIGKILL.
func runAndKill(t *testing.T, path, at string, steps []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashAtEnv+"="+at, crashPathEnv+"="+path,
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
