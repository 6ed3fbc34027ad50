package awssm

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// iamMoto starts a moto server of its own with IAM enforced after the
// first unauthenticated calls, which create one IAM user per policy. It
// returns the server's endpoint and each user's access key pair.
func iamMoto(t *testing.T, policies map[string]string) (string, map[string][2]string) {
	t.Helper()
	motoEndpoint(t) // same skip rule as the other tests against moto
	cmd := exec.Command("../../scripts/moto-server", "0")
	cmd.Env = append(os.Environ(), "MOTO_LOG="+filepath.Join(t.TempDir(), "moto.log"),
		"INITIAL_NO_AUTH_ACTION_COUNT="+strconv.Itoa(3*len(policies)))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/moto-server: %v\n%s", err, out)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		vars[k] = v
	}
	pid, err := strconv.Atoi(vars["MOTO_PID"])
	if err != nil {
		t.Fatalf("no MOTO_PID in the script's output %q", out)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGTERM) })

	ep := vars[endpointEnv]
	keys := map[string][2]string{}
	for user, policy := range policies {
		iamCall(t, ep, url.Values{"Action": {"CreateUser"}, "UserName": {user}}, nil)
		iamCall(t, ep, url.Values{"Action": {"PutUserPolicy"}, "UserName": {user},
			"PolicyName": {"keyturn-test"}, "PolicyDocument": {policy}}, nil)
		var key struct {
			ID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
			Secret string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
		}
		iamCall(t, ep, url.Values{"Action": {"CreateAccessKey"},
			"UserName": {user}}, &key)
		keys[user] = [2]string{key.ID, key.Secret}
	}
	return ep, keys
}

// iamCall makes one IAM query-protocol call. moto lets it through unsigned
// while INITIAL_NO_AUTH_ACTION_COUNT lasts.
func iamCall(t *testing.T, endpoint string, form url.Values, into any) {
	t.Helper()
	form.Set("Version", "2010-05-08")
	body := strings.NewReader(form.Encode())
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/"+
		"us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("IAM %s: %v", form.Get("Action"), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("IAM %s: %s", form.Get("Action"), resp.Status)
	}
	if into != nil {
		if err := xml.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("IAM %s: decoding: %v", form.Get("Action"), err)
		}
	}
}

func allow(actions ...string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["` +
		strings.Join(actions, `","`) + `"],"Resource":"*"}]}`
}

// iamUsers are the IAM users TestAccessDenied runs keyturn as, with the
// endpoint of the moto that enforces their policies.
type iamUsers struct {
	endpoint string
	keys     map[string][2]string
}

func (u iamUsers) backend(t *testing.T, user, name string) *Backend {
	o := testOptions(t, name)
	o.AWSConfig = testConfig(u.endpoint, u.keys[user][0], u.keys[user][1])
	return open(t, o)
}

const motoUsers = "arn:aws:iam::123456789012:user/"

// TestAccessDenied runs keyturn as IAM users that lack one permission and
// checks the error names who was refused, the action and the resource.
func TestAccessDenied(t *testing.T) {
	read := []string{"secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"}
	ep, keys := iamMoto(t, map[string]string{
		"reader":  allow(read...),
		"creator": allow(append(read, "secretsmanager:CreateSecret")...),
		"deploy":  deployPolicy(t),
	})
	u := iamUsers{ep, keys}
	tests := []struct {
		name string
		run  func(*testing.T, iamUsers)
	}{
		{"moto difference 7: refusals come in XML", testDeniedXML},
		{"the deploy policy's actions allow a whole rotation", testDeployPolicy},
		{"CreateSecret, before the secret's arn is known", testDeniedCreate},
		{"PutSecretValue, naming the secret's arn", testDeniedPut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, u) })
	}
}

