package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/server"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

// benchConfig is the daemon under test: one app on the env backend, one
// consumer with a rate limit high enough never to refuse, audit on.
const benchConfig = `
state_dir: %[1]s/state
socket: %[1]s/keyturn.sock
listen: 127.0.0.1:0
log: {level: error}
smartcar: {token_url: %[2]s}
consumers:
  - {name: bench, key_sha256: %[3]s, apps: [demo], rate: 1000000000, burst: 1000000}
apps:
  - name: demo
    client_id: client-bench
    backend: {type: env, file: %[1]s/demo.env}
`

// runServer serves the daemon and the bare handler until ctx ends. Its
// first line on stdout is an addrs document.
func runServer(ctx context.Context, dir, profile string) error {
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "keyturn-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	emu := emulator.New()
	if _, err := emu.Start("127.0.0.1:0"); err != nil {
		return err
	}
	defer emu.Close()
	d, keyFile, err := openDaemon(ctx, dir, emu, emu.TokenURL())
	if err != nil {
		return err
	}
	bare, err := serveBare()
	if err != nil {
		return err
	}
	defer bare.Close()
	a := addrs{Broker: "http://" + d.Addr().String(), Bare: "http://" + bare.Addr,
		KeyFile: keyFile, Dir: dir}
	if err := json.NewEncoder(os.Stdout).Encode(a); err != nil {
		return err
	}
	return d.Run(ctx)
}

func openDaemon(ctx context.Context, dir string, emu *emulator.Emulator,
	tokenURL string) (*server.Daemon, string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return nil, "", err
	}
	key, sum, err := server.NewConsumerKey()
	if err != nil {
		return nil, "", err
	}
	keyFile := filepath.Join(dir, "consumer.key")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		return nil, "", err
	}
	cfgFile := filepath.Join(dir, "keyturn.yaml")
	yaml := fmt.Sprintf(benchConfig, dir, tokenURL, sum)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		return nil, "", err
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		return nil, "", err
	}
	if err := seed(ctx, cfg, emu); err != nil {
		return nil, "", err
	}
	d, err := server.Open(ctx, cfg, server.Options{})
	return d, keyFile, err
}

// seed gives the app a secret the emulator knows.
func seed(ctx context.Context, cfg *config.Config, emu *emulator.Emulator) error {
	be, err := server.OpenBackend(ctx, cfg, &cfg.Apps[0], nil)
	if err != nil {
		return err
	}
	defer be.Close()
	_, s, created, err := emu.CreateSecret(cfg.Apps[0].ClientID)
	if err != nil {
		return err
	}
	return be.Init(ctx, secret.New(s), created)
}

// bareServer is the reference: net/http returning a constant token of
// the broker's shape, with the same server timeouts.
type bareServer struct {
	*http.Server
	Addr string
}

func serveBare() (*bareServer, error) {
	body := []byte(`{"access_token":"` + "bench-constant-token-0123456789abcdef" +
		`","token_type":"Bearer","expires_at":"` +
		time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}` + "\n")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/apps/{app}/token", func(w http.ResponseWriter,
		_ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(body)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 45 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	go srv.Serve(ln)
	return &bareServer{Server: srv, Addr: ln.Addr().String()}, nil
}
