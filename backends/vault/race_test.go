package vault

import (
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

// pauseAt returns a hook that, at step, says so on ready and waits for
// gate to close.
func pauseAt(step string, ready, gate chan struct{}) func(string) {
	var once sync.Once
	return func(name string) {
		if name == step {
			once.Do(func() { close(ready) })
			<-gate
		}
	}
}

// TestCASRace has two keyturns promote different pending secrets over the
// same path at the same instant: both read version 1 as current, and both
// write with cas=1. Exactly one may win; the other must get ErrCASConflict
// and change nothing, and no secret a person handed over may be lost.
func TestCASRace(t *testing.T) {
	realVault(t)
	winners := map[int]int{}
	for i := 0; i < 6; i++ {
		winners[casRace(t)]++
	}
	t.Logf("winners over 6 races: %v", winners)
}

// casRace runs one race and returns which Backend won it.
func casRace(t *testing.T) int {
	path := uniquePath(t)
	b1, b2 := open(t, testOptions(t, path)), open(t, testOptions(t, path))
	must(t, "Init", b1.Init(ctx, first, epoch))
	must(t, "WritePending rot-1", b1.WritePending(ctx, "rot-1", second, epoch))

	ready1, ready2, gate := make(chan struct{}), make(chan struct{}), make(chan struct{})
	errs := make([]error, 3)
	var wg sync.WaitGroup
	wg.Add(2)
	b1.hook = pauseAt("before-main-write", ready1, gate)
	go func() {
		defer wg.Done()
		errs[1] = b1.Promote(ctx, "rot-1", second.Fingerprint())
	}()
	<-ready1

	// Another keyturn, on the same path, aborted rot-1 and started rot-2;
	// b1 had already read rot-1's secret.
	must(t, "DiscardPending rot-1", b2.DiscardPending(ctx, "rot-1"))
	must(t, "WritePending rot-2", b2.WritePending(ctx, "rot-2", tricky, epoch))
	b2.hook = pauseAt("before-main-write", ready2, gate)
	go func() {
		defer wg.Done()
		errs[2] = b2.Promote(ctx, "rot-2", tricky.Fingerprint())
	}()
	<-ready2
	close(gate)
	wg.Wait()

	return checkRace(t, path, errs[1], errs[2])
}

// checkRace checks that exactly one promotion won, and what it left.
func checkRace(t *testing.T, path string, err1, err2 error) (winner int) {
	t.Helper()
	switch {
	case err1 == nil && errors.Is(err2, backends.ErrCASConflict):
		winner = 1
		t.Logf("b1 won; b2 got: %v", err2)
	case err2 == nil && errors.Is(err1, backends.ErrCASConflict):
		winner = 2
		t.Logf("b2 won; b1 got: %v", err1)
	default:
		t.Fatalf("want one success and one conflict, got\n b1: %v\n b2: %v",
			err1, err2)
	}

	want := map[int][]listed{
		// rot-2's pending secret survives b1's win: b1 destroys only the
		// pending version it promoted.
		1: {{backends.StageCurrent, second.Fingerprint(), "rot-1"},
			{backends.StagePrevious, first.Fingerprint(), ""},
			{backends.StagePending, tricky.Fingerprint(), "rot-2"}},
		2: {{backends.StageCurrent, tricky.Fingerprint(), "rot-2"},
			{backends.StagePrevious, first.Fingerprint(), ""}},
	}[winner]
	if diff := cmp.Diff(want, listOf(t, open(t, testOptions(t, path)))); diff != "" {
		t.Errorf("List after the race (-want +got):\n%s", diff)
	}
	if got := rawMeta(t, path).current; got != 2 {
		t.Errorf("main path has %d versions, want 2: the loser's write landed", got)
	}
	return winner
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

type listed struct {
	Stage       backends.Stage
	Fingerprint secret.Fingerprint
	RotationID  string
}

func listOf(t *testing.T, b *Backend) []listed {
	t.Helper()
	got, err := b.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []listed
	for _, s := range got {
		out = append(out, listed{s.Stage, s.Fingerprint, s.RotationID})
	}
	return out
}

// rawMeta reads a KV path's metadata with the root token.
func rawMeta(t *testing.T, path string) pathMeta {
	t.Helper()
	b := open(t, testOptions(t, path))
	m, err := b.readMeta(ctx, "read metadata", path)
	if err != nil {
		t.Fatalf("reading metadata of %s: %v", path, err)
	}
	return m
}
