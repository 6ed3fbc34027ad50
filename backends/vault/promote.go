package vault

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

// Promote writes rotationID's pending secret as the main path's newest
// version with cas (so of two writers only one can win), records the
// version it replaced as previous, then destroys the pending copy. Run
// again after a crash between any two of those, it finishes the rest.
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
		return b.finishPromote(ctx, st, rotationID, fp)
	}
	if err := b.promotable(st, rotationID, fp); err != nil {
		return err
	}
	if err := b.tidy(ctx, st); err != nil {
		return err
	}
	p := st.pending

	bk := book{currentRot: rotationID}
	if c := st.current; c != nil {
		bk.previous, bk.previousRot = c.n, st.book.currentRot
	}
	b.step("before-main-write")
	doc := b.document(p.secret.Value, p.secret.CreatedAt, "")
	bk.current, err = b.writeData(ctx, "write current", b.path, doc, st.main.current)
	if errors.Is(err, backends.ErrCASConflict) {
		return b.afterConflict(ctx, err, func(st *state) error {
			if c := st.current; c != nil && c.secret.Fingerprint == fp {
				return b.finishPromote(ctx, st, rotationID, fp)
			}
			return err
		})
	}
	if err != nil {
		return err
	}
	b.step("after-main-write")
	if err := b.writeCustom(ctx, st, bk.custom(st.main.custom)); err != nil {
		return err
	}
	b.step("after-bookkeeping")
	if err := b.destroyPending(ctx, st, p.n); err != nil {
		return err
	}
	b.log.Info("pending secret promoted to current", logRotationID, rotationID,
		logSecretFP, fp, logVersion, bk.current)
	return nil
}

// promotable checks that rotationID's pending secret is fp and that
// nothing stands in the way of promoting it.
func (b *Backend) promotable(st *state, rotationID string, fp secret.Fingerprint) error {
	p := st.realPending()
	switch {
	case p == nil:
		return fmt.Errorf("no pending secret %s: %w", fp, backends.ErrNotFound)
	case p.secret.RotationID != rotationID:
		return b.foreignPending(p)
	case p.secret.Fingerprint != fp:
		return fmt.Errorf("%w: pending is %s, not %s", backends.ErrWrongSecret,
			p.secret.Fingerprint, fp)
	case st.shownPrevious() != nil:
		return fmt.Errorf("%w (%s, version %d): remove it first",
			backends.ErrPreviousExists, st.previous.secret.Fingerprint, st.previous.n)
	}
	return nil
}

// finishPromote completes a promotion whose write landed: the bookkeeping
// after it, then destroying the pending copy.
func (b *Backend) finishPromote(ctx context.Context, st *state, rotationID string,
	fp secret.Fingerprint) error {
	if !st.synced {
		bk := st.book
		if bk.currentRot == "" {
			bk.currentRot = rotationID
		}
		if err := b.writeCustom(ctx, st, bk.custom(st.main.custom)); err != nil {
			return err
		}
	}
	if p := st.pending; p != nil && p.secret.Fingerprint == fp &&
		p.secret.RotationID == rotationID {
		return b.destroyPending(ctx, st, p.n)
	}
	return nil
}

// afterConflict reads the credential again after a cas write failed and
// lets check decide: the write may have landed after all (the client
// retried a request whose answer was lost), or another writer won.
func (b *Backend) afterConflict(ctx context.Context, conflict error,
	check func(*state) error) error {
	st, err := b.load(ctx)
	if err != nil {
		return errors.Join(conflict, err)
	}
	return check(st)
}

// Rollback writes rotationID's secret back to the pending path, then the
// previous secret as the main path's newest version (cas), then the
// bookkeeping. Run again after a crash between any two, it finishes.
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
	if rolledBack(st, fp) {
		return b.finishRollback(ctx, st)
	}
	c, prev := st.current, st.shownPrevious()
	switch {
	case c == nil || c.secret.Fingerprint != fp:
		return fmt.Errorf("%w: %s is neither current nor pending",
			backends.ErrWrongSecret, fp)
	case st.realPending() != nil:
		return b.foreignPending(st.realPending())
	case prev == nil:
		return fmt.Errorf("no previous secret to roll back to: %w", backends.ErrNotFound)
	}
	if err := b.tidy(ctx, st); err != nil {
		return err
	}
	if err := b.repend(ctx, st, c, rotationID); err != nil {
		return err
	}

	doc := b.document(prev.secret.Value, prev.secret.CreatedAt, "")
	n, err := b.writeData(ctx, "write current", b.path, doc, st.main.current)
	if errors.Is(err, backends.ErrCASConflict) {
		return b.afterConflict(ctx, err, func(st *state) error {
			if rolledBack(st, fp) {
				return b.finishRollback(ctx, st)
			}
			return err
		})
	}
	if err != nil {
		return err
	}
	b.step("after-main-write")
	bk := book{current: n, currentRot: st.book.previousRot}
	if err := b.writeCustom(ctx, st, bk.custom(st.main.custom)); err != nil {
		return err
	}
	b.log.Info("promotion rolled back", logRotationID, rotationID,
		logSecretFP, fp, "current_fp", prev.secret.Fingerprint, logVersion, n)
	return nil
}

