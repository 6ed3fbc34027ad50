package vault

import (
	"context"
	"fmt"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

// version is one version of a KV path as keyturn reads it.
type version struct {
	n      int
	secret backends.Secret
}

// state is one reading of the credential: both paths' metadata, the
// versions that hold its secrets, and what the bookkeeping should say.
type state struct {
	main, pend pathMeta
	// current is the main path's newest version; previous the one the
	// bookkeeping names; pending the pending path's newest version. Each
	// is nil when there is none. They are raw: List hides a version that
	// shows at a higher stage (see the package doc).
	current, previous, pending *version
	// book is the bookkeeping this state implies; synced reports whether
	// custom_metadata already says so.
	book   book
	synced bool
}

// load reads the credential. It writes nothing: a method that finds the
// bookkeeping behind (a step cut short) brings it up to date itself.
func (b *Backend) load(ctx context.Context) (*state, error) {
	if err := b.checkMount(ctx); err != nil {
		return nil, err
	}
	st := &state{}
	var err error
	if st.main, err = b.readMeta(ctx, "read metadata", b.path); err != nil {
		return nil, err
	}
	if st.current, err = b.mainVersion(ctx, st, st.main.current); err != nil {
		return nil, err
	}
	if err := b.loadPending(ctx, st); err != nil {
		return nil, err
	}
	return st, b.derive(ctx, st)
}

// mainVersion reads version n of the main path; nil when it holds no
// data any more.
func (b *Backend) mainVersion(ctx context.Context, st *state, n int) (*version, error) {
	if n == 0 || !st.main.live(n) {
		return nil, nil
	}
	data, err := b.readVersion(ctx, fmt.Sprintf("read version %d of", n), b.path, n)
	if err != nil || data == nil {
		return nil, err
	}
	s, err := b.decode(data, backends.StageCurrent, st.main.versions[n].created)
	if err != nil {
		return nil, fmt.Errorf("version %d of %s/%s: %w", n, b.mount, b.path, err)
	}
	return &version{n: n, secret: s}, nil
}

func (b *Backend) loadPending(ctx context.Context, st *state) error {
	var err error
	if st.pend, err = b.readMeta(ctx, "read pending metadata",
		b.pendingPath()); err != nil {
		return err
	}
	n := st.pend.current
	if n == 0 || !st.pend.live(n) {
		return nil
	}
	data, err := b.readVersion(ctx, "read pending", b.pendingPath(), n)
	if err != nil || data == nil {
		return err
	}
	s, err := b.decode(data, backends.StagePending, st.pend.versions[n].created)
	if err != nil {
		return fmt.Errorf("pending version %d: %w", n, err)
	}
	st.pending = &version{n: n, secret: s}
	return nil
}

// derive works out which version is previous and each secret's rotation
// from the bookkeeping, and, when a write landed but the bookkeeping
// after it did not, what it should say.
func (b *Backend) derive(ctx context.Context, st *state) error {
	rec := readBook(st.main.custom)
	cur, pend := st.current, st.pending
	st.book, st.synced = rec, true
	if cur == nil || rec.current == cur.n {
		if cur != nil {
			cur.secret.RotationID = rec.currentRot
		}
		return b.setPrevious(ctx, st, rec.previous, rec.previousRot)
	}

	// The newest version is not the one the bookkeeping names: a step
	// stopped between its write and its bookkeeping, or another tool wrote.
	st.synced = false
	if err := b.setPrevious(ctx, st, rec.previous, rec.previousRot); err != nil {
		return err
	}
	st.book.current, st.book.currentRot = cur.n, ""
	switch {
	case pend != nil && pend.secret.Fingerprint == cur.secret.Fingerprint:
		st.book.currentRot = pend.secret.RotationID // Promote stopped
	case st.previous != nil && st.previous.secret.Fingerprint == cur.secret.Fingerprint:
		// Rollback stopped: the old secret is current again.
		cur.secret.RotationID = rec.previousRot
		st.book.currentRot = rec.previousRot
		st.previous, st.book.previous, st.book.previousRot = nil, 0, ""
		return nil
	}
	cur.secret.RotationID = st.book.currentRot
	if st.previous == nil && rec.current != 0 {
		// The version this write displaced stays tracked until proven dead.
		return b.setPrevious(ctx, st, rec.current, rec.currentRot)
	}
	return nil
}

// setPrevious reads version n as the previous secret, if it still holds
// data, and records it in st.book.
func (b *Backend) setPrevious(ctx context.Context, st *state, n int, rot string) error {
	v, err := b.mainVersion(ctx, st, n)
	if err != nil || v == nil {
		st.previous, st.book.previous, st.book.previousRot = nil, 0, ""
		return err
	}
	v.secret.Stage, v.secret.RotationID = backends.StagePrevious, rot
	st.previous, st.book.previous, st.book.previousRot = v, n, rot
	return nil
}

// list returns the secrets of st in the order current, previous, pending.
// A version whose secret shows at a higher stage (current, then pending,
// then previous) is a leftover of a step cut short and is left out.
func (st *state) list() []backends.Secret {
	var out []backends.Secret
	shown := map[secret.Fingerprint]bool{}
	for _, v := range []*version{st.current, st.pending, st.previous} {
		if v != nil && !shown[v.secret.Fingerprint] {
			shown[v.secret.Fingerprint] = true
			out = append(out, v.secret)
		}
	}
	return order(out)
}

// order sorts secrets current, previous, pending.
func order(in []backends.Secret) []backends.Secret {
	var out []backends.Secret
	for _, stage := range []backends.Stage{backends.StageCurrent,
		backends.StagePrevious, backends.StagePending} {
		if s, ok := backends.Find(in, stage); ok {
			out = append(out, s)
		}
	}
	return out
}

// shownPrevious returns the previous version unless its secret shows at
// a higher stage.
func (st *state) shownPrevious() *version {
	p := st.previous
	if p == nil || st.current != nil &&
		st.current.secret.Fingerprint == p.secret.Fingerprint ||
		st.pending != nil && st.pending.secret.Fingerprint == p.secret.Fingerprint {
		return nil
	}
	return p
}

// realPending returns the pending version unless it is a leftover copy of
// the current secret.
func (st *state) realPending() *version {
	p := st.pending
	if p == nil || st.current != nil &&
		st.current.secret.Fingerprint == p.secret.Fingerprint {
		return nil
	}
	return p
}

// timeText is how created_at is stored.
func timeText(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
