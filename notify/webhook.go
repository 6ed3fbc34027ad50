package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the header that carries a webhook body's signature.
const SignatureHeader = "X-Keyturn-Signature"

// WebhookVersion is the version field of webhook bodies. It changes only
// when a field changes meaning or goes away.
const WebhookVersion = 1

// DefaultSignatureTolerance is how far a signature's time may be from the
// receiver's clock; older signatures are refused as replays.
const DefaultSignatureTolerance = 5 * time.Minute

// Errors VerifySignature returns, so receivers can tell them apart.
var (
	ErrSignatureFormat   = errors.New("malformed signature header")
	ErrSignatureMismatch = errors.New("signature does not match the body")
	ErrSignatureExpired  = errors.New("signature time outside the tolerance")
)

// WebhookBody is what the webhook channel posts: the Event's fields, the
// rendered Message and the format version.
type WebhookBody struct {
	Version int `json:"version"`
	Event
	Message Message `json:"message"`
}

// webhook posts signed JSON to any receiver.
type webhook struct {
	base
	url    *url.URL
	key    []byte
	client *http.Client
	clock  func() time.Time
}

// Send posts ev once, signed at the time of this attempt.
func (w *webhook) Send(ctx context.Context, ev Event) error {
	ev.Severity = ev.EffectiveSeverity()
	body, err := json.Marshal(WebhookBody{Version: WebhookVersion, Event: ev,
		Message: Render(ev)})
	if err != nil {
		return w.errorf("encode: %w", err)
	}
	h := http.Header{}
	h.Set(SignatureHeader, Sign(w.key, w.clock(), body))
	err = postJSON(ctx, w.client, w.url, body, h,
		http.StatusOK, http.StatusAccepted, http.StatusNoContent, http.StatusCreated)
	if err != nil {
		return w.errorf("%w", err)
	}
	return nil
}

// Sign returns the X-Keyturn-Signature value for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with key>".
func Sign(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(key, ts, body))
}

func mac(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature checks header (an X-Keyturn-Signature value) against
// the raw body: the MAC must match in constant time, and its time must
// lie within tolerance of now, either way, which refuses replays of old
// deliveries. Several v1 entries are allowed, for key changes; one
// matching is enough. Errors wrap ErrSignatureFormat,
// ErrSignatureMismatch or ErrSignatureExpired.
func VerifySignature(key []byte, header string, body []byte, now time.Time,
	tolerance time.Duration) error {
	ts, macs, err := parseSignature(header)
	if err != nil {
		return err
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: t is not a number", ErrSignatureFormat)
	}
	want := mac(key, ts, body)
	ok := false
	for _, m := range macs {
		// Every entry is compared, so timing does not tell which matched.
		ok = hmac.Equal(m, want) || ok
	}
	if !ok {
		return ErrSignatureMismatch
	}
	if skew := now.Sub(time.Unix(sec, 0)); skew > tolerance || skew < -tolerance {
		return fmt.Errorf("%w: signed %s ago", ErrSignatureExpired,
			skew.Round(time.Second))
	}
	return nil
}

// parseSignature splits "t=…,v1=…[,v1=…]" into its time and MACs.
// Unknown keys are skipped so that later versions can add entries.
func parseSignature(header string) (string, [][]byte, error) {
	var ts string
	var macs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found {
			return "", nil, fmt.Errorf("%w: %q has no =", ErrSignatureFormat,
				oneLine(part, 20))
		}
		switch k {
		case "t":
			if ts != "" {
				return "", nil, fmt.Errorf("%w: t given twice", ErrSignatureFormat)
			}
			ts = v
		case "v1":
			m, err := hex.DecodeString(v)
			if err != nil || len(m) != sha256.Size {
				return "", nil, fmt.Errorf("%w: v1 is not 64 hex digits",
					ErrSignatureFormat)
			}
			macs = append(macs, m)
		}
	}
	if ts == "" || len(macs) == 0 {
		return "", nil, fmt.Errorf("%w: want t=…,v1=…", ErrSignatureFormat)
	}
	return ts, macs, nil
}
