package emulator

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Errors the secret helpers return; the HTTP API answers 409 and 404.
var (
	// ErrTooManySecrets means the application already holds MaxSecrets.
	ErrTooManySecrets = errors.New("too many secrets")
	// ErrNoSecret means the application holds no secret with that ID.
	ErrNoSecret = errors.New("no such secret")
)

// app is one Smartcar application. It remembers the hashes of deleted
// secrets only so that Requests can name the deleted secret a refused
// request used; they never authenticate anything.
type app struct {
	secrets []stored
	deleted []stored
}

// stored is a secret as the emulator keeps it: a hash, never the value.
type stored struct {
	id        string
	hash      [32]byte
	last4     string
	createdAt time.Time
}

// SecretInfo describes a secret without its value, as the Dashboard
// lists it.
type SecretInfo struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Last4     string    `json:"last4"`
}

// CreateSecret creates a secret for clientID, creating the application
// if it is new, and returns the secret's value: the only time anyone
// sees it. It fails with ErrTooManySecrets when MaxSecrets exist.
func (e *Emulator) CreateSecret(clientID string) (id, secret string,
	createdAt time.Time, err error) {
	secret = randomString()
	id, createdAt, err = e.add(clientID, secret, time.Time{})
	if err != nil {
		return "", "", time.Time{}, err
	}
	return id, secret, createdAt, nil
}

// ImportSecret makes the emulator know a secret created elsewhere, such
// as one a previous run of keyturn dev created before it restarted. It
// does nothing when the secret is already known.
func (e *Emulator) ImportSecret(clientID, secret string, createdAt time.Time) error {
	if len(secret) < 4 {
		return fmt.Errorf("emulator: import into app %q: secret too short", clientID)
	}
	_, _, err := e.add(clientID, secret, createdAt)
	return err
}

// add stores secret for clientID; a zero createdAt means now.
func (e *Emulator) add(clientID, secret string, createdAt time.Time) (string,
	time.Time, error) {
	s := stored{id: newID(), hash: sha256.Sum256([]byte(secret)),
		last4: secret[len(secret)-4:]}

	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.apps[clientID]
	if a == nil {
		a = &app{}
		e.apps[clientID] = a
	}
	for _, have := range a.secrets {
		if have.hash == s.hash {
			return have.id, have.createdAt, nil
		}
	}
	if len(a.secrets) >= MaxSecrets {
		return "", time.Time{}, fmt.Errorf("emulator: app %q holds %d secrets, "+
			"delete one first: %w", clientID, len(a.secrets), ErrTooManySecrets)
	}
	s.createdAt = createdAt.UTC()
	if createdAt.IsZero() {
		s.createdAt = e.now().UTC()
	}
	a.secrets = append(a.secrets, s)
	return s.id, s.createdAt, nil
}

// DeleteSecret deletes a secret. Tokens minted with it stay valid until
// they expire, as at Smartcar.
func (e *Emulator) DeleteSecret(clientID, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if a := e.apps[clientID]; a != nil {
		for i, s := range a.secrets {
			if s.id == id {
				a.secrets = slices.Delete(a.secrets, i, i+1)
				a.deleted = append(a.deleted, s)
				return nil
			}
		}
	}
	return fmt.Errorf("emulator: app %q, secret %q: %w", clientID, id, ErrNoSecret)
}

// Secrets lists clientID's secrets, oldest first, without their values.
func (e *Emulator) Secrets(clientID string) []SecretInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []SecretInfo{}
	if a := e.apps[clientID]; a != nil {
		for _, s := range a.secrets {
			out = append(out, SecretInfo{ID: s.id, CreatedAt: s.createdAt,
				Last4: s.last4})
		}
	}
	return out
}

// matchLocked finds the secret of clientID whose hash is h. It returns
// the ID of a live secret with ok, or of a deleted one without, or "".
func (e *Emulator) matchLocked(clientID string, h [32]byte) (id string, ok bool) {
	a := e.apps[clientID]
	if a == nil {
		return "", false
	}
	for _, s := range a.secrets {
		if subtle.ConstantTimeCompare(s.hash[:], h[:]) == 1 {
			return s.id, true
		}
	}
	for _, s := range a.deleted {
		if subtle.ConstantTimeCompare(s.hash[:], h[:]) == 1 {
			return s.id, false
		}
	}
	return "", false
}

// randomString returns 256 random bits in base64url, for secrets and
// tokens.
func randomString() string {
	var b [32]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// newID returns a random UUID (version 4) for a secret's ID.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (e *Emulator) serveCreate(w http.ResponseWriter, r *http.Request) {
	id, sec, created, err := e.CreateSecret(r.PathValue("client_id"))
	if errors.Is(err, ErrTooManySecrets) {
		writeError(w, http.StatusConflict, "too_many_secrets",
			fmt.Sprintf("the application already holds %d secrets; "+
				"delete one first", MaxSecrets))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, struct {
		ID        string    `json:"id"`
		Secret    string    `json:"secret"`
		CreatedAt time.Time `json:"created_at"`
	}{id, sec, created})
}

func (e *Emulator) serveList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, e.Secrets(r.PathValue("client_id")))
}

func (e *Emulator) serveDelete(w http.ResponseWriter, r *http.Request) {
	err := e.DeleteSecret(r.PathValue("client_id"), r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found",
			"the application holds no secret with that id")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding the answer failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError answers in the shape of RFC 6749's error responses, which
// the management API borrows for its own errors.
func writeError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, description})
}
