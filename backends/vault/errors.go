package vault

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/keyturn/keyturn/backends"
)

// fail prefixes err with the package and, unless err already names the
// request that failed, the operation and the path.
func (b *Backend) fail(op string, err error) error {
	var ce *callError
	if errors.As(err, &ce) {
		return fmt.Errorf("vault: %w", err)
	}
	return fmt.Errorf("vault: %s %q: %w", op, b.mount+"/"+b.path, err)
}

// explained is an error reworded for a person; it unwraps to the cause.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// explain turns a failed request into an error a person can act on.
func (b *Backend) explain(c call, err error) error {
	return explain(b.addr, b.mount, c.caps, err)
}

// explain rewords err, the failure of a request to the Vault at addr that
// needed caps, when it is one a person can act on.
func explain(addr, mount string, caps []string, err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return explainResponse(addr, mount, caps, re)
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return &explained{fmt.Sprintf("vault at %s presented a certificate no "+
			"trusted CA signed: set ca_cert (or VAULT_CACERT) to its CA", addr), err}
	}
	var ne net.Error
	if errors.As(err, &ne) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, context.DeadlineExceeded) {
		return &explained{fmt.Sprintf("vault at %s unreachable after %d attempts: %v",
			addr, maxRetries+1, netCause(err)), err}
	}
	return err
}

func explainResponse(addr, mount string, caps []string, re *api.ResponseError) error {
	msg := strings.Join(re.Errors, "; ")
	switch {
	case sealed(re):
		return &explained{fmt.Sprintf("vault at %s is sealed; unseal it", addr), re}
	case re.StatusCode == 403 && len(caps) == 0:
		return &explained{"permission denied", re}
	case re.StatusCode == 403:
		return &explained{"permission denied: the policy needs " + quoteCaps(caps) +
			" on that path", re}
	case re.StatusCode == 400 && strings.Contains(msg, "check-and-set"):
		return fmt.Errorf("%w: another writer stored a new version first",
			backends.ErrCASConflict)
	case re.StatusCode == 404 && mount != "" && strings.Contains(msg, "no handler"):
		return &explained{fmt.Sprintf("nothing is mounted at %s/: mount KV "+
			"version 2 there: vault secrets enable -path=%s kv-v2", mount, mount), re}
	}
	if msg == "" {
		msg = "no reason given"
	}
	return &explained{fmt.Sprintf("vault answered %d: %s", re.StatusCode,
		oneLine(msg)), re}
}

// quoteCaps renders ["create", "update"] as `"create" and "update"`.
func quoteCaps(caps []string) string {
	q := make([]string, len(caps))
	for i, c := range caps {
		q[i] = fmt.Sprintf("%q", c)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// netCause returns the network error without the URL around it.
func netCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// sealed reports Vault's answer while sealed.
func sealed(re *api.ResponseError) bool {
	return re.StatusCode == 503 &&
		strings.Contains(strings.ToLower(strings.Join(re.Errors, " ")), "sealed")
}

func isStatus(err error, code int) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == code
}

func (b *Backend) kv1Error() error {
	return fmt.Errorf("mount %s/ is KV version 1; keyturn needs KV v2: "+
		"vault kv enable-versioning %s/", b.mount, b.mount)
}

// checkMount makes sure the mount is KV version 2 before the first read,
// because KV version 1 would take keyturn's data/ and metadata/ paths as
// plain keys. When Vault will not say (an older Vault, or a token that
// may not ask), the answers to the KV calls themselves give it away.
func (b *Backend) checkMount(ctx context.Context) error {
	b.mountMu.Lock()
	defer b.mountMu.Unlock()
	if b.mountOK {
		return nil
	}
	c := call{"check mount", "sys/internal/ui/mounts/" + b.mount, []string{"read"}}
	s, err := b.do(ctx, c, func(ctx context.Context) (*api.Secret, error) {
		return b.read(ctx, c.path, nil)
	})
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode < 500 || err == nil && s == nil {
		return nil // unknown; the KV calls tell
	}
	if err != nil {
		return err
	}
	typ, _ := s.Data["type"].(string)
	opts, _ := s.Data["options"].(map[string]any)
	version, _ := opts["version"].(string)
	switch {
	case typ != "kv":
		return &callError{c, fmt.Errorf("mount %s/ is a %q secrets engine; "+
			"keyturn needs KV version 2", b.mount, typ)}
	case version != "2":
		return &callError{c, b.kv1Error()}
	}
	b.mountOK = true
	return nil
}
