package rotator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar"
)

// transition moves r to state `to`: audit record first, then the
// database, then the log. If the audit log refuses the record, nothing
// else happens (fail closed).
func (e *Engine) transition(ctx context.Context, a *config.App, r *Rotation, to State,
	actor, detail string) error {
	now := e.now()
	prev := r.State
	_, err := e.deps.Audit.Append(ctx, audit.Record{Kind: audit.KindRotationStep,
		App: a.Name, ClientID: a.ClientID, RotationID: r.ID, Step: string(to),
		Actor: actorOr(actor), Detail: detail, Outcome: "ok",
		SecretFP: string(r.stepSecret(to))})
	if err != nil {
		r.State = prev
		return errorf(ErrAuditFailed, "check the audit dir's disk space and permissions; "+
			"keyturn status shows readiness", "%s: enter %s: %v", r.App, to, err)
	}
	crashPoint(string(to) + ":audited")
	r.State, r.UpdatedAt = to, now
	r.RetryAt, r.Attempts = time.Time{}, 0
	r.Timeline = append(r.Timeline, Mark{State: to, At: now, By: actor})
	if to.Terminal() {
		r.EndedAt = now
	}
	if err := e.deps.Store.Put(r); err != nil {
		return fmt.Errorf("%s: save rotation %s: %w", r.App, r.ID, err)
	}
	crashPoint(string(to) + ":saved")
	e.log.Info("rotation step", logApp, r.App, logRotationID, r.ID, logState, to)
	return nil
}

// stepSecret is the secret a state is about, for its audit record.
func (r *Rotation) stepSecret(s State) secret.Fingerprint {
	switch s {
	case StateVerifyNew, StateStaged, StatePromoted:
		return r.New.Fingerprint
	case StateDue, StateAwaitDelete, StateVerifyRevoked, StateRetired:
		return r.Old.Fingerprint
	}
	return ""
}

func actorOr(a string) string {
	if a == "" {
		return "keyturn"
	}
	return a
}

// advance takes every machine step that can be taken now. It stops when
// the rotation waits for a person or for time, or when a step failed.
func (e *Engine) advance(ctx context.Context, a *config.App, r *Rotation) error {
	for !r.State.Terminal() {
		if !r.RetryAt.IsZero() && e.now().Before(r.RetryAt) {
			return nil
		}
		before := r.State
		if err := e.step(ctx, a, r); err != nil {
			return err
		}
		if r.State == before {
			return nil // waiting
		}
	}
	return nil
}

func (e *Engine) step(ctx context.Context, a *config.App, r *Rotation) error {
	switch r.State {
	case StateDue:
		if r.Emergency != nil && r.Emergency.Previous {
			return e.enterWait(ctx, a, r, StateAwaitDelete, "the compromised secret is "+
				"the previous one: nothing replaces it, it only has to be deleted")
		}
		if r.revokeFirst() {
			return e.enterWait(ctx, a, r, StateAwaitDelete, "revoke first: delete the "+
				"compromised secret before a new one exists")
		}
		return e.enterWait(ctx, a, r, StateAwaitNew, "")
	case StateAwaitNew:
		return e.resumeHandoff(ctx, a, r)
	case StateVerifyNew:
		return e.verifyNew(ctx, a, r)
	case StateStaged:
		if r.Hold != "" {
			return nil // rolled back: a person resumes or aborts
		}
		return e.promote(ctx, a, r)
	case StatePromoted:
		// Revoke-first consumers are down until they move, so they are
		// moved too; only the rollback is impossible (see drain).
		return e.startDrain(ctx, a, r)
	case StateDraining:
		return e.drain(ctx, a, r)
	case StateVerifyRevoked:
		return e.verifyRevoked(ctx, a, r)
	case StateRetired:
		return e.retire(ctx, a, r)
	}
	return nil // await_new, await_delete: a person acts
}

// resumeHandoff notices a secret that was written as pending for this
// rotation just before a crash, so the person is not asked again.
func (e *Engine) resumeHandoff(ctx context.Context, a *config.App, r *Rotation) error {
	p, err := e.deps.Backends[a.Name].Get(ctx, backends.StagePending)
	if errors.Is(err, backends.ErrNotFound) {
		return nil
	}
	if err != nil {
		return e.retryLater(ctx, r, "read pending secret", err)
	}
	if p.RotationID != r.ID {
		return nil
	}
	r.New = SecretInfo{p.Fingerprint, p.CreatedAt}
	return e.transition(ctx, a, r, StateVerifyNew, "", "resumed a handed-over secret")
}

