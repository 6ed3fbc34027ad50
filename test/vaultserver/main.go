// Command vaultserver runs a one-node, in-memory Vault test cluster on
// loopback so that keyturn's Vault backend can be tested against a real
// server on machines where no Vault binary can be installed.
//
// It mounts KV version 2 at secret/ and KV version 1 at kv1/ (see -kv1-mount),
// then prints VAULT_ADDR, VAULT_CACERT and VAULT_TOKEN as shell assignments
// and serves until SIGINT or SIGTERM. It lives in its own module because
// Vault's dependency graph is several gigabytes.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/api"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault"
	gti "github.com/mitchellh/go-testing-interface"
)

// readyTimeout bounds the wait for KV v2's background upgrade after mounting.
const readyTimeout = 30 * time.Second

type options struct {
	dir      string
	envFile  string
	kv1Mount string
	verbose  bool
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "vaultserver: error: %v\n", err)
		os.Exit(1)
	}
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.dir, "dir", "",
		"directory for ca.pem (default: a temporary directory removed on exit)")
	flag.StringVar(&o.envFile, "env-file", "",
		"also write the VAULT_* lines to this file once the server is ready")
	flag.StringVar(&o.kv1Mount, "kv1-mount", "kv1",
		"mount a KV version 1 engine at this path (empty: none)")
	flag.BoolVar(&o.verbose, "v", false, "show Vault's logs on stderr")
	flag.Parse()
	return o
}

func run() error {
	o := parseFlags()
	ctx, stop := signal.NotifyContext(context.Background(),
		os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, removeDir, err := caDir(o.dir)
	if err != nil {
		return err
	}
	defer removeDir()

	cluster, err := startCluster(o.verbose)
	if err != nil {
		return err
	}
	defer cluster.Cleanup()

	client := cluster.Cores[0].Client
	if err := mountEngines(ctx, client, o.kv1Mount); err != nil {
		return err
	}

	caPath := filepath.Join(dir, "ca.pem")
	if err := copyFile(cluster.CACertPEMFile, caPath); err != nil {
		return fmt.Errorf("copying CA certificate: %w", err)
	}
	env, err := envLines(client.Address(), caPath, cluster.RootToken)
	if err != nil {
		return err
	}

	// The env file appears only when everything is ready, so scripts can
	// poll for it; it is removed on exit because it would point nowhere.
	if o.envFile != "" {
		if err := writeAtomic(o.envFile, []byte(env)); err != nil {
			return fmt.Errorf("writing env file: %w", err)
		}
		defer os.Remove(o.envFile)
	}
	if _, err := io.WriteString(os.Stdout, env); err != nil {
		return err
	}

	<-ctx.Done()
	return nil
}

// caDir returns the directory for ca.pem and a function that removes it if
// this program created it.
func caDir(dir string) (string, func(), error) {
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", nil, err
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return "", nil, fmt.Errorf("creating -dir: %w", err)
		}
		return abs, func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "vaultserver-")
	if err != nil {
		return "", nil, err
	}
	return tmp, func() { os.RemoveAll(tmp) }, nil
}

// runtimeTB lets go-testing-interface's RuntimeT stand in for testing.TB,
// which NewTestCluster requires. RuntimeT's methods sit one level shallower
// than the nil testing.TB's, so they win; only the unexported method comes
// from testing.TB. Methods RuntimeT lacks (TempDir, Setenv, Context) would
// panic, and the cluster does not call them.
type runtimeTB struct {
	*gti.RuntimeT
	tbHolder
}

type tbHolder struct{ testing.TB }

// startCluster starts the cluster, turning the panic that RuntimeT raises
// on t.Fatal into an error.
func startCluster(verbose bool) (cluster *vault.TestCluster, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("starting vault test cluster: %v", r)
		}
	}()

	out := io.Discard
	if verbose {
		out = os.Stderr
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name: "vault", Output: out, Level: hclog.Info,
	})

	caCert, caKey, err := newCA()
	if err != nil {
		return nil, err
	}

	t := runtimeTB{RuntimeT: &gti.RuntimeT{}}
	cluster = vault.NewTestCluster(t, &vault.CoreConfig{
		LogicalBackends: map[string]logical.Factory{"kv": kv.Factory},
	}, &vault.TestClusterOptions{
		HandlerFunc: vaulthttp.Handler,
		NumCores:    1,
		Logger:      logger,
		CACert:      caCert,
		CAKey:       caKey,
	})
	return cluster, nil
}

// newCA makes the cluster's CA. The cluster's default CA is named
// "localhost", like the server certificate it signs; OpenSSL (and so curl)
// then takes that certificate for a self-signed one and refuses it.
func newCA() ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "keyturn vaultserver test CA"},
		SerialNumber:          serial,
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	return der, key, nil
}

// mountEngines replaces the cluster's KV v1 secret/ with KV v2, optionally
// mounts KV v1 at kv1Mount, and waits until KV v2 accepts writes.
func mountEngines(ctx context.Context, c *api.Client, kv1Mount string) error {
	sys := c.Sys()
	if err := sys.UnmountWithContext(ctx, "secret"); err != nil {
		return fmt.Errorf("unmounting secret/: %w", err)
	}
	err := sys.MountWithContext(ctx, "secret", &api.MountInput{
		Type: "kv", Options: map[string]string{"version": "2"},
	})
	if err != nil {
		return fmt.Errorf("mounting kv v2 at secret/: %w", err)
	}

	if kv1Mount != "" {
		err := sys.MountWithContext(ctx, kv1Mount, &api.MountInput{
			Type: "kv", Options: map[string]string{"version": "1"},
		})
		if err != nil {
			return fmt.Errorf("mounting kv v1 at %s/: %w", kv1Mount, err)
		}
	}
	return waitKV2(ctx, c)
}

// waitKV2 retries a write until KV v2's background upgrade has finished,
// then deletes the probe so tests see an empty mount.
func waitKV2(ctx context.Context, c *api.Client) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()

	const probe = "vaultserver-ready"
	data := map[string]any{"data": map[string]any{"ok": "1"}}
	for {
		_, err := c.Logical().WriteWithContext(ctx, "secret/data/"+probe, data)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for kv v2 at secret/: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}

	_, err := c.Logical().DeleteWithContext(ctx, "secret/metadata/"+probe)
	if err != nil {
		return fmt.Errorf("deleting readiness probe: %w", err)
	}
	return nil
}

// envLines formats the assignments. Values are not quoted, so a path that
// a shell would split or expand is refused rather than printed.
func envLines(addr, caPath, token string) (string, error) {
	if strings.ContainsAny(caPath, " \t\n'\"$`\\;&|<>()*?[]#~{}") {
		return "", fmt.Errorf("CA path %q needs shell quoting: pick another -dir",
			caPath)
	}
	if token == "" {
		return "", errors.New("cluster has no root token")
	}
	return fmt.Sprintf("VAULT_ADDR=%s\nVAULT_CACERT=%s\nVAULT_TOKEN=%s\n",
		addr, caPath, token), nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return writeAtomic(dst, b)
}

// writeAtomic writes through a temporary file in the same directory and
// renames it, so a reader never sees a partial file.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".vaultserver-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())

	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
