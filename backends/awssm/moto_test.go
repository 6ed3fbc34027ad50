package awssm

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/google/go-cmp/cmp"
)

// raw drives one secret through the SDK alone, to pin what the server does
// independently of keyturn's code.
type raw struct {
	t    *testing.T
	c    *secretsmanager.Client
	name string
}

// tok returns a fixed, valid ClientRequestToken made of one character.
func tok(c string) string { return strings.Repeat(c, 32) }

// newRaw creates a secret whose AWSCURRENT version is tok("a") = "v-a".
func newRaw(t *testing.T) *raw {
	r := &raw{t: t, c: rawClient(t), name: uniqueName(t)}
	_, err := r.c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(r.name), SecretString: aws.String("v-a"),
		ClientRequestToken: aws.String(tok("a"))})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	return r
}

func (r *raw) put(value, token string, stages ...string) ([]string, error) {
	out, err := r.c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(r.name), SecretString: aws.String(value),
		ClientRequestToken: aws.String(token), VersionStages: stages})
	if err != nil {
		return nil, err
	}
	return out.VersionStages, nil
}

func (r *raw) mustPut(value, token string, stages ...string) {
	r.t.Helper()
	if _, err := r.put(value, token, stages...); err != nil {
		r.t.Fatalf("PutSecretValue %s: %v", token, err)
	}
}

func (r *raw) move(label, to, from string) error {
	in := &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: aws.String(r.name), VersionStage: aws.String(label)}
	if to != "" {
		in.MoveToVersionId = aws.String(to)
	}
	if from != "" {
		in.RemoveFromVersionId = aws.String(from)
	}
	_, err := r.c.UpdateSecretVersionStage(ctx, in)
	return err
}

func (r *raw) mustMove(label, to, from string) {
	r.t.Helper()
	if err := r.move(label, to, from); err != nil {
		r.t.Fatalf("moving %s: %v", label, err)
	}
}

func (r *raw) labels() map[string][]string { return labelled(r.t, r.c, r.name) }

