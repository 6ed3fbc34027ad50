// Package consumers moves an application's consumers to a newly promoted
// secret. It is the machinery of the rotator's draining state: after a
// promotion (or a rollback) the rotator runs the app's reload hooks with
// RunHooks, then its health gate with RunGate, and decides from the
// results what happens next. Nothing here rolls back, deletes or
// promotes anything: this package runs things and reports.
//
// # Hooks
//
// Hooks run in order; the first that still fails after its retries stops
// the rest. Each try is bounded by the hook's timeout, and tries are
// spaced by exponential backoff with jitter (Options.Sleep, injectable).
//
//   - exec: the command runs in its own process group with stdin from
//     /dev/null. At its timeout the whole group is killed, so a hook that
//     hangs dies with every child it started. Its environment is built
//     from nothing: PATH, HOME and LANG copied from the daemon, plus
//     KEYTURN_APP, KEYTURN_CLIENT_ID, KEYTURN_ROTATION_ID, KEYTURN_ACTION,
//     KEYTURN_CURRENT_FP and KEYTURN_PREVIOUS_FP. The daemon's own
//     environment (which may hold VAULT_TOKEN or AWS keys) is never
//     passed on, and no secret value is in the arguments or environment.
//     An empty dir means the daemon's working directory. A hook that exits
//     0 may leave a process running (a restarted service, say): it is not
//     killed, and its output stops being read a second later.
//   - http: a POST of the HookEvent as JSON, signed like keyturn's
//     webhooks (notify.Sign, header notify.SignatureHeader) with the
//     contents of signing_key_file; any 2xx is success. Redirects are
//     not followed. 408, 429 and 5xx answers and network errors are
//     retried; other answers are final.
//
// # Gates
//
// A gate is an HTTP URL that must answer 2xx, or a command that must exit
// 0, Successes times in a row, Interval apart, each check bounded by
// Timeout. A gate command gets the hooks' minimal environment without
// the KEYTURN_ variables. A failed check restarts the count. A gate runs at most
// Successes+3 checks and stops as soon as the streak can no longer be
// reached, so a broken consumer is reported quickly and the gate always
// ends. A gate URL that is neither https nor loopback is refused unless
// AllowInsecureURL is set, at run time as well as by config validation.
//
// # What is recorded
//
// Every hook try and gate check is handed to Options.OnAttempt (for the
// audit log) as an Attempt: name, try, outcome, duration, exit code or
// HTTP status and a short error. An Attempt never carries a command's
// output or a response body, since those are written by programs keyturn
// does not control. For diagnosis, the first 2 KiB of a command's
// combined stdout and stderr, and of a response body, go to the logger
// only: at Warn when the try failed, at Debug when it succeeded.
//
// Limitation: a hook's output is logged as the hook wrote it, because
// keyturn cannot tell what a program it did not write prints; a hook that
// reads the secret from the backend must not print it.
package consumers
