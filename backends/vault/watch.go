package vault

import (
	"context"
	"time"

	"github.com/hashicorp/vault/api"
)

// reloginTimeout bounds a login started by the watcher rather than by a
// request.
const reloginTimeout = time.Minute

// adopt makes tok the client's token and, when it expires, watches it:
// the running watcher (of the old token) is stopped first.
func (a *authenticator) adopt(tok string, ttl int, s *api.Secret) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stop != nil {
		close(a.stop)
		a.stop = nil
	}
	a.token = tok
	a.expires = expiry(ttl)
	a.client.SetToken(tok)
	if ttl <= 0 || a.closed {
		return // a root or periodic-less token that never expires
	}
	stop := make(chan struct{})
	a.stop = stop
	a.wg.Add(1)
	go a.watch(tok, s, stop)
}

// setExpiry records a new lifetime for tok, if it is still the token in
// use.
func (a *authenticator) setExpiry(tok string, ttl int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token == tok {
		a.expires = expiry(ttl)
	}
}

func expiry(ttl int) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return time.Now().Add(time.Duration(ttl) * time.Second)
}

// watch renews tok until it cannot be renewed any more, then logs in
// again. A failed login is only logged: the next request tries again.
func (a *authenticator) watch(tok string, s *api.Secret, stop chan struct{}) {
	defer a.wg.Done()
	w, err := a.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: s})
	if err != nil {
		a.log.Warn("cannot watch the vault token; it will not be renewed",
			"err", err)
		return
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-stop:
			return
		case r := <-w.RenewCh():
			ttl := r.Secret.Auth.LeaseDuration
			a.setExpiry(tok, ttl)
			a.log.Debug("vault token renewed", "ttl", time.Duration(ttl)*time.Second)
		case err := <-w.DoneCh():
			a.log.Info("vault token reached the end of its life; logging in again",
				"err", err)
			ctx, cancel := context.WithTimeout(context.Background(), reloginTimeout)
			defer cancel()
			if err := a.relogin(ctx, tok); err != nil {
				a.log.Warn("logging in to vault again failed; the next request "+
					"retries", "err", err)
			}
			return
		}
	}
}
