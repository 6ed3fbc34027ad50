package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/rotator"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

// writeCert writes a self-signed certificate for 127.0.0.1.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1),
		Subject:     pkix.Name{CommonName: "keyturn test"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

const daemonConfig = `
state_dir: %[1]s/state
socket: %[1]s/keyturn.sock
listen: 127.0.0.1:0
tls: {cert_file: %[2]s, key_file: %[3]s}
smartcar: {token_url: %[4]s, timeout: 5s}
consumers:
  - {name: fleet, key_sha256: %[5]s, apps: [demo]}
apps:
  - name: demo
    client_id: client-demo
    backend: {type: env, file: %[1]s/demo.env}
    consumers: {mode: broker}
`

// startDaemon runs a whole daemon over TLS with one app, client ID
// "client-demo", whose current secret is first; stop ends Run and returns
// its error.
func startDaemon(t *testing.T, tokenURL, first string, key testKey) (*Daemon,
	func() error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "state"), 0o700); err != nil {
		t.Fatal(err)
	}
	cert, pkey := writeCert(t, dir)
	file := filepath.Join(dir, "keyturn.yaml")
	yaml := fmt.Sprintf(daemonConfig, dir, cert, pkey, tokenURL, key.cfg.KeySHA256)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	be, err := OpenBackend(ctx, cfg, &cfg.Apps[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Init(ctx, secret.New(first), time.Now()); err != nil {
		t.Fatal(err)
	}
	be.Close()
	d, err := Open(ctx, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { stop() })
	return d, stop
}

func TestDaemonBrokerAcrossPromotion(t *testing.T) {
	emu := emulator.New()
	if _, err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	id1, s1, _, err := emu.CreateSecret("client-demo")
	if err != nil {
		t.Fatal(err)
	}
	key := newTestKey(t, "fleet", "demo")
	d, stop := startDaemon(t, emu.TokenURL(), s1, key)
	cl, err := NewBrokerClient(d.cfg, "https://"+d.Addr().String(), secret.New(key.key))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	first, err := cl.Token(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	e := d.Engine()
	if _, err := e.Rotate(ctx, "demo", "test", "tester"); err != nil {
		t.Fatal(err)
	}
	id2, s2, _, err := emu.CreateSecret("client-demo")
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Submit(ctx, "demo", secret.New(s2), "tester")
	if err != nil {
		t.Fatal(err)
	}
	second, err := cl.Token(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	var used []string // the secrets of the requests, in order
	for _, rec := range emu.Requests() {
		used = append(used, rec.SecretID)
	}
	// broker with the first secret, verify_new and broker with the second
	want := []string{id1, id2, id2}
	if diff := cmp.Diff(want, used); diff != "" {
		t.Errorf("secrets presented to smartcar (-want +got):\n%s", diff)
	}
	if first.Value.Equal(second.Value) || !emu.TokenValid(second.Value.Reveal()) {
		t.Error("the token did not switch to a valid one minted with the new secret")
	}
	if r.State != rotator.StateAwaitDelete {
		t.Errorf("rotation state = %s, want await_delete", r.State)
	}

	m := scrape(t, cl.hc, cl.base)
	for k, v := range map[string]float64{
		`keyturn_token_requests_total{purpose="verify_new",result="ok"}`: 1,
		`keyturn_token_requests_total{purpose="broker",result="ok"}`:     2,
		`keyturn_rotation_state{app="demo",state="await_delete"}`:        1,
		`keyturn_audit_healthy{}`:                                        1,
	} {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	rep, err := audit.Review(d.cfg.Audit.Dir, audit.ReviewQuery{App: "demo",
		SecretFP: string(secret.New(s2).Fingerprint())})
	if err != nil {
		t.Fatal(err)
	}
	var actors []string
	for _, c := range rep.Callers {
		actors = append(actors, c.Actor)
	}
	if !strings.Contains(strings.Join(actors, " "), "consumer:fleet") {
		t.Errorf("audit review of the new secret names %v, want consumer:fleet", actors)
	}
}

func TestDaemonShutdownLetsInFlightVendFinish(t *testing.T) {
	sc := newFakeSmartcar(t)
	sc.allow("secret-1")
	key := newTestKey(t, "fleet", "demo")
	d, stop := startDaemon(t, sc.tokenURL(), "secret-1", key)
	cl, err := NewBrokerClient(d.cfg, "https://"+d.Addr().String(), secret.New(key.key))
	if err != nil {
		t.Fatal(err)
	}
	release := sc.holdRequests()
	defer release()
	type result struct {
		tok BrokerToken
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := cl.Token(context.Background(), "demo")
		done <- result{tok, err}
	}()
	waitFor(t, "the vend to wait on smartcar",
		func() bool { return d.web.broker.waiting.Load() == 1 })

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	waitFor(t, "the listener to close", func() bool {
		c, err := net.Dial("tcp", d.Addr().String())
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	release()
	res := <-done
	if res.err != nil || res.tok.Value.Reveal() != "tok-1" {
		t.Errorf("in-flight vend = %v, %v; want tok-1", res.tok.Value.Reveal(), res.err)
	}
	if err := <-stopped; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("run: %v", err)
	}
}

func TestTLSIsServed(t *testing.T) {
	sc := newFakeSmartcar(t)
	d, _ := startDaemon(t, sc.tokenURL(), "secret-1", newTestKey(t, "fleet", "demo"))
	conn, err := tls.Dial("tcp", d.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("tls handshake: %v", err)
	}
	defer conn.Close()
	if v := conn.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Errorf("tls version %x", v)
	}
	plain, err := http.Get("http://" + d.Addr().String() + "/healthz")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK {
			t.Error("plain http answered on a tls listener")
		}
	}
}
