package emulator

import (
	"net"
	"net/http"
	"time"
)

// Faults are switches the reliability tests flip. They act on the token
// endpoint only; the management API always answers normally.
type Faults struct {
	// Latency delays every token answer, in real time (not the injected
	// clock), because it exists to exercise client timeouts.
	Latency time.Duration
	// FailNext makes the next n token requests answer 500.
	FailNext int
	// ResetNext makes the next n token requests end in a TCP reset.
	ResetNext int
	// RateLimitNext makes the next n token requests answer 429.
	RateLimitNext int
	// RetryAfter is the Retry-After sent with RateLimitNext answers,
	// rounded up to whole seconds; zero means one second.
	RetryAfter time.Duration
}

// Outcomes a RequestRecord may carry.
const (
	OutcomeOK               = "ok"
	OutcomeInvalidRequest   = "invalid_request"
	OutcomeInvalidClient    = "invalid_client"
	OutcomeRateLimited      = "rate_limited"
	OutcomeFault500         = "fault_500"
	OutcomeFaultReset       = "fault_reset"
	OutcomeFaultRateLimited = "fault_rate_limited"
	OutcomeAbandoned        = "abandoned" // the client left during Latency
)

// RequestRecord is one token request the emulator saw. It never holds a
// secret or a token.
type RequestRecord struct {
	Time       time.Time
	ClientID   string // as sent, possibly ""
	AuthMethod string // AuthPost, AuthBasic, or "" when unreadable
	// SecretID names the secret the request presented, found by its
	// hash, or is "" when it matched none of the application's secrets.
	SecretID string
	// SecretDeleted is set when SecretID names a secret already deleted.
	SecretDeleted bool
	Outcome       string // one of the Outcome constants
	Status        int    // HTTP status, 0 for a reset
	RemoteAddr    string
}

// SetFaults replaces the fault switches.
func (e *Emulator) SetFaults(f Faults) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = f
	e.faulty.Store(f.active())
}

// active reports whether f changes any answer.
func (f Faults) active() bool {
	return f.Latency > 0 || f.FailNext > 0 || f.ResetNext > 0 || f.RateLimitNext > 0
}

// Faults returns the fault switches, with the counts still to come.
func (e *Emulator) Faults() Faults {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.faults
}

// Requests returns the token requests seen so far, oldest first: all of
// them, or the most recent 100,000.
func (e *Emulator) Requests() []RequestRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]RequestRecord, 0, len(e.records))
	out = append(out, e.records[e.nextRec:]...)
	return append(out, e.records[:e.nextRec]...)
}

func (e *Emulator) record(r RequestRecord) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.recordLocked(r)
}

// recordLocked keeps the last maxRecords records in a ring.
func (e *Emulator) recordLocked(r RequestRecord) {
	if len(e.records) < maxRecords {
		e.records = append(e.records, r)
		return
	}
	e.records[e.nextRec] = r
	e.nextRec = (e.nextRec + 1) % maxRecords
}

type faultKind int

const (
	faultNone faultKind = iota
	faultReset
	fault500
	fault429
)

// takeFault consumes one pending fault, resets first.
func (e *Emulator) takeFault() (time.Duration, time.Duration, faultKind) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := &e.faults
	kind := faultNone
	switch {
	case f.ResetNext > 0:
		f.ResetNext, kind = f.ResetNext-1, faultReset
	case f.FailNext > 0:
		f.FailNext, kind = f.FailNext-1, fault500
	case f.RateLimitNext > 0:
		f.RateLimitNext, kind = f.RateLimitNext-1, fault429
	}
	e.faulty.Store(f.active())
	return f.Latency, f.RetryAfter, kind
}

// applyFaults waits out the latency and acts out a pending fault. It
// returns false when it has answered (or the client left), having
// recorded the request first so that records keep the order of answers.
func (e *Emulator) applyFaults(w http.ResponseWriter, r *http.Request,
	rec RequestRecord) bool {
	if !e.faulty.Load() {
		return true // spare the lock on the common path
	}
	latency, retryAfter, kind := e.takeFault()
	if latency > 0 && !wait(r, latency) {
		rec.Outcome = OutcomeAbandoned
		e.record(rec)
		return false
	}
	switch kind {
	case faultReset:
		rec.Outcome = OutcomeFaultReset
		e.record(rec)
		resetConn(w)
	case fault500:
		rec.Status, rec.Outcome = http.StatusInternalServerError, OutcomeFault500
		e.record(rec)
		writeOAuth(w, &oauthError{http.StatusInternalServerError, "server_error",
			"injected fault"})
	case fault429:
		rec.Status, rec.Outcome = http.StatusTooManyRequests, OutcomeFaultRateLimited
		e.record(rec)
		writeRateLimited(w, max(retryAfter, time.Second))
	}
	return kind == faultNone
}

// wait waits for d, or until the client leaves, and reports which.
func wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// resetConn ends the connection with a TCP reset instead of an answer.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // not hijackable: abort as best we can
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // close sends RST, not FIN
	}
	conn.Close()
}

// window is one client ID's fixed rate-limit window.
type window struct {
	start time.Time
	count int
}

// limitLocked counts a token request against clientID's window and says
// how long to wait when the window is full.
func (e *Emulator) limitLocked(clientID string, now time.Time) (time.Duration, bool) {
	if e.rateN <= 0 {
		return 0, false
	}
	w := e.windows[clientID]
	if w == nil {
		if len(e.windows) >= 10_000 { // bound memory against junk IDs
			clear(e.windows)
		}
		w = &window{start: now}
		e.windows[clientID] = w
	}
	if now.Sub(w.start) >= e.rateWin || now.Before(w.start) {
		w.start, w.count = now, 0
	}
	if w.count >= e.rateN {
		return w.start.Add(e.rateWin).Sub(now), true
	}
	w.count++
	return 0, false
}
