// Package env keeps a credential in an env file that keyturn owns:
//
//	SMARTCAR_CLIENT_ID=client_abc123
//	SMARTCAR_CLIENT_SECRET=...
//
// The file holds only the current secret, so consumers that read it (a
// systemd EnvironmentFile, a shell that sources it, a container's env
// file) only ever see a secret that has passed a token request. Pending
// and previous secrets, and what keyturn knows of each secret (creation
// time, rotation), live in a state file in keyturn's state directory.
// Both files are mode 0600 and every write is atomic (temporary file,
// fsync, rename, fsync of the folder). keyturn refuses an env file that
// group or others can read or write, since it holds a live secret.
//
// Lines of the env file that keyturn does not own are kept untouched.
package env

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

var _ backends.Backend = (*Backend)(nil)

// Options configure a Backend.
type Options struct {
	File     string // the env file consumers read
	StateDir string // keyturn's own folder for this credential
	ClientID string
}

// Backend is an env-file credential store.
type Backend struct {
	o  Options
	mu sync.Mutex
}

// New returns a Backend. It creates StateDir (0700) but not the env file,
// which Init writes.
func New(o Options) (*Backend, error) {
	if o.File == "" || o.StateDir == "" {
		return nil, errors.New("env: file and state dir are both needed")
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("env: create state dir: %w", err)
	}
	return &Backend{o: o}, nil
}

func (b *Backend) String() string { return fmt.Sprintf("env file %q", b.o.File) }

// Close does nothing; the backend holds no open files.
func (b *Backend) Close() error { return nil }

// entry is one secret as the state file keeps it.
type entry struct {
	Value       string             `json:"value,omitempty"`
	Fingerprint secret.Fingerprint `json:"fingerprint"`
	CreatedAt   time.Time          `json:"created_at"`
	RotationID  string             `json:"rotation_id,omitempty"`
}

// state is the state file. Current holds no value: the env file does.
type state struct {
	Current  *entry `json:"current,omitempty"`
	Previous *entry `json:"previous,omitempty"`
	Pending  *entry `json:"pending,omitempty"`
}

func (b *Backend) statePath() string { return filepath.Join(b.o.StateDir, "state.json") }

func (b *Backend) load() (*envFile, *state, error) {
	ef, err := b.readEnv()
	if err != nil {
		return nil, nil, err
	}
	st := &state{}
	data, err := os.ReadFile(b.statePath())
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, nil, fmt.Errorf("env: read state: %w", err)
	default:
		if err := json.Unmarshal(data, st); err != nil {
			return nil, nil, fmt.Errorf("env: state file %q is damaged: %v; "+
				"restore it from backup or remove it to start over", b.statePath(), err)
		}
	}
	return ef, st, nil
}

func (b *Backend) readEnv() (*envFile, error) {
	fi, err := os.Stat(b.o.File)
	if errors.Is(err, fs.ErrNotExist) {
		return &envFile{vals: map[string]string{}, index: map[string]int{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("env: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("env: file %q has mode %04o, so others can read the "+
			"secret; run: chmod 600 %s", b.o.File, fi.Mode().Perm(), b.o.File)
	}
	data, err := os.ReadFile(b.o.File)
	if err != nil {
		return nil, fmt.Errorf("env: %w", err)
	}
	ef, err := parseEnv(data)
	if err != nil {
		return nil, fmt.Errorf("env: file %q: %v", b.o.File, err)
	}
	return ef, nil
}

func (b *Backend) saveState(st *state) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(b.statePath(), data); err != nil {
		return fmt.Errorf("env: write state: %w", err)
	}
	return nil
}

func (b *Backend) saveEnv(ef *envFile, v secret.Value) error {
	ef.set(KeyClientID, b.o.ClientID)
	ef.set(KeyClientSecret, v.Reveal())
	if err := writeAtomic(b.o.File, ef.bytes()); err != nil {
		return fmt.Errorf("env: rewrite %q: %w", b.o.File, err)
	}
	return nil
}

// current returns the env file's secret with what the state file knows
// of it. A secret written by hand has no record: its age is the file's.
func (b *Backend) current(ef *envFile, st *state) (backends.Secret, bool) {
	raw, ok := ef.vals[KeyClientSecret]
	if !ok || raw == "" {
		return backends.Secret{}, false
	}
	v := secret.New(raw)
	s := backends.Secret{Stage: backends.StageCurrent, Value: v,
		Fingerprint: v.Fingerprint()}
	if st.Current != nil && st.Current.Fingerprint == s.Fingerprint {
		s.CreatedAt, s.RotationID = st.Current.CreatedAt, st.Current.RotationID
	} else if fi, err := os.Stat(b.o.File); err == nil {
		s.CreatedAt = fi.ModTime().UTC()
	}
	return s, true
}

func fromEntry(stage backends.Stage, e *entry) backends.Secret {
	v := secret.New(e.Value)
	return backends.Secret{Stage: stage, Value: v, Fingerprint: v.Fingerprint(),
		CreatedAt: e.CreatedAt, RotationID: e.RotationID}
}

func toEntry(s backends.Secret, withValue bool) *entry {
	e := &entry{Fingerprint: s.Fingerprint, CreatedAt: s.CreatedAt.UTC(),
		RotationID: s.RotationID}
	if withValue {
		e.Value = s.Value.Reveal()
	}
	return e
}
