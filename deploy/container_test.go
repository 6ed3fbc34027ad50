package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/config"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, …
	args string
	line int
}

// stage is the instructions from one FROM to the next.
type stage struct {
	from  instruction
	image string
	name  string
	body  []instruction
}

func parseDockerfile(t *testing.T, path string) (args map[string]string, stages []stage) {
	t.Helper()
	args = map[string]string{}
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(readFile(t, path), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, rest, _ := strings.Cut(cur.String(), " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(rest), start}
		cur.Reset()

		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			st := stage{from: in, image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
		case in.cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case len(stages) == 0:
			t.Fatalf("%s:%d: %s before the first FROM", path, in.line, in.cmd)
		default:
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	return args, stages
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// goBuildLine finds the RUN go build of the build stage and returns its
// flags (without -o and the package) and the stage's ENV settings.
func goBuildLine(t *testing.T, s stage) (flags []string, env map[string]string) {
	t.Helper()
	env = map[string]string{}
	for _, in := range s.all("ENV") {
		for _, kv := range strings.Fields(in.args) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	for _, in := range s.all("RUN") {
		rest, ok := strings.CutPrefix(in.args, "go build ")
		if !ok {
			continue
		}
		words := shellWords(t, rest)
		for i := 0; i < len(words); i++ {
			switch {
			case words[i] == "-o":
				i++
			case strings.HasPrefix(words[i], "./"):
			default:
				flags = append(flags, words[i])
			}
		}
		return flags, env
	}
	t.Fatalf("stage %q has no RUN go build", s.name)
	return nil, nil
}

// shellWords splits a command line on spaces, keeping "double quoted"
// words whole; enough for the Dockerfile's build line.
func shellWords(t *testing.T, s string) []string {
	var words []string
	var w strings.Builder
	quoted, inWord := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
			}
			inWord = false
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quotes in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

func TestDockerfile(t *testing.T) {
	const path = "container/Dockerfile"
	args, stages := parseDockerfile(t, path)
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	gomod := readFile(t, "../go.mod")
	goLine := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(gomod)
	if goLine == nil || args["GO_VERSION"] != goLine[1] {
		t.Errorf("ARG GO_VERSION=%s, want go.mod's go %v", args["GO_VERSION"], goLine)
	}
	if !strings.HasPrefix(build.image, "golang:${GO_VERSION}") {
		t.Errorf("build stage FROM %s, want golang:${GO_VERSION}…", build.image)
	}
	if !strings.HasPrefix(final.image, "gcr.io/distroless/static") && final.image != "scratch" {
		t.Errorf("runtime stage FROM %s, want distroless/static or scratch", final.image)
	}
	for _, s := range stages {
		if strings.HasSuffix(s.image, ":latest") || !strings.ContainsAny(s.image, ":@") &&
			s.image != "scratch" {
			t.Errorf("line %d: FROM %s is not pinned to a tag or digest", s.from.line, s.image)
		}
		for _, in := range s.all("ADD") {
			t.Errorf("line %d: ADD %s; use COPY (ADD fetches URLs and unpacks archives)",
				in.line, in.args)
		}
	}

	flags, env := goBuildLine(t, build)
	checkBuildFlags(t, flags, env)
	checkRuntimeStage(t, final)
}

func checkBuildFlags(t *testing.T, flags []string, env map[string]string) {
	t.Helper()
	if env["CGO_ENABLED"] != "0" {
		t.Errorf("build stage ENV CGO_ENABLED=%q, want 0 (a static binary)", env["CGO_ENABLED"])
	}
	has := map[string]bool{}
	for _, f := range flags {
		has[f] = true
	}
	for _, f := range []string{"-trimpath", "-buildvcs=false", "-ldflags"} {
		if !has[f] {
			t.Errorf("go build flags %q lack %s", flags, f)
		}
	}
	ld := strings.Join(flags, " ")
	for _, f := range []string{"-s -w", "-X main.version=${VERSION}"} {
		if !strings.Contains(ld, f) {
			t.Errorf("go build -ldflags lack %q: %q", f, flags)
		}
	}
}

func checkRuntimeStage(t *testing.T, final stage) {
	t.Helper()
	users := final.all("USER")
	if len(users) == 0 {
		t.Fatal("runtime stage has no USER; it would run as root")
	}
	user := users[len(users)-1].args
	if !regexp.MustCompile(`^[1-9][0-9]*(:[0-9]+)?$`).MatchString(user) {
		t.Errorf("USER %s, want a numeric non-root uid[:gid] (runAsNonRoot checks it)", user)
	}

	entry := final.all("ENTRYPOINT")
	var argv []string
	if len(entry) != 1 || json.Unmarshal([]byte(entry[0].args), &argv) != nil ||
		argv[0] != "/usr/local/bin/keyturn" {
		t.Errorf("ENTRYPOINT %v, want exec form [\"/usr/local/bin/keyturn\"]", entry)
	}

	vols := final.all("VOLUME")
	if len(vols) != 1 || !strings.Contains(vols[0].args, config.DefaultStateDir) {
		t.Errorf("VOLUME %v, want the state dir %s", vols, config.DefaultStateDir)
	}
	_, port, _ := net.SplitHostPort(config.DefaultListen)
	if ex := final.all("EXPOSE"); len(ex) != 1 || ex[0].args != port {
		t.Errorf("EXPOSE %v, want %s (config.DefaultListen)", ex, port)
	}

	hc := final.all("HEALTHCHECK")
	if len(hc) != 1 {
		t.Fatalf("%d HEALTHCHECKs, want one", len(hc))
	}
	_, cmd, _ := strings.Cut(hc[0].args, "CMD ")
	var probe []string
	if err := json.Unmarshal([]byte(cmd), &probe); err != nil || len(probe) < 2 {
		t.Fatalf("HEALTHCHECK CMD %s, want exec form (distroless has no shell)", cmd)
	}
	// The probe must be a command this keyturn has.
	sub := append(probe[1:len(probe):len(probe)], "--help")
	if _, stderr, code := run(t, nil, sub...); code != 0 {
		t.Errorf("HEALTHCHECK runs keyturn %s, which keyturn does not know:\n%s",
			strings.Join(probe[1:], " "), stderr)
	}
}

// TestReproducibleBuild builds keyturn twice with the Dockerfile's own
// flags and environment, from two copies of the source at different paths
// and with separate build caches, and wants the same bytes both times.
func TestReproducibleBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: two builds, one with an empty build cache")
	}
	_, stages := parseDockerfile(t, "container/Dockerfile")
	flags, env := goBuildLine(t, stages[0])
	const version = "v9.9.9-repro"
	for i, f := range flags {
		flags[i] = strings.ReplaceAll(f, "${VERSION}", version)
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}

	// Copies, so that both builds see the same source even while someone
	// edits the work tree.
	a := filepath.Join(scratch, "repro", "a", "src")
	b := filepath.Join(scratch, "repro", "elsewhere", "b", "src")
	copySource(t, repoRoot(t), a)
	copySource(t, a, b)

	var sums []string
	for i, dir := range []string{a, b} {
		out := filepath.Join(scratch, "repro", "keyturn"+string(rune('1'+i)))
		extra := environ
		if i == 1 {
			extra = append(extra, "GOCACHE="+filepath.Join(scratch, "repro", "gocache"))
		}
		if err := goBuild(dir, out, extra, flags...); err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sha256File(t, out))
	}
	if sums[0] != sums[1] {
		t.Fatalf("two builds with %q differ: %s and %s", flags, sums[0], sums[1])
	}
	t.Logf("both builds: sha256 %s", sums[0])

	bin := filepath.Join(scratch, "repro", "keyturn1")
	out, err := runBinary(bin, "version")
	if err != nil || !strings.Contains(out, "keyturn "+version+" ") {
		t.Errorf("keyturn version = %q, %v; want it to show %s", out, err, version)
	}
}

// copySource copies what go build reads: go.mod, go.sum and the non-test
// Go files outside testdata.
func copySource(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			if n := d.Name(); rel != "." && (strings.HasPrefix(n, ".") || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		keep := rel == "go.mod" || rel == "go.sum" ||
			strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go")
		if !keep || !d.Type().IsRegular() {
			return nil
		}
		return copyFile(p, filepath.Join(to, rel))
	})
	if err != nil {
		t.Fatalf("copying the source: %v", err)
	}
}

func copyFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
