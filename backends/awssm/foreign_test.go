package awssm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
)

// foreignView is what a person sees of a ForeignPendingError.
type foreignView struct {
	Message     string
	RotationID  string
	Fingerprint secret.Fingerprint
	Hint        string
}

// TestForeignPending leaves an AWSPENDING version that the asking rotation
// did not write, checks that keyturn refuses to touch it with a message
// and hint a person can act on, then runs the hint and retries.
func TestForeignPending(t *testing.T) {
	const otherTool = "written-by-another-tool"
	otherJSON := `{"client_id":"client_test123","client_secret":"from-a-lambda"}`
	tests := []struct {
		name   string
		leave  func(t *testing.T, b *Backend) // leaves the foreign pending version
		writer string                         // "written by …" in the message
		rotID  string
		fp     secret.Fingerprint
	}{
		{"another tool wrote a plain string", func(t *testing.T, b *Backend) {
			rawPut(t, b.id, otherTool, tok("f"))
		}, "another tool", "", secret.FingerprintOf([]byte(otherTool))},
		{"another tool wrote JSON without rotation_id", func(t *testing.T, b *Backend) {
			rawPut(t, b.id, otherJSON, tok("f"))
		}, "another tool", "", secret.New("from-a-lambda").Fingerprint()},
		{"another keyturn rotation", func(t *testing.T, b *Backend) {
			if err := b.WritePending(ctx, "rot-0", tricky, epoch); err != nil {
				t.Fatalf("WritePending rot-0: %v", err)
			}
		}, "rotation rot-0", "rot-0", tricky.Fingerprint()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := open(t, testOptions(t, uniqueName(t)))
			if err := b.Init(ctx, first, epoch); err != nil {
				t.Fatalf("Init: %v", err)
			}
			tt.leave(t, b)
			vid := pendingVersion(t, b.id)

			err := b.WritePending(ctx, "rot-1", second, epoch)
			want := foreignView{
				Message: fmt.Sprintf("awssm: write pending for rotation rot-1 of %q: "+
					"a pending secret of another rotation is stored (%s, written by %s)",
					b.id, tt.fp, tt.writer),
				RotationID: tt.rotID, Fingerprint: tt.fp,
				Hint: "if that pending secret is not needed, clear it with: " +
					"aws secretsmanager update-secret-version-stage --secret-id " +
					b.id + " --version-stage AWSPENDING --remove-from-version-id " + vid,
			}
			if diff := cmp.Diff(want, viewForeign(t, err)); diff != "" {
				t.Errorf("WritePending (-want +got):\n%s", diff)
			}
			err = b.Promote(ctx, "rot-1", second.Fingerprint())
			if !errors.Is(err, backends.ErrForeignPending) {
				t.Errorf("Promote: got %v, want ErrForeignPending", err)
			}
			if got := pendingVersion(t, b.id); got != vid {
				t.Fatalf("the foreign pending version changed to %s", got)
			}

			runHint(t, want.Hint)
			if err := b.WritePending(ctx, "rot-1", second, epoch); err != nil {
				t.Fatalf("WritePending after running the hint: %v", err)
			}
		})
	}
}

func viewForeign(t *testing.T, err error) foreignView {
	t.Helper()
	var fe *backends.ForeignPendingError
	if !errors.As(err, &fe) {
		t.Fatalf("got error %v, want a *backends.ForeignPendingError", err)
	}
	return foreignView{err.Error(), fe.RotationID, fe.Fingerprint, fe.Hint}
}

func rawPut(t *testing.T, name, value, token string) {
	t.Helper()
	_, err := rawClient(t).PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), SecretString: aws.String(value),
		ClientRequestToken: aws.String(token), VersionStages: []string{"AWSPENDING"}})
	if err != nil {
		t.Fatalf("PutSecretValue: %v", err)
	}
}

func pendingVersion(t *testing.T, name string) string {
	t.Helper()
	for id, labels := range labelled(t, rawClient(t), name) {
		if hasLabel(labels, "AWSPENDING") {
			return id
		}
	}
	t.Fatal("no version carries AWSPENDING")
	return ""
}

// runHint runs the hint's command with the aws CLI when it is installed,
// proving the command is exact; otherwise it makes the same call through
// the SDK.
func runHint(t *testing.T, hint string) {
	t.Helper()
	_, command, ok := strings.Cut(hint, "clear it with: ")
	args := strings.Fields(command)
	if !ok || len(args) != 9 || args[0] != "aws" {
		t.Fatalf("hint holds no aws command: %q", hint)
	}
	if _, err := exec.LookPath("aws"); err != nil {
		t.Log("aws CLI not installed: clearing through the SDK instead")
		_, err := rawClient(t).UpdateSecretVersionStage(ctx,
			&secretsmanager.UpdateSecretVersionStageInput{
				SecretId: aws.String(args[4]), VersionStage: aws.String(args[6]),
				RemoveFromVersionId: aws.String(args[8])})
		if err != nil {
			t.Fatalf("clearing AWSPENDING: %v", err)
		}
		return
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=", endpointEnv+"="+motoEndpoint(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("running the hint: %v\n%s", err, out)
	}
}
