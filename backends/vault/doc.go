// Package vault keeps a credential's secrets in a HashiCorp Vault KV
// version 2 mount, so that anything reading the credential's path (an
// application, Vault agent, a CSI driver) only ever sees a secret that has
// passed a token request, while keyturn rotates beside it.
//
// # Paths
//
// For mount "secret" and path "smartcar/demo":
//
//	secret/data/smartcar/demo          the current secret; its versions are
//	                                   the history of promoted secrets
//	secret/metadata/smartcar/demo      keyturn's bookkeeping, in custom_metadata
//	secret/data/smartcar/demo/pending  a handed-over secret not yet promoted
//
// Every version of the main path holds
//
//	{"client_id": "…", "client_secret": "…", "created_at": "RFC 3339 time"}
//
// and the pending path holds the same plus "rotation_id". A secret another
// tool stored must at least have client_secret; its version's creation
// time stands in for a missing created_at.
//
// # Stages
//
// current is the main path's newest version. previous is the version that
// custom_metadata's keyturn_previous names (with keyturn_current, the
// version keyturn last made current, and keyturn_rotation_N, the rotation
// that wrote version N). pending is the pending path's newest version, if
// it still holds data. Readers of the main path see a new secret only once
// Promote writes it there, after keyturn verified it.
//
// Promote writes the pending secret as a new version of the main path with
// cas set to the version it read as current, so of two writers promoting
// at once exactly one wins and the other gets backends.ErrCASConflict;
// then it records the bookkeeping and destroys the pending path's
// versions. Rollback writes the rolled-back secret to the pending path
// first, then the previous secret as a new version (cas again), then the
// bookkeeping. RemovePrevious records that the previous version is due to
// be destroyed (now, or after Options.KeepDeleted), soft-deletes it, and
// destroys it once due; a schedule not yet due is carried out by a later
// call.
//
// # Idempotency
//
// Each step is a single Vault request, and the order above is chosen so a
// crash (SIGKILL) between any two leaves a state the next run recognizes:
//
//   - the newest main version differs from keyturn_current: a write landed
//     and the bookkeeping after it did not. If the pending secret is that
//     version's, Promote stopped; if the previous secret is, Rollback did;
//     otherwise another tool wrote, and the version it displaced stays
//     tracked as previous.
//   - a pending secret equal to the current one is a leftover copy of a
//     step cut short; it is not listed, and the step run again destroys it
//     (Promote) or keeps it (Rollback).
//   - a scheduled destruction is repeated until it is done.
//
// Writes name the exact versions they act on (cas for new versions, the
// version list for delete and destroy), so a step repeated after another
// writer moved on never clobbers that writer's work. A cas write that
// fails is read back once: when the write landed after all (the client
// retried a request whose answer was lost), the step carries on.
//
// # Authentication
//
// Method token takes the token from AuthOptions.TokenFile (read again
// whenever Vault stops accepting the token, so a Vault agent sink works)
// or VAULT_TOKEN. AppRole logs in with a role id and a secret id read from
// a file, unwrapping it first when it is a response-wrapping token.
// Kubernetes logs in with the service account token file, read afresh at
// each login. Tokens with a TTL are renewed by the api's LifetimeWatcher;
// when one cannot be renewed further, or Vault refuses a request and a
// lookup shows the token dead, keyturn logs in again (three attempts with
// backoff) and repeats the request once.
//
// # Failures
//
// Every request is retried by the client on network errors, 5xx and 429:
// five attempts, exponential backoff with jitter. Errors name the request
// and its API path, and say what to do: a sealed Vault, a policy that
// lacks a capability (naming it), a KV version 1 mount, a missing mount,
// an untrusted certificate. deploy/vault/keyturn-policy.hcl holds the
// capabilities keyturn needs, and the tests run keyturn under exactly it.
//
// # Limitations
//
// Limitation: a wrapped AppRole secret id can be unwrapped only once, so a
// login after the token's maximum TTL needs a fresh wrapping token in the
// file (written by whatever delivers it, such as a Vault agent).
//
// Limitation: Rollback writes the old secret back as a new version, so the
// main path's history holds it twice; only the version tracked as previous
// is destroyed by RemovePrevious, and older copies age out by the mount's
// max_versions.
//
// Limitation: a mount or path with delete_version_after would soft-delete
// the current secret by itself; keyturn then sees no current secret.
package vault
