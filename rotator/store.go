package rotator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketRotations = []byte("rotations") // id → Rotation
	bucketActive    = []byte("active")    // app → rotation id
	bucketApps      = []byte("apps")      // app → AppState
)

// AppState is what the Engine remembers of an app between rotations.
type AppState struct {
	// ScheduleCheckedAt is the last instant the app's schedule was
	// checked; ticks between it and now are caught up at start.
	ScheduleCheckedAt time.Time `json:"schedule_checked_at,omitzero"`
	// WarnedFor is the fingerprint of the current secret the age warning
	// was last sent for, so it goes once per secret.
	WarnedFor string `json:"warned_for,omitempty"`
	LastDone  string `json:"last_done,omitempty"`
	// FollowUpOf names a finished emergency whose follow-up emergency
	// (for a leaked new secret) has not started yet.
	FollowUpOf string `json:"follow_up_of,omitempty"`
	// Windows are residual token windows still open after emergency
	// revocations; a notice goes out when each closes.
	Windows []Window `json:"windows,omitempty"`
}

// Window is one open residual token window.
type Window struct {
	RotationID  string    `json:"rotation_id"`
	Fingerprint string    `json:"fingerprint"`
	EndsAt      time.Time `json:"ends_at"`
}

// Store keeps rotations in a bbolt file. Every write is one fsynced
// transaction.
type Store struct {
	db *bolt.DB
}

// OpenStore opens (or creates) the state database in stateDir. A second
// daemon on the same state dir is refused at once instead of waiting.
func OpenStore(stateDir string) (*Store, error) {
	fi, err := os.Stat(stateDir)
	if err != nil {
		return nil, fmt.Errorf("state dir %q: %w", stateDir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("state dir %q is not a folder", stateDir)
	}
	path := filepath.Join(stateDir, "keyturn.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 500 * time.Millisecond})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("state database %q is locked by another keyturn "+
			"daemon", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open state database %q: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRotations, bucketActive, bucketApps} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init state database: %w", err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Put writes r, and marks it active for its app unless it ended.
func (s *Store) Put(r *Rotation) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketRotations).Put([]byte(r.ID), data); err != nil {
			return err
		}
		act := tx.Bucket(bucketActive)
		if r.State.Terminal() {
			if string(act.Get([]byte(r.App))) == r.ID {
				return act.Delete([]byte(r.App))
			}
			return nil
		}
		if cur := act.Get([]byte(r.App)); cur != nil && string(cur) != r.ID {
			return fmt.Errorf("app %q already has rotation %s", r.App, cur)
		}
		return act.Put([]byte(r.App), []byte(r.ID))
	})
}

// Active returns the running rotation of app, or nil.
func (s *Store) Active(app string) (*Rotation, error) {
	var r *Rotation
	err := s.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketActive).Get([]byte(app))
		if id == nil {
			return nil
		}
		var err error
		r, err = decodeRotation(tx.Bucket(bucketRotations).Get(id))
		return err
	})
	return r, err
}

// Get returns the rotation with id, or nil.
func (s *Store) Get(id string) (*Rotation, error) {
	var r *Rotation
	err := s.db.View(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketRotations).Get([]byte(id))
		if data == nil {
			return nil
		}
		var err error
		r, err = decodeRotation(data)
		return err
	})
	return r, err
}

func decodeRotation(data []byte) (*Rotation, error) {
	if data == nil {
		return nil, errors.New("active rotation record is missing")
	}
	r := &Rotation{}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode rotation: %w", err)
	}
	return r, nil
}

// AppState returns what is remembered of app.
func (s *Store) AppState(app string) (AppState, error) {
	var st AppState
	err := s.db.View(func(tx *bolt.Tx) error {
		if data := tx.Bucket(bucketApps).Get([]byte(app)); data != nil {
			return json.Unmarshal(data, &st)
		}
		return nil
	})
	return st, err
}

// PutAppState writes what is remembered of app.
func (s *Store) PutAppState(app string, st AppState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketApps).Put([]byte(app), data)
	})
}
