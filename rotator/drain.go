package rotator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/consumers"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/smartcar"
)

// ConsumerStep is the progress of the draining state: consumers moving
// to the new secret.
type ConsumerStep struct {
	HooksRun   bool      `json:"hooks_run,omitempty"`
	Hooks      []string  `json:"hooks,omitempty"` // "name: ok" or "name: failed: why"
	Confirmed  bool      `json:"confirmed,omitempty"`
	GatePassed bool      `json:"gate_passed,omitempty"`
	GateRuns   []string  `json:"gate_runs,omitempty"`
	RolledBack time.Time `json:"rolled_back,omitzero"`
}

// drain moves consumers over: reload hooks first, then the propagation
// window (and, in manual mode, a person's confirmation), then the health
// gate. A failed hook or gate rolls the promotion back while the old
// secret still works; the delete prompt goes out only after all passed.
func (e *Engine) drain(ctx context.Context, a *config.App, r *Rotation) error {
	if r.Consumers == nil {
		r.Consumers = &ConsumerStep{}
	}
	cs := r.Consumers
	if r.Hold != "" {
		// A rollback was decided and saved, then interrupted: finish it.
		return e.rollBack(ctx, a, r, r.Hold)
	}
	if !cs.HooksRun && len(a.Consumers.Hooks) > 0 {
		res, err := e.runner(a, r).RunHooks(ctx, a.Consumers.Hooks, e.hookEvent(a, r,
			consumers.ActionPromoted))
		cs.Hooks = hookLines(res)
		crashPoint("hooks:run")
		if ctx.Err() != nil {
			return e.retryLater(ctx, r, "run the reload hooks", ctx.Err())
		}
		if err != nil {
			return e.rollBack(ctx, a, r, "reload hook failed: "+err.Error())
		}
		cs.HooksRun = true
		if err := e.deps.Store.Put(r); err != nil {
			return err
		}
	}
	if a.Consumers.Mode == "manual" && !cs.Confirmed {
		return nil
	}
	if e.now().Before(r.DrainUntil) {
		return nil
	}
	if g := a.Consumers.Gate; g != nil && !cs.GatePassed {
		res, err := e.runner(a, r).RunGate(ctx, *g)
		cs.GateRuns = gateLines(res)
		if ctx.Err() != nil {
			return e.retryLater(ctx, r, "run the health gate", ctx.Err())
		}
		if err != nil || !res.Passed {
			why := "health gate failed: " + lastRun(cs.GateRuns)
			if err != nil {
				why = "health gate could not run: " + err.Error()
			}
			return e.rollBack(ctx, a, r, why)
		}
		cs.GatePassed = true
	}
	return e.drained(ctx, a, r, "consumers moved to the new secret")
}

// drained ends the drain with the delete prompt or, when the old secret
// was revoked first, with its removal.
func (e *Engine) drained(ctx context.Context, a *config.App, r *Rotation,
	detail string) error {
	if !r.RevokedAt.IsZero() {
		return e.transition(ctx, a, r, StateRetired, "", detail+
			"; the old secret was proven revoked before")
	}
	return e.enterWait(ctx, a, r, StateAwaitDelete, detail)
}

// rollbackBlocked says why the old secret cannot be current again, or ""
// when it can: it must still get a token, or the rollback would put a
// dead secret in front of every consumer.
func (e *Engine) rollbackBlocked(ctx context.Context, a *config.App,
	r *Rotation) (string, error) {
	if !r.RevokedAt.IsZero() {
		return "the old secret was already proven revoked", nil
	}
	old, found, err := e.findSecret(ctx, a, r.Old.Fingerprint)
	if err != nil {
		return "", err
	}
	if !found {
		return "the backend no longer holds the old secret", nil
	}
	_, err = e.tokenRequest(ctx, a, r, old, audit.PurposeCheck)
	switch {
	case err == nil:
		return "", nil
	case isRefusal(err):
		return "the old secret no longer gets tokens (" + smartcar.Class(err) +
			"): it was deleted in the Dashboard", nil
	}
	return "", err
}

// forwardOnly goes on with a rotation whose hooks or gate failed but
// which cannot roll back, and tells everyone the consumers need a hand.
func (e *Engine) forwardOnly(ctx context.Context, a *config.App, r *Rotation,
	why, blocked string) error {
	r.LastError = why + "; no rollback: " + blocked
	e.log.Error("rotation cannot roll back", logApp, a.Name, logRotationID, r.ID,
		"why", why, "blocked", blocked)
	ev := e.event(a, r, notify.KindRotationFailed)
	ev.Severity = notify.SeverityCritical
	ev.Detail = fmt.Sprintf("%s. keyturn cannot roll back, because %s, so %s stays "+
		"current: check the consumers now.", why, blocked, r.New.Fingerprint)
	ev.Command = "keyturn status"
	e.send(ctx, e.channels(a, r, true), ev)
	return e.drained(ctx, a, r, "consumers not proven moved ("+why+"); no rollback: "+
		blocked)
}

