// Command keyturn keeps Smartcar API credentials young: a daemon that
// rotates client secrets through a person in the Smartcar Dashboard, and
// the CLI that talks to it. See the README for a walk-through.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/rotator"
	"github.com/keyturn/keyturn/server"
)

// Exit codes, as the CLI contract says.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	armCrashPoint()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(&env{stdin: stdin, stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	return report(stderr, err)
}

// usageError marks bad flags, arguments or config: exit 2.
type usageError struct {
	err  error
	hint string
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(hint, format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...), hint: hint}
}

// report prints err as "keyturn: error:" and "keyturn: hint:" lines and
// picks the exit code.
func report(w io.Writer, err error) int {
	code := exitFailed
	hint := rotator.Hint(err)
	var ue *usageError
	var ce *config.Error
	var call *server.CallError
	var start *server.StartError
	switch {
	case errors.As(err, &start):
		hint = start.Hint
	case errors.As(err, &ce):
		for _, p := range ce.Problems {
			fmt.Fprintf(w, "keyturn: error: %s:%s\n", ce.File, p)
		}
		fmt.Fprintf(w, "keyturn: hint: fix the config, then run: keyturn config validate "+
			"--config %s\n", ce.File)
		return exitUsage
	case errors.As(err, &ue):
		code, hint = exitUsage, ue.hint
	case errors.As(err, &call):
		hint = call.Hint
		if call.Code == "unknown_app" {
			code = exitUsage
		}
	case errors.Is(err, server.ErrDaemonDown):
		hint = "start it with: keyturn daemon --config FILE (or keyturn dev)"
	}
	fmt.Fprintf(w, "keyturn: error: %v\n", err)
	if hint != "" {
		fmt.Fprintf(w, "keyturn: hint: %s\n", hint)
	}
	return code
}

// armCrashPoint makes the process kill itself with SIGKILL at the rotation
// step named by KEYTURN_TEST_CRASH_AT, for the crash-point tests. It is a
// test hook: nothing sets the variable in normal use.
func armCrashPoint() {
	at := os.Getenv("KEYTURN_TEST_CRASH_AT")
	if at == "" {
		return
	}
	rotator.CrashHook = func(point string) {
		if point == at {
			fmt.Fprintf(os.Stderr, "keyturn: test crash point %s reached\n", point)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}