// rolledBack reports whether fp is pending and no longer current.
func rolledBack(st *state, fp secret.Fingerprint) bool {
	p, c := st.pending, st.current
	return p != nil && p.secret.Fingerprint == fp &&
		(c == nil || c.secret.Fingerprint != fp)
}

func (b *Backend) finishRollback(ctx context.Context, st *state) error {
	if st.synced {
		return nil
	}
	return b.writeCustom(ctx, st, st.book.custom(st.main.custom))
}

// repend writes c, the current secret being rolled back, to the pending
// path for rotationID, unless a cut-short run already did.
func (b *Backend) repend(ctx context.Context, st *state, c *version,
	rotationID string) error {
	if p := st.pending; p != nil && p.secret.Fingerprint == c.secret.Fingerprint &&
		p.secret.RotationID == rotationID {
		return nil
	}
	doc := b.document(c.secret.Value, c.secret.CreatedAt, rotationID)
	n, err := b.writeData(ctx, "write pending", b.pendingPath(), doc, st.pend.current)
	if err != nil {
		return err
	}
	b.step("after-pending-write")
	return b.destroyPending(ctx, st, n-1)
}

// RemovePrevious stops tracking the previous version and schedules it for
// destruction (now, or after KeepDeleted), then soft-deletes it and, once
// due, destroys it. The schedule is written first so that a crash never
// leaves a dead secret readable and forgotten.
func (b *Backend) RemovePrevious(ctx context.Context, fp secret.Fingerprint) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.removePrevious(ctx, fp); err != nil {
		return b.fail("remove previous "+string(fp)+" from", err)
	}
	return nil
}

func (b *Backend) removePrevious(ctx context.Context, fp secret.Fingerprint) error {
	st, err := b.load(ctx)
	if err != nil {
		return err
	}
	p := st.shownPrevious()
	if p == nil {
		return b.tidy(ctx, st)
	}
	if p.secret.Fingerprint != fp {
		return fmt.Errorf("%w: previous is %s, not %s", backends.ErrWrongSecret,
			p.secret.Fingerprint, fp)
	}
	bk := st.book
	bk.previous, bk.previousRot = 0, ""
	custom := bk.custom(st.main.custom)
	due := b.now().Add(b.keep).UTC()
	custom[keyDestroy+strconv.Itoa(p.n)] = due.Format(time.RFC3339)
	if err := b.writeCustom(ctx, st, custom); err != nil {
		return err
	}
	b.step("after-schedule")
	b.log.Info("previous secret removed", logSecretFP, fp, logVersion, p.n,
		"destroy_at", due)
	return b.tidy(ctx, st)
}

// tidy soft-deletes every version scheduled for destruction and destroys
// those that are due, then drops their schedule.
func (b *Backend) tidy(ctx context.Context, st *state) error {
	sched := schedule(st.main.custom)
	if len(sched) == 0 {
		return nil
	}
	var del, destroy, due []int
	for n, at := range sched {
		v, ok := st.main.versions[n]
		if st.current != nil && n == st.current.n {
			b.log.Error("refusing to remove the current version", "invariant",
				"scheduled version is current", logVersion, n)
			ok = false
		}
		if ok && !v.deleted && !v.destroyed {
			del = append(del, n)
		}
		if !b.now().Before(at) {
			due = append(due, n)
			if ok && !v.destroyed {
				destroy = append(destroy, n)
			}
		}
	}
	sort.Ints(del)
	sort.Ints(destroy)
	err := b.removeVersions(ctx, "delete", "delete previous", b.path, del)
	if err != nil {
		return err
	}
	b.step("after-delete")
	if err := b.removeVersions(ctx, "destroy", "destroy previous", b.path,
		destroy); err != nil {
		return err
	}
	return b.unschedule(ctx, st, due, destroy)
}

// unschedule drops the schedule of the versions in due.
func (b *Backend) unschedule(ctx context.Context, st *state,
	due, destroyed []int) error {
	if len(due) == 0 {
		return nil
	}
	custom := map[string]string{}
	for k, v := range st.main.custom {
		custom[k] = v
	}
	for _, n := range due {
		delete(custom, keyDestroy+strconv.Itoa(n))
	}
	if err := b.writeCustom(ctx, st, custom); err != nil {
		return err
	}
	for _, n := range destroyed {
		b.log.Info("previous version destroyed", logVersion, n)
	}
	return nil
}
