//go:build !linux

package audit

func datasync(f segmentFile) error { return f.Sync() }
