package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/secret"
)

// Actions a HookEvent announces.
const (
	ActionPromoted   = "promoted"    // the new secret became current
	ActionRolledBack = "rolled_back" // the previous secret became current again
)

// Kinds of Attempt.
const (
	KindHook = "hook"
	KindGate = "gate"
)

// Log keys, constant so log queries keep working.
const (
	logApp        = "app"
	logRotationID = "rotation_id"
	logHook       = "hook"
	logTry        = "try"
	logOutcome    = "outcome"
	logDuration   = "duration"
	logExitCode   = "exit_code"
	logHTTPStatus = "http_status"
	logOutput     = "output"
	logErr        = "err"
	logPassed     = "passed"
	logChecks     = "checks"
)

// Defaults for a hook or gate whose timeout is unset; config applies the
// same ones, these cover callers that build a config.Hook themselves.
const (
	defaultHookTimeout = 30 * time.Second
	defaultGateTimeout = 10 * time.Second
)

// Backoff between tries of a hook: doubling from backoffBase, at most
// backoffMax, with jitter so hooks of many apps do not retry in step.
const (
	backoffBase = time.Second
	backoffMax  = 30 * time.Second
)

// maxOutput bounds what is kept of a command's output or a response body.
const maxOutput = 2 << 10

// HookEvent tells a hook what changed. It names secrets by fingerprint
// only; it has no field that could hold a secret value.
type HookEvent struct {
	App        string             `json:"app"`
	ClientID   string             `json:"client_id"`
	RotationID string             `json:"rotation_id"`
	Action     string             `json:"action"` // ActionPromoted or ActionRolledBack
	CurrentFP  secret.Fingerprint `json:"current_fp"`
	PreviousFP secret.Fingerprint `json:"previous_fp"`
	Time       time.Time          `json:"time"`
}

// Outcome says how one hook try or gate check ended.
type Outcome string

// Outcomes of an Attempt.
const (
	OutcomeOK      Outcome = "ok"
	OutcomeFailed  Outcome = "failed"  // ran and said no: non-zero exit, non-2xx
	OutcomeTimeout Outcome = "timeout" // killed or abandoned at its timeout
	OutcomeError   Outcome = "error"   // could not run or reach it
)

// Attempt is one hook try or gate check, as the rotator audits it. It
// holds no command output and no response body (see the package doc).
type Attempt struct {
	Kind     string // KindHook or KindGate
	Name     string // the hook's name, or "gate"
	Try      int    // 1 for the first try or check
	Outcome  Outcome
	Duration time.Duration
	// ExitCode is an exec command's exit status, -1 when it was killed
	// or did not start; 0 for HTTP.
	ExitCode int
	// HTTPStatus is the answer's status code, 0 when there was none.
	HTTPStatus int
	// Error says briefly why the attempt failed; "" when it succeeded.
	Error string
}

// HookResult is what one hook did: every try, in order.
type HookResult struct {
	Name     string
	Type     string // exec or http
	OK       bool
	Attempts []Attempt
}

// Options configures a Runner. Every field is optional.
type Options struct {
	// Logger gets a line per hook try and gate check (with up to 2 KiB of
	// output, see the package doc) and one per hook and gate outcome.
	Logger *slog.Logger
	// HTTPClient sends http hooks and gate checks. The default follows no
	// redirects, so a signed body never travels to a second address.
	HTTPClient *http.Client
	// Clock stamps events, webhook signatures, gate checks and attempt
	// durations. Receivers check a signature's time against their own
	// clock, so a fake Clock suits only receivers that share it.
	Clock func() time.Time
	// Sleep waits between tries and gate checks; it returns ctx's error
	// when ctx ends first. Tests pass one that does not wait.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnAttempt receives every hook try and gate check as it ends.
	OnAttempt func(Attempt)
	// Scrub cleans command output and response bodies before they are
	// logged; the rotator passes one that redacts the app's secrets, in
	// case a hook prints the env file it reloads.
	Scrub func(string) string
}

// Runner runs hooks and gates. It is safe for concurrent use.
type Runner struct {
	log       *slog.Logger
	client    *http.Client
	clock     func() time.Time
	sleep     func(ctx context.Context, d time.Duration) error
	onAttempt func(Attempt)
	scrub     func(string) string
}

