package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/keyturn/keyturn/rotator"
	"github.com/keyturn/keyturn/secret"
)

// APIError is the body of every failed answer on the socket.
type APIError struct {
	Error string `json:"error"`
	Hint  string `json:"hint,omitempty"`
	Code  string `json:"code,omitempty"`
}

// socketAPI serves the operator commands on the Unix socket. Only the
// socket's owner (mode 0600) and root can connect; the peer's user is
// recorded as the actor of every action.
type socketAPI struct {
	engine *rotator.Engine
	log    *slog.Logger
	ready  func() error
	// testChannel sends a test message on one notify channel.
	testChannel func(ctx context.Context, name, actor string) error
}

func (s *socketAPI) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("GET /v1/ready", s.readyz)
	mux.HandleFunc("GET /v1/apps/{app}/rotation", s.rotation)
	mux.HandleFunc("POST /v1/apps/{app}/rotate", s.rotate)
	mux.HandleFunc("POST /v1/apps/{app}/submit", s.submit)
	mux.HandleFunc("POST /v1/apps/{app}/confirm-deleted", s.confirmDeleted)
	mux.HandleFunc("POST /v1/apps/{app}/abort", s.abort)
	mux.HandleFunc("POST /v1/apps/{app}/confirm-updated", s.confirmUpdated)
	mux.HandleFunc("POST /v1/apps/{app}/resume", s.resume)
	mux.HandleFunc("POST /v1/apps/{app}/check", s.check)
	mux.HandleFunc("POST /v1/apps/{app}/emergency", s.emergency)
	mux.HandleFunc("POST /v1/notify/{channel}/test", s.notifyTest)
	return mux
}

func (s *socketAPI) actor(r *http.Request) string {
	p, err := PeerOf(r.Context())
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%s (uid %d, pid %d)", p.Name, p.UID, p.PID)
}

func (s *socketAPI) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.engine.Status(r.Context()))
}

func (s *socketAPI) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.ready(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, APIError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
}

func (s *socketAPI) rotation(w http.ResponseWriter, r *http.Request) {
	rot, err := s.engine.Get(r.PathValue("app"))
	s.answer(w, rot, err)
}

type actionBody struct {
	Reason string `json:"reason"`
	// Secret is only read by submit; it arrives over the 0600 socket and
	// goes straight into a secret.Value.
	Secret string `json:"secret"`
}

func readBody(r *http.Request) (actionBody, error) {
	var b actionBody
	data, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil || len(data) == 0 {
		return b, err
	}
	if err := json.Unmarshal(data, &b); err != nil {
		// The decoder's message may quote the body, which may hold a secret.
		return b, errors.New("request body is not valid JSON")
	}
	return b, nil
}

func (s *socketAPI) rotate(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r)
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	rot, err := s.engine.Rotate(r.Context(), r.PathValue("app"), b.Reason, s.actor(r))
	s.answer(w, rot, err)
}

func (s *socketAPI) submit(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r)
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	v := secret.New(b.Secret)
	b.Secret = ""
	rot, err := s.engine.Submit(r.Context(), r.PathValue("app"), v, s.actor(r))
	s.answer(w, rot, err)
}

func (s *socketAPI) confirmDeleted(w http.ResponseWriter, r *http.Request) {
	rot, err := s.engine.ConfirmDeleted(r.Context(), r.PathValue("app"), s.actor(r))
	s.answer(w, rot, err)
}

func (s *socketAPI) confirmUpdated(w http.ResponseWriter, r *http.Request) {
	rot, err := s.engine.ConfirmUpdated(r.Context(), r.PathValue("app"), s.actor(r))
	s.answer(w, rot, err)
}

func (s *socketAPI) resume(w http.ResponseWriter, r *http.Request) {
	rot, err := s.engine.Resume(r.Context(), r.PathValue("app"), s.actor(r))
	s.answer(w, rot, err)
}

func (s *socketAPI) abort(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r)
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	rot, err := s.engine.Abort(r.Context(), r.PathValue("app"), s.actor(r), b.Reason)
	s.answer(w, rot, err)
}

// EmergencyRequest is the body of POST /v1/apps/{app}/emergency.
type EmergencyRequest struct {
	Secret      string    `json:"secret_fingerprint,omitempty"`
	RevokeFirst bool      `json:"revoke_first,omitempty"`
	Drain       bool      `json:"drain,omitempty"`
	Since       time.Time `json:"since,omitzero"`
}

func (s *socketAPI) emergency(w http.ResponseWriter, r *http.Request) {
	var req EmergencyRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		s.answer(w, nil, errors.New("request body is not valid JSON"))
		return
	}
	rot, err := s.engine.Emergency(r.Context(), r.PathValue("app"),
		rotator.EmergencyOptions{Secret: secret.Fingerprint(req.Secret),
			RevokeFirst: req.RevokeFirst, Drain: req.Drain, Since: req.Since,
			Actor: s.actor(r)})
	s.answer(w, rot, err)
}

func (s *socketAPI) notifyTest(w http.ResponseWriter, r *http.Request) {
	err := s.testChannel(r.Context(), r.PathValue("channel"), s.actor(r))
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"channel": r.PathValue("channel")})
}

func (s *socketAPI) check(w http.ResponseWriter, r *http.Request) {
	res, err := s.engine.Check(r.Context(), r.PathValue("app"), s.actor(r))
	if err != nil {
		s.answer(w, nil, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// answer writes the rotation, or the error with its hint and a status
// that tells the CLI which exit code to use.
func (s *socketAPI) answer(w http.ResponseWriter, rot *rotator.Rotation, err error) {
	if err == nil {
		writeJSON(w, http.StatusOK, rot)
		return
	}
	code, status := errorCode(err)
	if status >= 500 {
		s.log.Error("request failed", "err", err)
	}
	writeJSON(w, status, APIError{Error: err.Error(), Hint: rotator.Hint(err), Code: code})
}

func errorCode(err error) (string, int) {
	switch {
	case errors.Is(err, rotator.ErrUnknownApp):
		return "unknown_app", http.StatusNotFound
	case errors.Is(err, rotator.ErrNoRotation):
		return "no_rotation", http.StatusConflict
	case errors.Is(err, rotator.ErrRotationRunning):
		return "rotation_running", http.StatusConflict
	case errors.Is(err, rotator.ErrWrongState):
		return "wrong_state", http.StatusConflict
	case errors.Is(err, rotator.ErrTooLate):
		return "too_late", http.StatusConflict
	case errors.Is(err, rotator.ErrSecretRefused):
		return "secret_refused", http.StatusUnprocessableEntity
	case errors.Is(err, rotator.ErrStillAlive):
		return "still_alive", http.StatusUnprocessableEntity
	case errors.Is(err, rotator.ErrAuditFailed):
		return "audit_failed", http.StatusServiceUnavailable
	case errors.Is(err, rotator.ErrUnknownSecret):
		return "unknown_secret", http.StatusNotFound
	case errors.Is(err, rotator.ErrRetrying):
		return "retrying", http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", http.StatusGatewayTimeout
	}
	return "failed", http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(os.Stderr, "keyturn: write answer:", err)
	}
}
