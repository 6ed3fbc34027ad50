package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// AuthOptions says how a Backend logs in to Vault.
type AuthOptions struct {
	// Method is "token" (the default), "approle" or "kubernetes".
	Method string
	// TokenFile holds the token for method token; empty uses VAULT_TOKEN.
	// The file is read again whenever Vault stops accepting the token, so
	// a Vault agent's token sink keeps keyturn logged in.
	TokenFile string
	// RoleID and SecretIDFile are AppRole's credentials. With Wrapped, the
	// file holds a response-wrapping token whose unwrapping yields the
	// secret id.
	RoleID       string
	SecretIDFile string
	Wrapped      bool
	// Role is the Kubernetes auth role; JWTFile the service account token,
	// the in-pod projected token when empty.
	Role    string
	JWTFile string
	// MountPath is where the auth method is mounted; empty is the method's
	// name ("approle", "kubernetes").
	MountPath string
}

const defaultJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// loginAttempts bounds a (re-)login; each attempt is itself retried by
// the client on network errors and 5xx.
const loginAttempts = 3

// authenticator keeps the client logged in: it logs in on first use,
// renews the token with a LifetimeWatcher, and logs in again when the
// token reaches its maximum lifetime or Vault refuses it.
type authenticator struct {
	client *api.Client
	o      AuthOptions
	log    *slog.Logger

	loginMu sync.Mutex // one login at a time

	mu      sync.Mutex
	token   string        // the token in use; empty before the first login
	expires time.Time     // when it stops working; zero for never
	stop    chan struct{} // closed to stop the running watcher
	closed  bool
	wg      sync.WaitGroup
}

func newAuthenticator(c *api.Client, o AuthOptions,
	log *slog.Logger) (*authenticator, error) {
	if o.Method == "" {
		o.Method = "token"
	}
	if err := checkAuth(&o); err != nil {
		return nil, fmt.Errorf("auth method %s: %w", o.Method, err)
	}
	// The client picked VAULT_TOKEN up; only the login may set a token.
	c.ClearToken()
	return &authenticator{client: c, o: o, log: log}, nil
}