// rollBack makes the previous secret current again. The refused new
// secret stays pending for a person to inspect, and the rotation holds in
// staged until someone resumes or aborts it. The decision is saved before
// the backend changes, so an interrupted rollback is finished, never
// forgotten.
func (e *Engine) rollBack(ctx context.Context, a *config.App, r *Rotation,
	why string) error {
	if r.Hold == "" {
		blocked, err := e.rollbackBlocked(ctx, a, r)
		if errors.Is(err, ErrAuditFailed) {
			return err
		}
		if err != nil {
			return e.retryLater(ctx, r, "check the old secret before a rollback", err)
		}
		if blocked != "" {
			return e.forwardOnly(ctx, a, r, why, blocked)
		}
		r.Hold, r.LastError = why, why
		if err := e.deps.Store.Put(r); err != nil {
			return err
		}
		crashPoint("rollback:decided")
	}
	be := e.deps.Backends[a.Name]
	if err := be.Rollback(ctx, r.ID, r.New.Fingerprint); err != nil {
		return e.retryLater(ctx, r, "roll back to the previous secret", err)
	}
	if e.deps.OnPromote != nil {
		e.deps.OnPromote(a.Name)
	}
	res, err := e.runner(a, r).RunHooks(ctx, a.Consumers.Hooks, e.hookEvent(a, r,
		consumers.ActionRolledBack))
	hooks := strings.Join(hookLines(res), "; ")
	if err != nil {
		why += "; the hooks after the rollback failed too: " + err.Error()
	}
	r.Consumers.RolledBack = e.now()
	if err := e.transition(ctx, a, r, StateStaged, "", "rolled back: "+why); err != nil {
		return err
	}
	e.log.Warn("rotation rolled back", logApp, a.Name, logRotationID, r.ID, "why", why)
	ev := e.event(a, r, notify.KindRotationFailed)
	ev.Severity = notify.SeverityWarning
	ev.Detail = fmt.Sprintf("secret %s was rolled back; %s is current again. %s. The "+
		"new secret stays pending. Hooks after the rollback: %s.", r.New.Fingerprint,
		r.Old.Fingerprint, why, orNone(hooks))
	ev.Command = "keyturn resume " + a.Name + "   (or: keyturn abort " + a.Name + ")"
	e.send(ctx, e.channels(a, r, false), ev)
	return nil
}

func (e *Engine) hookEvent(a *config.App, r *Rotation, action string) consumers.HookEvent {
	ev := consumers.HookEvent{App: a.Name, ClientID: a.ClientID, RotationID: r.ID,
		Action: action, CurrentFP: r.New.Fingerprint, PreviousFP: r.Old.Fingerprint,
		Time: e.now()}
	if action == consumers.ActionRolledBack {
		ev.CurrentFP, ev.PreviousFP = r.Old.Fingerprint, r.New.Fingerprint
	}
	return ev
}

// runner returns a hook and gate runner whose every try and check is
// audited as a step of r.
func (e *Engine) runner(a *config.App, r *Rotation) *consumers.Runner {
	return consumers.NewRunner(consumers.Options{
		Logger: e.log.With(logApp, a.Name, logRotationID, r.ID),
		Clock:  e.deps.Clock, Sleep: e.deps.Sleep, Scrub: e.scrubber(a),
		OnAttempt: func(at consumers.Attempt) {
			rec := audit.Record{Kind: audit.KindRotationStep, App: a.Name,
				ClientID: a.ClientID, RotationID: r.ID, Step: at.Kind + ":" + at.Name,
				Outcome: string(at.Outcome), Detail: at.Error, HTTPStatus: at.HTTPStatus,
				LatencyMS: ms(at.Duration), Actor: "keyturn"}
			if _, err := e.deps.Audit.Append(context.Background(), rec); err != nil {
				e.log.Error("audit hook attempt", logApp, a.Name, logErr, err)
			}
		}})
}

// scrubber redacts the app's tracked secrets from hook output, read once
// when the runner is made.
func (e *Engine) scrubber(a *config.App) func(string) string {
	list, _ := e.deps.Backends[a.Name].List(context.Background())
	var pairs []string
	for _, s := range list {
		if v := s.Value.Reveal(); len(v) >= 8 {
			pairs = append(pairs, v, "[redacted "+string(s.Fingerprint)+"]")
		}
	}
	r := strings.NewReplacer(pairs...)
	return r.Replace
}

func hookLines(res []consumers.HookResult) []string {
	var out []string
	for _, h := range res {
		line := h.Name + ": ok"
		if !h.OK {
			line = h.Name + ": failed"
			if n := len(h.Attempts); n > 0 && h.Attempts[n-1].Error != "" {
				line += ": " + h.Attempts[n-1].Error
			}
		}
		out = append(out, line)
	}
	return out
}

func gateLines(res consumers.GateResult) []string {
	var out []string
	for _, c := range res.Runs {
		mark := "fail"
		if c.OK {
			mark = "ok"
		}
		out = append(out, fmt.Sprintf("%s %s %s", c.At.UTC().Format("15:04:05"), mark,
			c.Detail))
	}
	return out
}

func lastRun(runs []string) string {
	if len(runs) == 0 {
		return "no check ran"
	}
	return runs[len(runs)-1]
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
