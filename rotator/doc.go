// Package rotator runs keyturn's rotations: the age policy that says when
// a credential is due, the schedules that start due rotations, and the
// state machine that carries one rotation from "due" to "done".
//
//	due → await_new → verify_new → staged → promoted → draining
//	    → await_delete → verify_revoked → retired → done
//
// Two states wait for a person (await_new: create a secret in the
// Dashboard and hand it over; await_delete: delete the old one), one waits
// for time (draining). Every other state is a machine step that the Engine
// takes at once. A rotation's state lives in a bbolt database under the
// state dir; each transition is written to the audit log, then to the
// database, and only then reported, and every step is idempotent, so a
// daemon killed at any point resumes where it stopped without asking a
// person for anything twice.
//
// Invariants the Engine keeps, and the tests check:
//   - the backend's current secret has always passed a token request;
//   - no secret leaves the backend before a token request with it was
//     answered invalid_client;
//   - one credential has at most one rotation at a time;
//   - secret values appear in no log, audit record, notification or error.
package rotator
