package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/secret"
)

// ResidualWindow is how long a token minted with a secret stays valid
// after the secret is deleted: Smartcar tokens live one hour and cannot
// be revoked.
const ResidualWindow = time.Hour

// EmergencyOptions start an emergency rotation.
type EmergencyOptions struct {
	// Secret is the compromised secret; empty means the current one.
	Secret      secret.Fingerprint
	RevokeFirst bool
	Drain       bool
	Since       time.Time
	Actor       string
}

// Emergency starts the compromise playbook for app: it pages the
// escalation channels at once and runs the rotation with urgency. A
// routine rotation in progress is taken over: before promotion it simply
// becomes the emergency; after promotion it is finished at once (no
// drain) and, if the compromised secret is its new one, a second
// emergency follows it.
func (e *Engine) Emergency(ctx context.Context, app string,
	o EmergencyOptions) (*Rotation, error) {
	a, unlock, err := e.lock(app)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctx = steps(ctx)
	r, err := e.deps.Store.Active(a.Name)
	if err != nil {
		return nil, err
	}
	if r != nil && r.Kind == KindEmergency {
		return r, errorf(ErrRotationRunning, nextStep(a.Name, r),
			"%s: emergency rotation %s is already running (state %s)", a.Name, r.ID, r.State)
	}
	comp, stage, err := e.compromised(ctx, a, o.Secret)
	if err != nil {
		return nil, err
	}
	info := &EmergencyInfo{Compromised: comp, RevokeFirst: o.RevokeFirst, Drain: o.Drain,
		Since: o.Since, StartedAt: e.now()}
	if r == nil && stage == backends.StagePrevious {
		// Only a running rotation keeps a previous secret on purpose; one
		// left outside any (an adopted AWSPREVIOUS) just has to die.
		info.Previous, info.RevokeFirst = true, false
	}
	if info.Since.IsZero() {
		info.Since = comp.CreatedAt
	}
	if r == nil {
		return e.startEmergency(ctx, a, info, o.Actor)
	}
	return e.takeOver(ctx, a, r, info, o.Actor)
}

// compromised finds the named secret (default: current) among those the
// backend tracks, with its stage.
func (e *Engine) compromised(ctx context.Context, a *config.App,
	fp secret.Fingerprint) (SecretInfo, backends.Stage, error) {
	list, err := e.deps.Backends[a.Name].List(ctx)
	if err != nil {
		return SecretInfo{}, "", fmt.Errorf("%s: list secrets: %w", a.Name, err)
	}
	for _, s := range list {
		if (fp == "" && s.Stage == backends.StageCurrent) || (fp != "" && s.Fingerprint == fp) {
			if s.Stage == backends.StagePending {
				break
			}
			return SecretInfo{s.Fingerprint, s.CreatedAt}, s.Stage, nil
		}
	}
	return SecretInfo{}, "", errorf(ErrUnknownSecret, "keyturn status lists the app's "+
		"secrets by fingerprint", "%s: keyturn tracks no current or previous secret %q",
		a.Name, fp)
}

func (e *Engine) startEmergency(ctx context.Context, a *config.App, info *EmergencyInfo,
	actor string) (*Rotation, error) {
	now := e.now()
	r := &Rotation{ID: newRotationID(now), App: a.Name, Kind: KindEmergency,
		State: StateDue, Reason: "compromised secret " + string(info.Compromised.Fingerprint),
		StartedBy: actor, StartedAt: now, UpdatedAt: now, Old: info.Compromised,
		Prompts: map[State]*PromptState{}, Emergency: info}
	if info.RevokeFirst {
		r.Reason += " (revoke first)"
	}
	if err := e.transition(ctx, a, r, StateDue, actor, r.Reason); err != nil {
		return nil, err
	}
	e.page(ctx, a, r)
	return r, e.advance(ctx, a, r)
}