func testDeniedXML(t *testing.T, u iamUsers) {
	key := u.keys["reader"]
	c := secretsmanager.NewFromConfig(*testConfig(u.endpoint, key[0], key[1]))
	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(uniqueName(t)), SecretString: aws.String("x")})
	var de *smithy.DeserializationError
	if !errors.As(err, &de) {
		t.Errorf("got %v, want a deserialization error: moto may now answer "+
			"in JSON like AWS; update the package doc (xmlErrors may go)", err)
	}
}

func testDeployPolicy(t *testing.T, u iamUsers) {
	b := u.backend(t, "deploy", "smartcar/"+uniqueName(t))
	for i, err := range []error{
		b.Init(ctx, first, epoch),
		b.WritePending(ctx, "rot-1", second, epoch),
		b.Promote(ctx, "rot-1", second.Fingerprint()),
		b.Rollback(ctx, "rot-1", second.Fingerprint()),
		b.Promote(ctx, "rot-1", second.Fingerprint()),
		b.RemovePrevious(ctx, first.Fingerprint()),
		b.WritePending(ctx, "rot-2", tricky, epoch),
		b.DiscardPending(ctx, "rot-2"),
	} {
		if err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
	}
}

func testDeniedCreate(t *testing.T, u iamUsers) {
	b := u.backend(t, "reader", uniqueName(t))
	err := b.Init(ctx, first, epoch)
	checkDenied(t, err, &AccessDeniedError{Principal: motoUsers + "reader",
		Action: "secretsmanager:CreateSecret", Resource: b.id},
		`awssm: init "`+b.id+`": creating the secret: access denied: `+motoUsers+
			`reader may not call secretsmanager:CreateSecret on `+b.id)
}

func testDeniedPut(t *testing.T, u iamUsers) {
	b := u.backend(t, "creator", uniqueName(t))
	if err := b.Init(ctx, first, epoch); err != nil {
		t.Fatalf("Init: %v", err)
	}
	st, err := b.load(ctx)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	err = b.WritePending(ctx, "rot-1", second, epoch)
	_, token := b.encode(second, epoch, "rot-1")
	checkDenied(t, err, &AccessDeniedError{Principal: motoUsers + "creator",
		Action: "secretsmanager:PutSecretValue", Resource: st.arn},
		`awssm: write pending for rotation rot-1 of "`+b.id+`": writing version `+
			token+` as AWSPENDING: access denied: `+motoUsers+`creator may not `+
			`call secretsmanager:PutSecretValue on `+st.arn)
}

