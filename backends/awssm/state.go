package awssm

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

// The staging labels keyturn uses, one per stage.
const (
	labelCurrent  = "AWSCURRENT"
	labelPrevious = "AWSPREVIOUS"
	labelPending  = "AWSPENDING"
)

// document is the JSON every version keyturn writes holds.
type document struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	CreatedAt    string `json:"created_at"`
	RotationID   string `json:"rotation_id"`
}

// version is one labelled version as keyturn reads it.
type version struct {
	id     string
	secret backends.Secret
}

// state is one consistent reading of the secret.
type state struct {
	exists bool
	arn    string
	// current, previous and pending are nil when no version shows at that
	// stage (see the package doc for precedence).
	current, previous, pending *version
	// strayPending and strayPrevious name a version carrying a label it
	// does not show at: a leftover of an interrupted step.
	strayPending, strayPrevious string
}

// holders maps each label to the versions carrying it. Versions with no
// label (deprecated; moto lists them, AWS does not) are skipped.
func holders(v2s map[string][]string) map[string][]string {
	out := map[string][]string{}
	for id, labels := range v2s {
		for _, l := range labels {
			out[l] = append(out[l], id)
		}
	}
	for _, ids := range out {
		sort.Strings(ids)
	}
	return out
}

// load reads which versions carry keyturn's labels and then each of them.
func (b *Backend) load(ctx context.Context) (*state, error) {
	desc, err := b.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{
		SecretId: aws.String(b.id)})
	if isNotFound(err) {
		return &state{}, nil
	}
	if err != nil {
		return nil, b.explain(err, "DescribeSecret", "")
	}
	st := &state{exists: true, arn: aws.ToString(desc.ARN)}
	on := holders(desc.VersionIdsToStages)
	for _, l := range []string{labelCurrent, labelPending, labelPrevious} {
		if len(on[l]) > 1 {
			return nil, fmt.Errorf("label %s sits on versions %s; Secrets Manager "+
				"allows one, so a tool bypassed it: move it with "+
				"aws secretsmanager update-secret-version-stage", l,
				strings.Join(on[l], " and "))
		}
	}
	return st, b.readLabels(ctx, st, on)
}

func (b *Backend) readLabels(ctx context.Context, st *state,
	on map[string][]string) error {
	one := func(l string) string {
		if len(on[l]) == 0 {
			return ""
		}
		return on[l][0]
	}
	cur, pend, prev := one(labelCurrent), one(labelPending), one(labelPrevious)
	if pend != "" && pend == cur {
		st.strayPending, pend = pend, ""
	}
	if prev != "" && (prev == cur || prev == pend) {
		st.strayPrevious, prev = prev, ""
	}

	var err error
	if st.current, err = b.read(ctx, cur, labelCurrent); err != nil {
		return err
	}
	if st.pending, err = b.read(ctx, pend, labelPending); err != nil {
		return err
	}
	st.previous, err = b.read(ctx, prev, labelPrevious)
	return err
}

// read fetches version id through label. Naming both makes the read fail
// rather than return another version if the label moved since
// DescribeSecret, and names the stage explicitly, which moto needs.
func (b *Backend) read(ctx context.Context, id, label string) (*version, error) {
	if id == "" {
		return nil, nil
	}
	out, err := b.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(b.id), VersionId: aws.String(id),
		VersionStage: aws.String(label)})
	if err != nil {
		return nil, fmt.Errorf("reading %s (version %s): %w", label, id,
			b.explain(err, "GetSecretValue", ""))
	}
	s, err := b.decode(out, label)
	if err != nil {
		return nil, fmt.Errorf("reading %s (version %s): %w", label, id, err)
	}
	return &version{id: id, secret: s}, nil
}

// decode turns a version into a Secret. A version not in keyturn's JSON is
// taken whole, so that a secret stored before keyturn, or a pending one left
// by another tool, can still be named by fingerprint.
func (b *Backend) decode(out *secretsmanager.GetSecretValueOutput,
	label string) (backends.Secret, error) {
	raw := aws.ToString(out.SecretString)
	if out.SecretString == nil {
		raw = string(out.SecretBinary)
	}
	s := backends.Secret{Stage: stageOf[label], CreatedAt: aws.ToTime(out.CreatedDate)}

	var doc document
	if json.Unmarshal([]byte(raw), &doc) != nil || doc.ClientSecret == "" {
		s.Value = secret.New(raw)
		s.Fingerprint = s.Value.Fingerprint()
		return s, nil
	}
	if label != labelPending && doc.ClientID != "" && b.clientID != "" &&
		doc.ClientID != b.clientID {
		return s, fmt.Errorf("it belongs to client id %q, not %q: "+
			"is the secret id right?", doc.ClientID, b.clientID)
	}
	s.Value = secret.New(doc.ClientSecret)
	s.Fingerprint = s.Value.Fingerprint()
	s.RotationID = doc.RotationID
	if t, err := time.Parse(time.RFC3339Nano, doc.CreatedAt); err == nil {
		s.CreatedAt = t
	}
	return s, nil
}

var stageOf = map[string]backends.Stage{
	labelCurrent:  backends.StageCurrent,
	labelPrevious: backends.StagePrevious,
	labelPending:  backends.StagePending,
}

// list returns the secrets of st in the order current, previous, pending.
func (st *state) list() []backends.Secret {
	var out []backends.Secret
	for _, v := range []*version{st.current, st.previous, st.pending} {
		if v != nil {
			out = append(out, v.secret)
		}
	}
	return out
}

// encode returns the SecretString for a new version and its idempotency
// token.
func (b *Backend) encode(s secret.Value, createdAt time.Time,
	rotationID string) (body, token string) {
	doc := document{
		ClientID:     b.clientID,
		ClientSecret: s.Reveal(),
		CreatedAt:    createdAt.UTC().Format(time.RFC3339Nano),
		RotationID:   rotationID,
	}
	j, err := json.Marshal(doc)
	if err != nil {
		panic("awssm: encoding a document of strings: " + err.Error())
	}
	return string(j), versionToken(doc, s.Fingerprint())
}

func hasLabel(labels []string, l string) bool { return slices.Contains(labels, l) }
