package reliability

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/keyturn/keyturn/notify"
)

// hookKey signs the webhooks keyturn sends the receiver.
const hookKey = "reliability-hook-signing-key"

// receiver is a webhook endpoint that checks signatures, keeps every
// event it accepted, and can be told to fail.
type receiver struct {
	srv *httptest.Server

	mu        sync.Mutex
	events    []delivery
	attempts  map[string][]time.Time // event id → arrival of every try
	bad       int
	failNext  int // answer 503 to this many deliveries
	lastRaw   []byte
	lastSig   string
	lastArriv time.Time
}

// delivery is one accepted event and when it arrived.
type delivery struct {
	at time.Time
	ev notify.WebhookBody
}

func newReceiver() *receiver {
	rc := &receiver{attempts: map[string][]time.Time{}}
	rc.srv = httptest.NewServer(rc)
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	suiteCanary.scan("notification body", body)
	now := time.Now()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	sig := r.Header.Get(notify.SignatureHeader)
	err := notify.VerifySignature([]byte(hookKey), sig, body, now, time.Minute)
	var ev notify.WebhookBody
	if err != nil || json.Unmarshal(body, &ev) != nil {
		rc.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	rc.attempts[ev.ID] = append(rc.attempts[ev.ID], now)
	if rc.failNext > 0 {
		rc.failNext--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	rc.events = append(rc.events, delivery{at: now, ev: ev})
	rc.lastRaw, rc.lastSig, rc.lastArriv = body, sig, now
}

// fail makes the next n deliveries answer 503.
func (rc *receiver) fail(n int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.failNext = n
}

// promptKey names one prompt: a kind of event for one rotation.
type promptKey struct {
	rotation string
	kind     notify.Kind
}

// prompts counts the distinct events (not tries, not resolutions) sent
// per rotation and kind.
func (rc *receiver) prompts() map[promptKey]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	seen := map[string]bool{}
	n := map[promptKey]int{}
	for _, d := range rc.events {
		if d.ev.Resolve || seen[d.ev.ID] {
			continue
		}
		seen[d.ev.ID] = true
		n[promptKey{d.ev.RotationID, d.ev.Kind}]++
	}
	return n
}

// accepted returns the accepted events of kind k.
func (rc *receiver) accepted(k notify.Kind) []notify.WebhookBody {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []notify.WebhookBody
	for _, d := range rc.events {
		if d.ev.Kind == k {
			out = append(out, d.ev)
		}
	}
	return out
}

// tries returns the arrival times of every try of event id.
func (rc *receiver) tries(id string) []time.Time {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]time.Time(nil), rc.attempts[id]...)
}

// badSignatures counts deliveries refused for their signature.
func (rc *receiver) badSignatures() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.bad
}

// last returns the last accepted delivery as it came over the wire.
func (rc *receiver) last() (body []byte, signature string, at time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.lastRaw, rc.lastSig, rc.lastArriv
}