func (e *Engine) verifyNew(ctx context.Context, a *config.App, r *Rotation) error {
	be := e.deps.Backends[a.Name]
	p, err := be.Get(ctx, backends.StagePending)
	if errors.Is(err, backends.ErrNotFound) || (err == nil && p.RotationID != r.ID) {
		// Forget it, or a later step would take it for a promoted secret.
		r.New = SecretInfo{}
		r.LastError = "the handed-over secret is no longer pending; hand it over again"
		return e.enterWait(ctx, a, r, StateAwaitNew, "pending secret missing")
	}
	if err != nil {
		return e.retryLater(ctx, r, "read pending secret", err)
	}
	_, err = e.tokenRequest(ctx, a, r, p, audit.PurposeVerifyNew)
	switch {
	case err == nil:
		r.New, r.LastError = SecretInfo{p.Fingerprint, p.CreatedAt}, ""
		return e.transition(ctx, a, r, StateStaged, "", "token request succeeded")
	case isRefusal(err):
		return e.refuseNew(ctx, a, r, p, err)
	case errors.Is(err, ErrAuditFailed):
		return err
	}
	return e.retryLater(ctx, r, "verify the new secret", err)
}

func (e *Engine) refuseNew(ctx context.Context, a *config.App, r *Rotation,
	p backends.Secret, cause error) error {
	if err := e.deps.Backends[a.Name].DiscardPending(ctx, r.ID); err != nil {
		return e.retryLater(ctx, r, "discard the refused secret", err)
	}
	r.New = SecretInfo{}
	r.LastError = fmt.Sprintf("secret %s was refused: %v", p.Fingerprint, cause)
	// The prompt already went out; staying in await_new keeps it, so
	// enter the state without a new prompt.
	if err := e.transition(ctx, a, r, StateAwaitNew, "", "new secret refused"); err != nil {
		return err
	}
	return errorf(ErrSecretRefused,
		fmt.Sprintf("check that you copied the newest secret of client ID %s (the "+
			"Dashboard shows it once; if it is lost, delete it there and create "+
			"another), then run: keyturn submit %s", a.ClientID, a.Name),
		"%s: smartcar refused the handed-over secret %s (%v); the rotation still waits "+
			"for a new secret", a.Name, p.Fingerprint, cause)
}

func (e *Engine) promote(ctx context.Context, a *config.App, r *Rotation) error {
	err := e.deps.Backends[a.Name].Promote(ctx, r.ID, r.New.Fingerprint)
	if err != nil {
		return e.retryLater(ctx, r, "promote the new secret", err)
	}
	crashPoint("backend:promoted")
	if err := e.transition(ctx, a, r, StatePromoted, "", ""); err != nil {
		return err
	}
	e.log.Info("secret promoted", logApp, a.Name, logRotationID, r.ID,
		logSecretFP, r.New.Fingerprint)
	if e.deps.OnPromote != nil {
		e.deps.OnPromote(a.Name)
	}
	return nil
}

func (e *Engine) startDrain(ctx context.Context, a *config.App, r *Rotation) error {
	wait := time.Duration(0)
	if a.Consumers.Mode == "backend" && (r.Emergency == nil || r.Emergency.Drain) {
		wait = a.Consumers.Propagation.D()
	}
	r.DrainUntil, r.Consumers = e.now().Add(wait), &ConsumerStep{}
	detail := fmt.Sprintf("consumers mode %s, window %s", a.Consumers.Mode, wait)
	if a.Consumers.Mode == "manual" {
		return e.enterWait(ctx, a, r, StateDraining, detail)
	}
	return e.transition(ctx, a, r, StateDraining, "", detail)
}

func (e *Engine) verifyRevoked(ctx context.Context, a *config.App, r *Rotation) error {
	old, found, err := e.findSecret(ctx, a, r.Old.Fingerprint)
	if err != nil {
		return e.retryLater(ctx, r, "read the old secret", err)
	}
	if !found {
		// Without the old secret nothing can be proven; keyturn never
		// calls a secret dead on a person's word alone.
		r.LastError = "the old secret is no longer in the backend, so its revocation " +
			"cannot be proven"
		if err := e.transition(ctx, a, r, StateAwaitDelete, "", r.LastError); err != nil {
			return err
		}
		return errorf(ErrCannotProve, "restore secret "+string(r.Old.Fingerprint)+
			" in "+e.deps.Backends[a.Name].String()+" (for Vault, check the mount's "+
			"max_versions is at least 3), then run: keyturn confirm-deleted "+a.Name,
			"%s: %s", a.Name, r.LastError)
	}
	_, err = e.tokenRequest(ctx, a, r, old, audit.PurposeVerifyRevoked)
	crashPoint("verify_revoked:answered")
	switch {
	case isInvalidClient(err):
		r.RevokedAt, r.LastError = e.now(), ""
		return e.afterRevoked(ctx, a, r, "old secret answered invalid_client")
	case err == nil:
		r.LastError = "the old secret still works at Smartcar"
		if err := e.transition(ctx, a, r, StateAwaitDelete, "",
			"old secret still works"); err != nil {
			return err
		}
		return errorf(ErrStillAlive, fmt.Sprintf("delete secret %s (created %s) in the "+
			"Dashboard's API Credentials tab, then run: keyturn confirm-deleted %s",
			r.Old.Fingerprint, r.Old.CreatedAt.Format(time.RFC3339), a.Name),
			"%s: the old secret %s still gets tokens from smartcar, so it was not "+
				"deleted; nothing was removed", a.Name, r.Old.Fingerprint)
	case errors.Is(err, ErrAuditFailed):
		return err
	}
	return e.retryLater(ctx, r, "prove the old secret is revoked", err)
}

