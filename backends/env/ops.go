package env

import (
	"context"
	"fmt"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

// List returns the tracked secrets.
func (b *Backend) List(ctx context.Context) ([]backends.Secret, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ef, st, err := b.load()
	if err != nil {
		return nil, err
	}
	return b.list(ef, st), nil
}

func (b *Backend) list(ef *envFile, st *state) []backends.Secret {
	var out []backends.Secret
	if cur, ok := b.current(ef, st); ok {
		out = append(out, cur)
	}
	if st.Previous != nil {
		out = append(out, fromEntry(backends.StagePrevious, st.Previous))
	}
	if st.Pending != nil {
		out = append(out, fromEntry(backends.StagePending, st.Pending))
	}
	return out
}

// Get returns the secret at stage.
func (b *Backend) Get(ctx context.Context, stage backends.Stage) (backends.Secret, error) {
	list, err := b.List(ctx)
	if err != nil {
		return backends.Secret{}, err
	}
	if s, ok := backends.Find(list, stage); ok {
		return s, nil
	}
	return backends.Secret{}, fmt.Errorf("env: %s: %w", stage, backends.ErrNotFound)
}

// Init writes the first current secret.
func (b *Backend) Init(ctx context.Context, v secret.Value, createdAt time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ef, st, err := b.load()
	if err != nil {
		return err
	}
	if cur, ok := b.current(ef, st); ok {
		if cur.Fingerprint == v.Fingerprint() {
			return nil
		}
		return fmt.Errorf("env: init %q: %w (%s)", b.o.File, backends.ErrExists,
			cur.Fingerprint)
	}
	st.Current = &entry{Fingerprint: v.Fingerprint(), CreatedAt: createdAt.UTC()}
	if err := b.saveState(st); err != nil {
		return err
	}
	return b.saveEnv(ef, v)
}

// WritePending stores v as rotationID's pending secret.
func (b *Backend) WritePending(ctx context.Context, rotationID string, v secret.Value,
	createdAt time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, st, err := b.load()
	if err != nil {
		return err
	}
	if p := st.Pending; p != nil && p.RotationID != rotationID {
		return &backends.ForeignPendingError{RotationID: p.RotationID,
			Fingerprint: p.Fingerprint,
			Hint:        "abort that rotation first: keyturn abort APP"}
	}
	st.Pending = &entry{Value: v.Reveal(), Fingerprint: v.Fingerprint(),
		CreatedAt: createdAt.UTC(), RotationID: rotationID}
	return b.saveState(st)
}

// DiscardPending forgets rotationID's pending secret.
func (b *Backend) DiscardPending(ctx context.Context, rotationID string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, st, err := b.load()
	if err != nil {
		return err
	}
	if st.Pending == nil || st.Pending.RotationID != rotationID {
		return nil
	}
	st.Pending = nil
	return b.saveState(st)
}

// Promote swaps the pending secret into the env file. The state file is
// written first with both the old secret (as previous) and the new one
// (as pending), so a crash between the two writes is finished by calling
// Promote again.
func (b *Backend) Promote(ctx context.Context, rotationID string,
	fp secret.Fingerprint) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ef, st, err := b.load()
	if err != nil {
		return err
	}
	cur, hasCur := b.current(ef, st)
	if hasCur && cur.Fingerprint == fp {
		if st.Pending != nil && st.Pending.Fingerprint == fp {
			// Crashed after the env rewrite: finish the bookkeeping.
			st.Current, st.Pending = toEntry(fromEntry("", st.Pending), false), nil
			return b.saveState(st)
		}
		return nil
	}
	p := st.Pending
	if p == nil || p.RotationID != rotationID || p.Fingerprint != fp {
		return fmt.Errorf("env: promote %s: %w", fp, backends.ErrWrongSecret)
	}
	if hasCur {
		if st.Previous != nil && st.Previous.Fingerprint != cur.Fingerprint {
			return fmt.Errorf("env: promote %s: %w (%s)", fp,
				backends.ErrPreviousExists, st.Previous.Fingerprint)
		}
		st.Previous = toEntry(cur, true)
		if err := b.saveState(st); err != nil {
			return err
		}
	}
	if err := b.saveEnv(ef, secret.New(p.Value)); err != nil {
		return err
	}
	st.Current, st.Pending = toEntry(fromEntry("", p), false), nil
	return b.saveState(st)
}

// Rollback puts the previous secret back in the env file and rotationID's
// secret back to pending, state file first as in Promote.
func (b *Backend) Rollback(ctx context.Context, rotationID string,
	fp secret.Fingerprint) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	ef, st, err := b.load()
	if err != nil {
		return err
	}
	cur, hasCur := b.current(ef, st)
	if st.Pending != nil && st.Pending.Fingerprint == fp && (!hasCur || cur.Fingerprint != fp) {
		if hasCur && st.Previous != nil && st.Previous.Fingerprint == cur.Fingerprint {
			// Crashed after the env rewrite: finish the bookkeeping.
			prev := st.Previous
			prev.Value = ""
			st.Current, st.Previous = prev, nil
			return b.saveState(st)
		}
		return nil
	}
	if !hasCur || cur.Fingerprint != fp || st.Previous == nil {
		return fmt.Errorf("env: roll back %s: %w", fp, backends.ErrWrongSecret)
	}
	prev := st.Previous
	cur.RotationID = rotationID
	st.Pending = toEntry(cur, true)
	if err := b.saveState(st); err != nil {
		return err
	}
	if err := b.saveEnv(ef, secret.New(prev.Value)); err != nil {
		return err
	}
	prev.Value = ""
	st.Current, st.Previous = prev, nil
	return b.saveState(st)
}

// RemovePrevious forgets the previous secret.
func (b *Backend) RemovePrevious(ctx context.Context, fp secret.Fingerprint) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, st, err := b.load()
	if err != nil {
		return err
	}
	switch {
	case st.Previous == nil:
		return nil
	case st.Previous.Fingerprint != fp:
		return fmt.Errorf("env: remove previous %s: %w (%s)", fp,
			backends.ErrWrongSecret, st.Previous.Fingerprint)
	}
	st.Previous = nil
	return b.saveState(st)
}
