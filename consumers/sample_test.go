package consumers

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

const clientID = "client_sample"

// reloadScript signals the sample consumer and returns once it holds the
// secret keyturn says is current (see test/sampleconsumer's doc).
const reloadScript = `kill -HUP "$(cat "$1")" || exit 1; i=0
while [ "$i" -lt 50 ]; do
  [ "$(cat "$2")" = "$KEYTURN_CURRENT_FP" ] && exit 0
  i=$((i+1)); sleep 0.1
done; echo "consumer still holds $(cat "$2")"; exit 1`

// sample is a running test/sampleconsumer process.
type sample struct {
	healthz, envFile, pidFile, loadedFile string
	output                                *syncBuffer
}

// startSample starts the sample consumer on an env file holding secret,
// and stops it when the test ends.
func startSample(t *testing.T, tokenURL, sec string) *sample {
	t.Helper()
	bin := sampleConsumerBinary(t)
	dir := t.TempDir()
	s := &sample{envFile: filepath.Join(dir, "app.env"),
		pidFile: filepath.Join(dir, "pid"), loadedFile: filepath.Join(dir, "loaded"),
		output: &syncBuffer{}}
	s.writeEnv(t, sec)
	listenFile := filepath.Join(dir, "listen")
	cmd := exec.Command(bin, "-env-file", s.envFile, "-token-url", tokenURL,
		"-listen-file", listenFile, "-pid-file", s.pidFile,
		"-loaded-file", s.loadedFile)
	cmd.Stdout, cmd.Stderr = s.output, s.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	waitFor(t, "the sample consumer to listen", 5*time.Second, func() bool {
		_, err := os.Stat(listenFile)
		return err == nil
	})
	s.healthz = "http://" + strings.TrimSpace(readFile(t, listenFile)) + "/healthz"
	return s
}

// writeEnv rewrites the env file through a rename, as the env backend does.
func (s *sample) writeEnv(t *testing.T, sec string) {
	t.Helper()
	tmp := s.envFile + ".tmp"
	data := "# written by the test\nSMARTCAR_CLIENT_ID=" + clientID +
		"\nSMARTCAR_CLIENT_SECRET=\"" + sec + "\"\n"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, s.envFile); err != nil {
		t.Fatal(err)
	}
}

func (s *sample) reloadHook() config.Hook {
	return config.Hook{Name: "reload", Type: "exec", Retries: 1,
		Timeout: config.Duration(3 * time.Second),
		Command: []string{"sh", "-c", reloadScript, "reload", s.pidFile, s.loadedFile}}
}

func (s *sample) gate() config.Gate {
	return config.Gate{URL: s.healthz, Successes: 3,
		Interval: config.Duration(5 * time.Second),
		Timeout:  config.Duration(2 * time.Second)}
}

// syncBuffer collects a process's output from exec's copying goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func startEmulator(t *testing.T) *emulator.Emulator {
	t.Helper()
	emu := emulator.New()
	if _, err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	return emu
}

func createSecret(t *testing.T, emu *emulator.Emulator) (id, sec string) {
	t.Helper()
	id, sec, _, err := emu.CreateSecret(clientID)
	if err != nil {
		t.Fatal(err)
	}
	return id, sec
}

// TestReloadHookThenGatePasses walks the draining state on a real
// consumer: the env file gets the new secret, the old one is deleted at
// Smartcar, the exec hook reloads the consumer, and the gate passes.
func TestReloadHookThenGatePasses(t *testing.T) {
	emu := startEmulator(t)
	oldID, oldSec := createSecret(t, emu)
	_, newSec := createSecret(t, emu)
	s := startSample(t, emu.TokenURL(), oldSec)
	wantPass := GateResult{Passed: true, Runs: checks(ok200, ok200, ok200)}
	if got, err := newRig(t).RunGate(context.Background(), s.gate()); err != nil ||
		!got.Passed {
		t.Fatalf("before the rotation the gate gave %+v, %v; want it passing", got, err)
	}

	s.writeEnv(t, newSec)
	// Deleting the old secret first proves the consumer really reloaded:
	// without the hook it would keep failing with the deleted secret.
	if err := emu.DeleteSecret(clientID, oldID); err != nil {
		t.Fatal(err)
	}
	ev := HookEvent{App: "sample", ClientID: clientID, RotationID: "rot_1",
		Action: ActionPromoted, CurrentFP: secret.FingerprintOf([]byte(newSec)),
		PreviousFP: secret.FingerprintOf([]byte(oldSec))}
	res, err := newRig(t).RunHooks(context.Background(),
		[]config.Hook{s.reloadHook()}, ev)
	if err != nil || !res[0].OK {
		t.Fatalf("reload hook: %v\nconsumer said:\n%s", err, s.output)
	}

	g := newRig(t)
	got, err := g.RunGate(context.Background(), s.gate())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantPass, got); diff != "" {
		t.Errorf("gate (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{5 * time.Second, 5 * time.Second},
		g.sleeps); diff != "" {
		t.Errorf("gate waits (-want +got):\n%s", diff)
	}
	checkNoSecret(t, s.output.String(), oldSec, newSec)
}

func checkNoSecret(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the consumer printed a secret:\n%s", out)
		}
	}
}

// TestGateFailsOnBrokenConsumer wants a gate against a consumer that
// holds a dead or wrong secret to fail, with every check reported.
func TestGateFailsOnBrokenConsumer(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, emu *emulator.Emulator, s *sample, id string)
	}{
		{name: "secret deleted at Smartcar",
			breakIt: func(t *testing.T, emu *emulator.Emulator, _ *sample, id string) {
				if err := emu.DeleteSecret(clientID, id); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "wrong secret reloaded",
			breakIt: func(t *testing.T, _ *emulator.Emulator, s *sample, _ string) {
				s.writeEnv(t, "not-the-secret-at-all")
				pid := readInt(t, s.pidFile)
				if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
				wrong := string(secret.FingerprintOf([]byte("not-the-secret-at-all")))
				waitFor(t, "the reload", 5*time.Second, func() bool {
					return strings.TrimSpace(readFile(t, s.loadedFile)) == wrong
				})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emu := startEmulator(t)
			id, sec := createSecret(t, emu)
			s := startSample(t, emu.TokenURL(), sec)
			tt.breakIt(t, emu, s, id)

			g := newRig(t)
			got, err := g.RunGate(context.Background(), s.gate())
			if err != nil {
				t.Fatal(err)
			}
			want := GateResult{Runs: checks(bad503, bad503, bad503, bad503)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("gate (-want +got):\n%s", diff)
			}
			for _, a := range g.attempts {
				if a.Kind != KindGate || a.HTTPStatus != 503 ||
					a.Outcome != OutcomeFailed {
					t.Errorf("attempt %+v, want a failed gate check with 503", a)
				}
			}
			checkNoSecret(t, s.output.String(), sec)
		})
	}
}
