package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

var ctx = context.Background()

func testEmpty(t *testing.T, h Harness) {
	b := h.New(t)
	check(t, b)
	for _, st := range []backends.Stage{backends.StageCurrent, backends.StagePrevious,
		backends.StagePending} {
		_, err := b.Get(ctx, st)
		mustIs(t, "Get "+string(st), err, backends.ErrNotFound)
	}
	must(t, "DiscardPending on empty", b.DiscardPending(ctx, "rot-x"))
	if b.String() == "" {
		t.Error("String is empty")
	}
}

func testInit(t *testing.T, h Harness) {
	b := initFirst(t, h)
	check(t, b, want(backends.StageCurrent, First, "", epoch))

	got, err := b.Get(ctx, backends.StageCurrent)
	must(t, "Get current", err)
	if !got.Value.Equal(First) {
		t.Errorf("Get current returned another value (%s)", got.Value.Fingerprint())
	}
	must(t, "Init again with the same secret", b.Init(ctx, First, epoch))
	mustIs(t, "Init with another secret", b.Init(ctx, Second, epoch), backends.ErrExists)
	check(t, b, want(backends.StageCurrent, First, "", epoch))
}

func testWritePending(t *testing.T, h Harness) {
	b := initFirst(t, h)
	at := epoch.Add(time.Hour)
	must(t, "WritePending", b.WritePending(ctx, "rot-1", Tricky, at))
	// A corrected hand-off within the same rotation replaces the value.
	must(t, "WritePending again", b.WritePending(ctx, "rot-1", Second, at))
	check(t, b,
		want(backends.StageCurrent, First, "", epoch),
		want(backends.StagePending, Second, "rot-1", at))

	err := b.WritePending(ctx, "rot-2", Tricky, at)
	mustIs(t, "WritePending of another rotation", err, backends.ErrForeignPending)
	got, err := b.Get(ctx, backends.StagePending)
	must(t, "Get pending", err)
	if !got.Value.Equal(Second) {
		t.Error("a foreign WritePending replaced the pending secret")
	}
}

func testDiscardPending(t *testing.T, h Harness) {
	b := initFirst(t, h)
	must(t, "WritePending", b.WritePending(ctx, "rot-1", Second, epoch))
	must(t, "DiscardPending of another rotation", b.DiscardPending(ctx, "rot-2"))
	check(t, b,
		want(backends.StageCurrent, First, "", epoch),
		want(backends.StagePending, Second, "rot-1", epoch))
	must(t, "DiscardPending", b.DiscardPending(ctx, "rot-1"))
	must(t, "DiscardPending again", b.DiscardPending(ctx, "rot-1"))
	check(t, b, want(backends.StageCurrent, First, "", epoch))
}

func testPromote(t *testing.T, h Harness) {
	b := initFirst(t, h)
	at := epoch.Add(time.Hour)
	must(t, "WritePending", b.WritePending(ctx, "rot-1", Second, at))
	mustIs(t, "Promote with a wrong fingerprint",
		b.Promote(ctx, "rot-1", Tricky.Fingerprint()), backends.ErrWrongSecret)

	must(t, "Promote", b.Promote(ctx, "rot-1", Second.Fingerprint()))
	must(t, "Promote again", b.Promote(ctx, "rot-1", Second.Fingerprint()))
	check(t, b,
		want(backends.StageCurrent, Second, "rot-1", at),
		want(backends.StagePrevious, First, "", epoch))

	got, err := b.Get(ctx, backends.StageCurrent)
	must(t, "Get current", err)
	if !got.Value.Equal(Second) {
		t.Error("current is not the promoted value")
	}
	got, err = b.Get(ctx, backends.StagePrevious)
	must(t, "Get previous", err)
	if !got.Value.Equal(First) {
		t.Error("previous is not the old current value")
	}
}

func testPromoteWhilePrevious(t *testing.T, h Harness) {
	b := promoted(t, h)
	must(t, "WritePending", b.WritePending(ctx, "rot-2", Tricky, epoch))
	mustIs(t, "Promote while previous tracked",
		b.Promote(ctx, "rot-2", Tricky.Fingerprint()), backends.ErrPreviousExists)
	check(t, b,
		want(backends.StageCurrent, Second, "rot-1", epoch),
		want(backends.StagePrevious, First, "", epoch),
		want(backends.StagePending, Tricky, "rot-2", epoch))
}