// deployPolicy returns the actions of deploy/aws/iam-policy.json, each
// statement's Resource widened to "*" and its Condition dropped: moto 5.2
// authorizes Secrets Manager calls against resource "*" and does not
// evaluate these conditions, so only the list of actions can be tested.
func deployPolicy(t *testing.T) string {
	var doc struct {
		Version   string
		Statement []map[string]any
	}
	readPolicy(t, &doc)
	for _, st := range doc.Statement {
		st["Resource"] = "*"
		delete(st, "Condition")
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readPolicy(t *testing.T, into any) {
	t.Helper()
	b, err := os.ReadFile("../../deploy/aws/iam-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("deploy/aws/iam-policy.json: %v", err)
	}
}

// TestPolicyListsEveryCall checks deploy/aws/iam-policy.json allows each
// Secrets Manager call this package makes and nothing more (TagResource is
// what CreateSecret needs to tag).
func TestPolicyListsEveryCall(t *testing.T) {
	var doc struct {
		Statement []struct{ Action any }
	}
	readPolicy(t, &doc)
	inPolicy := map[string]bool{}
	for _, st := range doc.Statement {
		actions, ok := st.Action.([]any)
		if !ok {
			actions = []any{st.Action}
		}
		for _, a := range actions {
			if name, ok := strings.CutPrefix(a.(string), "secretsmanager:"); ok {
				inPolicy[name] = true
			}
		}
	}

	called := map[string]bool{"TagResource": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	call := regexp.MustCompile(`b\.client\.(\w+)\(`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllStringSubmatch(string(src), -1) {
			called[m[1]] = true
		}
	}
	if diff := cmp.Diff(called, inPolicy); diff != "" {
		t.Errorf("secretsmanager actions (-called +in policy):\n%s", diff)
	}
}

func checkDenied(t *testing.T, err error, want *AccessDeniedError, msg string) {
	t.Helper()
	var got *AccessDeniedError
	if !errors.As(err, &got) {
		t.Fatalf("got error %v, want an *AccessDeniedError", err)
	}
	opt := cmpopts.IgnoreFields(AccessDeniedError{}, "Err")
	if diff := cmp.Diff(want, got, opt); diff != "" {
		t.Errorf("AccessDeniedError (-want +got):\n%s", diff)
	}
	if err.Error() != msg {
		t.Errorf("message:\n got %s\nwant %s", err, msg)
	}
}

// TestExplain checks the access-denied message for the answers AWS gives,
// which moto does not reproduce (it names no resource and no reason).
func TestExplain(t *testing.T) {
	const arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:" +
		"smartcar/prod-AbCdEf"
	b := &Backend{id: "smartcar/prod"}
	tests := []struct {
		name      string
		err       error
		operation string
		arn       string
		want      string // "" when the error must pass through unchanged
	}{
		{"AWS names principal, action, resource and reason",
			&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: " +
				"arn:aws:sts::123456789012:assumed-role/keyturn/i-0abc is not " +
				"authorized " +
				"to perform: secretsmanager:PutSecretValue on resource: " + arn +
				" because no identity-based policy allows the " +
				"secretsmanager:PutSecretValue action"},
			"PutSecretValue", arn,
			"access denied: arn:aws:sts::123456789012:assumed-role/keyturn/i-0abc may " +
				"not call secretsmanager:PutSecretValue on " + arn + " (no " +
				"identity-based policy allows the secretsmanager:PutSecretValue action)"},
		{"a KMS refusal keeps its own action",
			&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: " +
				"arn:aws:iam::123456789012:user/k is not authorized to perform: " +
				"kms:GenerateDataKey on resource: arn:aws:kms:eu-west-1:123456789012:" +
				"key/1234 because no resource-based policy allows the " +
				"kms:GenerateDataKey action"},
			"PutSecretValue", arn,
			"access denied: arn:aws:iam::123456789012:user/k may not call " +
				"kms:GenerateDataKey on arn:aws:kms:eu-west-1:123456789012:key/1234 " +
				"(no resource-based policy allows the kms:GenerateDataKey action)"},
		{"an unreadable message names the call's action and the secret",
			&smithy.GenericAPIError{Code: "AccessDeniedException",
				Message: "Access to KMS is not allowed"},
			"GetSecretValue", arn,
			"access denied: the aws credentials in use may not call " +
				"secretsmanager:GetSecretValue on " + arn +
				" (Access to KMS is not allowed)"},
		{"without an arn the secret id is named",
			&smithy.GenericAPIError{Code: "AccessDeniedException"},
			"DescribeSecret", "",
			"access denied: the aws credentials in use may not call " +
				"secretsmanager:DescribeSecret on smartcar/prod"},
		{"a bad key is not a missing permission",
			&smithy.GenericAPIError{Code: "UnrecognizedClientException",
				Message: "The security token included in the request is invalid."},
			"DescribeSecret", "", ""},
		{"other errors pass through", errors.New("connection refused"),
			"DescribeSecret", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := b.explain(tt.err, tt.operation, tt.arn)
			if tt.want == "" {
				if got != tt.err {
					t.Errorf("got %v, want the error unchanged", got)
				}
				return
			}
			if diff := cmp.Diff(tt.want, got.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
			if !errors.Is(got, tt.err) {
				t.Error("the SDK's error is not wrapped")
			}
		})
	}
}
