//go:build !unix

package audit

import "os"

// lockDir does nothing where flock is missing.
func lockDir(dir string) (*os.File, error) { return nil, nil }