// NewRunner returns a Runner with o's settings, filling in defaults.
func NewRunner(o Options) *Runner {
	r := &Runner{log: o.Logger, client: o.HTTPClient, clock: o.Clock,
		sleep: o.Sleep, onAttempt: o.OnAttempt, scrub: o.Scrub}
	if r.scrub == nil {
		r.scrub = func(s string) string { return s }
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.client == nil {
		r.client = &http.Client{CheckRedirect: noRedirects}
	}
	if r.clock == nil {
		r.clock = time.Now
	}
	if r.sleep == nil {
		r.sleep = sleepCtx
	}
	if r.onAttempt == nil {
		r.onAttempt = func(Attempt) {}
	}
	return r
}

func noRedirects(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RunHooks runs hooks in order for ev, each with its retries, and stops
// at the first hook that still fails; the error names that hook and why.
// The results cover every hook that ran, the failed one included. A zero
// ev.Time is set to the Runner's clock.
func (r *Runner) RunHooks(ctx context.Context, hooks []config.Hook,
	ev HookEvent) ([]HookResult, error) {
	if ev.Time.IsZero() {
		ev.Time = r.clock()
	}
	log := r.log.With(logApp, ev.App, logRotationID, ev.RotationID)
	var results []HookResult
	for i, h := range hooks {
		if h.Name == "" {
			h.Name = fmt.Sprintf("#%d", i+1)
		}
		res, err := r.runHook(ctx, log, h, ev)
		results = append(results, res)
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// tryFunc runs one try of a hook. The Attempt it returns has Outcome,
// ExitCode, HTTPStatus and Error set; the output is for the log only.
type tryFunc func(ctx context.Context) (Attempt, string, error)

// prepare returns the try for h, or why h cannot run at all, in which
// case no try is made.
func (r *Runner) prepare(h config.Hook, ev HookEvent) (tryFunc, error) {
	switch h.Type {
	case "exec":
		return r.execTry(h, ev), nil
	case "http":
		return r.httpTry(h, ev)
	}
	return nil, fmt.Errorf("unknown type %q", h.Type)
}

func (r *Runner) runHook(ctx context.Context, log *slog.Logger, h config.Hook,
	ev HookEvent) (HookResult, error) {
	res := HookResult{Name: h.Name, Type: h.Type}
	try, err := r.prepare(h, ev)
	if err != nil {
		log.Warn("consumer hook cannot run", logHook, h.Name, logErr, err)
		return res, fmt.Errorf("consumers: hook %q: %w", h.Name, err)
	}

	var last error
	for n := 1; n <= 1+max(h.Retries, 0); n++ {
		if n > 1 {
			if err := r.sleep(ctx, backoff(n-1)); err != nil {
				last = err
				break
			}
		}
		a, err := r.attempt(ctx, log, h.Name, n, try)
		res.Attempts = append(res.Attempts, a)
		if err == nil {
			res.OK = true
			log.Info("consumer hook ran", logHook, h.Name, logTry, n)
			return res, nil
		}
		last = err
		if isPermanent(err) || ctx.Err() != nil {
			break
		}
	}
	log.Warn("consumer hook failed", logHook, h.Name, logErr, last)
	return res, fmt.Errorf("consumers: hook %q: %w after %s", h.Name, last,
		plural(len(res.Attempts), "try", "tries"))
}

// attempt runs try once, reports it and logs its output.
func (r *Runner) attempt(ctx context.Context, log *slog.Logger, name string, n int,
	try tryFunc) (Attempt, error) {
	start := r.clock()
	a, out, err := try(ctx)
	a.Kind, a.Name, a.Try = KindHook, name, n
	a.Duration = r.clock().Sub(start)
	r.onAttempt(a)

	level := slog.LevelDebug
	if err != nil {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, "consumer hook try", logHook, name, logTry, n,
		logOutcome, string(a.Outcome), logDuration, a.Duration,
		logExitCode, a.ExitCode, logHTTPStatus, a.HTTPStatus,
		logErr, a.Error, logOutput, r.scrub(out))
	return a, err
}

// backoff is the wait before retry number n (1 for the second try): half
// of an exponential step, plus up to as much again at random.
func backoff(n int) time.Duration {
	d := backoffBase << min(n-1, 16)
	d = min(d, backoffMax)
	return d/2 + rand.N(d/2+1)
}

// permanentError marks a failure that another try cannot fix.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func permanent(err error) error { return permanentError{err} }

func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// short cuts an error message for an Attempt, so an odd error (a huge
// URL, a program's message) cannot bloat an audit record.
func short(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
