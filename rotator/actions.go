package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar"
)

// Submit hands over the new secret of app's running rotation. The secret
// is written as pending before anything else, then proven with a real
// token request; a refused secret is discarded and the rotation keeps
// waiting.
func (e *Engine) Submit(ctx context.Context, app string, v secret.Value,
	actor string) (*Rotation, error) {
	a, unlock, err := e.lock(app)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctx = steps(ctx)
	r, err := e.running(a, StateAwaitNew, "keyturn submit")
	if err != nil {
		return nil, err
	}
	if err := e.checkFresh(ctx, a, v); err != nil {
		return r, err
	}
	if err := e.auditAction(ctx, a, r, audit.KindHandoff, "submit", actor,
		v.Fingerprint()); err != nil {
		return r, err
	}
	be := e.deps.Backends[a.Name]
	if err := be.WritePending(ctx, r.ID, v, e.now()); err != nil {
		var fe *backends.ForeignPendingError
		if errors.As(err, &fe) {
			return r, errorf(ErrWrongState, fe.Hint, "%s: %s holds a pending secret "+
				"keyturn did not write for this rotation: %v", a.Name, be, fe)
		}
		return r, fmt.Errorf("%s: store the new secret as pending in %s: %w", a.Name, be, err)
	}
	crashPoint("backend:pending_written")
	r.New = SecretInfo{Fingerprint: v.Fingerprint(), CreatedAt: e.now()}
	if err := e.leaveWait(ctx, a, r, StateVerifyNew, actor, "secret handed over"); err != nil {
		return r, err
	}
	return r, e.advance(ctx, a, r)
}

// checkFresh refuses a secret keyturn already tracks: handing the current
// secret over again would rotate nothing.
func (e *Engine) checkFresh(ctx context.Context, a *config.App, v secret.Value) error {
	if v.IsZero() {
		return errorf(ErrSecretRefused, "paste the secret the Dashboard showed, or pipe it "+
			"on stdin", "%s: the secret is empty", a.Name)
	}
	list, err := e.deps.Backends[a.Name].List(ctx)
	if err != nil {
		return fmt.Errorf("%s: list secrets: %w", a.Name, err)
	}
	for _, s := range list {
		if s.Fingerprint == v.Fingerprint() && s.Stage != backends.StagePending {
			return errorf(ErrSecretRefused, "create a new secret in the Dashboard and "+
				"hand that one over", "%s: secret %s is already the %s secret", a.Name,
				s.Fingerprint, s.Stage)
		}
	}
	return nil
}

// ConfirmDeleted records that a person deleted the old secret in the
// Dashboard, and proves it with a token request that must be refused.
func (e *Engine) ConfirmDeleted(ctx context.Context, app, actor string) (*Rotation, error) {
	a, unlock, err := e.lock(app)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctx = steps(ctx)
	r, err := e.running(a, StateAwaitDelete, "keyturn confirm-deleted")
	if err != nil {
		return nil, err
	}
	if err := e.auditAction(ctx, a, r, audit.KindOperatorAction, "confirm_deleted",
		actor, r.Old.Fingerprint); err != nil {
		return r, err
	}
	if err := e.leaveWait(ctx, a, r, StateVerifyRevoked, actor,
		"person says the old secret is deleted"); err != nil {
		return r, err
	}
	return r, e.advance(ctx, a, r)
}

// Abort stops app's rotation if the new secret is not current yet. A
// pending secret is forgotten by keyturn; the person should delete it in
// the Dashboard too.
func (e *Engine) Abort(ctx context.Context, app, actor, reason string) (*Rotation, error) {
	a, unlock, err := e.lock(app)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctx = steps(ctx)
	r, err := e.running(a, "", "")
	if err != nil {
		return nil, err
	}
	if !r.RevokedAt.IsZero() {
		return r, errorf(ErrTooLate, "create a new secret in the Dashboard and run: "+
			"keyturn submit "+a.Name, "%s: the compromised secret was already deleted and "+
			"proven revoked at %s; aborting now would leave %s without a working secret",
			a.Name, r.RevokedAt.Format(time.RFC3339), a.Name)
	}
	if !r.State.beforePromotion() {
		return r, errorf(ErrTooLate, "finish it: delete the old secret in the Dashboard, "+
			"then run keyturn confirm-deleted "+a.Name,
			"%s: rotation %s already promoted the new secret (state %s); aborting now "+
				"would leave consumers on an unknown secret", a.Name, r.ID, r.State)
	}
	if err := e.deps.Backends[a.Name].DiscardPending(ctx, r.ID); err != nil {
		return r, fmt.Errorf("%s: discard pending secret: %w", a.Name, err)
	}
	if err := e.leaveWait(ctx, a, r, StateAborted, actor, reason); err != nil {
		return r, err
	}
	return r, nil
}

