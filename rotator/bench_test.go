package rotator

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkFsyncReference is the yardstick for the rotation benchmarks
// in the same run: one small write and fsync on the same disk. A step
// from submit to promoted makes about twenty durable writes (audit
// records, bbolt commits, the env file and its folder), so read the
// rotation benchmarks as a multiple of this.
func BenchmarkFsyncReference(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "ref"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line := []byte(`{"kind":"rotation_step","step":"staged"}` + "\n")
	for b.Loop() {
		if _, err := f.Write(line); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}
