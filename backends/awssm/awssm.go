package awssm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/backends"
)

var _ backends.Backend = (*Backend)(nil)

// Options configures a Backend.
type Options struct {
	// SecretID names the secret: a name such as "smartcar/fleet-prod" or
	// a full ARN. Init can create the secret only when given a name.
	SecretID string
	// ClientID is the Smartcar application's client id, stored beside
	// every secret and in the keyturn-client-id tag.
	ClientID string
	// Region overrides the region of the AWS configuration chain.
	Region string
	// Endpoint is used when neither AWS_ENDPOINT_URL_SECRETS_MANAGER nor
	// AWS_ENDPOINT_URL (nor their shared-config forms) name one.
	Endpoint string
	// Profile selects a profile of the shared AWS config files.
	Profile string
	// KMSKeyID encrypts a secret that Init creates; empty uses the
	// account's aws/secretsmanager key.
	KMSKeyID string
	// Tags are added to a secret that Init creates, beside managed-by and
	// keyturn-client-id.
	Tags map[string]string
	// Logger receives lifecycle (Info) and step (Debug) records; nil
	// discards them.
	Logger *slog.Logger
	// AWSConfig replaces the default configuration chain (for tests).
	// Region and Endpoint still apply on top of it.
	AWSConfig *aws.Config
}

// Backend is a credential stored in one AWS Secrets Manager secret. It is
// safe for concurrent use; writes from one Backend are serialized.
type Backend struct {
	client   *secretsmanager.Client
	id       string
	clientID string
	region   string
	endpoint string
	kmsKeyID string
	tags     map[string]string
	log      *slog.Logger
	mu       sync.Mutex
}

// Log keys, shared by every record this package writes.
const (
	logSecretID   = "secret_id"
	logVersionID  = "version_id"
	logRotationID = "rotation_id"
	logSecretFP   = "secret_fp"
	logLabel      = "label"
)

// New returns a Backend for o.SecretID. Credentials come from the full AWS
// chain (environment, shared config and profiles, web identity, ECS and EC2
// roles) unless o.AWSConfig is set. New makes no request: a missing secret
// or missing permission shows up at the first call.
func New(ctx context.Context, o Options) (*Backend, error) {
	if o.SecretID == "" {
		return nil, errors.New("awssm: no secret id")
	}
	cfg, err := loadConfig(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("awssm: loading aws configuration for %q: %w",
			o.SecretID, err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("awssm: no aws region for %q: set region in the "+
			"backend config, AWS_REGION or the profile", o.SecretID)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	b := &Backend{
		id: o.SecretID, clientID: o.ClientID, region: cfg.Region,
		kmsKeyID: o.KMSKeyID, tags: o.Tags,
		log: log.With(logSecretID, o.SecretID),
	}
	b.client = secretsmanager.NewFromConfig(cfg, func(so *secretsmanager.Options) {
		so.Retryer = newRetryer()
		so.APIOptions = append(so.APIOptions, addXMLErrors)
		if so.BaseEndpoint == nil {
			so.BaseEndpoint = fallbackEndpoint(o.Endpoint)
		}
		b.endpoint = aws.ToString(so.BaseEndpoint)
	})
	return b, nil
}

func loadConfig(ctx context.Context, o Options) (aws.Config, error) {
	if o.AWSConfig != nil {
		cfg := o.AWSConfig.Copy()
		if o.Region != "" {
			cfg.Region = o.Region
		}
		return cfg, nil
	}
	var opts []func(*config.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	if o.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(o.Profile))
	}
	return config.LoadDefaultConfig(ctx, opts...)
}

// retryBackoff replaces the standard retryer's backoff in tests; nil keeps
// the SDK's jittered exponential backoff.
var retryBackoff retry.BackoffDelayer

func newRetryer() aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = 5
		if retryBackoff != nil {
			so.Backoff = retryBackoff
		}
	})
}

// fallbackEndpoint runs when the SDK found no endpoint. A configuration
// from LoadDefaultConfig has already applied AWS_ENDPOINT_URL_SECRETS_MANAGER
// and AWS_ENDPOINT_URL; a hand-built one (Options.AWSConfig) has not, so
// they are read here in the same order before Options.Endpoint.
func fallbackEndpoint(configured string) *string {
	if !envTrue("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
		names := []string{"AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL"}
		for _, name := range names {
			if v := os.Getenv(name); v != "" {
				return aws.String(v)
			}
		}
	}
	if configured != "" {
		return aws.String(configured)
	}
	return nil
}

func envTrue(name string) bool {
	return strings.EqualFold(os.Getenv(name), "true")
}

// String names the secret, its region and any endpoint override.
func (b *Backend) String() string {
	s := fmt.Sprintf("aws secrets manager secret %q in %s", b.id, b.region)
	if b.endpoint != "" {
		s += " at " + b.endpoint
	}
	return s
}

// Close releases nothing: the SDK client holds no resources that need it.
func (b *Backend) Close() error { return nil }
