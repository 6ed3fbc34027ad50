package rotator

import (
	"time"

	"github.com/keyturn/keyturn/secret"
)

// State is a step of the rotation state machine.
type State string

// The states, in order.
const (
	StateDue           State = "due"
	StateAwaitNew      State = "await_new"
	StateVerifyNew     State = "verify_new"
	StateStaged        State = "staged"
	StatePromoted      State = "promoted"
	StateDraining      State = "draining"
	StateAwaitDelete   State = "await_delete"
	StateVerifyRevoked State = "verify_revoked"
	StateRetired       State = "retired"
	StateDone          State = "done"
	// StateAborted ends a rotation stopped before promotion.
	StateAborted State = "aborted"
)

// Kinds of rotation.
const (
	KindRoutine   = "routine"
	KindEmergency = "emergency"
)

// Terminal reports whether s ends a rotation.
func (s State) Terminal() bool { return s == StateDone || s == StateAborted }

// beforePromotion reports whether the new secret has not reached the
// backend's current stage yet, which is when abort is still safe.
func (s State) beforePromotion() bool {
	switch s {
	case StateDue, StateAwaitNew, StateVerifyNew, StateStaged:
		return true
	}
	return false
}

// Rotation is one rotation of one credential, as persisted.
type Rotation struct {
	ID        string    `json:"id"`
	App       string    `json:"app"`
	Kind      string    `json:"kind"`
	State     State     `json:"state"`
	Reason    string    `json:"reason,omitempty"`
	StartedBy string    `json:"started_by,omitempty"`
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
	EndedAt   time.Time `json:"ended_at,omitzero"`

	// Old is the secret being replaced: current when the rotation began.
	Old SecretInfo `json:"old"`
	// New is the secret handed over; empty until submit.
	New SecretInfo `json:"new,omitzero"`

	DrainUntil time.Time `json:"drain_until,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	// Prompts remembers what was sent for each waiting state, so a
	// restart never repeats a prompt for the same instant.
	Prompts map[State]*PromptState `json:"prompts,omitempty"`
	// RetryAt holds back a machine step that failed transiently.
	RetryAt  time.Time `json:"retry_at,omitzero"`
	Attempts int       `json:"attempts,omitempty"`
	// LastError is the last failure a person should know about.
	LastError string `json:"last_error,omitempty"`

	Timeline []Mark `json:"timeline"`

	// Consumers is the progress of the draining state.
	Consumers *ConsumerStep `json:"consumers,omitempty"`
	// Hold keeps a staged rotation from promoting again after a rollback,
	// until a person resumes it; it says why it was rolled back.
	Hold string `json:"hold,omitempty"`

	// Emergency holds what only an emergency rotation has.
	Emergency *EmergencyInfo `json:"emergency,omitempty"`
}

// EmergencyInfo is the emergency side of a rotation.
type EmergencyInfo struct {
	// Compromised is the leaked secret; it is Old once the rotation runs.
	Compromised SecretInfo `json:"compromised"`
	RevokeFirst bool       `json:"revoke_first,omitempty"`
	// Previous is set when the compromised secret is the backend's
	// previous one: nothing replaces it, it only has to be proven dead.
	Previous bool `json:"previous,omitempty"`
	// StartedAt is when the emergency began, later than the rotation's
	// start when it took over a routine one.
	StartedAt time.Time `json:"started_at,omitzero"`
	// Drain keeps the consumer drain, which emergencies skip by default.
	Drain bool `json:"drain,omitempty"`
	// Since bounds the audit review; default the compromised secret's
	// creation.
	Since time.Time `json:"since"`
	// Converted names the routine rotation this one took over, if any.
	Converted bool `json:"converted,omitempty"`
	// FollowUp is set when the compromised secret is the new secret of a
	// routine rotation that must finish first: a second emergency for it
	// starts as soon as this rotation is done.
	FollowUp bool `json:"follow_up,omitempty"`
	// WindowEndsAt is RevokedAt plus one hour: tokens minted with the
	// compromised secret stay valid until then and cannot be revoked.
	WindowEndsAt time.Time `json:"window_ends_at,omitzero"`
	Report       []string  `json:"report,omitempty"`
}

// SecretInfo names a secret without its value.
type SecretInfo struct {
	Fingerprint secret.Fingerprint `json:"fingerprint,omitempty"`
	CreatedAt   time.Time          `json:"created_at,omitzero"`
}

// Mark is one entry of a rotation's timeline.
type Mark struct {
	State State     `json:"state"`
	At    time.Time `json:"at"`
	By    string    `json:"by,omitempty"`
}

// PromptState is what was sent for one waiting state.
type PromptState struct {
	FirstAt   time.Time `json:"first_at"`
	LastAt    time.Time `json:"last_at"`
	Reminders int       `json:"reminders"`
	Escalated bool      `json:"escalated,omitempty"`
}

// WaitsForPerson reports whether r is parked until someone acts.
func (r *Rotation) WaitsForPerson() bool {
	return r.State == StateAwaitNew || r.State == StateAwaitDelete
}

func (r *Rotation) revokeFirst() bool { return r.Emergency != nil && r.Emergency.RevokeFirst }
