// Package awssm keeps a credential's secrets in AWS Secrets Manager, one
// secret per Smartcar application, so that anything reading the secret's
// AWSCURRENT version (an application, an AWS caching client, a sidecar)
// keeps working untouched while keyturn rotates underneath it.
//
// # Storage
//
// Every version's SecretString is one JSON object:
//
//	{"client_id": "…", "client_secret": "…",
//	 "created_at": "RFC 3339 time", "rotation_id": "…"}
//
// rotation_id is empty for the secret stored by Init. A version that is not
// in this shape (written by another tool) is read as a whole: its whole
// SecretString is the value, its version's creation date the CreatedAt.
//
// # Stages are staging labels
//
//	current  = AWSCURRENT
//	previous = AWSPREVIOUS
//	pending  = AWSPENDING
//
// WritePending is PutSecretValue with VersionStages [AWSPENDING], which
// moves the label off any older pending version. Promote moves AWSCURRENT
// onto the pending version with UpdateSecretVersionStage, naming the
// current version in RemoveFromVersionId; Secrets Manager then puts
// AWSPREVIOUS on the old current version by itself, and keyturn takes
// AWSPENDING off the new one. Rollback moves AWSCURRENT back to the
// AWSPREVIOUS version and puts AWSPENDING (not AWSPREVIOUS) on the
// rolled-back one. RemovePrevious takes AWSPREVIOUS off: the version is then
// deprecated and Secrets Manager may delete it; keyturn deletes nothing.
//
// A previous secret is "tracked" while some version carries AWSPREVIOUS.
// Secrets Manager sets that label on every promotion, which is exactly when
// keyturn starts tracking a previous secret, and RemovePrevious clears it.
// A secret that already had AWSPREVIOUS when keyturn adopted it therefore
// shows a previous secret, to be proven dead and removed like any other.
//
// One version shows at one stage only, by precedence current, pending,
// previous. A label on a version that already shows at a higher stage is a
// leftover of an interrupted step (AWSPENDING on the current version after a
// crash inside Promote, AWSPREVIOUS on the pending version after a crash
// inside Rollback); it is ignored when reading and cleared when the step is
// run again.
//
// # Idempotency tokens
//
// Each PutSecretValue and CreateSecret carries a ClientRequestToken (which
// becomes the version id) derived from the version's content: SHA-256 over
// the rotation id, the value's fingerprint (never the value), the client id
// and created_at, shaped as a UUID. Repeating a write is therefore a no-op
// on AWS, while a corrected hand-off in the same rotation gets a new token:
// AWS refuses to reuse a token with different content, and Secrets Manager
// does not re-attach labels when it ignores a repeated write, so after every
// write keyturn checks the label landed and moves it if not. Every label
// move names the version the label leaves, so a move that raced another
// writer fails instead of clobbering it (reported as ErrCASConflict).
//
// # Failures
//
// Throttling, 5xx and network errors are retried by the SDK's standard
// retryer (5 attempts, jittered exponential backoff). Access denied is
// reported with the principal, the action and the resource that were
// refused. A pending version written by anyone but the asking rotation is
// never overwritten: it is reported as *backends.ForeignPendingError whose
// Hint is the aws CLI command that clears it.
//
// # The moto emulator
//
// Tests run against moto in server mode (scripts/moto-server). Where moto
// differs from AWS, each difference is pinned by a test, so a moto upgrade
// that changes it fails loudly:
//
//  1. GetSecretValue without a stage or version id returns a stale value
//     after UpdateSecretVersionStage; keyturn always names both.
//  2. A plain PutSecretValue can leave AWSCURRENT on two versions; keyturn
//     puts with AWSCURRENT only when no version holds it.
//  3. Reusing a token with a different value overwrites the version; AWS
//     refuses (keyturn's tokens change with the content).
//  4. ListSecretVersionIds ignores IncludeDeprecated (keyturn does not call
//     it).
//  5. UpdateSecretVersionStage without RemoveFromVersionId leaves a label
//     other than AWSCURRENT on two versions; AWS refuses. keyturn always
//     names the version a label leaves, and refuses to act on a secret
//     whose label sits on two versions.
//  6. DescribeSecret lists deprecated versions with no labels; AWS leaves
//     them out. keyturn ignores them.
//  7. With IAM enforced (INITIAL_NO_AUTH_ACTION_COUNT), access denied comes
//     as HTTP 403 with an XML AccessDenied body that names no resource;
//     AWS answers AccessDeniedException in JSON, naming the resource. A
//     small middleware decodes the XML so the refusal is still explained.
//     moto also checks only a policy's actions, against resource "*", and
//     ignores its conditions, so deploy/aws's scoping is untested here.
//
// # Limitations
//
// Limitation: the resource and tag scoping of deploy/aws/iam-policy.json
// is checked only on AWS itself, because moto ignores both (difference 7).
//
// Limitation: a secret stored in another shape before keyturn adopted it
// is read whole, but every version keyturn writes is keyturn's JSON, so a
// consumer that parses the old shape breaks at the first promotion.
//
// Limitation: each List or Get costs up to four calls (DescribeSecret and
// one GetSecretValue per label), because DescribeSecret returns no values;
// at keyturn's call rate this is far below Secrets Manager's quotas.
package awssm