// checkAuth refuses incomplete options and files that cannot be read.
func checkAuth(o *AuthOptions) error {
	switch o.Method {
	case "token":
		if o.TokenFile == "" {
			if os.Getenv(api.EnvVaultToken) == "" {
				return errors.New("no token_file, and VAULT_TOKEN is not set")
			}
			return nil
		}
		return readable(o.TokenFile)
	case "approle":
		if o.RoleID == "" || o.SecretIDFile == "" {
			return errors.New("role_id and secret_id_file are both needed")
		}
		return readable(o.SecretIDFile)
	case "kubernetes":
		if o.Role == "" {
			return errors.New("no role")
		}
		if o.JWTFile == "" {
			o.JWTFile = defaultJWTFile
		}
		return readable(o.JWTFile)
	}
	return errors.New("unknown; use token, approle or kubernetes")
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

// current returns the token in use and whether it is still good to use.
func (a *authenticator) current() (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	live := a.expires.IsZero() || time.Now().Before(a.expires)
	return a.token, a.token != "" && live
}

// ensure logs in when there is no live token.
func (a *authenticator) ensure(ctx context.Context) error {
	tok, live := a.current()
	if live {
		return nil
	}
	return a.relogin(ctx, tok)
}

// relogin logs in again unless the token has changed since the caller saw
// seen (another request logged in meanwhile). Attempts are bounded;
// refusals (4xx) are not retried.
func (a *authenticator) relogin(ctx context.Context, seen string) error {
	a.loginMu.Lock()
	defer a.loginMu.Unlock()
	if tok, live := a.current(); tok != seen && live {
		return nil
	}
	var err error
	for attempt := 0; attempt < loginAttempts; attempt++ {
		if attempt > 0 {
			wait := jitterBackoff(minRetryWait, maxRetryWait, attempt, nil)
			select {
			case <-ctx.Done():
				return fmt.Errorf("logging in: %w", ctx.Err())
			case <-time.After(wait):
			}
		}
		if err = a.login(ctx); err == nil || !transient(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("logging in to vault with %s: %w", a.o.Method,
			explain(a.client.Address(), "", nil, err))
	}
	return nil
}

// transient reports an error a later attempt may not see.
func transient(err error) bool {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode >= 500 && !sealed(re)
	}
	var p permanent
	return !errors.As(err, &p)
}

// permanent marks a login error that retrying cannot fix.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// login gets a token by the configured method and starts watching it.
func (a *authenticator) login(ctx context.Context) error {
	if a.o.Method == "token" {
		return a.loginToken(ctx)
	}
	lc, err := a.loginClient("")
	if err != nil {
		return err
	}
	var m api.AuthMethod
	if a.o.Method == "approle" {
		m, err = a.appRole()
	} else {
		m, err = a.kubernetes()
	}
	if err != nil {
		return err
	}
	s, err := lc.Auth().Login(ctx, m)
	if err != nil {
		return err
	}
	a.adopt(s.Auth.ClientToken, s.Auth.LeaseDuration, s)
	a.log.Info("logged in to vault", "method", a.o.Method,
		"ttl", time.Duration(s.Auth.LeaseDuration)*time.Second)
	return nil
}

func (a *authenticator) appRole() (api.AuthMethod, error) {
	var opts []approle.LoginOption
	if a.o.MountPath != "" {
		opts = append(opts, approle.WithMountPath(a.o.MountPath))
	}
	if a.o.Wrapped {
		opts = append(opts, approle.WithWrappingToken())
	}
	return approle.NewAppRoleAuth(a.o.RoleID,
		&approle.SecretID{FromFile: a.o.SecretIDFile}, opts...)
}

// kubernetes reads the service account token afresh for every login,
// because Kubernetes rotates projected tokens.
func (a *authenticator) kubernetes() (api.AuthMethod, error) {
	opts := []kubernetes.LoginOption{
		kubernetes.WithServiceAccountTokenPath(a.o.JWTFile)}
	if a.o.MountPath != "" {
		opts = append(opts, kubernetes.WithMountPath(a.o.MountPath))
	}
	return kubernetes.NewKubernetesAuth(a.o.Role, opts...)
}

// loginClient returns a copy of the client holding token (none when
// empty), so that a login or a lookup never disturbs requests in flight.
func (a *authenticator) loginClient(token string) (*api.Client, error) {
	lc, err := a.client.Clone()
	if err != nil {
		return nil, err
	}
	lc.ClearToken()
	if token != "" {
		lc.SetToken(token)
	}
	return lc, nil
}

// loginToken takes the token from TokenFile or VAULT_TOKEN and asks Vault
// how long it lives. The same token read again is kept without a new
// watcher: its lifetime is what it is.
func (a *authenticator) loginToken(ctx context.Context) error {
	tok, src, err := a.readToken()
	if err != nil {
		return err
	}
	lc, err := a.loginClient(tok)
	if err != nil {
		return err
	}
	s, err := lc.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		if isStatus(err, 403) {
			return permanent{fmt.Errorf("vault refused the token in %s: it "+
				"expired, was revoked or is wrong; put a valid one there", src)}
		}
		return fmt.Errorf("looking up the token in %s: %w", src, err)
	}
	ttl, _ := s.TokenTTL()
	renewable, _ := s.TokenIsRenewable()
	if prev, _ := a.current(); prev == tok {
		a.setExpiry(tok, int(ttl.Seconds()))
		return nil
	}
	a.adopt(tok, int(ttl.Seconds()), &api.Secret{Auth: &api.SecretAuth{
		ClientToken: tok, Renewable: renewable, LeaseDuration: int(ttl.Seconds())}})
	a.log.Info("using vault token", "from", src, "ttl", ttl, "renewable", renewable)
	return nil
}

func (a *authenticator) readToken() (tok, src string, err error) {
	if a.o.TokenFile == "" {
		tok = strings.TrimSpace(os.Getenv(api.EnvVaultToken))
		if tok == "" {
			return "", "", permanent{errors.New("VAULT_TOKEN is empty")}
		}
		return tok, "VAULT_TOKEN", nil
	}
	src = fmt.Sprintf("token file %q", a.o.TokenFile)
	b, err := os.ReadFile(a.o.TokenFile)
	if err != nil {
		return "", "", fmt.Errorf("reading the %s: %w", src, err)
	}
	if tok = strings.TrimSpace(string(b)); tok == "" {
		return "", "", permanent{fmt.Errorf("the %s is empty", src)}
	}
	return tok, src, nil
}

// stillValid reports whether Vault still accepts the token in use, to
// tell a policy's refusal from an expired or revoked token.
func (a *authenticator) stillValid(ctx context.Context, tok string) bool {
	lc, err := a.loginClient(tok)
	if err != nil {
		return false
	}
	_, err = lc.Auth().Token().LookupSelfWithContext(ctx)
	return err == nil
}

func (a *authenticator) close() {
	a.mu.Lock()
	a.closed = true
	if a.stop != nil {
		close(a.stop)
		a.stop = nil
	}
	a.mu.Unlock()
	a.wg.Wait()
}
