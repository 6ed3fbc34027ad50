package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/backends/conformance"
)

var ctx = context.Background()

var (
	first, second, tricky = conformance.First, conformance.Second, conformance.Tricky
	epoch                 = time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
)

var skipOnce sync.Once

// realVault returns the address and CA of the Vault the test script
// started (scripts/vault-server). Without one the test is skipped, loudly,
// except in CI, where it fails.
func realVault(t *testing.T) (addr, caCert string) {
	t.Helper()
	addr, caCert = os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_CACERT")
	if addr != "" && os.Getenv("VAULT_TOKEN") != "" {
		return addr, caCert
	}
	msg := "VAULT_ADDR and VAULT_TOKEN are not set, so there is no Vault to test " +
		"against; start one with: scripts/vault-server /tmp/vault.env && " +
		"set -a && . /tmp/vault.env && set +a"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	skipOnce.Do(func() {
		fmt.Fprintf(os.Stderr,
			"\n*** SKIPPING backends/vault TESTS AGAINST VAULT: %s\n\n", msg)
	})
	t.Skip(msg)
	return "", ""
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// uniquePath returns a path no other test run uses, one segment below
// smartcar/ so that deploy/vault's policy covers it.
func uniquePath(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := unsafeName.ReplaceAllString(t.Name(), "-")
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return "smartcar/" + name + "-" + hex.EncodeToString(b[:])
}

// testOptions reaches the real Vault with the token in VAULT_TOKEN.
func testOptions(t *testing.T, path string) Options {
	addr, ca := realVault(t)
	return Options{Address: addr, CACert: ca, Mount: "secret", Path: path,
		ClientID: "client_test123", Auth: AuthOptions{Method: "token"}}
}

func open(t *testing.T, o Options) *Backend {
	t.Helper()
	b, err := New(ctx, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// rootClient talks to the real Vault with the root token, without keyturn
// in between.
func rootClient(t *testing.T) *api.Client {
	t.Helper()
	addr, ca := realVault(t)
	cfg := api.DefaultConfig()
	cfg.Address = addr
	if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: ca}); err != nil {
		t.Fatal(err)
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(os.Getenv("VAULT_TOKEN"))
	return c
}

func TestConformance(t *testing.T) {
	realVault(t)
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) backends.Backend {
			return open(t, testOptions(t, uniquePath(t)))
		},
		Reopen: func(t *testing.T, b backends.Backend) backends.Backend {
			return open(t, testOptions(t, b.(*Backend).path))
		},
	})
}

// TestConformanceKeepDeleted runs the suite with removed versions kept
// soft-deleted, the other RemovePrevious path.
func TestConformanceKeepDeleted(t *testing.T) {
	realVault(t)
	withKeep := func(t *testing.T, path string) *Backend {
		o := testOptions(t, path)
		o.KeepDeleted = 24 * time.Hour
		return open(t, o)
	}
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) backends.Backend { return withKeep(t, uniquePath(t)) },
		Reopen: func(t *testing.T, b backends.Backend) backends.Backend {
			return withKeep(t, b.(*Backend).path)
		},
	})
}

func listErr(b *Backend) error {
	_, err := b.List(ctx)
	return err
}

// logBuffer collects a Backend's log records as text.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestNoSecretInLogs runs a rotation with debug logging and looks for the
// values in the log.
func TestNoSecretInLogs(t *testing.T) {
	var logs logBuffer
	o := testOptions(t, uniquePath(t))
	o.Logger = logs.logger()
	b := open(t, o)
	steps := []func() error{
		func() error { return b.Init(ctx, first, epoch) },
		func() error { return b.WritePending(ctx, "rot-1", second, epoch) },
		func() error { return b.Promote(ctx, "rot-1", second.Fingerprint()) },
		func() error { return b.RemovePrevious(ctx, first.Fingerprint()) },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	for _, v := range []string{first.Reveal(), second.Reveal()} {
		if strings.Contains(logs.String(), v) {
			t.Errorf("a secret value appears in the log:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "pending secret promoted to current") {
		t.Errorf("no promotion record in the log:\n%s", logs.String())
	}
}
