package awssm

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/secret"
)

type noDelay struct{}

func (noDelay) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

// TestRetries checks the retryer against a stub server, since moto never
// throttles: throttling and 5xx are retried, at most five attempts in all,
// and a refusal is not retried.
func TestRetries(t *testing.T) {
	retryBackoff = noDelay{}
	t.Cleanup(func() { retryBackoff = nil })
	tests := []struct {
		name      string
		failures  int
		status    int
		code      string
		wantCalls int32
		wantErr   bool
	}{
		{"throttling is retried", 2, 400, "ThrottlingException", 3, false},
		{"a 500 is retried", 1, 500, "InternalServiceError", 2, false},
		{"retries stop after five attempts", 99, 503, "ServiceUnavailable", 5, true},
		{"a refusal is not retried", 99, 400, "InvalidRequestException", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(
				func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/x-amz-json-1.1")
					if calls.Add(1) <= int32(tt.failures) {
						w.Header().Set("X-Amzn-ErrorType", tt.code)
						w.WriteHeader(tt.status)
						fmt.Fprintf(w, `{"__type":%q,"message":"stub"}`, tt.code)
						return
					}
					fmt.Fprint(w, `{"ARN":"arn:aws:secretsmanager:us-east-1:1:secret:s",`+
						`"Name":"s","VersionIdsToStages":{}}`)
				}))
			defer srv.Close()
			b := open(t, Options{SecretID: "s", AWSConfig: testConfig(srv.URL, "k", "s")})

			_, err := b.List(ctx)
			if (err != nil) != tt.wantErr {
				t.Errorf("List: error %v, want error: %v", err, tt.wantErr)
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("%d calls, want %d", got, tt.wantCalls)
			}
		})
	}
}

// unsetenv unsets name for the test, restoring it afterwards.
func unsetenv(t *testing.T, name string) {
	t.Setenv(name, "")
	os.Unsetenv(name)
}

// TestEndpointOrder checks the endpoint is found as the AWS tools find it:
// AWS_ENDPOINT_URL_SECRETS_MANAGER, then AWS_ENDPOINT_URL or the profile's
// endpoint_url, then Options.Endpoint; with both configuration chains.
func TestEndpointOrder(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	err := os.WriteFile(cfgFile, []byte("[profile ep]\nendpoint_url = http://profile\n"+
		"[profile plain]\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfgFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	tests := []struct {
		name, service, general, ignore, profile, option string
		want                                            string
	}{
		{"service variable first", "http://sm", "http://all", "", "ep", "http://opt",
			"http://sm"},
		{"then the general variable", "", "http://all", "", "ep", "http://opt",
			"http://all"},
		{"then the profile", "", "", "", "ep", "http://opt", "http://profile"},
		{"then the option", "", "", "", "plain", "http://opt", "http://opt"},
		{"none: AWS's own", "", "", "", "plain", "", ""},
		{"ignoring configured endpoints keeps the option", "http://sm", "", "true",
			"plain", "http://opt", "http://opt"},
	}
	for _, tt := range tests {
		for _, chain := range []string{"default chain", "given config"} {
			t.Run(tt.name+"/"+chain, func(t *testing.T) {
				for name, v := range map[string]string{
					"AWS_ENDPOINT_URL_SECRETS_MANAGER":    tt.service,
					"AWS_ENDPOINT_URL":                    tt.general,
					"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": tt.ignore,
					"AWS_PROFILE":                         "",
				} {
					unsetenv(t, name)
					if v != "" {
						t.Setenv(name, v)
					}
				}
				o := Options{SecretID: "s", Region: "eu-west-1", Profile: tt.profile,
					Endpoint: tt.option}
				if chain == "given config" {
					if tt.want == "http://profile" {
						t.Skip("a given config has no profile")
					}
					o.Profile = ""
					o.AWSConfig = testConfig("", "k", "s")
					o.AWSConfig.BaseEndpoint = nil
				}
				if got := open(t, o).endpoint; got != tt.want {
					t.Errorf("endpoint %q, want %q", got, tt.want)
				}
			})
		}
	}
}

var uuidShape = regexp.MustCompile(
	`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestVersionToken(t *testing.T) {
	base := document{ClientID: "c", ClientSecret: "s1", CreatedAt: "t", RotationID: "r"}
	fp := first.Fingerprint()
	tests := []struct {
		name string
		doc  document
		fp   string
		same bool
	}{
		{"the same write", base, string(fp), true},
		{"another value", base, string(second.Fingerprint()), false},
		{"another rotation", document{"c", "s1", "t", "r2"}, string(fp), false},
		{"another created_at", document{"c", "s1", "t2", "r"}, string(fp), false},
		{"another client", document{"c2", "s1", "t", "r"}, string(fp), false},
	}
	want := versionToken(base, fp)
	if !uuidShape.MatchString(want) {
		t.Fatalf("token %q is not a version 8 UUID", want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := versionToken(tt.doc, secretFP(tt.fp))
			if diff := cmp.Diff(tt.same, got == want); diff != "" {
				t.Errorf("token %s vs %s: same (-want +got):\n%s", got, want, diff)
			}
		})
	}
}

func secretFP(s string) secret.Fingerprint { return secret.Fingerprint(s) }
