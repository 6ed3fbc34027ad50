package rotator

import (
	"errors"
	"fmt"
)

// Errors callers branch on; the daemon's API maps them to answers.
var (
	ErrUnknownApp      = errors.New("unknown app")
	ErrRotationRunning = errors.New("a rotation is already running")
	ErrNoRotation      = errors.New("no rotation is running")
	ErrWrongState      = errors.New("the rotation is not waiting for that")
	ErrSecretRefused   = errors.New("smartcar refused the secret")
	ErrStillAlive      = errors.New("the old secret still works at smartcar")
	ErrTooLate         = errors.New("the rotation is past the point where that is safe")
	ErrAuditFailed     = errors.New("the audit log cannot be written; the action was refused")
	ErrRetrying        = errors.New("a step failed and will be retried")
	ErrUnknownSecret   = errors.New("no such secret")
	ErrCannotProve     = errors.New("the old secret's revocation cannot be proven")
)

// Error is an error with the next thing a person should do.
type Error struct {
	Err  error  // one of the sentinels above, for errors.Is
	Msg  string // what happened, naming the app
	Hint string // the next command or check
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func errorf(sentinel error, hint, format string, args ...any) *Error {
	return &Error{Err: sentinel, Msg: fmt.Sprintf(format, args...), Hint: hint}
}

// Hint returns the hint of err, if it carries one.
func Hint(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Hint
	}
	return ""
}
