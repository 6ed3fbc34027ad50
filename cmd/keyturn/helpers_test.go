package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is keyturn built once for the tests that run it as a process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyturn-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "keyturn")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build keyturn: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// transcript keeps every output of every process a test started, for
// the canary check.
type transcript struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (tr *transcript) add(s string) {
	tr.mu.Lock()
	tr.buf.WriteString(s)
	tr.mu.Unlock()
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.buf.String()
}

// kt runs the keyturn binary with cfg as its config.
func kt(t *testing.T, tr *transcript, cfg, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"--config", cfg}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run keyturn %v: %v", args, err)
	}
	tr.add(r.stdout + r.stderr + strings.Join(cmd.Args, " "))
	return r
}

// proc is a long-running keyturn process (daemon or dev).
type proc struct {
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	done   chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startProc(t *testing.T, tr *transcript, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, args...), stdout: &lockedBuffer{},
		stderr: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.cmd.Process.Pid)); err == nil {
		tr.add(string(cmdline))
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill(syscall.SIGKILL)
		tr.add(p.stdout.String() + p.stderr.String())
	})
	return p
}

func (p *proc) kill(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// eventually polls cond until it holds or 30 s pass: the processes under
// test run on real time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type credStatus struct {
	App     string `json:"app"`
	Secrets []struct {
		Fingerprint string `json:"fingerprint"`
		Stage       string `json:"stage"`
	} `json:"secrets"`
	Rotation *struct {
		ID    string `json:"id"`
		Kind  string `json:"kind"`
		State string `json:"state"`
	} `json:"rotation"`
}

func status(t *testing.T, tr *transcript, cfg string) []credStatus {
	t.Helper()
	r := kt(t, tr, cfg, "", "status", "--output", "json")
	if r.code != 0 {
		t.Fatalf("status: %v", r)
	}
	var st []credStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status json: %v\n%s", err, r.stdout)
	}
	return st
}

func rotationState(t *testing.T, tr *transcript, cfg string) string {
	st := status(t, tr, cfg)
	if st[0].Rotation == nil {
		return ""
	}
	return st[0].Rotation.State
}

// dashboard does what a person does in the Dashboard, at the emulator.
type dashboard struct {
	t        *testing.T
	base     string
	clientID string
}

type dashSecret struct {
	ID        string    `json:"id"`
	Secret    string    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
}

func (d dashboard) call(method, suffix string, out any) {
	d.t.Helper()
	req, _ := http.NewRequest(method, d.base+"/v1/apps/"+d.clientID+"/secrets"+suffix, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		d.t.Fatalf("dashboard %s: %s: %s", method, resp.Status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			d.t.Fatal(err)
		}
	}
}

func (d dashboard) create() dashSecret {
	var s dashSecret
	d.call("POST", "", &s)
	return s
}

func (d dashboard) list() []dashSecret {
	var s []dashSecret
	d.call("GET", "", &s)
	return s
}

func (d dashboard) delete(id string) { d.call("DELETE", "/"+id, nil) }

// tokenStatus asks the emulator for a token and returns the HTTP status.
func (d dashboard) tokenStatus(secret string) int {
	d.t.Helper()
	resp, err := http.PostForm(d.base+"/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {d.clientID},
		"client_secret": {secret}})
	if err != nil {
		d.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkCanary fails when any secret value shows up in the transcript or
// in the files under dirs (other than the stores meant to hold them).
func checkCanary(t *testing.T, tr *transcript, secrets []string, dirs ...string) {
	t.Helper()
	hay := tr.String()
	for _, dir := range dirs {
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() || isSecretStore(p) {
				return nil
			}
			data, _ := os.ReadFile(p)
			hay += "\n" + string(data)
			return nil
		})
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(hay, s) {
			t.Errorf("secret ending …%s leaked into output, logs or files", s[len(s)-4:])
		}
	}
}

// isSecretStore reports files whose job is to hold secrets: the env
// file, the env backend's state file, and the tests' own secret files.
func isSecretStore(p string) bool {
	base := filepath.Base(p)
	return strings.HasSuffix(base, ".env") || base == "state.json" ||
		strings.HasPrefix(base, "secret")
}
