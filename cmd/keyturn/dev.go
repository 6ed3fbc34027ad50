package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/server"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

const devClientID = "demo-client-0001"

// devState is DIR/dev.json: what `keyturn dev dashboard` needs to find
// the emulator.
type devState struct {
	EmulatorURL string `json:"emulator_url"`
	ClientID    string `json:"client_id"`
}

type devOptions struct {
	dir, backend, emulatorAddr, listen string
	drain                              time.Duration
	noConsumer                         bool
}

func newDevCmd(e *env) *cobra.Command {
	o := devOptions{}
	c := &cobra.Command{
		Use:   "dev",
		Short: "Daemon + local Smartcar emulator + env backend in one process",
		Long: "dev runs everything on this machine: a Smartcar emulator on loopback, the\n" +
			"daemon, and an app named demo whose first secret is already created and\n" +
			"stored. It writes DIR/keyturn.yaml for the other commands.",
		Example: "  keyturn dev --dir ./keyturn-dev\n" +
			"  keyturn dev --backend awssm   # with AWS_ENDPOINT_URL_SECRETS_MANAGER set",
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error { return runDev(c.Context(), e, o) },
	}
	c.PersistentFlags().StringVar(&o.dir, "dir", "keyturn-dev",
		"folder for config, state and env file")
	c.Flags().StringVar(&o.backend, "backend", "env", "env, vault or awssm")
	c.Flags().StringVar(&o.emulatorAddr, "emulator-addr", "",
		"address for the emulator (default: the last one used in DIR, else a free port)")
	c.Flags().DurationVar(&o.drain, "drain", 2*time.Second, "consumer propagation window")
	c.Flags().StringVar(&o.listen, "listen", config.DefaultListen,
		"broker, health and metrics address (a free port if taken)")
	c.Flags().BoolVar(&o.noConsumer, "no-sample-consumer", false,
		"skip the sample consumer and its reload hook and health gate")
	c.AddCommand(newDashboardCmd(e, &o), newSampleConsumerCmd())
	return c
}

func runDev(ctx context.Context, e *env, o devOptions) error {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	prev, _ := readDevState(dir)
	addr := o.emulatorAddr
	if addr == "" && prev.EmulatorURL != "" {
		addr = strings.TrimPrefix(prev.EmulatorURL, "http://")
	}
	emu := emulator.New()
	url, err := emu.Start(addr)
	if err != nil && o.emulatorAddr == "" && addr != "" {
		url, err = emu.Start("127.0.0.1:0") // the old port is taken
	}
	if err != nil {
		return fmt.Errorf("start the smartcar emulator: %w", err)
	}
	defer emu.Close()

	vals, err := devValues(dir, url, o)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "keyturn.yaml")
	if err := writeDevConfig(cfgPath, vals); err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if err := seedDemo(ctx, cfg, emu); err != nil {
		return err
	}
	if vals["Consumer"] != nil {
		stop, err := startSampleConsumer(dir, url, vals["Consumer"].(string))
		if err != nil {
			return err
		}
		defer stop()
	}
	data, _ := json.Marshal(devState{EmulatorURL: url, ClientID: devClientID})
	if err := os.WriteFile(filepath.Join(dir, "dev.json"), data, 0o600); err != nil {
		return err
	}
	log := newLogger(e.stderr, cfg.Log.Level, cfg.Log.Format)
	d, err := server.Open(ctx, cfg, server.Options{Logger: log})
	if err != nil {
		return err
	}
	printDevBanner(e, cfgPath, url, vals)
	return d.Run(ctx)
}

// seedDemo gives the demo app its first secret, created at the emulator
// as a person would in the Dashboard. On a restart it teaches the fresh
// emulator the secrets the backend already holds.
func seedDemo(ctx context.Context, cfg *config.Config, emu *emulator.Emulator) error {
	a := &cfg.Apps[0]
	be, err := server.OpenBackend(ctx, cfg, a, nil)
	if err != nil {
		return err
	}
	defer be.Close()
	list, err := be.List(ctx)
	if err != nil {
		return err
	}
	for _, s := range list {
		if err := emu.ImportSecret(a.ClientID, s.Value.Reveal(), s.CreatedAt); err != nil {
			return fmt.Errorf("teach the emulator secret %s: %w", s.Fingerprint, err)
		}
	}
	if _, ok := backends.Find(list, backends.StageCurrent); ok {
		return nil
	}
	_, value, created, err := emu.CreateSecret(a.ClientID)
	if err != nil {
		return err
	}
	return be.Init(ctx, secret.New(value), created)
}

