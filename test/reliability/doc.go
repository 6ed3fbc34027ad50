// Package reliability proves keyturn's invariants under the failures real
// services see. Its tests run the keyturn binary as real processes against
// the Smartcar emulator and each backend (the env file always; AWS Secrets
// Manager and Vault when scripts/test started moto and a Vault cluster):
//
//   - TestCrash… kill the daemon with SIGKILL at every named step of a
//     routine and an emergency rotation, start a new one and finish the
//     rotation, then check that no secret was removed before Smartcar
//     refused it, no prompt went out twice and the audit chain holds.
//   - TestFault… put a TCP fault proxy (toxiproxy, as a library) and the
//     emulator's fault switches between keyturn and its dependencies, and
//     check bounded, jittered retries, alerts and recovery.
//   - TestAuth… knock on every endpoint and the socket without the right
//     credentials.
//   - TestCanary… and TestMain check that the suite's canary secret shows
//     up in no output, file, notification, metric or command line.
//
// The package holds only tests; this file is its documentation.
package reliability
