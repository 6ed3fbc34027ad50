package awssm

import (
	"context"
	"fmt"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

// Promote moves AWSCURRENT onto rotationID's pending version (Secrets
// Manager moves AWSPREVIOUS onto the old current one), then takes
// AWSPENDING off it. Run again after a crash between the two, it finishes
// the second.
func (b *Backend) Promote(ctx context.Context, rotationID string,
	fp secret.Fingerprint) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.promote(ctx, rotationID, fp); err != nil {
		return b.fail("promote rotation "+rotationID+" in", err)
	}
	return nil
}

func (b *Backend) promote(ctx context.Context, rotationID string,
	fp secret.Fingerprint) error {
	st, err := b.load(ctx)
	if err != nil {
		return err
	}
	if c := st.current; c != nil && c.secret.Fingerprint == fp {
		// Promoted already; finish a promotion cut short after its move.
		return b.moveLabel(ctx, st, labelPending, "", st.strayPending)
	}
	p := st.pending
	switch {
	case p == nil:
		return fmt.Errorf("no pending secret %s: %w", fp, backends.ErrNotFound)
	case p.secret.RotationID != rotationID:
		return b.foreignPending(p)
	case p.secret.Fingerprint != fp:
		return fmt.Errorf("%w: pending is %s, not %s", backends.ErrWrongSecret,
			p.secret.Fingerprint, fp)
	case st.previous != nil:
		return fmt.Errorf("%w (%s, version %s): remove it first",
			backends.ErrPreviousExists, st.previous.secret.Fingerprint, st.previous.id)
	}

	from := ""
	if st.current != nil {
		from = st.current.id
	}
	stepHook("before-current-move")
	if err := b.moveLabel(ctx, st, labelCurrent, p.id, from); err != nil {
		return err
	}
	stepHook("after-current-move")
	if err := b.moveLabel(ctx, st, labelPending, "", p.id); err != nil {
		return err
	}
	b.log.Info("pending secret promoted to current", logRotationID, rotationID,
		logSecretFP, fp, logVersionID, p.id)
	return nil
}

// Rollback puts AWSPENDING on rotationID's version, moves AWSCURRENT back
// to the AWSPREVIOUS version, and takes AWSPREVIOUS (which Secrets Manager
// puts on the version AWSCURRENT left) off the rolled-back one. Each step
// is safe to repeat after a crash.
func (b *Backend) Rollback(ctx context.Context, rotationID string,
	fp secret.Fingerprint) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.rollback(ctx, rotationID, fp); err != nil {
		return b.fail("roll back rotation "+rotationID+" in", err)
	}
	return nil
}

func (b *Backend) rollback(ctx context.Context, rotationID string,
	fp secret.Fingerprint) error {
	st, err := b.load(ctx)
	if err != nil {
		return err
	}
	if p := st.pending; p != nil && p.secret.Fingerprint == fp {
		// Rolled back already; finish one cut short after its move.
		return b.moveLabel(ctx, st, labelPrevious, "", st.strayPrevious)
	}
	c := st.current
	switch {
	case c == nil || c.secret.Fingerprint != fp:
		return fmt.Errorf("%w: %s is neither current nor pending",
			backends.ErrWrongSecret, fp)
	case st.pending != nil:
		return b.foreignPending(st.pending)
	case st.previous == nil:
		return fmt.Errorf("no previous secret to roll back to: %w", backends.ErrNotFound)
	}

	if st.strayPending != c.id {
		if err := b.moveLabel(ctx, st, labelPending, c.id, ""); err != nil {
			return err
		}
	}
	if err := b.moveLabel(ctx, st, labelCurrent, st.previous.id, c.id); err != nil {
		return err
	}
	stepHook("after-rollback-move")
	if err := b.moveLabel(ctx, st, labelPrevious, "", c.id); err != nil {
		return err
	}
	b.log.Info("promotion rolled back", logRotationID, rotationID,
		logSecretFP, fp, "current_fp", st.previous.secret.Fingerprint)
	return nil
}

// RemovePrevious takes AWSPREVIOUS off the previous version. The version is
// then deprecated; nothing is deleted.
func (b *Backend) RemovePrevious(ctx context.Context, fp secret.Fingerprint) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, err := b.load(ctx)
	if err == nil {
		err = b.removePrevious(ctx, st, fp)
	}
	if err != nil {
		return b.fail("remove previous "+string(fp)+" from", err)
	}
	return nil
}

func (b *Backend) removePrevious(ctx context.Context, st *state,
	fp secret.Fingerprint) error {
	p := st.previous
	if p == nil {
		return nil
	}
	if p.secret.Fingerprint != fp {
		return fmt.Errorf("%w: previous is %s, not %s", backends.ErrWrongSecret,
			p.secret.Fingerprint, fp)
	}
	if err := b.moveLabel(ctx, st, labelPrevious, "", p.id); err != nil {
		return err
	}
	b.log.Info("previous secret removed", logSecretFP, fp, logVersionID, p.id)
	return nil
}
