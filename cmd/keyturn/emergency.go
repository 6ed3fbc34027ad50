package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/rotator"
	"github.com/keyturn/keyturn/server"
	"github.com/keyturn/keyturn/smartcar"
)

type emergencyFlags struct {
	secret, since    string
	revokeFirst, yes bool
	drain            bool
}

func newEmergencyCmd(e *env) *cobra.Command {
	var f emergencyFlags
	c := &cobra.Command{
		Use:   "emergency APP",
		Short: "Run the compromise playbook: page, replace, revoke, review",
		Long: "emergency starts an urgent rotation for a compromised secret (default: the\n" +
			"current one). It pages the escalation channels, skips the consumer drain\n" +
			"unless --drain, proves the revocation with a token request, reports the\n" +
			"60-minute window in which tokens already issued stay valid, and writes an\n" +
			"incident report of every token request made with the secret.\n\n" +
			"On a terminal it walks you through each step; otherwise it starts the\n" +
			"rotation and prints what to do next (then use submit and confirm-deleted).",
		Example: "  keyturn emergency fleet-prod\n" +
			"  keyturn emergency fleet-prod --revoke-first --yes\n" +
			"  keyturn emergency fleet-prod --secret fp_1a2b3c4d5e6f7a8b --since 2026-11-01T00:00:00Z",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error { return runEmergency(c.Context(), e, f, a[0]) },
	}
	c.Flags().StringVar(&f.secret, "secret", "", "fingerprint of the compromised secret "+
		"(default: current)")
	c.Flags().StringVar(&f.since, "since", "", "review token requests from this time "+
		"(RFC 3339; default: the secret's creation)")
	c.Flags().BoolVar(&f.revokeFirst, "revoke-first", false, "delete the compromised "+
		"secret before a new one exists (consumers fail until the new one is promoted)")
	c.Flags().BoolVar(&f.drain, "drain", false, "keep the consumer drain window")
	c.Flags().BoolVar(&f.yes, "yes", false, "confirm --revoke-first without a terminal")
	return c
}

func (e *env) terminal() (*os.File, bool) {
	f, ok := e.stdin.(*os.File)
	return f, ok && term.IsTerminal(int(f.Fd()))
}

func runEmergency(ctx context.Context, e *env, f emergencyFlags, app string) error {
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	req := server.EmergencyRequest{Secret: f.secret, RevokeFirst: f.revokeFirst,
		Drain: f.drain}
	if f.since != "" {
		if req.Since, err = time.Parse(time.RFC3339, f.since); err != nil {
			return usagef("write it as RFC 3339, such as 2026-11-01T00:00:00Z",
				"--since %q is not a time", f.since)
		}
	}
	_, tty := e.terminal()
	if f.revokeFirst && !f.yes {
		if !tty {
			return usagef("run it on a terminal to confirm, or pass --yes",
				"--revoke-first makes consumers fail until the new secret is promoted "+
					"and needs a confirmation")
		}
		if err := confirmRevokeFirst(e, app); err != nil {
			return err
		}
	}
	cl := server.NewClient(cfg.Socket)
	r, err := cl.Emergency(ctx, app, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "EMERGENCY rotation %s for %s started; escalation channels "+
		"were paged\ncompromised secret: %s\n", r.ID, app, r.Emergency.Compromised.Fingerprint)
	if !tty {
		fmt.Fprintf(e.stdout, "next: %s\n", nextFor(app, r))
		return nil
	}
	w := &walker{e: e, cl: cl, app: app, start: time.Now(), dash: dashboardFor(cfg, app)}
	return w.walk(ctx, r)
}

func confirmRevokeFirst(e *env, app string) error {
	fmt.Fprintf(e.stderr, "Revoke first: every consumer of %s FAILS from the moment you "+
		"delete the compromised secret until the new secret is promoted.\n"+
		"Type the app name to continue: ", app)
	line, _ := bufio.NewReader(e.stdin).ReadString('\n')
	if strings.TrimSpace(line) != app {
		return usagef("run it again and type the app name, or drop --revoke-first",
			"not confirmed; nothing was started")
	}
	return nil
}

func dashboardFor(cfg *config.Config, app string) string {
	for _, a := range cfg.Apps {
		if a.Name == app {
			return smartcar.DashboardURL(a.DashboardURL, a.ClientID)
		}
	}
	return ""
}

func nextFor(app string, r *rotator.Rotation) string {
	switch r.State {
	case rotator.StateAwaitNew:
		return "create a new secret in the Dashboard, then run: keyturn submit " + app
	case rotator.StateAwaitDelete:
		return fmt.Sprintf("delete secret %s (created %s) in the Dashboard, then run: "+
			"keyturn confirm-deleted %s", r.Old.Fingerprint,
			r.Old.CreatedAt.Format(time.RFC3339), app)
	}
	return "keyturn status shows where the rotation is"
}

// walker leads a person through an emergency on a terminal.
type walker struct {
	e     *env
	cl    *server.Client
	app   string
	dash  string
	start time.Time
	in    *bufio.Reader
	shown string // the last problem printed
}

