package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDiskFull fills a real, small tmpfs. It needs root and mount(2), and
// skips without them; TestWriteFailureFailsClosed covers the same ground
// with injected errors.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}

	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	big := tokenRequest(1)
	big.Detail = strings.Repeat("x", 3000)
	var acked []Record
	for {
		r, err := l.Append(context.Background(), big)
		if err != nil {
			checkUnavailable(t, err, syscall.ENOSPC)
			break
		}
		acked = append(acked, r)
	}
	if _, err := l.Append(context.Background(), big); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second append on a full disk: %v, want ErrUnavailable", err)
	}
	if l.Healthy() == nil {
		t.Error("Healthy() = nil on a full disk")
	}

	os.Remove(filler)
	acked = append(acked, appendN(t, l, 1)...)
	if err := l.Healthy(); err != nil {
		t.Errorf("Healthy() after space was freed = %v", err)
	}
	mustClose(t, l)
	mustVerify(t, dir, l.PublicKey())
	checkAcked(t, dir, acked)
	t.Logf("%d records acknowledged before the disk filled", len(acked)-1)
}
