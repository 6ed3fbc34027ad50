package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDevFullRotation drives `keyturn dev` from the outside as a person
// with a shell would: rotate, create a secret at the emulator's
// Dashboard, submit it on stdin, delete the old one, confirm.
//
// It runs on the env backend always, and on AWS Secrets Manager (moto)
// and Vault when scripts/test started them.
func TestDevFullRotation(t *testing.T) {
	for _, c := range []struct{ backend, env string }{
		{"env", ""}, {"awssm", "AWS_ENDPOINT_URL_SECRETS_MANAGER"}, {"vault", "VAULT_ADDR"},
	} {
		t.Run(c.backend, func(t *testing.T) {
			if c.env != "" && os.Getenv(c.env) == "" {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s is unset in CI: scripts/test starts its server", c.env)
				}
				t.Skipf("%s unset: run scripts/test for the %s server", c.env, c.backend)
			}
			devRotation(t, c.backend)
		})
	}
}

func devRotation(t *testing.T, backend string) {
	tr := &transcript{}
	// A unique folder name: the awssm and vault paths are named after it.
	dir := filepath.Join(t.TempDir(), fmt.Sprintf("dev-%d", time.Now().UnixNano()))
	dev := startProc(t, tr, "dev", "--dir", dir, "--drain", "1s", "--listen",
		"127.0.0.1:0", "--backend", backend)
	cfg := filepath.Join(dir, "keyturn.yaml")
	eventually(t, "keyturn dev to answer", func() bool {
		return kt(t, tr, cfg, "", "status").code == 0
	})
	if out := dev.stdout.String(); !strings.Contains(out, "keyturn rotate demo") {
		t.Errorf("dev does not print the next command:\n%s", out)
	}
	var st devState
	data, _ := os.ReadFile(filepath.Join(dir, "dev.json"))
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	d := dashboard{t: t, base: st.EmulatorURL, clientID: st.ClientID}
	oldSecret := ""
	if backend == "env" {
		oldSecret = readEnvSecret(t, filepath.Join(dir, "demo.env"))
	}
	oldID := d.list()[0].ID

	keyFile := filepath.Join(dir, "consumer.key")
	tok1 := kt(t, tr, cfg, "", "token", "demo", "--key-file", keyFile)
	if tok1.code != 0 || len(strings.TrimSpace(tok1.stdout)) < 20 {
		t.Fatalf("token from the broker: %v", tok1)
	}
	if r := kt(t, tr, cfg, "", "rotate", "demo", "--reason", "e2e"); r.code != 0 {
		t.Fatalf("rotate: %v", r)
	}
	if r := kt(t, tr, cfg, "", "rotate", "demo"); r.code != 1 ||
		!strings.Contains(r.stderr, "already has routine rotation rot_") {
		t.Errorf("second rotate: %v", r)
	}
	if r := kt(t, tr, cfg, "wrong-secret-value\n", "submit", "demo"); r.code != 1 ||
		!strings.Contains(r.stderr, "keyturn: hint: check that you copied") {
		t.Errorf("wrong secret: %v", r)
	}
	if s := rotationState(t, tr, cfg); s != "await_new" {
		t.Fatalf("after a wrong secret the rotation is %q, want await_new", s)
	}
	if r := kt(t, tr, cfg, "", "submit", "demo", "sc-on-the-command-line"); r.code != 2 ||
		!strings.Contains(r.stderr, "takes no secret on the command line") {
		t.Errorf("secret as argument: %v", r)
	}

	created := d.create()
	if r := kt(t, tr, cfg, created.Secret+"\n", "submit", "demo"); r.code != 0 {
		t.Fatalf("submit: %v", r)
	}
	eventually(t, "await_delete", func() bool {
		return rotationState(t, tr, cfg) == "await_delete"
	})
	d.delete(oldID)
	if r := kt(t, tr, cfg, "", "confirm-deleted", "demo"); r.code != 0 {
		t.Fatalf("confirm-deleted: %v", r)
	}

	got := status(t, tr, cfg)
	if got[0].Rotation != nil || len(got[0].Secrets) != 1 ||
		got[0].Secrets[0].Stage != "current" {
		t.Errorf("status after rotation: %+v", got[0])
	}
	if code := d.tokenStatus(created.Secret); code != 200 {
		t.Errorf("new secret: token request answered %d", code)
	}
	if left := d.list(); len(left) != 1 || left[0].ID == oldID {
		t.Errorf("secrets at the emulator after the rotation: %+v", left)
	}
	if oldSecret != "" && d.tokenStatus(oldSecret) != 401 {
		t.Errorf("old secret still gets tokens")
	}
	if r := kt(t, tr, cfg, "", "audit", "verify"); r.code != 0 {
		t.Errorf("audit verify: %v", r)
	}
	tail := kt(t, tr, cfg, "", "audit", "tail", "-n", "300").stdout
	wants := []string{"broker_vend", "verify_revoked", "outcome=ok"}
	if backend == "env" {
		wants = append(wants, "hook:reload-sample-consumer", "gate:gate")
	}
	for _, want := range wants {
		if !strings.Contains(tail, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
	// The broker switched to the new secret: a new token, from a new secret.
	tok2 := kt(t, tr, cfg, "", "token", "demo", "--key-file", keyFile)
	if tok2.code != 0 || tok2.stdout == tok1.stdout {
		t.Errorf("token after rotation: %v (same as before: %v)", tok2,
			tok2.stdout == tok1.stdout)
	}
	if backend == "env" {
		loaded, _ := os.ReadFile(filepath.Join(dir, "consumer.loaded"))
		if got := status(t, tr, cfg)[0].Secrets[0].Fingerprint; strings.TrimSpace(
			string(loaded)) != got {
			t.Errorf("sample consumer holds %s, want %s", loaded, got)
		}
	}
	dev.kill(syscall.SIGTERM)
	if code := dev.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("dev exited %d after SIGTERM:\n%s", code, dev.stderr)
	}
	// The argument test's value is on a command line by the test's own
	// doing, so it is not a canary here.
	checkCanary(t, tr, []string{oldSecret, created.Secret, "wrong-secret-value"}, dir)
	if t.Failed() {
		t.Logf("keyturn dev stderr:\n%s", dev.stderr)
	}
}

func readEnvSecret(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "SMARTCAR_CLIENT_SECRET="); ok {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatal("no secret in the env file")
	return ""
}