func (r *raw) value(in *secretsmanager.GetSecretValueInput) (string, error) {
	in.SecretId = aws.String(r.name)
	out, err := r.c.GetSecretValue(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

func (r *raw) wantLabels(want map[string][]string) {
	r.t.Helper()
	if diff := cmp.Diff(want, r.labels()); diff != "" {
		r.t.Errorf("labels (-want +got):\n%s", diff)
	}
}

func isInvalidParameter(err error) bool {
	var e *types.InvalidParameterException
	return errors.As(err, &e)
}

// TestLabelSemantics pins the Secrets Manager behaviour keyturn relies on.
// If one fails, the emulator (or AWS) no longer behaves as the package doc
// says, and the backend's label moves must be rethought.
func TestLabelSemantics(t *testing.T) {
	tests := []struct {
		name string
		run  func(r *raw)
	}{
		{"moving AWSCURRENT moves AWSPREVIOUS onto the version it left", func(r *raw) {
			r.mustPut("v-b", tok("b"), "AWSPENDING")
			r.mustMove("AWSCURRENT", tok("b"), tok("a"))
			r.wantLabels(map[string][]string{tok("a"): {"AWSPREVIOUS"},
				tok("b"): {"AWSCURRENT", "AWSPENDING"}})
			r.mustPut("v-c", tok("c"), "AWSPENDING")
			r.mustMove("AWSCURRENT", tok("c"), tok("b"))
			r.wantLabels(map[string][]string{tok("b"): {"AWSPREVIOUS"},
				tok("c"): {"AWSCURRENT", "AWSPENDING"}})
		}},
		{"moving AWSCURRENT back onto AWSPREVIOUS swaps the two", func(r *raw) {
			r.mustPut("v-b", tok("b"), "AWSPENDING")
			r.mustMove("AWSCURRENT", tok("b"), tok("a"))
			r.mustMove("AWSCURRENT", tok("a"), tok("b"))
			r.wantLabels(map[string][]string{tok("a"): {"AWSCURRENT"},
				tok("b"): {"AWSPENDING", "AWSPREVIOUS"}})
		}},
		{"a put with AWSPENDING takes the label off the older version", func(r *raw) {
			r.mustPut("v-b", tok("b"), "AWSPENDING")
			r.mustPut("v-c", tok("c"), "AWSPENDING")
			r.wantLabels(map[string][]string{tok("a"): {"AWSCURRENT"},
				tok("c"): {"AWSPENDING"}})
		}},
		{"a put with AWSPENDING leaves AWSCURRENT alone", func(r *raw) {
			r.mustPut("v-b", tok("b"), "AWSPENDING")
			got, err := r.value(&secretsmanager.GetSecretValueInput{
				VersionStage: aws.String("AWSCURRENT")})
			if err != nil || got != "v-a" {
				r.t.Errorf("AWSCURRENT = %q, %v; want v-a", got, err)
			}
		}},
		{"moving AWSCURRENT without RemoveFromVersionId is refused", func(r *raw) {
			r.mustPut("v-b", tok("b"), "AWSPENDING")
			if err := r.move("AWSCURRENT", tok("b"), ""); !isInvalidParameter(err) {
				r.t.Errorf("got %v, want InvalidParameterException", err)
			}
		}},
		{"a move naming the wrong RemoveFromVersionId is refused", func(r *raw) {
			r.mustPut("v-b", tok("b"), "AWSPENDING")
			if err := r.move("AWSCURRENT", tok("b"), tok("b")); !isInvalidParameter(err) {
				r.t.Errorf("got %v, want InvalidParameterException", err)
			}
			r.wantLabels(map[string][]string{tok("a"): {"AWSCURRENT"},
				tok("b"): {"AWSPENDING"}})
		}},
		{"a repeated put is ignored and does not re-attach labels", func(r *raw) {
			r.mustPut("v-b", tok("b"), "AWSPENDING")
			r.mustPut("v-c", tok("c"), "AWSPENDING")
			stages, err := r.put("v-b", tok("b"), "AWSPENDING")
			if err != nil || len(stages) != 0 {
				r.t.Errorf("repeated put: stages %v, err %v; want none, nil", stages, err)
			}
			r.wantLabels(map[string][]string{tok("a"): {"AWSCURRENT"},
				tok("c"): {"AWSPENDING"}})
		}},
		{"a get naming a version and a label it lacks fails", func(r *raw) {
			r.mustPut("v-b", tok("b"), "AWSPENDING")
			_, err := r.value(&secretsmanager.GetSecretValueInput{
				VersionId: aws.String(tok("b")), VersionStage: aws.String("AWSCURRENT")})
			if err == nil {
				r.t.Error("got a value, want an error")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(newRaw(t)) })
	}
}

// TestMotoDifferences pins where moto differs from AWS (the package doc
// lists them). Each case asserts moto's behaviour; if one fails, moto now
// behaves differently (perhaps like AWS): update the package doc and
// shared/REAL-SERVERS.md, and drop any workaround that is no longer needed.
func TestMotoDifferences(t *testing.T) {
	tests := []struct {
		name string
		aws  string // what AWS does instead
		run  func(r *raw) bool
	}{
		{"1 a get without stage returns a stale value after a label move",
			"returns the AWSCURRENT version", func(r *raw) bool {
				r.mustPut("v-b", tok("b"), "AWSPENDING")
				r.mustMove("AWSCURRENT", tok("b"), tok("a"))
				got, err := r.value(&secretsmanager.GetSecretValueInput{})
				return err == nil && got == "v-a"
			}},
		{"2 a plain put after a label move leaves AWSCURRENT on two versions",
			"moves AWSCURRENT to the new version", func(r *raw) bool {
				r.mustPut("v-b", tok("b"), "AWSPENDING")
				r.mustMove("AWSCURRENT", tok("b"), tok("a"))
				r.mustPut("v-c", tok("c"))
				l := r.labels()
				return hasLabel(l[tok("b")], "AWSCURRENT") &&
					hasLabel(l[tok("c")], "AWSCURRENT")
			}},
		{"3 reusing a pending version's token with another value overwrites it",
			"refuses with ResourceExistsException", func(r *raw) bool {
				r.mustPut("v-b", tok("b"), "AWSPENDING")
				_, err := r.put("v-b2", tok("b"), "AWSPENDING")
				got, _ := r.value(&secretsmanager.GetSecretValueInput{
					VersionStage: aws.String("AWSPENDING")})
				return err == nil && got == "v-b2"
			}},
		{"4 ListSecretVersionIds ignores IncludeDeprecated",
			"lists deprecated versions only when asked", func(r *raw) bool {
				r.mustPut("v-b", tok("b"), "AWSPENDING")
				r.mustPut("v-c", tok("c"), "AWSPENDING") // b is now deprecated
				out, err := r.c.ListSecretVersionIds(ctx,
					&secretsmanager.ListSecretVersionIdsInput{
						SecretId: aws.String(r.name), IncludeDeprecated: aws.Bool(false)})
				return err == nil && len(out.Versions) == 3
			}},
		{"5 a label other than AWSCURRENT can be put on a second version",
			"refuses without RemoveFromVersionId", func(r *raw) bool {
				r.mustPut("v-b", tok("b"), "AWSPENDING")
				r.mustPut("v-c", tok("c"), "OTHER")
				err := r.move("AWSPENDING", tok("c"), "")
				l := r.labels()
				return err == nil && hasLabel(l[tok("b")], "AWSPENDING") &&
					hasLabel(l[tok("c")], "AWSPENDING")
			}},
		{"6 DescribeSecret lists deprecated versions with no labels",
			"lists only versions that carry a label", func(r *raw) bool {
				r.mustPut("v-b", tok("b"), "AWSPENDING")
				r.mustPut("v-c", tok("c"), "AWSPENDING")
				out, err := r.c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{
					SecretId: aws.String(r.name)})
				labels, listed := out.VersionIdsToStages[tok("b")]
				return err == nil && listed && len(labels) == 0
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.run(newRaw(t)) {
				t.Errorf("moto no longer differs from AWS here (AWS %s): update the "+
					"package doc and shared/REAL-SERVERS.md", tt.aws)
			}
		})
	}
}
