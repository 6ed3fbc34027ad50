package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/server"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

const tokenTestConfig = `
state_dir: %[1]s/state
socket: %[1]s/keyturn.sock
listen: %[2]s
smartcar: {token_url: %[3]s}
consumers:
  - {name: fleet, key_sha256: %[4]s, apps: [demo]}
apps:
  - name: demo
    client_id: client-demo
    backend: {type: env, file: %[1]s/demo.env}
`

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startTokenDaemon runs a daemon in-process with one app and a consumer
// whose key it writes to DIR/consumer.key; it returns the config file.
func startTokenDaemon(t *testing.T, emu *emulator.Emulator) (cfgFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "state"), 0o700)
	key, sum, err := server.NewConsumerKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile = filepath.Join(dir, "consumer.key")
	cfgFile = filepath.Join(dir, "keyturn.yaml")
	yaml := fmt.Sprintf(tokenTestConfig, dir, freeAddr(t), emu.TokenURL(), sum)
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	be, err := server.OpenBackend(ctx, cfg, &cfg.Apps[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	_, s1, _, _ := emu.CreateSecret("client-demo")
	if err := be.Init(ctx, secret.New(s1), time.Now()); err != nil {
		t.Fatal(err)
	}
	be.Close()
	d, err := server.Open(ctx, cfg, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return cfgFile, keyFile
}

func TestTokenCommand(t *testing.T) {
	emu := emulator.New()
	if _, err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	cfgFile, keyFile := startTokenDaemon(t, emu)
	wrong, _, _ := server.NewConsumerKey()

	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"key file flag", nil, []string{"token", "demo", "--key-file", keyFile}, 0, ""},
		{"key file from env", map[string]string{"KEYTURN_CONSUMER_KEY_FILE": keyFile},
			[]string{"token", "demo"}, 0, ""},
		{"wrong key from env", map[string]string{"KEYTURN_CONSUMER_KEY": wrong},
			[]string{"token", "demo"}, 1, "keyturn: hint: check the consumer key"},
		{"app not allowed", nil, []string{"token", "other", "--key-file", keyFile}, 1,
			`may not use app "other"`},
		{"no app", nil, []string{"token"}, 2, "usage: keyturn token APP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KEYTURN_CONSUMER_KEY_FILE", "")
			t.Setenv("KEYTURN_CONSUMER_KEY", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"--config", cfgFile},
				tt.args...), strings.NewReader(""), &stdout, &stderr)
			got := []any{code, strings.Contains(stderr.String(), tt.wantErr)}
			if diff := cmp.Diff([]any{tt.wantCode, true}, got); diff != "" {
				t.Errorf("exit code, stderr match (-want +got):\n%s\nstderr: %s", diff,
					stderr.String())
			}
			if tt.wantCode != 0 {
				return
			}
			tok := strings.TrimSuffix(stdout.String(), "\n")
			if strings.Contains(tok, "\n") || !emu.TokenValid(tok) {
				t.Errorf("stdout = %q, want one valid access token", stdout.String())
			}
		})
	}
}
