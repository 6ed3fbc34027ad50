package awssm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

const tokenPrefix = "keyturn-version-v1\x00"

// versionToken derives a version's ClientRequestToken from its content,
// with the value replaced by its fingerprint: the same write repeats the
// same token, and any change (a corrected value, another created_at) gets
// a new one. It is shaped as a UUID (version 8, "custom").
func versionToken(doc document, fp secret.Fingerprint) string {
	h := sha256.New()
	for _, part := range []string{tokenPrefix, doc.ClientID, string(fp),
		doc.CreatedAt, doc.RotationID} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	sum := h.Sum(nil)[:16]
	sum[6] = sum[6]&0x0f | 0x80
	sum[8] = sum[8]&0x3f | 0x80
	x := hex.EncodeToString(sum)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// stepHook lets tests stop the process between two steps (the crash test)
// or change the secret underneath a step (the conflict test). It does
// nothing outside tests.
var stepHook = func(name string) {}

// put writes body as a new version with token, labelled label, and makes
// sure the label is on it: Secrets Manager ignores a repeated write, labels
// included, when a version with that token and content already exists.
func (b *Backend) put(ctx context.Context, st *state, body, token, label string) error {
	out, err := b.client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(b.id), ClientRequestToken: aws.String(token),
		SecretString: aws.String(body), VersionStages: []string{label}})
	if err != nil {
		return fmt.Errorf("writing version %s as %s: %w", token, label,
			b.explain(err, "PutSecretValue", st.arn))
	}
	b.log.Debug("version written", logVersionID, token, logLabel, label)
	stepHook("after-put")
	if hasLabel(out.VersionStages, label) {
		return nil
	}

	fresh, err := b.load(ctx)
	if err != nil {
		return err
	}
	return b.moveLabel(ctx, fresh, label, token, holder(fresh, label))
}

// holder returns the version carrying label in st, stray or not.
func holder(st *state, label string) string {
	switch {
	case label == labelCurrent && st.current != nil:
		return st.current.id
	case label == labelPending && st.pending != nil:
		return st.pending.id
	case label == labelPending:
		return st.strayPending
	case label == labelPrevious && st.previous != nil:
		return st.previous.id
	case label == labelPrevious:
		return st.strayPrevious
	}
	return ""
}

// moveLabel puts label on version to (none when empty) and takes it off
// version from (none when empty). Secrets Manager refuses the move when
// from no longer carries the label, or when another version now does,
// which is how a concurrent writer surfaces: as ErrCASConflict.
func (b *Backend) moveLabel(ctx context.Context, st *state,
	label, to, from string) error {
	if to == from {
		return nil // nothing to move, or already there
	}
	in := &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(b.id), VersionStage: aws.String(label)}
	if to != "" {
		in.MoveToVersionId = aws.String(to)
	}
	if from != "" {
		in.RemoveFromVersionId = aws.String(from)
	}
	_, err := b.client.UpdateSecretVersionStage(ctx, in)
	var invalid *types.InvalidParameterException
	if errors.As(err, &invalid) {
		return fmt.Errorf("%s: %w (%w)", moveText(label, to, from),
			backends.ErrCASConflict, err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", moveText(label, to, from),
			b.explain(err, "UpdateSecretVersionStage", st.arn))
	}
	b.log.Debug("label moved", logLabel, label, "to_version", to, "from_version", from)
	return nil
}

func moveText(label, to, from string) string {
	switch {
	case to == "":
		return fmt.Sprintf("taking %s off version %s", label, from)
	case from == "":
		return fmt.Sprintf("putting %s on version %s", label, to)
	}
	return fmt.Sprintf("moving %s from version %s to %s", label, from, to)
}
