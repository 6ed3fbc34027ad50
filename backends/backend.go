// Package backends defines where keyturn keeps a credential's secrets and
// the contract every store must meet.
//
// A credential has at most three secrets at a time, mirroring Smartcar's
// limit: the current one (what consumers use, and always one that has
// passed a token request), the previous one (kept after a promotion until
// it is proven dead at Smartcar) and a pending one (handed over by a person,
// not yet promoted). A Backend moves secrets between those stages; it knows
// nothing of Smartcar and never decides when a move is safe. The rotator
// does, and every method here is idempotent so that a rotation can resume
// after a crash at any point.
//
// Each store lives in its own package (backends/env, backends/vault,
// backends/awssm) and is checked by the shared suite in
// backends/conformance.
package backends

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyturn/keyturn/secret"
)

// Stage is the lifecycle position of a tracked secret.
type Stage string

// The stages a secret can hold.
const (
	StageCurrent  Stage = "current"
	StagePrevious Stage = "previous"
	StagePending  Stage = "pending"
)

// Secret is one tracked secret of a credential.
type Secret struct {
	Stage       Stage
	Value       secret.Value
	Fingerprint secret.Fingerprint
	// CreatedAt is when the secret entered keyturn's care: when it was
	// handed over, or, for a secret keyturn found already stored, the best
	// time the store can tell (a stored created_at, a version's creation).
	CreatedAt time.Time
	// RotationID names the rotation that handed the secret over; empty for
	// a secret that was stored before keyturn managed it.
	RotationID string
}

// Backend stores one credential's secrets.
type Backend interface {
	// List returns the tracked secrets in the order current, previous,
	// pending; stages with no secret are left out.
	List(ctx context.Context) ([]Secret, error)

	// Get returns the secret at stage, or an error wrapping ErrNotFound.
	Get(ctx context.Context, stage Stage) (Secret, error)

	// Init stores s as the current secret of a credential that has none.
	// It fails with ErrExists when a current secret is already stored with
	// another value, and succeeds without change when it holds s.
	Init(ctx context.Context, s secret.Value, createdAt time.Time) error

	// WritePending stores s as pending for rotationID. Writing again for
	// the same rotation replaces the value (a person corrected a wrong
	// hand-off). A pending secret of another rotation is never replaced:
	// the call fails with an error wrapping ErrForeignPending.
	WritePending(ctx context.Context, rotationID string, s secret.Value,
		createdAt time.Time) error

	// DiscardPending forgets rotationID's pending secret. It succeeds when
	// there is none.
	DiscardPending(ctx context.Context, rotationID string) error

	// Promote makes rotationID's pending secret, which must have
	// fingerprint fp, current, and the current one previous. It succeeds
	// without change when fp is already current. It fails with
	// ErrPreviousExists while an older previous secret is still tracked,
	// and with ErrCASConflict when another writer changed the current
	// secret underneath it.
	Promote(ctx context.Context, rotationID string, fp secret.Fingerprint) error

	// Rollback undoes rotationID's promotion: the previous secret becomes
	// current again and rotationID's secret (fingerprint fp) goes back to
	// pending. It succeeds without change when fp is already pending.
	Rollback(ctx context.Context, rotationID string, fp secret.Fingerprint) error

	// RemovePrevious forgets the previous secret, which must have
	// fingerprint fp. Call it only once that secret is proven dead at
	// Smartcar. It succeeds when no secret with fp is tracked.
	RemovePrevious(ctx context.Context, fp secret.Fingerprint) error

	// String names the store without secrets, such as
	// `env file "/etc/keyturn/demo.env"`.
	String() string

	// Close releases connections and watchers.
	Close() error
}

// Errors callers branch on. Backends wrap them with context.
var (
	ErrNotFound       = errors.New("no secret at that stage")
	ErrExists         = errors.New("a different current secret is already stored")
	ErrForeignPending = errors.New("a pending secret of another rotation is stored")
	ErrPreviousExists = errors.New("a previous secret is still tracked")
	ErrCASConflict    = errors.New("the stored secret changed underneath this write")
	ErrWrongSecret    = errors.New("the stored secret has another fingerprint")
)

// ForeignPendingError describes a pending secret that keyturn did not
// write for the rotation asking, with the command that clears it.
type ForeignPendingError struct {
	RotationID  string // the rotation that wrote it, empty when unknown
	Fingerprint secret.Fingerprint
	Hint        string
}

func (e *ForeignPendingError) Error() string {
	owner := "another tool"
	if e.RotationID != "" {
		owner = "rotation " + e.RotationID
	}
	return fmt.Sprintf("%v (%s, written by %s)", ErrForeignPending, e.Fingerprint, owner)
}

// Unwrap makes errors.Is(err, ErrForeignPending) hold.
func (e *ForeignPendingError) Unwrap() error { return ErrForeignPending }

// Find returns the secret at stage from list, and whether there was one.
func Find(list []Secret, stage Stage) (Secret, bool) {
	for _, s := range list {
		if s.Stage == stage {
			return s, true
		}
	}
	return Secret{}, false
}
