// Package secret holds the one type a Smartcar client secret (or an access
// token) may travel in, so that it cannot reach a log line, an error, an
// audit record, a metric or a notification by accident.
//
// A Value prints as "[redacted]" through every path Go offers for turning a
// value into text: String, GoString, every fmt verb, slog's LogValue, JSON
// and text marshalling. The only way to the bytes is Reveal, which callers
// use at the two places that truly need them: the token request body and
// the backend write.
//
// # Fingerprints
//
// A Fingerprint names a secret wherever a person or a record must tell two
// secrets apart. It is "fp_" followed by the first 16 hex digits (64 bits)
// of SHA-256 over the fixed prefix "keyturn-fingerprint-v1\x00" and the
// secret's bytes. It is safe to log because Smartcar generates client
// secrets with far more entropy than 64 bits, so neither inverting the hash
// nor guessing a secret that matches it is feasible, and the prefix keeps
// the fingerprint from matching any other system's plain SHA-256 of the
// same value. Fingerprints are stable across installations, so an audit
// review on one machine can name a secret another machine logged.
package secret

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// Redacted is what a Value prints as, everywhere.
const Redacted = "[redacted]"

const fingerprintPrefix = "keyturn-fingerprint-v1\x00"

// Value is a secret. The zero Value is empty.
type Value struct {
	// A pointer keeps copies cheap and lets == compare identity only; use
	// Equal to compare contents.
	b *[]byte
}

// New wraps s as a secret Value.
func New(s string) Value {
	b := []byte(s)
	return Value{b: &b}
}

// Reveal returns the secret's text. Call it only where the bytes must
// leave the process for their rightful destination.
func (v Value) Reveal() string {
	if v.b == nil {
		return ""
	}
	return string(*v.b)
}

// IsZero reports whether v holds no secret.
func (v Value) IsZero() bool { return v.b == nil || len(*v.b) == 0 }

// Equal reports whether v and w hold the same secret, in constant time.
func (v Value) Equal(w Value) bool {
	return subtle.ConstantTimeCompare([]byte(v.Reveal()), []byte(w.Reveal())) == 1
}

// Fingerprint returns the loggable name of v (see the package doc).
func (v Value) Fingerprint() Fingerprint {
	if v.IsZero() {
		return ""
	}
	return FingerprintOf(*v.b)
}

// FingerprintOf returns the fingerprint of raw secret bytes.
func FingerprintOf(b []byte) Fingerprint {
	h := sha256.New()
	h.Write([]byte(fingerprintPrefix))
	h.Write(b)
	return Fingerprint("fp_" + hex.EncodeToString(h.Sum(nil))[:16])
}

// String redacts.
func (v Value) String() string { return Redacted }

// GoString redacts.
func (v Value) GoString() string { return Redacted }

// Format redacts for every verb, including %x, %q and %#v.
func (v Value) Format(f fmt.State, _ rune) { fmt.Fprint(f, Redacted) }

// LogValue redacts in slog output.
func (v Value) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON redacts.
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText redacts.
func (v Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Fingerprint is the loggable name of a secret; see the package doc.
type Fingerprint string

// Short returns the fingerprint without its "fp_" prefix, cut to 8 digits,
// for tables a person reads.
func (f Fingerprint) Short() string {
	s := string(f)
	if len(s) > 3 && s[:3] == "fp_" {
		s = s[3:]
	}
	if len(s) > 8 {
		s = s[:8]
	}
	return s
}
