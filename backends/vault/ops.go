package vault

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

// List returns the tracked secrets in the order current, previous, pending.
func (b *Backend) List(ctx context.Context) ([]backends.Secret, error) {
	st, err := b.load(ctx)
	if err != nil {
		return nil, b.fail("list", err)
	}
	return st.list(), nil
}

// Get returns the secret at stage, or an error wrapping ErrNotFound.
func (b *Backend) Get(ctx context.Context,
	stage backends.Stage) (backends.Secret, error) {
	st, err := b.load(ctx)
	if err != nil {
		return backends.Secret{}, b.fail("get "+string(stage), err)
	}
	if s, ok := backends.Find(st.list(), stage); ok {
		return s, nil
	}
	return backends.Secret{}, b.fail("get "+string(stage), backends.ErrNotFound)
}

// Init writes s as the first version keyturn makes current, with cas so
// that it never lands beside a secret another writer stored meanwhile.
func (b *Backend) Init(ctx context.Context, s secret.Value, createdAt time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.init(ctx, s, createdAt); err != nil {
		return b.fail("init", err)
	}
	return nil
}

func (b *Backend) init(ctx context.Context, s secret.Value, createdAt time.Time) error {
	// A second pass runs only when another writer (or a retried request
	// whose first attempt landed) wrote between the reading and the write.
	for pass := 0; ; pass++ {
		st, err := b.load(ctx)
		if err != nil {
			return err
		}
		if c := st.current; c != nil {
			if c.secret.Value.Equal(s) && !st.synced {
				// Stored already; finish an Init cut short after its write.
				return b.writeCustom(ctx, st, st.book.custom(st.main.custom))
			}
			if c.secret.Value.Equal(s) {
				return nil
			}
			return fmt.Errorf("%w (%s, version %d)", backends.ErrExists,
				c.secret.Fingerprint, c.n)
		}
		n, err := b.writeData(ctx, "write current", b.path,
			b.document(s, createdAt, ""), st.main.current)
		if errors.Is(err, backends.ErrCASConflict) && pass == 0 {
			continue
		}
		if err != nil {
			return err
		}
		b.step("after-init-write")
		bk := book{current: n}
		if err := b.writeCustom(ctx, st, bk.custom(st.main.custom)); err != nil {
			return err
		}
		b.log.Info("secret stored as current", logSecretFP, s.Fingerprint(),
			logVersion, n)
		return nil
	}
}

// WritePending writes s to the pending path for rotationID, with cas so
// that a pending secret another writer stored meanwhile is never replaced,
// then destroys the versions it replaced.
func (b *Backend) WritePending(ctx context.Context, rotationID string, s secret.Value,
	createdAt time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.writePending(ctx, rotationID, s, createdAt); err != nil {
		return b.fail("write pending for rotation "+rotationID+" of", err)
	}
	return nil
}

func (b *Backend) writePending(ctx context.Context, rotationID string, s secret.Value,
	createdAt time.Time) error {
	for pass := 0; ; pass++ {
		st, err := b.load(ctx)
		if err != nil {
			return err
		}
		if !st.main.exists {
			return fmt.Errorf("nothing is stored there yet: %w", backends.ErrNotFound)
		}
		if c := st.current; c != nil && c.secret.Value.Equal(s) &&
			c.secret.RotationID == rotationID {
			return nil // written and promoted already
		}
		if p := st.realPending(); p != nil {
			if p.secret.RotationID != rotationID {
				return b.foreignPending(p)
			}
			if p.secret.Value.Equal(s) && p.secret.CreatedAt.Equal(createdAt) {
				return b.destroyPending(ctx, st, p.n-1) // finish a cut-short write
			}
		}
		if err := b.tidy(ctx, st); err != nil {
			return err
		}

		n, err := b.writeData(ctx, "write pending", b.pendingPath(),
			b.document(s, createdAt, rotationID), st.pend.current)
		if errors.Is(err, backends.ErrCASConflict) && pass == 0 {
			continue
		}
		if err != nil {
			return err
		}
		b.step("after-pending-write")
		if err := b.destroyPending(ctx, st, n-1); err != nil {
			return err
		}
		b.log.Info("pending secret written", logRotationID, rotationID,
			logSecretFP, s.Fingerprint(), logVersion, n)
		return nil
	}
}

// DiscardPending destroys rotationID's pending secret.
func (b *Backend) DiscardPending(ctx context.Context, rotationID string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, err := b.load(ctx)
	if err == nil && st.pending != nil && st.pending.secret.RotationID == rotationID {
		err = b.destroyPending(ctx, st, st.pending.n)
		if err == nil {
			b.log.Info("pending secret discarded", logRotationID, rotationID,
				logSecretFP, st.pending.secret.Fingerprint)
		}
	}
	if err != nil {
		return b.fail("discard pending for rotation "+rotationID+" of", err)
	}
	return nil
}

// destroyPending destroys every version of the pending path up to upTo
// that still holds data. Naming versions leaves alone a newer pending
// secret another writer stored meanwhile.
func (b *Backend) destroyPending(ctx context.Context, st *state, upTo int) error {
	var vs []int
	for n, v := range st.pend.versions {
		if n <= upTo && !v.destroyed {
			vs = append(vs, n)
		}
	}
	sort.Ints(vs)
	return b.removeVersions(ctx, "destroy", "destroy pending", b.pendingPath(), vs)
}

// foreignPending reports p, a pending secret that the asking rotation did
// not write, with the command that clears it.
func (b *Backend) foreignPending(p *version) error {
	return &backends.ForeignPendingError{
		RotationID:  p.secret.RotationID,
		Fingerprint: p.secret.Fingerprint,
		Hint: fmt.Sprintf("if that pending secret is not needed, clear it with: "+
			"vault kv metadata delete -mount=%s %s", b.mount, b.pendingPath()),
	}
}
