package awssm

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/keyturn/keyturn/backends"
)

// fail prefixes err with the package, the operation and the secret.
func (b *Backend) fail(op string, err error) error {
	return fmt.Errorf("awssm: %s %q: %w", op, b.id, err)
}

func isNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// AccessDeniedError reports a call that the caller's AWS policies refused.
// It unwraps to the SDK's error.
type AccessDeniedError struct {
	Principal string // who asked, when AWS said so
	Action    string // such as "secretsmanager:PutSecretValue"
	Resource  string // the secret's ARN, or its id when the ARN is unknown
	Reason    string // AWS's explanation, when it gave one
	Err       error
}

// Error names who was refused which action on which resource.
func (e *AccessDeniedError) Error() string {
	who := "the aws credentials in use"
	if e.Principal != "" {
		who = e.Principal
	}
	s := fmt.Sprintf("access denied: %s may not call %s on %s", who, e.Action, e.Resource)
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	return s
}

// Unwrap returns the SDK's error.
func (e *AccessDeniedError) Unwrap() error { return e.Err }

// deniedText matches the message AWS (and moto) give with access denied:
// "User: P is not authorized to perform: A [on resource: R] [because W]".
var deniedText = regexp.MustCompile(`^User: (\S+) is not authorized to perform: (\S+)` +
	`(?: on resource: (\S+))?(?: because (.+?))?\.?$`)

// explain turns an SDK error into one a person can act on. Access denied
// names the action and resource: from AWS's message when it names them,
// otherwise the action this call needed and arn (or the secret id).
func (b *Backend) explain(err error, operation, arn string) error {
	var api smithy.APIError
	if !errors.As(err, &api) || !isDenied(err, api) {
		return err
	}
	e := &AccessDeniedError{Action: "secretsmanager:" + operation, Resource: arn,
		Err: err}
	if e.Resource == "" {
		e.Resource = b.id
	}
	msg := strings.TrimSpace(api.ErrorMessage())
	if m := deniedText.FindStringSubmatch(msg); m != nil {
		e.Principal, e.Action = m[1], m[2]
		if m[3] != "" {
			e.Resource = m[3]
		}
		e.Reason = m[4]
	} else if msg != "" {
		e.Reason = msg
	}
	return e
}

// isDenied reports an authorization refusal. AWS answers
// AccessDeniedException; moto, with IAM enforced, answers 403 AccessDenied.
// A 403 about the credentials themselves (an unknown or expired key) is not
// a missing permission and is left as it is.
func isDenied(err error, api smithy.APIError) bool {
	switch api.ErrorCode() {
	case "AccessDeniedException", "AccessDenied":
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusForbidden &&
		strings.Contains(api.ErrorMessage(), "is not authorized to perform")
}

// foreignPending reports p, a pending version that rotationID did not
// write, with the command that clears it.
func (b *Backend) foreignPending(p *version) error {
	return &backends.ForeignPendingError{
		RotationID:  p.secret.RotationID,
		Fingerprint: p.secret.Fingerprint,
		Hint:        clearPendingHint(b.id, p.id),
	}
}

func clearPendingHint(secretID, versionID string) string {
	return fmt.Sprintf("if that pending secret is not needed, clear it with: "+
		"aws secretsmanager update-secret-version-stage --secret-id %s "+
		"--version-stage AWSPENDING --remove-from-version-id %s",
		shellQuote(secretID), shellQuote(versionID))
}

// shellQuote quotes s for a POSIX shell when it holds anything beyond the
// characters secret names and version ids are usually made of.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"+
		"0123456789-_/.:+=@,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
