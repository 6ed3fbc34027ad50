package server

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/rotator"
)

// fuzzCurrent is the current secret of the fuzzed app.
const fuzzCurrent = "sc-fuzz-current-0f1e2d3c4b5a"

// socketRoutes are the socket API's routes under /v1/apps/{app}/, in the
// order the fuzzer's first argument picks them.
var socketRoutes = []struct{ method, path string }{
	{"POST", "rotate"}, {"POST", "submit"}, {"POST", "abort"}, {"POST", "emergency"},
	{"POST", "confirm-deleted"}, {"POST", "confirm-updated"}, {"POST", "resume"},
	{"POST", "check"}, {"GET", "rotation"},
}

// socketFuzz is the socket API over a real rotation engine and state
// database, with an in-memory backend and a Smartcar that refuses every
// new secret, so no input can promote one.
type socketFuzz struct {
	dir     string
	cfg     *config.Config
	store   *rotator.Store
	backend *fuzzBackend
	audit   *watchedAudit
	log     *watchedLog
	engine  *rotator.Engine
	h       http.Handler
}

func newSocketFuzz(tb testing.TB) *socketFuzz {
	s := &socketFuzz{dir: tb.TempDir(), audit: &watchedAudit{}, log: &watchedLog{}}
	s.cfg = &config.Config{StateDir: s.dir, Apps: []config.App{{Name: "demo",
		ClientID: "client_demo", Backend: config.Backend{Type: "env"},
		Policy: config.Policy{MaxAge: config.Duration(90 * 24 * time.Hour),
			WarnBefore: config.Duration(14 * 24 * time.Hour)},
		Schedule: "0 10 * * MON-FRI", Timezone: "UTC",
		Consumers: config.AppConsumers{Mode: "broker"},
		Prompts: config.Prompts{RemindEvery: config.Duration(4 * time.Hour),
			EscalateAfter: config.Duration(24 * time.Hour)}}}}
	s.open(tb)
	tb.Cleanup(func() { s.store.Close() })
	return s
}

// open starts from nothing: a new state database, backend and engine.
func (s *socketFuzz) open(tb testing.TB) {
	if s.store != nil {
		s.store.Close()
		os.Remove(filepath.Join(s.dir, "keyturn.db"))
	}
	var err error
	if s.store, err = rotator.OpenStore(s.dir); err != nil {
		tb.Fatal(err)
	}
	s.backend = newFuzzBackend(fuzzCurrent)
	log := slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.engine, err = rotator.New(s.cfg, rotator.Deps{Store: s.store,
		Backends: map[string]backends.Backend{"demo": s.backend},
		Tokens:   refusingSmartcar{current: fuzzCurrent}, Audit: s.audit, Logger: log,
		AuditDir: s.dir})
	if err != nil {
		tb.Fatal(err)
	}
	api := &socketAPI{engine: s.engine, log: log, ready: func() error { return nil },
		testChannel: func(context.Context, string, string) error { return nil }}
	s.h = api.routes()
}

// reset ends any rotation an input left, so inputs do not depend on each
// other; one that cannot be aborted (past await_new) costs a new database.
func (s *socketFuzz) reset(tb testing.TB) {
	r, err := s.engine.Get("demo")
	if err != nil || r == nil {
		return
	}
	if _, err := s.engine.Abort(context.Background(), "demo", "fuzz", "reset"); err != nil {
		s.open(tb)
	}
}

// FuzzSocketAPI sends arbitrary bodies to every socket route that takes
// an app, with an arbitrary app path value, optionally while a rotation
// waits for a secret. No input may panic, answer something other than a
// status the CLI knows, leave a refused secret stored, or echo, audit or
// log a submitted secret.
func FuzzSocketAPI(f *testing.F) {
	f.Add(uint8(1), "demo", []byte(`{"secret":"sc-fuzz-0123456789abcdef"}`), true)
	f.Add(uint8(1), "demo", []byte(`{"SECRET":"sc-fuzz-0123456789abcdef","reason":7}`),
		true)
	f.Add(uint8(1), "demo", []byte(`{"secret":"`+fuzzCurrent+`"}`), true)
	f.Add(uint8(0), "demo", []byte(`{"reason":"fuzz"}`), false)
	f.Add(uint8(2), "demo", []byte(``), true)
	f.Add(uint8(3), "demo", []byte(`{"revoke_first":true,"drain":true}`), false)
	f.Add(uint8(3), "demo",
		[]byte(`{"secret_fingerprint":"fp_00","since":"2026-01-02T03:04:05Z"}`), true)
	f.Add(uint8(4), "demo", []byte(`{}`), true)
	f.Add(uint8(1), "nope", []byte(`{"secret": 1}`), false)
	f.Add(uint8(8), "de%2Fmo", []byte(nil), false)
	s := newSocketFuzz(f)
	f.Fuzz(func(t *testing.T, route uint8, app string, body []byte, rotating bool) {
		defer s.reset(t)
		rt := socketRoutes[int(route)%len(socketRoutes)]
		if rotating {
			if _, err := s.engine.Rotate(context.Background(), "demo", "fuzz",
				"fuzz"); err != nil {
				t.Fatalf("start a rotation: %v", err)
			}
		}
		// The handler decodes with encoding/json too, so this finds the
		// same secret it does, whatever the field's spelling.
		var probe struct{ Secret string }
		json.Unmarshal(body, &probe)
		watch := ""
		if strings.HasPrefix(probe.Secret, "sc-fuzz-") && len(probe.Secret) >= 16 &&
			probe.Secret != fuzzCurrent {
			watch = probe.Secret
		}
		s.audit.reset(watch)
		s.log.reset(watch)

		req := httptest.NewRequest(rt.method, "/v1/apps/"+url.PathEscape(app)+"/"+rt.path,
			bytes.NewReader(body))
		rec := httptest.NewRecorder()
		s.h.ServeHTTP(rec, req)
		checkSocketAnswer(t, rec)
		if watch != "" && strings.Contains(rec.Body.String(), watch) {
			t.Errorf("the answer holds the submitted secret:\n%s", rec.Body)
		}
		if _, _, leak := s.audit.counts(); leak != "" {
			t.Errorf("an audit record holds the submitted secret: %s", leak)
		}
		if leak := s.log.leaked(); leak != "" {
			t.Errorf("a log line holds the submitted secret: %s", leak)
		}
		if s.backend.pending() {
			t.Errorf("a refused secret stayed pending after %s %s", rt.method, req.URL)
		}
	})
}

// checkSocketAnswer checks the status and shape of one answer.
func checkSocketAnswer(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	body := rec.Body.Bytes()
	isJSON := rec.Header().Get("Content-Type") == "application/json"
	if isJSON && !json.Valid(body) {
		t.Fatalf("answer %d is not JSON: %q", rec.Code, body)
	}
	switch rec.Code {
	case http.StatusOK, http.StatusNotFound, http.StatusConflict,
		http.StatusUnprocessableEntity:
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect,
		http.StatusPermanentRedirect, http.StatusMethodNotAllowed:
		// ServeMux's answers to unclean paths, before any handler.
		if isJSON {
			t.Errorf("a handler answered %d: %s", rec.Code, body)
		}
	case http.StatusInternalServerError:
		// Limitation: a body that is not JSON is answered 500 (code
		// "failed") rather than 400; any other 500 is a bug.
		var e APIError
		json.Unmarshal(body, &e)
		if e.Error != "request body is not valid JSON" {
			t.Errorf("answer 500: %s", body)
		}
	default:
		t.Errorf("unexpected answer %d: %s", rec.Code, body)
	}
}
