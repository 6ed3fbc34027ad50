package vault

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/backends/conformance"
)

const policyFile = "../../deploy/vault/keyturn-policy.hcl"

// rule is one path stanza of a policy.
type rule struct {
	path string
	caps []string
}

var stanza = regexp.MustCompile(
	`(?s)path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]\s*\}`)

// readPolicy reads deploy/vault's policy as rules; it must hold nothing
// else but comments.
func readPolicy(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules []rule
	for _, m := range stanza.FindAllStringSubmatch(string(b), -1) {
		r := rule{path: m[1]}
		for _, c := range strings.Split(m[2], ",") {
			r.caps = append(r.caps, strings.Trim(strings.TrimSpace(c), `"`))
		}
		rules = append(rules, r)
	}
	rest := stanza.ReplaceAllString(string(b), "")
	rest = regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(rest, "")
	if strings.TrimSpace(rest) != "" || len(rules) == 0 {
		t.Fatalf("%s holds more than path stanzas: %q", policyFile, rest)
	}
	return rules
}

func renderPolicy(rules []rule) string {
	var sb strings.Builder
	for _, r := range rules {
		fmt.Fprintf(&sb, "path %q {\n  capabilities = [\"%s\"]\n}\n", r.path,
			strings.Join(r.caps, `", "`))
	}
	return sb.String()
}

// tokenWithPolicy installs hcl as a policy and returns a token holding it
// and nothing else, not even Vault's default policy.
func tokenWithPolicy(t *testing.T, hcl string, req api.TokenCreateRequest) string {
	t.Helper()
	root := rootClient(t)
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := "keyturn-test-" + hex.EncodeToString(b[:])
	if err := root.Sys().PutPolicy(name, hcl); err != nil {
		t.Fatalf("installing the policy: %v", err)
	}
	t.Cleanup(func() { _ = root.Sys().DeletePolicy(name) })
	req.Policies, req.NoDefaultPolicy = []string{name}, true
	s, err := root.Auth().Token().Create(&req)
	if err != nil {
		t.Fatalf("creating a token: %v", err)
	}
	return s.Auth.ClientToken
}

// tokenOptions logs in with tok through a token file.
func tokenOptions(t *testing.T, path, tok string) Options {
	o := testOptions(t, path)
	file := filepath.Join(t.TempDir(), "token")
	writeToken(t, file, tok)
	o.Auth = AuthOptions{Method: "token", TokenFile: file}
	return o
}

func writeToken(t *testing.T, file, tok string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyConformance runs the whole suite as a token that holds only
// deploy/vault/keyturn-policy.hcl.
func TestPolicyConformance(t *testing.T) {
	realVault(t)
	tok := tokenWithPolicy(t, renderPolicy(readPolicy(t)), api.TokenCreateRequest{})
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) backends.Backend {
			return open(t, tokenOptions(t, uniquePath(t), tok))
		},
		Reopen: func(t *testing.T, b backends.Backend) backends.Backend {
			return open(t, tokenOptions(t, b.(*Backend).path, tok))
		},
	})
	b := open(t, tokenOptions(t, uniquePath(t), tok))
	must(t, "a full rotation under the policy", fullRotation(b))
}

// TestPolicyIsLeast takes each capability out of the policy in turn and
// checks that a full rotation then fails for want of it. renew-self is
// left out: only a token near its TTL uses it (see TestTokenExpiry).
func TestPolicyIsLeast(t *testing.T) {
	realVault(t)
	rules := readPolicy(t)
	for i, r := range rules {
		for j, c := range r.caps {
			if r.path == "auth/token/renew-self" {
				continue
			}
			t.Run(r.path+" "+c, func(t *testing.T) {
				fewer := append([]rule(nil), rules...)
				fewer[i].caps = append(append([]string(nil), r.caps[:j]...),
					r.caps[j+1:]...)
				if len(fewer[i].caps) == 0 {
					fewer = append(fewer[:i:i], fewer[i+1:]...)
				}
				tok := tokenWithPolicy(t, renderPolicy(fewer), api.TokenCreateRequest{})
				err := fullRotation(open(t, tokenOptions(t, uniquePath(t), tok)))
				if err == nil || !strings.Contains(err.Error(), "permission denied") &&
					!strings.Contains(err.Error(), "vault refused the token") {
					t.Fatalf("a rotation without %q on %q: got %v, want a refusal", c,
						r.path, err)
				}
				t.Logf("without it: %v", err)
			})
		}
	}
}

// fullRotation makes every kind of call keyturn makes.
func fullRotation(b *Backend) error {
	steps := []struct {
		name string
		fn   func() error
	}{
		{"Init", func() error { return b.Init(ctx, first, epoch) }},
		{"WritePending", func() error {
			return b.WritePending(ctx, "rot-1", tricky, epoch)
		}},
		{"WritePending again", func() error {
			return b.WritePending(ctx, "rot-1", second, epoch)
		}},
		{"Promote", func() error {
			return b.Promote(ctx, "rot-1", second.Fingerprint())
		}},
		{"RemovePrevious", func() error {
			return b.RemovePrevious(ctx, first.Fingerprint())
		}},
		{"WritePending rot-2", func() error {
			return b.WritePending(ctx, "rot-2", tricky, epoch)
		}},
		{"DiscardPending", func() error { return b.DiscardPending(ctx, "rot-2") }},
		{"WritePending rot-3", func() error {
			return b.WritePending(ctx, "rot-3", first, epoch)
		}},
		{"Promote rot-3", func() error {
			return b.Promote(ctx, "rot-3", first.Fingerprint())
		}},
		{"Rollback", func() error {
			return b.Rollback(ctx, "rot-3", first.Fingerprint())
		}},
		{"List", func() error { _, err := b.List(ctx); return err }},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// TestPermissionDenied checks that a refusal names the request, the path
// and the capabilities the policy lacks.
func TestPermissionDenied(t *testing.T) {
	realVault(t)
	var rules []rule
	for _, r := range readPolicy(t) {
		pendingData := strings.HasPrefix(r.path, "secret/data/") &&
			strings.HasSuffix(r.path, "/pending")
		if !pendingData {
			rules = append(rules, r)
			continue
		}
		rules = append(rules, rule{r.path, []string{"read"}})
	}
	tok := tokenWithPolicy(t, renderPolicy(rules), api.TokenCreateRequest{})
	path := uniquePath(t)
	b := open(t, tokenOptions(t, path, tok))
	must(t, "Init", b.Init(ctx, first, epoch))
	err := b.WritePending(ctx, "rot-1", second, epoch)
	want := fmt.Sprintf(`vault: write pending "secret/data/%s/pending": permission `+
		`denied: the policy needs "create" and "update" on that path`, path)
	if err == nil || err.Error() != want {
		t.Errorf("WritePending without create and update:\n got %v\nwant %s", err, want)
	}
}