func testRemovePrevious(t *testing.T, h Harness) {
	b := promoted(t, h)
	mustIs(t, "RemovePrevious with a wrong fingerprint",
		b.RemovePrevious(ctx, Second.Fingerprint()), backends.ErrWrongSecret)
	must(t, "RemovePrevious", b.RemovePrevious(ctx, First.Fingerprint()))
	must(t, "RemovePrevious again", b.RemovePrevious(ctx, First.Fingerprint()))
	check(t, b, want(backends.StageCurrent, Second, "rot-1", epoch))
	_, err := b.Get(ctx, backends.StagePrevious)
	mustIs(t, "Get previous", err, backends.ErrNotFound)
}

func testRollback(t *testing.T, h Harness) {
	b := promoted(t, h)
	must(t, "Rollback", b.Rollback(ctx, "rot-1", Second.Fingerprint()))
	must(t, "Rollback again", b.Rollback(ctx, "rot-1", Second.Fingerprint()))
	check(t, b,
		want(backends.StageCurrent, First, "", epoch),
		want(backends.StagePending, Second, "rot-1", epoch))
	got, err := b.Get(ctx, backends.StageCurrent)
	must(t, "Get current", err)
	if !got.Value.Equal(First) {
		t.Error("current after rollback is not the old secret")
	}
	// The rolled-back secret can be promoted again once the cause is fixed.
	must(t, "Promote after rollback", b.Promote(ctx, "rot-1", Second.Fingerprint()))
	check(t, b,
		want(backends.StageCurrent, Second, "rot-1", epoch),
		want(backends.StagePrevious, First, "", epoch))
}

func testTwoRotations(t *testing.T, h Harness) {
	b := promoted(t, h)
	must(t, "RemovePrevious", b.RemovePrevious(ctx, First.Fingerprint()))
	at := epoch.Add(48 * time.Hour)
	must(t, "WritePending", b.WritePending(ctx, "rot-2", Tricky, at))
	must(t, "Promote", b.Promote(ctx, "rot-2", Tricky.Fingerprint()))
	check(t, b,
		want(backends.StageCurrent, Tricky, "rot-2", at),
		want(backends.StagePrevious, Second, "rot-1", epoch))
}

func testTricky(t *testing.T, h Harness) {
	b := h.New(t)
	must(t, "Init", b.Init(ctx, Tricky, epoch))
	got, err := b.Get(ctx, backends.StageCurrent)
	must(t, "Get current", err)
	if !got.Value.Equal(Tricky) {
		t.Errorf("value with quotes and spaces did not round-trip (%s, want %s)",
			got.Value.Fingerprint(), Tricky.Fingerprint())
	}
}

func testPersistence(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("backend has no Reopen")
	}
	b := promoted(t, h)
	must(t, "WritePending", b.WritePending(ctx, "rot-2", Tricky, epoch))
	b = h.Reopen(t, b)
	check(t, b,
		want(backends.StageCurrent, Second, "rot-1", epoch),
		want(backends.StagePrevious, First, "", epoch),
		want(backends.StagePending, Tricky, "rot-2", epoch))
	for stage, v := range map[backends.Stage]secret.Value{
		backends.StageCurrent: Second, backends.StagePrevious: First,
		backends.StagePending: Tricky} {
		got, err := b.Get(ctx, stage)
		must(t, "Get "+string(stage), err)
		if !got.Value.Equal(v) {
			t.Errorf("%s value lost across reopen", stage)
		}
	}
}

// promoted returns a backend where rot-1 promoted Second over First.
func promoted(t *testing.T, h Harness) backends.Backend {
	t.Helper()
	b := initFirst(t, h)
	must(t, "WritePending", b.WritePending(ctx, "rot-1", Second, epoch))
	must(t, "Promote", b.Promote(ctx, "rot-1", Second.Fingerprint()))
	return b
}
