package awssm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

// List returns the tracked secrets in the order current, previous, pending.
func (b *Backend) List(ctx context.Context) ([]backends.Secret, error) {
	st, err := b.load(ctx)
	if err != nil {
		return nil, b.fail("list", err)
	}
	return st.list(), nil
}

// Get returns the secret at stage, or an error wrapping ErrNotFound.
func (b *Backend) Get(ctx context.Context,
	stage backends.Stage) (backends.Secret, error) {
	st, err := b.load(ctx)
	if err != nil {
		return backends.Secret{}, b.fail("get "+string(stage), err)
	}
	if s, ok := backends.Find(st.list(), stage); ok {
		return s, nil
	}
	return backends.Secret{}, b.fail("get "+string(stage), backends.ErrNotFound)
}

// Init stores s as the current secret, creating the secret (tagged, and
// encrypted with Options.KMSKeyID when set) if it does not exist.
func (b *Backend) Init(ctx context.Context, s secret.Value, createdAt time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.init(ctx, s, createdAt); err != nil {
		return b.fail("init", err)
	}
	return nil
}

func (b *Backend) init(ctx context.Context, s secret.Value, createdAt time.Time) error {
	// A second pass runs only when the secret appeared between the
	// reading and CreateSecret: another keyturn, or a retried request
	// whose first attempt landed.
	for pass := 0; ; pass++ {
		st, err := b.load(ctx)
		if err != nil {
			return err
		}
		if st.current != nil {
			if st.current.secret.Value.Equal(s) {
				return nil
			}
			return fmt.Errorf("%w (%s, version %s)", backends.ErrExists,
				st.current.secret.Fingerprint, st.current.id)
		}

		body, token := b.encode(s, createdAt, "")
		if st.exists {
			// Only with no AWSCURRENT anywhere: a plain put beside one
			// can leave two on moto (see the package doc).
			err = b.put(ctx, st, body, token, labelCurrent)
		} else {
			err = b.create(ctx, body, token)
		}
		var exists *types.ResourceExistsException
		if errors.As(err, &exists) && pass == 0 {
			continue
		}
		if err == nil {
			b.log.Info("secret stored as current", logSecretFP, s.Fingerprint(),
				logVersionID, token)
		}
		return err
	}
}

// create makes the secret, tagged as keyturn's.
func (b *Backend) create(ctx context.Context, body, token string) error {
	if strings.HasPrefix(b.id, "arn:") {
		return fmt.Errorf("the secret does not exist, and a secret cannot be " +
			"created from an arn: create it, or give its name instead")
	}
	_, err := b.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(b.id), ClientRequestToken: aws.String(token),
		SecretString: aws.String(body), Tags: b.createTags(),
		KmsKeyId:    optional(b.kmsKeyID),
		Description: aws.String("Smartcar client secret, rotated by keyturn"),
	})
	if err != nil {
		return fmt.Errorf("creating the secret: %w", b.explain(err, "CreateSecret", ""))
	}
	return nil
}

func (b *Backend) createTags() []types.Tag {
	tags := []types.Tag{{Key: aws.String("managed-by"), Value: aws.String("keyturn")}}
	if b.clientID != "" {
		tags = append(tags, types.Tag{Key: aws.String("keyturn-client-id"),
			Value: aws.String(b.clientID)})
	}
	for k, v := range b.tags {
		if k != "managed-by" && k != "keyturn-client-id" {
			tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
	}
	return tags
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

// WritePending stores s as AWSPENDING for rotationID. A pending version of
// any other writer is never replaced.
func (b *Backend) WritePending(ctx context.Context, rotationID string, s secret.Value,
	createdAt time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.writePending(ctx, rotationID, s, createdAt); err != nil {
		return b.fail("write pending for rotation "+rotationID+" of", err)
	}
	return nil
}

func (b *Backend) writePending(ctx context.Context, rotationID string, s secret.Value,
	createdAt time.Time) error {
	st, err := b.load(ctx)
	if err != nil {
		return err
	}
	if !st.exists {
		return fmt.Errorf("the secret does not exist yet: %w", backends.ErrNotFound)
	}
	body, token := b.encode(s, createdAt, rotationID)
	if st.current != nil && st.current.id == token {
		return nil // written and promoted already
	}
	if p := st.pending; p != nil {
		if p.secret.RotationID != rotationID {
			return b.foreignPending(p)
		}
		if p.id == token {
			return nil
		}
	}
	if err := b.put(ctx, st, body, token, labelPending); err != nil {
		return err
	}
	b.log.Info("pending secret written", logRotationID, rotationID,
		logSecretFP, s.Fingerprint(), logVersionID, token)
	return nil
}

// DiscardPending takes AWSPENDING off rotationID's pending version, which
// Secrets Manager then treats as deprecated.
func (b *Backend) DiscardPending(ctx context.Context, rotationID string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, err := b.load(ctx)
	if err == nil && st.pending != nil && st.pending.secret.RotationID == rotationID {
		err = b.moveLabel(ctx, st, labelPending, "", st.pending.id)
		if err == nil {
			b.log.Info("pending secret discarded", logRotationID, rotationID,
				logSecretFP, st.pending.secret.Fingerprint)
		}
	}
	if err != nil {
		return b.fail("discard pending for rotation "+rotationID+" of", err)
	}
	return nil
}