// running returns app's active rotation, checking it waits in `want`
// (any state when empty).
func (e *Engine) running(a *config.App, want State, cmd string) (*Rotation, error) {
	r, err := e.deps.Store.Active(a.Name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, errorf(ErrNoRotation, "start one with: keyturn rotate "+a.Name,
			"%s: no rotation is running", a.Name)
	}
	if want != "" && r.State != want {
		return r, errorf(ErrWrongState, nextStep(a.Name, r),
			"%s: rotation %s is in state %s, not %s, so %s does not apply now",
			a.Name, r.ID, r.State, want, cmd)
	}
	return r, nil
}

// nextStep says what a person should do for r now.
func nextStep(app string, r *Rotation) string {
	switch r.State {
	case StateAwaitNew:
		return "create a secret in the Dashboard, then run: keyturn submit " + app
	case StateAwaitDelete:
		return "delete the old secret in the Dashboard, then run: keyturn confirm-deleted " + app
	case StateStaged:
		if r.Hold != "" {
			return fmt.Sprintf("rolled back (%s); fix the consumers, then run keyturn "+
				"resume %s, or keyturn abort %s", r.Hold, app, app)
		}
	case StateDraining:
		if r.Consumers != nil && !r.Consumers.Confirmed && r.Prompts[StateDraining] != nil {
			return "update the app's consumers to the new secret, then run: keyturn " +
				"confirm-updated " + app
		}
		return fmt.Sprintf("consumers are switching until %s; then delete the old "+
			"secret when prompted", r.DrainUntil.Format(time.RFC3339))
	}
	return "keyturn status shows where the rotation is"
}

func (e *Engine) auditAction(ctx context.Context, a *config.App, r *Rotation,
	kind audit.Kind, step, actor string, fp secret.Fingerprint) error {
	_, err := e.deps.Audit.Append(ctx, audit.Record{Kind: kind, App: a.Name,
		ClientID: a.ClientID, RotationID: r.ID, Step: step, Actor: actorOr(actor),
		SecretFP: string(fp), Outcome: "ok"})
	if err != nil {
		return errorf(ErrAuditFailed, "check the audit dir's disk space and permissions",
			"%s: %s refused: %v", a.Name, step, err)
	}
	return nil
}

// CheckResult is the outcome of a token request with the current secret.
type CheckResult struct {
	App         string             `json:"app"`
	Fingerprint secret.Fingerprint `json:"fingerprint"`
	OK          bool               `json:"ok"`
	Class       string             `json:"class"`
	Status      int                `json:"status"`
	LatencyMS   float64            `json:"latency_ms"`
	Error       string             `json:"error,omitempty"`
}

// Check asks Smartcar for a token with app's current secret.
func (e *Engine) Check(ctx context.Context, app, actor string) (CheckResult, error) {
	a, ok := e.apps[app]
	if !ok {
		return CheckResult{}, errorf(ErrUnknownApp, "keyturn status lists the configured "+
			"apps", "no app is named %q", app)
	}
	cur, err := e.deps.Backends[a.Name].Get(ctx, backends.StageCurrent)
	if err != nil {
		return CheckResult{}, fmt.Errorf("%s: read current secret: %w", a.Name, err)
	}
	tok, err := e.tokenRequest(ctx, a, &Rotation{}, cur, audit.PurposeCheck)
	res := CheckResult{App: app, Fingerprint: cur.Fingerprint, OK: err == nil,
		Class: smartcar.Class(err), Status: tok.Status,
		LatencyMS: float64(tok.Latency) / float64(time.Millisecond)}
	var re *smartcar.RequestError
	if errors.As(err, &re) {
		res.Status = re.Status
		res.LatencyMS = float64(re.Latency) / float64(time.Millisecond)
	}
	if err != nil {
		res.Error = err.Error()
	}
	if errors.Is(err, ErrAuditFailed) {
		return res, err
	}
	return res, nil
}

