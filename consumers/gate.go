package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/keyturn/keyturn/config"
)

// gateSlack is how many failed checks a gate may absorb: it runs at most
// Successes+gateSlack checks, so it always ends.
const gateSlack = 3

// gateName names gate checks in Attempts and logs.
const gateName = "gate"

// Check is one gate check.
type Check struct {
	At     time.Time
	OK     bool
	Detail string // "200 OK", "503 Service Unavailable", "exit status 1", ...
}

// GateResult is what a gate saw, every check in order.
type GateResult struct {
	Passed bool
	Runs   []Check
}

// checkFunc runs one gate check; the string is its Detail, the output is
// for the log only.
type checkFunc func(ctx context.Context) (a Attempt, detail, out string)

// RunGate checks g until it has passed g.Successes times in a row (see
// the package doc for the bounds). A gate that does not pass is reported
// with Passed false and a nil error: whether to roll back is the
// caller's decision. The error is for a gate that cannot run at all (no
// URL or command, a refused URL) and for ctx ending.
func (r *Runner) RunGate(ctx context.Context, g config.Gate) (GateResult, error) {
	check, err := r.gateCheck(g)
	if err != nil {
		return GateResult{}, fmt.Errorf("consumers: gate: %w", err)
	}
	need := max(g.Successes, 1)
	limit := need + gateSlack
	var res GateResult
	streak := 0
	// Stop when the checks left cannot make the streak.
	for n := 1; n <= limit && limit-n+1 >= need-streak; n++ {
		if n > 1 {
			if err := r.sleep(ctx, g.Interval.D()); err != nil {
				return res, fmt.Errorf("consumers: gate: %w", err)
			}
		}
		c := r.runCheck(ctx, check, n)
		res.Runs = append(res.Runs, c)
		if !c.OK {
			streak = 0
			if err := ctx.Err(); err != nil {
				return res, fmt.Errorf("consumers: gate: %w", err)
			}
			continue
		}
		if streak++; streak == need {
			res.Passed = true
			break
		}
	}
	r.log.Info("consumer gate done", logPassed, res.Passed,
		logChecks, len(res.Runs))
	return res, nil
}

// runCheck runs check once, reports and logs it.
func (r *Runner) runCheck(ctx context.Context, check checkFunc, n int) Check {
	at := r.clock()
	a, detail, out := check(ctx)
	a.Kind, a.Name, a.Try = KindGate, gateName, n
	a.Duration = r.clock().Sub(at)
	r.onAttempt(a)

	ok := a.Outcome == OutcomeOK
	level := slog.LevelDebug
	if !ok {
		level = slog.LevelWarn
	}
	r.log.Log(ctx, level, "consumer gate check", logTry, n,
		logOutcome, string(a.Outcome), logDuration, a.Duration,
		logExitCode, a.ExitCode, logHTTPStatus, a.HTTPStatus,
		logErr, a.Error, logOutput, r.scrub(out))
	return Check{At: at, OK: ok, Detail: detail}
}

// gateCheck returns the check g describes, or why it cannot run.
func (r *Runner) gateCheck(g config.Gate) (checkFunc, error) {
	timeout := orDuration(g.Timeout.D(), defaultGateTimeout)
	switch {
	case g.URL != "" && len(g.Command) > 0:
		return nil, errors.New("set either url or command, not both")
	case g.URL != "":
		u, err := checkURL(g.URL, g.AllowInsecureURL,
			"use https, or set allow_insecure_url")
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) (Attempt, string, string) {
			res := r.do(ctx, http.MethodGet, u, nil, nil, timeout)
			return res.attempt(), res.detail, res.out
		}, nil
	case len(g.Command) > 0:
		return func(ctx context.Context) (Attempt, string, string) {
			res := runCommand(ctx, g.Command, "", baseEnv(), timeout)
			return res.attempt(), commandDetail(res), res.out
		}, nil
	}
	return nil, errors.New("no url or command")
}

func commandDetail(c cmdResult) string {
	if c.outcome == OutcomeOK {
		return "exit status 0"
	}
	return short(c.err)
}
