package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/keyturn/keyturn/config"
)

// consumerKeyPrefix marks keyturn consumer keys, so that a leaked one is
// easy to recognise in a scanner's findings.
const consumerKeyPrefix = "kt_"

// NewConsumerKey returns a new random consumer API key and the hex SHA-256
// of it, which is what the config's key_sha256 holds. The key itself is
// shown to its owner once and never stored by keyturn.
func NewConsumerKey() (key, sha256hex string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("generate consumer key: %w", err)
	}
	key = consumerKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(key))
	return key, hex.EncodeToString(sum[:]), nil
}

// consumer is one configured client of the broker.
type consumer struct {
	name    string
	keyHash [sha256.Size]byte
	hasKey  bool
	uids    map[int]bool
	apps    map[string]bool
	allApps bool
	limit   *rate.Limiter
}

// allows reports whether c may use app.
func (c *consumer) allows(app string) bool { return c.allApps || c.apps[app] }

// authenticator finds the consumer a request comes from.
//
// Limitation: a key has no expiry, because the config holds none; a key
// is revoked by removing its consumer (or its key_sha256) from the config
// and restarting the daemon.
type authenticator struct {
	consumers []*consumer
	clock     func() time.Time
}

func newAuthenticator(cs []config.Consumer, clock func() time.Time) (*authenticator,
	error) {
	if clock == nil {
		clock = time.Now
	}
	a := &authenticator{clock: clock}
	for _, cc := range cs {
		c := &consumer{name: cc.Name, uids: map[int]bool{}, apps: map[string]bool{}}
		if cc.KeySHA256 != "" {
			h, err := hex.DecodeString(cc.KeySHA256)
			if err != nil || len(h) != sha256.Size {
				return nil, fmt.Errorf("consumer %q: key_sha256 is not 64 hex digits",
					cc.Name)
			}
			copy(c.keyHash[:], h)
			c.hasKey = true
		}
		for _, u := range cc.UIDs {
			c.uids[u] = true
		}
		for _, app := range cc.Apps {
			c.allApps = c.allApps || app == "*"
			c.apps[app] = true
		}
		c.limit = rate.NewLimiter(limitOf(cc.Rate), max(cc.Burst, 1))
		a.consumers = append(a.consumers, c)
	}
	return a, nil
}

func limitOf(perSecond float64) rate.Limit {
	if perSecond <= 0 || math.IsInf(perSecond, 1) {
		return rate.Inf
	}
	return rate.Limit(perSecond)
}

// errUnauthenticated is the cause of every 401; its text names no key.
var errUnauthenticated = errors.New("unauthenticated")

// byKey returns the consumer whose key hashes to the hash of key. Every
// configured hash is compared, in constant time, so that neither the
// answer's timing nor its content tells how close a guess came.
func (a *authenticator) byKey(key string) *consumer {
	sum := sha256.Sum256([]byte(key))
	var found *consumer
	for _, c := range a.consumers {
		eq := subtle.ConstantTimeCompare(sum[:], c.keyHash[:]) == 1
		if eq && c.hasKey && found == nil {
			found = c
		}
	}
	return found
}

// byUID returns the consumer that lists uid.
func (a *authenticator) byUID(uid int) *consumer {
	for _, c := range a.consumers {
		if c.uids[uid] {
			return c
		}
	}
	return nil
}

// caller identifies the request's consumer: by bearer key when the
// request carries an Authorization header, else, on the Unix socket, by
// the peer's uid. The reason is for the audit record, never the key.
func (a *authenticator) caller(r *http.Request) (*consumer, string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, key, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
			return nil, "malformed authorization header", errUnauthenticated
		}
		if c := a.byKey(strings.TrimSpace(key)); c != nil {
			return c, "", nil
		}
		return nil, "unknown or revoked key", errUnauthenticated
	}
	p, err := PeerOf(r.Context())
	if err != nil {
		return nil, "no bearer key", errUnauthenticated
	}
	if c := a.byUID(p.UID); c != nil {
		return c, "", nil
	}
	return nil, fmt.Sprintf("socket peer uid %d is no consumer", p.UID), errUnauthenticated
}

// allow takes one token from c's rate limit. When none is left it says
// how long until one is.
func (a *authenticator) allow(c *consumer) (bool, time.Duration) {
	now := a.clock()
	res := c.limit.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}
