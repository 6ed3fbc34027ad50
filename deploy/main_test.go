package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testVersion is injected into the binary the tests build, so they can see
// that -X main.version reaches keyturn version.
const testVersion = "v0.0.0-deploytest"

var scratch string // removed after all tests

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyturn-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scratch = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var build struct {
	once sync.Once
	path string
	err  error
}

// keyturnBinary builds cmd/keyturn once for all tests, with the version
// injected as the Dockerfile does.
func keyturnBinary(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		build.path = filepath.Join(scratch, "bin", "keyturn")
		build.err = goBuild(repoRoot(t), build.path, nil,
			"-ldflags", "-X main.version="+testVersion)
	})
	if build.err != nil {
		t.Fatalf("building keyturn: %v", build.err)
	}
	return build.path
}

// goBuild builds ./cmd/keyturn in dir into out with flags and extra
// environment.
func goBuild(dir, out string, env []string, flags ...string) error {
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, "./cmd/keyturn")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, b)
	}
	return nil
}

// repoRoot is the module's root: go test runs in deploy/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// run runs the built keyturn with args and returns its stdout, stderr and
// exit code.
func run(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(keyturnBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errOut.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("keyturn %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errOut.String(), 0
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// runBinary runs a program and returns its combined output.
func runBinary(path string, args ...string) (string, error) {
	out, err := exec.Command(path, args...).CombinedOutput()
	return string(out), err
}
