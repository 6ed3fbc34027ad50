// Package conformance is the test suite every keyturn backend runs: the env
// backend always, Vault and AWS Secrets Manager against the real servers
// that the test script starts. A backend that passes it can carry a
// rotation; anything the rotator relies on is pinned here.
package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

// Harness tells the suite how to get a backend.
type Harness struct {
	// New returns a backend for a credential with no secrets stored, each
	// call a fresh credential.
	New func(t *testing.T) backends.Backend
	// Reopen returns a new backend over the same storage as b, as after a
	// restart. Optional: without it the persistence tests are skipped.
	Reopen func(t *testing.T, b backends.Backend) backends.Backend
}

// Secrets used by the suite. Tricky is shaped to break naive env quoting
// and JSON handling.
var (
	First  = secret.New("sc-first-8f2b1c0e-7d4a-4c55-9b1e-0a1b2c3d4e5f")
	Second = secret.New("sc-second-1a2b3c4d-5e6f-4a0b-8c9d-aabbccddeeff")
	Tricky = secret.New(`sc-tr$ck"y'v #al=ue\with spaces`)
)

var epoch = time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)

// Run runs every conformance test against h.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"Empty", testEmpty},
		{"Init", testInit},
		{"WritePending", testWritePending},
		{"DiscardPending", testDiscardPending},
		{"Promote", testPromote},
		{"PromoteWhilePreviousTracked", testPromoteWhilePrevious},
		{"RemovePrevious", testRemovePrevious},
		{"Rollback", testRollback},
		{"TwoRotations", testTwoRotations},
		{"TrickyValue", testTricky},
		{"Persistence", testPersistence},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, h) })
	}
}

// view is what the suite compares: everything but the value, plus whether
// the value is the expected one.
type view struct {
	Stage       backends.Stage
	Fingerprint secret.Fingerprint
	RotationID  string
	CreatedAt   time.Time
}

func list(t *testing.T, b backends.Backend) []view {
	t.Helper()
	got, err := b.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var out []view
	for _, s := range got {
		if s.Value.Fingerprint() != s.Fingerprint {
			t.Errorf("%s: Fingerprint %s does not match the value's %s",
				s.Stage, s.Fingerprint, s.Value.Fingerprint())
		}
		out = append(out, view{s.Stage, s.Fingerprint, s.RotationID,
			s.CreatedAt.UTC().Truncate(time.Second)})
	}
	return out
}

func want(stage backends.Stage, v secret.Value, rot string, at time.Time) view {
	return view{stage, v.Fingerprint(), rot, at.UTC().Truncate(time.Second)}
}

func check(t *testing.T, b backends.Backend, wants ...view) {
	t.Helper()
	if diff := cmp.Diff(wants, list(t, b)); diff != "" {
		t.Errorf("List mismatch (-want +got):\n%s", diff)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mustIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one wrapping %v", what, err, target)
	}
}

func initFirst(t *testing.T, h Harness) backends.Backend {
	t.Helper()
	b := h.New(t)
	must(t, "Init", b.Init(context.Background(), First, epoch))
	return b
}
