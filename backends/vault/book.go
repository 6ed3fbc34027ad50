package vault

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

// Keys of the main path's custom_metadata that keyturn owns. Keys of
// other tools are left as they are.
const (
	keyPrefix   = "keyturn_"
	keyCurrent  = "keyturn_current"   // the version keyturn last made current
	keyPrevious = "keyturn_previous"  // the version tracked as previous
	keyRotation = "keyturn_rotation_" // + version: the rotation that wrote it
	keyDestroy  = "keyturn_destroy_"  // + version: when to destroy it
)

// book is keyturn's bookkeeping of the main path.
type book struct {
	current, previous       int
	currentRot, previousRot string
}

func readBook(custom map[string]string) book {
	bk := book{current: atoi(custom[keyCurrent]), previous: atoi(custom[keyPrevious])}
	if bk.current > 0 {
		bk.currentRot = custom[keyRotation+strconv.Itoa(bk.current)]
	}
	if bk.previous > 0 {
		bk.previousRot = custom[keyRotation+strconv.Itoa(bk.previous)]
	}
	return bk
}

// custom returns base with its bookkeeping replaced by bk's. Destroy
// schedules and other tools' keys are kept.
func (bk book) custom(base map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		if !strings.HasPrefix(k, keyPrefix) || strings.HasPrefix(k, keyDestroy) {
			out[k] = v
		}
	}
	set := func(key string, n int, rot string) {
		if n > 0 {
			out[key] = strconv.Itoa(n)
			if rot != "" {
				out[keyRotation+strconv.Itoa(n)] = rot
			}
		}
	}
	set(keyCurrent, bk.current, bk.currentRot)
	set(keyPrevious, bk.previous, bk.previousRot)
	return out
}

// schedule returns the versions custom has scheduled for destruction, and
// when each is due.
func schedule(custom map[string]string) map[int]time.Time {
	out := map[int]time.Time{}
	for k, v := range custom {
		if n := atoi(strings.TrimPrefix(k, keyDestroy)); n > 0 &&
			strings.HasPrefix(k, keyDestroy) {
			t, _ := time.Parse(time.RFC3339, v) // unreadable: due now
			out[n] = t
		}
	}
	return out
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// document returns what keyturn stores in a version: the main path's
// fields, and for a pending secret its rotation id as well.
func (b *Backend) document(s secret.Value, createdAt time.Time,
	rotationID string) map[string]any {
	doc := map[string]any{
		"client_id":     b.clientID,
		"client_secret": s.Reveal(),
		"created_at":    timeText(createdAt),
	}
	if rotationID != "" {
		doc["rotation_id"] = rotationID
	}
	return doc
}

// decode turns a version's data into a Secret. created is the version's
// creation, used when the data has no created_at of its own.
func (b *Backend) decode(data map[string]any, stage backends.Stage,
	created time.Time) (backends.Secret, error) {
	value, ok := data["client_secret"].(string)
	if !ok || value == "" {
		return backends.Secret{}, fmt.Errorf("it has no client_secret field; "+
			"keyturn stores client_id, client_secret and created_at (has %s)",
			strings.Join(keys(data), ", "))
	}
	clientID, _ := data["client_id"].(string)
	if clientID != "" && b.clientID != "" && clientID != b.clientID {
		return backends.Secret{}, fmt.Errorf("it belongs to client id %q, not %q: "+
			"is the path right?", clientID, b.clientID)
	}
	s := backends.Secret{Stage: stage, Value: secret.New(value), CreatedAt: created}
	s.Fingerprint = s.Value.Fingerprint()
	s.RotationID, _ = data["rotation_id"].(string)
	if t := parseTime(data["created_at"]); !t.IsZero() {
		s.CreatedAt = t
	}
	return s, nil
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, fmt.Sprintf("%q", k))
	}
	if len(out) == 0 {
		return []string{"no fields"}
	}
	sort.Strings(out)
	return out
}
