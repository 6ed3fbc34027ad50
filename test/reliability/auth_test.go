package reliability

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/keyturn/keyturn/audit"
)

// rawDial connects to the socket as the user nobody and sends one API
// request; it prints what the kernel or the daemon answered.
const rawDial = `import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(type(e).__name__, e)
    sys.exit(3)
s.sendall(b"POST /v1/apps/demo/rotate HTTP/1.0\r\nContent-Length: 0\r\n\r\n")
print(s.recv(4096).decode(errors="replace"))
`

// asNobody runs argv as the user nobody.
func asNobody(t *testing.T, argv ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: nobody}
	out, err := cmd.CombinedOutput()
	suiteCanary.scan("run as nobody", out)
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v as nobody: %v", argv, err)
	}
	return string(out), 0
}

// TestAuthSocketOtherUser knocks on the socket of a daemon run by root
// as the user nobody: the socket is 0600, so the kernel refuses every
// connection, every CLI command fails and the daemon records nothing.
func TestAuthSocketOtherUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the CLI as nobody")
	}
	r := newRig(t, rigOptions{shared: true})
	r.start()
	sock := filepath.Join(r.dir, "kt.sock")
	before := len(r.auditRecords())

	out, code := asNobody(t, "/usr/bin/python3", "-c", rawDial, sock)
	if code != 3 || !strings.Contains(out, "PermissionError") {
		t.Errorf("raw connect as nobody: exit %d: %s", code, out)
	}
	_, value := r.create("demo")
	cmds := []struct {
		stdin string
		args  []string
	}{
		{"", []string{"status"}},
		{"", []string{"rotate", "demo"}},
		{value + "\n", []string{"submit", "demo"}},
		{"", []string{"emergency", "demo", "--revoke-first", "--yes"}},
		{"", []string{"abort", "demo"}},
		{"", []string{"confirm-deleted", "demo"}},
		{"", []string{"check", "demo"}},
		{"", []string{"notify", "test", "hook"}},
	}
	for _, c := range cmds {
		res := runCLI(t, nobody, c.stdin, append([]string{"--config", r.cfg}, c.args...)...)
		// Known defect: server.Client reports every dial error, EACCES
		// included, as "the keyturn daemon is not running".
		if res.code != 1 || !strings.Contains(res.stderr, "permission denied") &&
			!strings.Contains(res.stderr, "the keyturn daemon is not running") {
			t.Errorf("keyturn %s as nobody: %v", strings.Join(c.args, " "), res)
		}
	}
	if after := len(r.auditRecords()); after != before {
		t.Errorf("the daemon recorded %d records for another user's attempts", after-before)
	}
	if st := r.mustStatus("demo"); st.Rotation != nil {
		t.Errorf("another user started a rotation: %+v", st.Rotation)
	}

	// Mode 0600 is the only guard: with the socket opened up, the daemon
	// serves another user and records who it was.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	res := runCLI(t, nobody, "", "--config", r.cfg, "rotate", "demo", "--reason", "probe")
	t.Logf("with the socket at mode 0666, keyturn rotate as nobody: exit %d", res.code)
	var actors []string
	for _, rec := range r.auditRecords()[before:] {
		if rec.Kind == audit.KindRotationStep && rec.Step == "due" {
			actors = append(actors, rec.Actor)
		}
	}
	if res.code == 0 && (len(actors) != 1 || !strings.HasPrefix(actors[0], "nobody (uid 65534")) {
		t.Errorf("an action by nobody was recorded with actors %q", actors)
	}
}
