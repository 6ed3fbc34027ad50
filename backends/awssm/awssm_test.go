package awssm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/backends/conformance"
	"github.com/keyturn/keyturn/secret"
)

var ctx = context.Background()

const endpointEnv = "AWS_ENDPOINT_URL_SECRETS_MANAGER"

var skipOnce sync.Once

// motoEndpoint returns the moto server the test script started. Without
// one the test is skipped, loudly, except in CI, where it fails.
func motoEndpoint(t *testing.T) string {
	t.Helper()
	if ep := os.Getenv(endpointEnv); ep != "" {
		return ep
	}
	msg := endpointEnv + " is not set, so there is no Secrets Manager API to " +
		"test against; start one with: eval \"$(scripts/moto-server 0)\"; " +
		"export " + endpointEnv
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	skipOnce.Do(func() {
		fmt.Fprintf(os.Stderr, "\n*** SKIPPING backends/awssm TESTS AGAINST MOTO: %s\n\n",
			msg)
	})
	t.Skip(msg)
	return ""
}

// testConfig is the configuration every test uses: static test
// credentials, us-east-1, the given endpoint.
func testConfig(endpoint, key, secretKey string) *aws.Config {
	return &aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(key, secretKey, ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9/_+=.@-]+`)

// uniqueName returns a secret name no other test run uses, so that tests
// need no reset of the server.
func uniqueName(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "keyturn-test/" + unsafeName.ReplaceAllString(t.Name(), "-") + "-" +
		hex.EncodeToString(b[:])
}

func testOptions(t *testing.T, name string) Options {
	return Options{
		SecretID:  name,
		ClientID:  "client_test123",
		Tags:      map[string]string{"team": "keyturn-tests"},
		AWSConfig: testConfig(motoEndpoint(t), "test", "test"),
	}
}

func open(t *testing.T, o Options) *Backend {
	t.Helper()
	b, err := New(ctx, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	motoEndpoint(t)
	conformance.Run(t, conformance.Harness{
		New: func(t *testing.T) backends.Backend {
			return open(t, testOptions(t, uniqueName(t)))
		},
		Reopen: func(t *testing.T, b backends.Backend) backends.Backend {
			return open(t, testOptions(t, b.(*Backend).id))
		},
	})
}

// rawClient talks to the server without keyturn in between.
func rawClient(t *testing.T) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(*testConfig(motoEndpoint(t), "test", "test"))
}

// labelled returns each version that carries a label, with its labels
// sorted; deprecated versions are left out.
func labelled(t *testing.T, c *secretsmanager.Client, name string) map[string][]string {
	t.Helper()
	out, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{
		SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	got := map[string][]string{}
	for id, labels := range out.VersionIdsToStages {
		if len(labels) > 0 {
			got[id] = append([]string(nil), labels...)
			sort.Strings(got[id])
		}
	}
	return got
}

func TestCreateTagsAndString(t *testing.T) {
	o := testOptions(t, uniqueName(t))
	b := open(t, o)
	if err := b.Init(ctx, conformance.First, epoch); err != nil {
		t.Fatalf("Init: %v", err)
	}
	out, err := rawClient(t).DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{
		SecretId: aws.String(o.SecretID)})
	if err != nil {
		t.Fatalf("DescribeSecret: %v", err)
	}
	got := map[string]string{}
	for _, tag := range out.Tags {
		got[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	want := map[string]string{"managed-by": "keyturn",
		"keyturn-client-id": "client_test123", "team": "keyturn-tests"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	wantS := fmt.Sprintf("aws secrets manager secret %q in us-east-1 at %s",
		o.SecretID, motoEndpoint(t))
	if b.String() != wantS {
		t.Errorf("String() = %q, want %q", b.String(), wantS)
	}
}

var epoch = time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)

// TestNoValueInLogsOrErrors walks a rotation, with its failures, logging at
// Debug, and checks that no secret value reaches a log line or an error.
func TestNoValueInLogsOrErrors(t *testing.T) {
	var logs bytes.Buffer
	o := testOptions(t, uniqueName(t))
	o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
		Level: slog.LevelDebug}))
	b := open(t, o)

	var errs []error
	step := func(err error) { errs = append(errs, err) }
	step(b.Init(ctx, first, epoch))
	step(b.Init(ctx, second, epoch))
	step(b.WritePending(ctx, "rot-1", tricky, epoch))
	step(b.WritePending(ctx, "rot-1", second, epoch))
	step(b.WritePending(ctx, "rot-2", tricky, epoch))
	step(b.Promote(ctx, "rot-1", tricky.Fingerprint()))
	step(b.Promote(ctx, "rot-1", second.Fingerprint()))
	step(b.RemovePrevious(ctx, second.Fingerprint()))
	step(b.Rollback(ctx, "rot-1", second.Fingerprint()))
	step(b.Promote(ctx, "rot-1", second.Fingerprint()))
	step(b.RemovePrevious(ctx, first.Fingerprint()))

	text := logs.String()
	for _, err := range errs {
		if err != nil {
			text += "\n" + err.Error()
		}
	}
	if !strings.Contains(text, string(second.Fingerprint())) {
		t.Error("logs and errors never name the promoted secret by fingerprint")
	}
	for _, v := range []secret.Value{first, second, tricky} {
		if strings.Contains(text, v.Reveal()) {
			t.Errorf("a secret value (%s) appears in logs or errors", v.Fingerprint())
		}
	}
	if got := len(errs); got != 11 {
		t.Fatalf("%d steps recorded", got)
	}
	for i, wantErr := range []bool{false, true, false, false, true, true, false, true,
		false, false, false} {
		if (errs[i] != nil) != wantErr {
			t.Errorf("step %d: error %v, want error: %v", i+1, errs[i], wantErr)
		}
	}
}
