package awssm

import (
	"errors"
	"testing"

	"github.com/keyturn/keyturn/backends"
)

// TestPromoteConflict lets another writer move AWSCURRENT after Promote has
// read the secret and before it moves the label: Promote must fail with
// ErrCASConflict and leave the other writer's current version alone.
func TestPromoteConflict(t *testing.T) {
	b := open(t, testOptions(t, uniqueName(t)))
	if err := b.Init(ctx, first, epoch); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if err := b.WritePending(ctx, "rot-1", second, epoch); err != nil {
		t.Fatalf("WritePending: %v", err)
	}
	r := &raw{t: t, c: rawClient(t), name: b.id}
	stepHook = func(name string) {
		if name != "before-current-move" {
			return
		}
		r.mustPut("another writer's value", tok("w"), "OTHER")
		for id, labels := range r.labels() {
			if hasLabel(labels, "AWSCURRENT") {
				r.mustMove("AWSCURRENT", tok("w"), id)
			}
		}
	}
	t.Cleanup(func() { stepHook = func(string) {} })

	err := b.Promote(ctx, "rot-1", second.Fingerprint())
	if !errors.Is(err, backends.ErrCASConflict) {
		t.Fatalf("Promote: got %v, want ErrCASConflict", err)
	}
	got := r.labels()[tok("w")]
	if !hasLabel(got, "AWSCURRENT") {
		t.Errorf("the other writer's version has labels %v, want AWSCURRENT among them",
			got)
	}
}
