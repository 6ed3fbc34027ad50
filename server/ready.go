package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/keyturn/keyturn/backends"
)

// Readiness timing: each backend gets backendTimeout to list its
// secrets, and the answer is reused for readyTTL so that a load balancer
// probing every second does not become load on Vault or AWS.
const (
	backendTimeout = 2 * time.Second
	readyTTL       = 5 * time.Second
)

// readiness answers /readyz: the audit log is writable, the state
// database answers, and every backend lists its secrets.
type readiness struct {
	audit    func() error
	state    func() error
	backends map[string]backends.Backend
	clock    func() time.Time

	mu        sync.Mutex
	checkedAt time.Time
	last      error
}

// check returns nil when the daemon can do its work, else what is wrong.
func (r *readiness) check(ctx context.Context) error {
	if err := r.audit(); err != nil {
		return fmt.Errorf("audit log not writable: %w", err)
	}
	if r.state != nil {
		if err := r.state(); err != nil {
			return fmt.Errorf("state database: %w", err)
		}
	}
	return r.backendsReady(ctx)
}

// backendsReady lists every backend at most once per readyTTL; callers in
// between get the last answer.
func (r *readiness) backendsReady(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock()
	if !r.checkedAt.IsZero() && now.Sub(r.checkedAt) < readyTTL {
		return r.last
	}
	r.last = r.listAll(ctx)
	r.checkedAt = now
	return r.last
}

func (r *readiness) listAll(ctx context.Context) error {
	names := make([]string, 0, len(r.backends))
	for name := range r.backends {
		names = append(names, name)
	}
	sort.Strings(names)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, backendTimeout)
			defer cancel()
			if _, err := r.backends[name].List(ctx); err != nil {
				errs[i] = fmt.Errorf("app %q: backend %s: %w", name, r.backends[name], err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
