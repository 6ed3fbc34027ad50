package vault

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// TestTokenExpiry gives keyturn a renewable token that lives 3 s and at
// most 6 s. The watcher must keep it alive past 3 s; past 6 s Vault
// refuses it, keyturn says so, and once a fresh token is in the file (as a
// Vault agent would put it) keyturn logs in with it. This is the one test
// that waits on the real clock, about 8 s.
func TestTokenExpiry(t *testing.T) {
	realVault(t)
	hcl := renderPolicy(readPolicy(t))
	renewable := true
	short := tokenWithPolicy(t, hcl, api.TokenCreateRequest{TTL: "3s",
		ExplicitMaxTTL: "6s", Renewable: &renewable})
	var logs logBuffer
	o := tokenOptions(t, uniquePath(t), short)
	o.Logger = logs.logger()
	b := open(t, o)
	start := time.Now()
	must(t, "Init", b.Init(ctx, first, epoch))

	time.Sleep(time.Until(start.Add(4 * time.Second)))
	must(t, "List at 4 s, past the token's first TTL", listErr(b))
	if !strings.Contains(logs.String(), "vault token renewed") {
		t.Errorf("no renewal logged:\n%s", logs.String())
	}

	// Vault rounds lifetimes to whole seconds, so the token may live up
	// to a second past its 6 s.
	time.Sleep(time.Until(start.Add(7500 * time.Millisecond)))
	err := listErr(b)
	const refused = "vault refused the token in token file"
	if err == nil || !strings.Contains(err.Error(), refused) {
		t.Errorf("List at 7.5 s with the expired token still in the file: got %v, "+
			"want the refusal explained", err)
	}

	fresh := tokenWithPolicy(t, hcl, api.TokenCreateRequest{TTL: "1m"})
	writeToken(t, o.Auth.TokenFile, fresh)
	must(t, "List after a fresh token was put in the file", listErr(b))
	if tok, _ := b.auth.current(); tok != fresh {
		t.Errorf("keyturn did not log in with the fresh token")
	}
	t.Logf("log:\n%s", logs.String())
}

// TestReloginAfterRevoke revokes keyturn's token underneath it: the next
// request is refused, a lookup shows the token dead, and keyturn logs in
// again with the token the file now holds and repeats the request.
func TestReloginAfterRevoke(t *testing.T) {
	realVault(t)
	hcl := renderPolicy(readPolicy(t))
	tok := tokenWithPolicy(t, hcl, api.TokenCreateRequest{})
	o := tokenOptions(t, uniquePath(t), tok)
	b := open(t, o)
	must(t, "Init", b.Init(ctx, first, epoch))

	if err := rootClient(t).Auth().Token().RevokeTree(tok); err != nil {
		t.Fatalf("revoking: %v", err)
	}
	fresh := tokenWithPolicy(t, hcl, api.TokenCreateRequest{})
	writeToken(t, o.Auth.TokenFile, fresh)
	must(t, "WritePending with a revoked token", b.WritePending(ctx, "rot-1",
		second, epoch))
	if got, _ := b.auth.current(); got != fresh {
		t.Errorf("keyturn did not log in with the fresh token")
	}
}