// takeOver turns the routine rotation r into the emergency.
func (e *Engine) takeOver(ctx context.Context, a *config.App, r *Rotation,
	info *EmergencyInfo, actor string) (*Rotation, error) {
	info.Converted = true
	switch {
	case info.Compromised.Fingerprint == r.Old.Fingerprint:
		// The rotation already replaces the leaked secret: hurry it.
	case info.Compromised.Fingerprint == r.New.Fingerprint && !r.State.beforePromotion():
		// The new secret leaked: finish retiring the old one at once, then
		// rotate the leaked one.
		info.FollowUp = true
		info.RevokeFirst = false
	default:
		return r, errorf(ErrWrongState, "abort it with keyturn abort "+a.Name+
			", then start the emergency again", "%s: rotation %s (state %s) does not "+
			"involve secret %s", a.Name, r.ID, r.State, info.Compromised.Fingerprint)
	}
	if info.RevokeFirst && r.State != StateAwaitNew && r.State != StateDue {
		return r, errorf(ErrTooLate, "run the emergency without --revoke-first",
			"%s: rotation %s is in state %s; revoke-first only applies before a new "+
				"secret was handed over", a.Name, r.ID, r.State)
	}
	r.Kind, r.Emergency = KindEmergency, info
	if r.State == StateDraining && !info.Drain {
		r.DrainUntil = e.now()
	}
	if err := e.transition(ctx, a, r, r.State, actor, "taken over by an emergency for "+
		string(info.Compromised.Fingerprint)); err != nil {
		return r, err
	}
	e.page(ctx, a, r)
	if info.RevokeFirst && r.State == StateAwaitNew {
		// Ask for the deletion first, as a revoke-first run does.
		if err := e.leaveWait(ctx, a, r, StateDue, actor, "revoke first"); err != nil {
			return r, err
		}
	} else if r.WaitsForPerson() {
		e.prompt(ctx, a, r, r.State, 0, true)
	}
	return r, e.advance(ctx, a, r)
}

// page tells the escalation channels an emergency started.
func (e *Engine) page(ctx context.Context, a *config.App, r *Rotation) {
	ev := e.event(a, r, notify.KindPage)
	ev.Severity = notify.SeverityCritical
	ev.DedupKey = r.ID + ":page"
	ev.Detail = fmt.Sprintf("secret %s (created %s) is compromised. ", r.Emergency.
		Compromised.Fingerprint, r.Emergency.Compromised.CreatedAt.Format(time.RFC3339))
	if r.Emergency.RevokeFirst {
		ev.Detail += "Revoke first was chosen: consumers fail from the deletion until " +
			"the new secret is promoted. "
	}
	ev.Detail += "Tokens minted with it stay valid up to 60 minutes after it is deleted."
	ev.Command = "keyturn status"
	e.send(ctx, e.channels(a, r, true), ev)
}

// pendingFollowUp starts the emergency for the new secret of a routine
// rotation that leaked after its promotion. The intent is saved in the
// app state before the first rotation ends, so a crash in between does
// not lose it; it is cleared once the follow-up has started.
func (e *Engine) pendingFollowUp(ctx context.Context, a *config.App) (bool, error) {
	st, err := e.deps.Store.AppState(a.Name)
	if err != nil || st.FollowUpOf == "" {
		return false, err
	}
	prev, err := e.deps.Store.Get(st.FollowUpOf)
	if err != nil || prev == nil || prev.Emergency == nil {
		return false, err
	}
	cur, err := e.deps.Backends[a.Name].Get(ctx, backends.StageCurrent)
	if err != nil {
		return false, err
	}
	info := &EmergencyInfo{Compromised: SecretInfo{cur.Fingerprint, cur.CreatedAt},
		Drain: prev.Emergency.Drain, Since: prev.Emergency.Since}
	info.StartedAt = e.now()
	r, startErr := e.startEmergency(ctx, a, info, "keyturn (follow-up of "+prev.ID+")")
	if r == nil {
		return false, startErr
	}
	// Saved is started: a failure in its first steps is retried as the
	// rotation's own, and must not start a second follow-up.
	st, err = e.deps.Store.AppState(a.Name)
	if err != nil {
		return true, err
	}
	st.FollowUpOf = ""
	return true, errors.Join(startErr, e.deps.Store.PutAppState(a.Name, st))
}

// checkWindows sends a notice when a residual token window closes.
func (e *Engine) checkWindows(ctx context.Context, a *config.App) error {
	st, err := e.deps.Store.AppState(a.Name)
	if err != nil || len(st.Windows) == 0 {
		return err
	}
	now := e.now()
	var open []Window
	var closed []Window
	for _, w := range st.Windows {
		if now.Before(w.EndsAt) {
			open = append(open, w)
		} else {
			closed = append(closed, w)
		}
	}
	if len(closed) == 0 {
		return nil
	}
	st.Windows = open
	if err := e.deps.Store.PutAppState(a.Name, st); err != nil {
		return err
	}
	for _, w := range closed {
		ev := notify.Event{Kind: notify.KindWindowClosed, Time: now, App: a.Name,
			ClientID: a.ClientID, RotationID: w.RotationID, RotationKind: KindEmergency,
			Detail: fmt.Sprintf("tokens minted with compromised secret %s expired at %s; "+
				"nothing issued with it is usable any more", w.Fingerprint,
				w.EndsAt.Format(time.RFC3339))}
		e.send(ctx, e.channels(a, &Rotation{Kind: KindEmergency}, true), ev)
	}
	return nil
}
