package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/hashicorp/vault/api"
)

// call names one Vault request for errors: what keyturn was doing, the
// API path, and the capabilities a policy must grant on that path.
type call struct {
	what string
	path string
	caps []string
}

// callError is a failed request, named by its call.
type callError struct {
	call
	err error
}

func (e *callError) Error() string {
	return fmt.Sprintf("%s %q: %v", e.what, e.path, e.err)
}

// Unwrap returns the explained cause.
func (e *callError) Unwrap() error { return e.err }

// do runs fn as c. When Vault refuses it and the token turns out to be
// dead (expired, revoked), it logs in again and runs fn once more; a live
// token's refusal is the policy's, and is explained as such.
func (b *Backend) do(ctx context.Context, c call,
	fn func(context.Context) (*api.Secret, error)) (*api.Secret, error) {
	if err := b.auth.ensure(ctx); err != nil {
		return nil, &callError{c, err}
	}
	tok, _ := b.auth.current()
	s, err := fn(ctx)
	if isStatus(err, 403) && !b.auth.stillValid(ctx, tok) {
		b.log.Info("vault no longer accepts the token; logging in again")
		if lerr := b.auth.relogin(ctx, tok); lerr != nil {
			return nil, &callError{c, lerr}
		}
		s, err = fn(ctx)
	}
	if err != nil {
		return nil, &callError{c, b.explain(c, err)}
	}
	return s, nil
}

// read is Logical().ReadWithDataWithContext, except that a 404 carrying
// errors (no mount there, say) is an error rather than "no data". A 404
// without errors is KV's answer for a missing key (nil), or for a deleted
// or destroyed version (its metadata, without data).
func (b *Backend) read(ctx context.Context, path string,
	params map[string][]string) (*api.Secret, error) {
	resp, err := b.client.Logical().ReadRawWithDataWithContext(ctx, path, params)
	if resp != nil {
		defer resp.Body.Close()
	}
	var re *api.ResponseError
	if resp != nil && resp.StatusCode == 404 && errors.As(err, &re) &&
		len(re.Errors) == 0 {
		s, perr := api.ParseSecret(resp.Body)
		if perr == io.EOF {
			return nil, nil
		}
		return s, perr
	}
	if err != nil {
		return nil, err
	}
	return api.ParseSecret(resp.Body)
}

// The KV version 2 API paths of a KV path p.
func (b *Backend) dataPath(p string) string     { return b.mount + "/data/" + p }
func (b *Backend) metadataPath(p string) string { return b.mount + "/metadata/" + p }
func (b *Backend) pendingPath() string          { return b.path + "/pending" }

// pathMeta is the metadata of one KV path.
type pathMeta struct {
	exists   bool
	current  int // the newest version, 0 for none
	versions map[int]versionMeta
	custom   map[string]string
}

type versionMeta struct {
	created   time.Time
	deleted   bool
	destroyed bool
}

// live reports whether version n exists and still holds data.
func (m pathMeta) live(n int) bool {
	v, ok := m.versions[n]
	return ok && !v.deleted && !v.destroyed
}

// readMeta reads the metadata of KV path p.
func (b *Backend) readMeta(ctx context.Context, what, p string) (pathMeta, error) {
	c := call{what, b.metadataPath(p), []string{"read"}}
	s, err := b.do(ctx, c, func(ctx context.Context) (*api.Secret, error) {
		return b.read(ctx, c.path, nil)
	})
	if err != nil || s == nil || s.Data == nil {
		return pathMeta{}, err
	}
	m := pathMeta{exists: true, versions: map[int]versionMeta{},
		custom: map[string]string{}}
	m.current = number(s.Data["current_version"])
	vs, _ := s.Data["versions"].(map[string]any)
	for k, raw := range vs {
		n, err := strconv.Atoi(k)
		v, _ := raw.(map[string]any)
		if err != nil || v == nil {
			continue
		}
		del, _ := v["deletion_time"].(string)
		destroyed, _ := v["destroyed"].(bool)
		m.versions[n] = versionMeta{created: parseTime(v["created_time"]),
			deleted: del != "", destroyed: destroyed}
	}
	cm, _ := s.Data["custom_metadata"].(map[string]any)
	for k, v := range cm {
		if sv, ok := v.(string); ok {
			m.custom[k] = sv
		}
	}
	return m, nil
}

// readVersion returns the data of version n of KV path p, or nil when the
// version was deleted, destroyed or never written.
func (b *Backend) readVersion(ctx context.Context, what, p string,
	n int) (map[string]any, error) {
	c := call{what, b.dataPath(p), []string{"read"}}
	s, err := b.do(ctx, c, func(ctx context.Context) (*api.Secret, error) {
		return b.read(ctx, c.path, map[string][]string{"version": {strconv.Itoa(n)}})
	})
	if err != nil || s == nil {
		return nil, err
	}
	if _, ok := s.Data["metadata"]; !ok {
		return nil, &callError{c, b.kv1Error()}
	}
	data, _ := s.Data["data"].(map[string]any)
	return data, nil
}

// writeData writes data as a new version of KV path p, only if the newest
// version is still cas (0: only if p has no version), and returns the new
// version's number.
func (b *Backend) writeData(ctx context.Context, what, p string, data map[string]any,
	cas int) (int, error) {
	c := call{what, b.dataPath(p), []string{"create", "update"}}
	body := map[string]any{"options": map[string]any{"cas": cas}, "data": data}
	s, err := b.do(ctx, c, func(ctx context.Context) (*api.Secret, error) {
		return b.client.Logical().WriteWithContext(ctx, c.path, body)
	})
	if err != nil {
		return 0, err
	}
	if s == nil || s.Data["version"] == nil {
		// KV version 1 takes the write as a plain key named "data/…".
		return 0, &callError{c, b.kv1Error()}
	}
	return number(s.Data["version"]), nil
}

// writeCustom replaces the main path's custom_metadata with custom.
func (b *Backend) writeCustom(ctx context.Context, st *state,
	custom map[string]string) error {
	c := call{"write bookkeeping", b.metadataPath(b.path), []string{"update"}}
	body := map[string]any{"custom_metadata": custom}
	_, err := b.do(ctx, c, func(ctx context.Context) (*api.Secret, error) {
		return b.client.Logical().WriteWithContext(ctx, c.path, body)
	})
	if err == nil {
		st.main.custom = custom
	}
	return err
}

// removeVersions soft-deletes (op "delete") or destroys (op "destroy")
// the given versions of KV path p. Naming versions makes both safe
// against a concurrent writer: a newer version is never touched.
func (b *Backend) removeVersions(ctx context.Context, op, what, p string,
	versions []int) error {
	if len(versions) == 0 {
		return nil
	}
	c := call{what, b.mount + "/" + op + "/" + p, []string{"update"}}
	body := map[string]any{"versions": versions}
	_, err := b.do(ctx, c, func(ctx context.Context) (*api.Secret, error) {
		return b.client.Logical().WriteWithContext(ctx, c.path, body)
	})
	return err
}

// number reads a JSON number the api decoded with UseNumber.
func number(v any) int {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}

func parseTime(v any) time.Time {
	s, _ := v.(string)
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}