// afterRevoked moves on once the old secret is proven dead: to retire it,
// or, when it was revoked first, to ask for the new secret.
func (e *Engine) afterRevoked(ctx context.Context, a *config.App, r *Rotation,
	detail string) error {
	if r.revokeFirst() {
		// Ask for the new secret unless one was promoted already: a
		// recorded New alone proves nothing, the backend's current does.
		cur, err := e.deps.Backends[a.Name].Get(ctx, backends.StageCurrent)
		if err != nil {
			return e.retryLater(ctx, r, "read the current secret", err)
		}
		if cur.Fingerprint == r.Old.Fingerprint {
			r.New = SecretInfo{}
			return e.enterWait(ctx, a, r, StateAwaitNew, detail)
		}
	}
	return e.transition(ctx, a, r, StateRetired, "", detail)
}

// findSecret returns the tracked secret with fingerprint fp, whatever
// its stage.
func (e *Engine) findSecret(ctx context.Context, a *config.App,
	fp secret.Fingerprint) (backends.Secret, bool, error) {
	list, err := e.deps.Backends[a.Name].List(ctx)
	if err != nil {
		return backends.Secret{}, false, err
	}
	for _, s := range list {
		if s.Fingerprint == fp {
			return s, true, nil
		}
	}
	return backends.Secret{}, false, nil
}

func (e *Engine) retire(ctx context.Context, a *config.App, r *Rotation) error {
	if err := e.deps.Backends[a.Name].RemovePrevious(ctx, r.Old.Fingerprint); err != nil {
		return e.retryLater(ctx, r, "remove the old secret", err)
	}
	crashPoint("backend:previous_removed")
	st, err := e.deps.Store.AppState(a.Name)
	if err != nil {
		return err
	}
	if r.Emergency != nil {
		// The report and the follow-up are saved before "done", so a crash
		// loses neither.
		if err := e.closeEmergency(ctx, a, r, &st); err != nil {
			return e.retryLater(ctx, r, "write the incident report", err)
		}
		if r.Emergency.FollowUp {
			st.FollowUpOf = r.ID
		}
		if err := e.deps.Store.PutAppState(a.Name, st); err != nil {
			return err
		}
		crashPoint("incident:written")
	}
	if err := e.transition(ctx, a, r, StateDone, "", ""); err != nil {
		return err
	}
	st.LastDone = r.ID
	if err := e.deps.Store.PutAppState(a.Name, st); err != nil {
		return err
	}
	e.notifyDone(ctx, a, r)
	_, err = e.pendingFollowUp(ctx, a)
	return err
}

// retryLater parks a machine step after a transient failure with a
// jittered, growing delay, and reports the failure to the caller.
func (e *Engine) retryLater(ctx context.Context, r *Rotation, what string, err error) error {
	r.Attempts++
	d := time.Second << min(r.Attempts-1, 8)
	d = min(d, 5*time.Minute)
	d = d/2 + rand.N(d/2+1)
	var rl *smartcar.RateLimitError
	if errors.As(err, &rl) {
		d = max(d, rl.RetryAfter) // Smartcar asked for at least this long
	}
	hint := "keyturn retries on its own (next try at %s); keyturn status shows progress"
	if permanent(err) {
		d = 5 * time.Minute
		hint = "this will not fix itself: the backend holds secrets this rotation does " +
			"not expect; keyturn status shows them (next try at %s)"
	}
	r.RetryAt = e.now().Add(d)
	r.LastError = fmt.Sprintf("%s: %v (retry %d at %s)", what, err, r.Attempts,
		r.RetryAt.Format(time.RFC3339))
	if perr := e.deps.Store.Put(r); perr != nil {
		return perr
	}
	e.log.Warn("step failed; will retry", logApp, r.App, logRotationID, r.ID,
		logState, r.State, "attempt", r.Attempts, logErr, err)
	return &Error{Err: ErrRetrying, Msg: fmt.Sprintf("%s: %s: %v", r.App, what, err),
		Hint: fmt.Sprintf(hint, r.RetryAt.Format(time.RFC3339))}
}

// permanent reports backend refusals that retrying cannot cure.
func permanent(err error) bool {
	for _, p := range []error{backends.ErrPreviousExists, backends.ErrWrongSecret,
		backends.ErrForeignPending, backends.ErrExists} {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}