var devConfig = template.Must(template.New("dev").Parse(
	`# Written by keyturn dev. It is rewritten each time keyturn dev starts.
state_dir: {{.Dir}}/state
socket: {{.Dir}}/keyturn.sock
listen: {{.Listen}}
log: {level: info}
smartcar:
  token_url: {{.URL}}/oauth2/token
  # The emulator's stand-in for the Dashboard's API Credentials tab.
  dashboard_url: {{.URL}}/v1/apps/{client_id}/secrets
  timeout: 5s
notify:
  - {name: console, type: log}
consumers:
  - {name: dev, key_sha256: {{.KeySHA}}, apps: [demo]}
apps:
  - name: demo
    client_id: {{.ClientID}}
    backend:
{{- if eq .Backend "env"}}
      type: env
      file: {{.Dir}}/demo.env
{{- else if eq .Backend "awssm"}}
      type: awssm
      secret_id: keyturn-dev/{{.Base}}/demo
      region: us-east-1
{{- else if eq .Backend "vault"}}
      type: vault
      address: $VAULT_ADDR
      ca_cert: $VAULT_CACERT
      mount: secret
      path: keyturn-dev/{{.Base}}/demo
      auth: {method: token}
{{- end}}
    policy: {max_age: 90d, warn_before: 14d}
    consumers:
      mode: backend
      propagation: {{.Drain}}
{{- if .Consumer}}
      # The sample consumer reads demo.env; the hook makes it reload and
      # waits until it holds the new secret, and the gate asks it to prove
      # the secret works before the old one may be deleted.
      hooks:
        - name: reload-sample-consumer
          type: exec
          timeout: 10s
          command:
            - /bin/sh
            - -c
            - |
              kill -HUP "$(cat "$1")" || exit 1; i=0
              while [ "$i" -lt 50 ]; do
                [ "$(cat "$2")" = "$KEYTURN_CURRENT_FP" ] && exit 0
                i=$((i+1)); sleep 0.1
              done; exit 1
            - reload
            - {{.Dir}}/consumer.pid
            - {{.Dir}}/consumer.loaded
      gate: {url: "http://{{.Consumer}}/healthz", successes: 2, interval: 1s, timeout: 5s}
{{- end}}
    prompts: {remind_every: 10m, escalate_after: 1h}
    owners: [console]
    escalate_to: [console]
`))

// devValues fills the config template: addresses, the dev consumer's
// key (made once, kept in DIR/consumer.key), the sample consumer.
func devValues(dir, url string, o devOptions) (map[string]any, error) {
	switch o.backend {
	case "env", "awssm", "vault":
	default:
		return nil, usagef("use --backend env, vault or awssm", "unknown backend %q",
			o.backend)
	}
	listen, err := freeOr(o.listen)
	if err != nil {
		return nil, usagef("pass --listen HOST:PORT on loopback", "--listen: %v", err)
	}
	sha, err := devConsumerKey(filepath.Join(dir, "consumer.key"))
	if err != nil {
		return nil, err
	}
	v := map[string]any{"Dir": dir, "URL": url, "ClientID": devClientID,
		"Backend": o.backend, "Base": filepath.Base(dir), "Listen": listen,
		"KeySHA": sha, "Drain": config.Duration(o.drain).String()}
	if o.backend == "env" && !o.noConsumer {
		if v["Consumer"], err = freeOr("127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// freeOr returns addr if it can be listened on, else a free loopback port.
func freeOr(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// devConsumerKey returns the SHA-256 of the dev consumer's key, making
// the key on first use.
func devConsumerKey(path string) (string, error) {
	if data, err := os.ReadFile(path); err == nil {
		sum := sha256.Sum256([]byte(strings.TrimSpace(string(data))))
		return hex.EncodeToString(sum[:]), nil
	}
	key, sha, err := server.NewConsumerKey()
	if err != nil {
		return "", err
	}
	return sha, os.WriteFile(path, []byte(key+"\n"), 0o600)
}

func writeDevConfig(path string, vals map[string]any) error {
	var b strings.Builder
	if err := devConfig.Execute(&b, vals); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func readDevState(dir string) (devState, error) {
	var st devState
	data, err := os.ReadFile(filepath.Join(dir, "dev.json"))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(data, &st)
}

func printDevBanner(e *env, cfgPath, url string, vals map[string]any) {
	dir := filepath.Dir(cfgPath)
	fmt.Fprintf(e.stdout, "keyturn dev is running.\n")
	fmt.Fprintf(e.stdout, "  smartcar emulator: %s (token endpoint %s/oauth2/token)\n", url, url)
	fmt.Fprintf(e.stdout, "  config:            %s\n", cfgPath)
	fmt.Fprintf(e.stdout, "  token broker:      http://%s/v1/apps/demo/token\n", vals["Listen"])
	if c := vals["Consumer"]; c != nil {
		fmt.Fprintf(e.stdout, "  sample consumer:   http://%s/healthz (reads demo.env)\n", c)
	}
	fmt.Fprintf(e.stdout, "In another terminal:\n")
	fmt.Fprintf(e.stdout, "  export KEYTURN_CONFIG=%s\n", cfgPath)
	fmt.Fprintf(e.stdout, "  export KEYTURN_CONSUMER_KEY_FILE=%s\n",
		filepath.Join(dir, "consumer.key"))
	fmt.Fprintf(e.stdout, "  keyturn status\n  keyturn rotate demo\n")
	fmt.Fprintf(e.stdout, "  keyturn dev dashboard create | keyturn submit demo\n")
}

// state finds a running keyturn dev: in --dir, or else beside the config
// file the CLI would use.
func (o devOptions) state(e *env, dirSet bool) (devState, string, error) {
	d := o.dir
	if !dirSet {
		if p := e.resolveConfig(); fileExists(p) {
			d = filepath.Dir(p)
		}
	}
	dir, err := filepath.Abs(d)
	if err != nil {
		return devState{}, "", err
	}
	st, err := readDevState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return st, dir, usagef("start it first: keyturn dev --dir "+o.dir,
			"no keyturn dev runs in %s", dir)
	}
	return st, dir, err
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