// tokenRequest asks Smartcar for a token with s and audits the request.
// If the audit record cannot be written the outcome is not used.
func (e *Engine) tokenRequest(ctx context.Context, a *config.App, r *Rotation,
	s backends.Secret, purpose string) (smartcar.Token, error) {
	tok, err := e.deps.Tokens.Token(ctx, a.ClientID, s.Value)
	rec := audit.Record{Kind: audit.KindTokenRequest, App: a.Name, ClientID: a.ClientID,
		SecretFP: string(s.Fingerprint), SecretStage: string(s.Stage), Purpose: purpose,
		RotationID: r.ID, Actor: "keyturn", Outcome: "ok", HTTPStatus: tok.Status,
		LatencyMS: ms(tok.Latency)}
	if err == nil {
		rec.TokenFP = string(tok.Fingerprint())
	} else {
		rec.Outcome, rec.ErrorClass = "failed", smartcar.Class(err)
		var re *smartcar.RequestError
		if errors.As(err, &re) {
			rec.HTTPStatus, rec.LatencyMS = re.Status, ms(re.Latency)
		}
	}
	if _, aerr := e.deps.Audit.Append(ctx, rec); aerr != nil {
		return smartcar.Token{}, errorf(ErrAuditFailed, "check the audit dir",
			"%s: token request not recorded: %v", a.Name, aerr)
	}
	return tok, err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// isRefusal reports whether Smartcar refused the secret itself, as
// opposed to failing to answer.
func isRefusal(err error) bool {
	return errors.Is(err, smartcar.ErrInvalidClient) || errors.Is(err, smartcar.ErrInvalidRequest)
}

func isInvalidClient(err error) bool { return errors.Is(err, smartcar.ErrInvalidClient) }

// ConfirmUpdated records that a person moved an app's hand-managed
// consumers to the new secret (consumers mode manual).
func (e *Engine) ConfirmUpdated(ctx context.Context, app, actor string) (*Rotation, error) {
	a, unlock, err := e.lock(app)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctx = steps(ctx)
	r, err := e.running(a, StateDraining, "keyturn confirm-updated")
	if err != nil {
		return nil, err
	}
	if a.Consumers.Mode != "manual" || r.Consumers == nil {
		return r, errorf(ErrWrongState, nextStep(a.Name, r), "%s: consumers mode is %s; "+
			"keyturn moves them itself", a.Name, a.Consumers.Mode)
	}
	if err := e.auditAction(ctx, a, r, audit.KindOperatorAction, "confirm_updated", actor,
		r.New.Fingerprint); err != nil {
		return r, err
	}
	r.Consumers.Confirmed = true
	if err := e.deps.Store.Put(r); err != nil {
		return r, err
	}
	return r, e.advance(ctx, a, r)
}

// Resume promotes again a rotation that was rolled back, once a person
// fixed what made its hooks or gate fail.
func (e *Engine) Resume(ctx context.Context, app, actor string) (*Rotation, error) {
	a, unlock, err := e.lock(app)
	if err != nil {
		return nil, err
	}
	defer unlock()
	ctx = steps(ctx)
	r, err := e.running(a, StateStaged, "keyturn resume")
	if err != nil {
		return nil, err
	}
	if r.Hold == "" {
		return r, errorf(ErrWrongState, nextStep(a.Name, r), "%s: rotation %s was not "+
			"rolled back", a.Name, r.ID)
	}
	if err := e.auditAction(ctx, a, r, audit.KindOperatorAction, "resume", actor,
		r.New.Fingerprint); err != nil {
		return r, err
	}
	// The secret waited pending, perhaps for hours: prove it again before
	// it is current, as any promotion is.
	r.Hold, r.Consumers = "", nil
	if err := e.transition(ctx, a, r, StateVerifyNew, actor,
		"resumed after a rollback"); err != nil {
		return r, err
	}
	return r, e.advance(ctx, a, r)
}
