package sample

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar/emulator"
)

func TestParseEnv(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]string
		wantErr string
	}{
		{name: "bare", in: "A=1\nB=two\n",
			want: map[string]string{"A": "1", "B": "two"}},
		{name: "comments, blanks and export",
			in:   "# c\n\nexport A=1\n  B = 2 \n",
			want: map[string]string{"A": "1", "B": "2"}},
		{name: "quotes", in: `A='x "y" $z'` + "\n" + `B="a\"b\\c\$d"`,
			want: map[string]string{"A": `x "y" $z`, "B": `a"b\c$d`}},
		{name: "not KEY=VALUE", in: "A=1\nsecret-looking-line\n",
			wantErr: "line 2 is not KEY=VALUE"},
		{name: "unterminated", in: `A="abc`, wantErr: "line 1: unterminated quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseEnv([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseEnv (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHealthz serves /healthz in process against the emulator: 200 with
// a live secret, 503 with a deleted one, and never the secret itself.
func TestHealthz(t *testing.T) {
	emu := emulator.New()
	if _, err := emu.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	id, sec, _, err := emu.CreateSecret("client_hz")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	c := &consumer{tokenURL: emu.TokenURL(), client: &http.Client{Timeout: time.Second},
		log: slog.New(slog.NewTextHandler(&logs, nil))}
	dir := t.TempDir()
	env, loaded := filepath.Join(dir, "app.env"), filepath.Join(dir, "loaded")
	writeTestEnv(t, env, "SMARTCAR_CLIENT_ID=client_hz\nSMARTCAR_CLIENT_SECRET="+sec)
	if err := c.load(env, loaded); err != nil {
		t.Fatal(err)
	}
	fp := string(secret.FingerprintOf([]byte(sec)))
	if got := strings.TrimSpace(readTestFile(t, loaded)); got != fp {
		t.Errorf("loaded file = %q, want %q", got, fp)
	}
	srv := httptest.NewServer(c.routes())
	defer srv.Close()

	var bodies string
	status, body := get(t, srv.URL+"/healthz")
	bodies += body
	if status != 200 || body != "ok (secret "+fp+")\n" {
		t.Errorf("live secret: %d %q", status, body)
	}
	if err := emu.DeleteSecret("client_hz", id); err != nil {
		t.Fatal(err)
	}
	status, body = get(t, srv.URL+"/healthz")
	bodies += body
	want := "unhealthy: token request: 401 invalid_client (secret " + fp + ")\n"
	if status != 503 || body != want {
		t.Errorf("deleted secret: %d %q, want 503 %q", status, body, want)
	}
	if strings.Contains(bodies+logs.String(), sec) {
		t.Errorf("the secret was printed:\n%s%s", bodies, logs.String())
	}
}

// TestReloadKeepsCredentials wants a broken env file to leave the
// consumer on what it held.
func TestReloadKeepsCredentials(t *testing.T) {
	c := &consumer{log: slog.New(slog.DiscardHandler)}
	env := filepath.Join(t.TempDir(), "app.env")
	writeTestEnv(t, env, "SMARTCAR_CLIENT_ID=a\nSMARTCAR_CLIENT_SECRET=s1")
	if err := c.load(env, ""); err != nil {
		t.Fatal(err)
	}
	writeTestEnv(t, env, "SMARTCAR_CLIENT_ID=a\n")
	err := c.load(env, "")
	want := env + ": SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET are both needed"
	if err == nil || err.Error() != want {
		t.Errorf("load = %v, want %s", err, want)
	}
	if got := c.creds.Load().secret.Reveal(); got != "s1" {
		t.Errorf("after a failed reload the consumer holds a different secret")
	}
}

func TestFlagsAndListen(t *testing.T) {
	if _, err := parseFlags([]string{"-env-file", "x"}); err == nil {
		t.Error("no -token-url was accepted")
	}
	if _, err := listenLoopback("0.0.0.0:0"); err == nil {
		t.Error("a listener on every interface was accepted")
	}
	ln, err := listenLoopback("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func writeTestEnv(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
