package sample

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"

	"github.com/keyturn/keyturn/secret"
)

// Keys read from the env file, the names the env backend writes.
const (
	keyClientID     = "SMARTCAR_CLIENT_ID"
	keyClientSecret = "SMARTCAR_CLIENT_SECRET"
)

// creds is what the consumer holds. secret.Value keeps the secret out of
// every log line and answer.
type creds struct {
	clientID string
	secret   secret.Value
}

// consumer serves /healthz with the credentials it last loaded.
type consumer struct {
	tokenURL string
	client   *http.Client
	log      *slog.Logger
	creds    atomic.Pointer[creds]
}

// load reads the env file and, when it holds both keys, starts using
// them and writes the secret's fingerprint to loadedFile.
func (c *consumer) load(envFile, loadedFile string) error {
	data, err := os.ReadFile(envFile)
	if err != nil {
		return err
	}
	vals, err := parseEnv(data)
	if err != nil {
		return fmt.Errorf("%s: %w", envFile, err)
	}
	cr := &creds{clientID: vals[keyClientID], secret: secret.New(vals[keyClientSecret])}
	if cr.clientID == "" || cr.secret.IsZero() {
		return fmt.Errorf("%s: %s and %s are both needed", envFile, keyClientID,
			keyClientSecret)
	}
	c.creds.Store(cr)
	fp := cr.secret.Fingerprint()
	c.log.Info("loaded credentials", "client_id", cr.clientID, "secret_fp", fp)
	return writeFile(loadedFile, string(fp))
}

func (c *consumer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", c.serveHealth)
	return mux
}

// serveHealth answers 200 when the secret held gets a token right now.
func (c *consumer) serveHealth(w http.ResponseWriter, r *http.Request) {
	cr := c.creds.Load()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := c.token(r, cr); err != nil {
		c.log.Warn("health check failed", "secret_fp", cr.secret.Fingerprint(),
			"err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "unhealthy: %v (secret %s)\n", err, cr.secret.Fingerprint())
		return
	}
	fmt.Fprintf(w, "ok (secret %s)\n", cr.secret.Fingerprint())
}

// token makes one client-credentials token request with cr. It reports
// the answer's status and OAuth error code, never a body that could echo
// what was sent.
func (c *consumer) token(r *http.Request, cr *creds) error {
	form := url.Values{"grant_type": {"client_credentials"},
		"client_id": {cr.clientID}, "client_secret": {cr.secret.Reveal()}}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, c.tokenURL,
		strings.NewReader(form.Encode()))
	if err != nil {
		return errors.New("bad token URL")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("token request: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	if resp.StatusCode != http.StatusOK || body.AccessToken == "" {
		return fmt.Errorf("token request: %d %s", resp.StatusCode, body.Error)
	}
	return nil
}

// parseEnv reads KEY=VALUE lines as the env backend writes them: "#"
// comments, an optional "export ", values bare, in single quotes
// (literal) or in double quotes (backslash escapes). Errors name the
// line by number, never by content.
func parseEnv(data []byte) (map[string]string, error) {
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || t[0] == '#' {
			continue
		}
		key, raw, ok := strings.Cut(strings.TrimPrefix(t, "export "), "=")
		if !ok {
			return nil, fmt.Errorf("line %d is not KEY=VALUE", n)
		}
		v, err := unquote(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		vals[strings.TrimSpace(key)] = v
	}
	return vals, sc.Err()
}

func unquote(raw string) (string, error) {
	if len(raw) == 0 || raw[0] != '\'' && raw[0] != '"' {
		return raw, nil
	}
	if len(raw) < 2 || raw[len(raw)-1] != raw[0] {
		return "", errors.New("unterminated quote")
	}
	inner := raw[1 : len(raw)-1]
	if raw[0] == '\'' {
		return inner, nil
	}
	var b strings.Builder
	for i := 0; i < len(inner); i++ {
		if inner[i] == '\\' && i+1 < len(inner) {
			i++
		}
		b.WriteByte(inner[i])
	}
	return b.String(), nil
}
