package consumers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/keyturn/keyturn/config"
)

// defaultPath is PATH for commands when the daemon itself has none.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// waitDelay bounds how long a command's leftover children may hold its
// output open after it exited or was killed (a child that left the
// process group, say), so a run always ends.
const waitDelay = time.Second

// execTry returns a try that runs an exec hook once.
func (r *Runner) execTry(h config.Hook, ev HookEvent) tryFunc {
	env := hookEnv(ev)
	timeout := orDuration(h.Timeout.D(), defaultHookTimeout)
	return func(ctx context.Context) (Attempt, string, error) {
		res := runCommand(ctx, h.Command, h.Dir, env, timeout)
		return res.attempt(), res.out, res.err
	}
}

// cmdResult is how one command run ended.
type cmdResult struct {
	outcome Outcome
	exit    int
	out     string // the first maxOutput bytes of stdout and stderr
	err     error
}

func (c cmdResult) attempt() Attempt {
	return Attempt{Outcome: c.outcome, ExitCode: c.exit, Error: short(c.err)}
}

// runCommand runs argv in dir with exactly env, stdin from /dev/null,
// in a process group of its own that is killed whole at timeout.
func runCommand(ctx context.Context, argv []string, dir string, env []string,
	timeout time.Duration) cmdResult {
	if len(argv) == 0 {
		return cmdResult{outcome: OutcomeError, exit: -1,
			err: permanent(errors.New("no command"))}
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(tctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	// A nil Stdin is /dev/null: a hook cannot wait on, or read, the
	// daemon's input.
	cmd.Stdin = nil
	out := &headWriter{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = waitDelay
	killGroupOnCancel(cmd)

	err := cmd.Run()
	res := cmdResult{exit: -1, out: out.String()}
	if cmd.ProcessState != nil {
		res.exit = cmd.ProcessState.ExitCode()
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay) && res.exit == 0:
		// ErrWaitDelay with status 0: the command succeeded and left a
		// background child holding its output, which is its business.
		res.outcome = OutcomeOK
	case tctx.Err() == context.DeadlineExceeded && ctx.Err() == nil:
		res.outcome = OutcomeTimeout
		res.err = fmt.Errorf("killed at its %s timeout", timeout)
	case ctx.Err() != nil:
		res.outcome, res.err = OutcomeError, ctx.Err()
	case errors.As(err, &exitErr):
		res.outcome, res.err = OutcomeFailed, err
	default:
		// It never started: another try would fail the same way.
		res.outcome, res.err = OutcomeError, permanent(err)
	}
	return res
}

// baseEnv is the environment every command gets: only what a program
// needs to run, never the daemon's other variables, which may hold
// credentials (VAULT_TOKEN, AWS_SECRET_ACCESS_KEY, ...).
func baseEnv() []string {
	env := []string{"PATH=" + orString(os.Getenv("PATH"), defaultPath)}
	for _, k := range []string{"HOME", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// hookEnv is baseEnv plus what the hook is told about the change.
func hookEnv(ev HookEvent) []string {
	return append(baseEnv(),
		"KEYTURN_APP="+ev.App,
		"KEYTURN_CLIENT_ID="+ev.ClientID,
		"KEYTURN_ROTATION_ID="+ev.RotationID,
		"KEYTURN_ACTION="+ev.Action,
		"KEYTURN_CURRENT_FP="+string(ev.CurrentFP),
		"KEYTURN_PREVIOUS_FP="+string(ev.PreviousFP),
	)
}

// headWriter keeps the first max bytes written to it and drops the rest,
// so a chatty command cannot fill memory. exec calls Write from one
// goroutine at a time when Stdout and Stderr are the same writer.
type headWriter struct {
	max     int
	b       []byte
	dropped int
}

func (w *headWriter) Write(p []byte) (int, error) {
	n := min(len(p), w.max-len(w.b))
	w.b = append(w.b, p[:n]...)
	w.dropped += len(p) - n
	return len(p), nil
}

// String returns what was kept, valid UTF-8, noting how much was dropped.
func (w *headWriter) String() string {
	s := strings.ToValidUTF8(string(w.b), "\uFFFD")
	if w.dropped > 0 {
		s += fmt.Sprintf("\n[%d more bytes not kept]", w.dropped)
	}
	return s
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