// personStep handles the states in which a person, not time, moves the
// rotation on: a rollback to resolve, or hand-managed consumers to move.
// done means the walk ends here with the next command printed.
func (w *walker) personStep(ctx context.Context, r *rotator.Rotation) (
	next *rotator.Rotation, done bool) {
	if r.Hold != "" {
		w.say("rolled back: %s", r.Hold)
		w.say("fix the consumers, then run: keyturn resume %s (or keyturn abort %s)",
			w.app, w.app)
		return nil, true
	}
	manual := r.State == rotator.StateDraining && r.Prompts[rotator.StateDraining] != nil &&
		(r.Consumers == nil || !r.Consumers.Confirmed)
	if !manual {
		return nil, false
	}
	w.say("Move %s's consumers to the new secret %s by hand.", w.app, r.New.Fingerprint)
	fmt.Fprint(w.e.stdout, "Press Enter once they use it: ")
	if w.in == nil {
		w.in = bufio.NewReader(w.e.stdin)
	}
	w.in.ReadString('\n')
	next, err := w.cl.ConfirmUpdated(ctx, w.app)
	if err != nil {
		w.report(err)
		return r, false
	}
	return next, false
}

func (w *walker) say(format string, args ...any) {
	el := time.Since(w.start).Round(time.Second)
	fmt.Fprintf(w.e.stdout, "[+%02d:%02d] ", int(el.Minutes()), int(el.Seconds())%60)
	fmt.Fprintf(w.e.stdout, format+"\n", args...)
}

func (w *walker) walk(ctx context.Context, r *rotator.Rotation) error {
	for r != nil && !r.State.Terminal() {
		var err error
		switch r.State {
		case rotator.StateAwaitNew:
			r, err = w.handOver(ctx, r)
		case rotator.StateAwaitDelete:
			r, err = w.revoke(ctx, r)
		case rotator.StateStaged, rotator.StateDraining:
			if next, done := w.personStep(ctx, r); done {
				return nil
			} else if next != nil {
				r = next
				continue
			}
			fallthrough
		default:
			if r.LastError != "" && r.LastError != w.shown {
				w.shown = r.LastError
				w.say("waiting: %s", r.LastError)
			} else {
				w.say("keyturn is working (state %s)…", r.State)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			r, err = w.cl.Rotation(ctx, w.app)
		}
		if err != nil && !retryable(err) {
			return err
		}
	}
	if r == nil {
		w.say("the rotation finished; keyturn status shows the result")
		return nil
	}
	w.summary(r)
	return nil
}

func retryable(err error) bool {
	var ce *server.CallError
	return errors.As(err, &ce) && (ce.Code == "secret_refused" || ce.Code == "still_alive")
}

func (w *walker) handOver(ctx context.Context, r *rotator.Rotation) (*rotator.Rotation,
	error) {
	w.say("Create a new client secret for %s in the Dashboard: %s", w.app, w.dash)
	v, err := readSecret(w.e, w.app)
	if err != nil {
		return r, err
	}
	next, err := w.cl.Submit(ctx, w.app, v)
	if err != nil {
		w.report(err)
		return r, err
	}
	w.say("secret %s works and is promoted", v.Fingerprint())
	return next, nil
}

func (w *walker) revoke(ctx context.Context, r *rotator.Rotation) (*rotator.Rotation,
	error) {
	w.say("Delete secret %s (created %s) in the Dashboard: %s", r.Old.Fingerprint,
		r.Old.CreatedAt.Format(time.RFC3339), w.dash)
	fmt.Fprint(w.e.stdout, "Press Enter once it is deleted: ")
	if w.in == nil {
		w.in = bufio.NewReader(w.e.stdin)
	}
	if _, err := w.in.ReadString('\n'); err != nil && !errors.Is(err, io.EOF) {
		return r, err
	}
	next, err := w.cl.ConfirmDeleted(ctx, w.app)
	if err != nil {
		w.report(err)
		return r, err
	}
	return next, nil
}

func (w *walker) report(err error) {
	w.say("not yet: %v", err)
	var ce *server.CallError
	if errors.As(err, &ce) && ce.Hint != "" {
		w.say("hint: %s", ce.Hint)
	}
}

func (w *walker) summary(r *rotator.Rotation) {
	w.say("revocation proven at %s: the compromised secret answers invalid_client",
		r.RevokedAt.Local().Format("15:04:05"))
	if em := r.Emergency; em != nil {
		w.say("tokens minted with it stay valid until %s (they cannot be revoked); "+
			"keyturn notifies when that window closes", em.WindowEndsAt.Local().Format("15:04:05"))
		for _, p := range em.Report {
			w.say("incident report: %s", p)
		}
	}
	for _, m := range r.Timeline {
		fmt.Fprintf(w.e.stdout, "  %s  %s\n", m.At.Local().Format("15:04:05.000"), m.State)
	}
}
