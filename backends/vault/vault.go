package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/backends"
)

var _ backends.Backend = (*Backend)(nil)

// Options configures a Backend.
type Options struct {
	// Address is Vault's URL; empty uses VAULT_ADDR.
	Address string
	// Mount is the KV version 2 mount, "secret" when empty.
	Mount string
	// Path is the credential's path inside the mount, such as
	// "smartcar/fleet-prod"; the pending secret lives at Path + "/pending".
	Path string
	// Namespace is the Vault Enterprise namespace; empty uses
	// VAULT_NAMESPACE, if set.
	Namespace string
	// CACert is a PEM file of CAs to trust; empty uses VAULT_CACERT or the
	// system roots.
	CACert string
	// TLSServerName overrides the name checked in Vault's certificate.
	TLSServerName string
	// ClientID is the Smartcar application's client id, stored beside
	// every secret.
	ClientID string
	// Auth says how to log in.
	Auth AuthOptions
	// KeepDeleted keeps a removed previous version soft-deleted (so an
	// operator can still undelete it) this long before it is destroyed;
	// zero destroys it at once.
	KeepDeleted time.Duration
	// Logger receives lifecycle (Info) and step (Debug) records; nil
	// discards them.
	Logger *slog.Logger
	// Clock tells the time for KeepDeleted; nil is time.Now.
	Clock func() time.Time
}

// Backend is a credential stored at one KV version 2 path. It is safe for
// concurrent use; writes from one Backend are serialized.
type Backend struct {
	client   *api.Client
	auth     *authenticator
	addr     string
	mount    string
	path     string
	keep     time.Duration
	now      func() time.Time
	log      *slog.Logger
	clientID string

	mu sync.Mutex // serializes writes

	mountMu sync.Mutex
	mountOK bool // the mount was found to be KV version 2

	// hook, when set by a test, runs at each named step of a write.
	hook func(step string)
}

// Log keys, shared by every record this package writes.
const (
	logPath       = "vault_path"
	logVersion    = "version"
	logRotationID = "rotation_id"
	logSecretFP   = "secret_fp"
)

// New returns a Backend for o.Path. It reads the token or credential
// files to check they exist, but makes no request: logging in, a missing
// mount or a missing permission show up at the first call.
func New(ctx context.Context, o Options) (*Backend, error) {
	if o.Path == "" {
		return nil, errors.New("vault: no path")
	}
	mount := strings.Trim(o.Mount, "/")
	if mount == "" {
		mount = "secret"
	}
	path := strings.Trim(o.Path, "/")
	client, err := newClient(o)
	if err != nil {
		return nil, fmt.Errorf("vault: configuring the client for %q: %w", path, err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log = log.With(logPath, mount+"/"+path)
	auth, err := newAuthenticator(client, o.Auth, log)
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	now := o.Clock
	if now == nil {
		now = time.Now
	}
	return &Backend{
		client: client, auth: auth, addr: client.Address(), mount: mount,
		path: path, keep: o.KeepDeleted, now: now, log: log, clientID: o.ClientID,
	}, nil
}

// Retry bounds for every request, including logins. Tests shorten them.
var (
	maxRetries   = 4
	minRetryWait = 250 * time.Millisecond
	maxRetryWait = 4 * time.Second
)

func newClient(o Options) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, cfg.Error
	}
	if o.Address != "" {
		cfg.Address = o.Address
	}
	if o.CACert != "" || o.TLSServerName != "" {
		err := cfg.ConfigureTLS(&api.TLSConfig{CACert: o.CACert,
			TLSServerName: o.TLSServerName})
		if err != nil {
			return nil, fmt.Errorf("tls settings: %w", err)
		}
	}
	cfg.MaxRetries = maxRetries
	cfg.MinRetryWait, cfg.MaxRetryWait = minRetryWait, maxRetryWait
	cfg.Backoff = jitterBackoff
	// Logins and lookups run on clones: same TLS settings and namespace.
	cfg.CloneTLSConfig, cfg.CloneHeaders = true, true
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if o.Namespace != "" {
		client.SetNamespace(o.Namespace)
	}
	return client, nil
}

// jitterBackoff waits exponentially longer between attempts, each wait
// drawn from its upper half so that many clients do not retry in step. A
// Retry-After from Vault is honoured up to max.
func jitterBackoff(min, max time.Duration, attempt int,
	resp *http.Response) time.Duration {
	if resp != nil {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			return clamp(time.Duration(s)*time.Second, min, max)
		}
	}
	wait := max
	if attempt < 30 {
		wait = clamp(min<<attempt, min, max)
	}
	return wait/2 + rand.N(wait/2+1)
}

func clamp(d, lo, hi time.Duration) time.Duration {
	return minDur(hi, maxDur(lo, d))
}

func minDur(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// String names the path and the Vault it lives in.
func (b *Backend) String() string {
	return fmt.Sprintf("vault kv %q at %s", b.mount+"/"+b.path, b.addr)
}

// Close stops renewing the token. It does not revoke it: a token from a
// file belongs to whoever wrote the file, and a login token expires.
func (b *Backend) Close() error {
	b.auth.close()
	return nil
}

// step runs the test hook, if any.
func (b *Backend) step(name string) {
	if b.hook != nil {
		b.hook(name)
	}
}
