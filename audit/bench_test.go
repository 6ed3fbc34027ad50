package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			l, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			rec := tokenRequest(1)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range writers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := l.Append(context.Background(), rec); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			st := l.Stats()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
			b.ReportMetric(float64(st.Records)/float64(st.Fsyncs), "records/fsync")
			mustClose(b, l)
		})
	}
}

// BenchmarkRawFsync is the reference for BenchmarkAppend: one line
// written and fdatasynced at a time, as a log without group commit would.
func BenchmarkRawFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	body, _ := encodeBody(tokenRequest(1))
	line, _ := appendLine(nil, newLineHasher(), time.Now(), 1, body, "")
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := f.Write(line); err != nil {
			b.Fatal(err)
		}
		if err := datasync(f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "fsyncs/s")
}

func BenchmarkVerify(b *testing.B) {
	dir, pub, size := benchLog(b)
	b.SetBytes(size)
	b.ResetTimer()
	cpu := cpuTime()
	for range b.N {
		if _, err := Verify(dir, pub); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, size, cpu)
}

// reportCPU reports MB per CPU second, which other load on the machine
// disturbs less than MB/s.
func reportCPU(b *testing.B, size int64, start time.Duration) {
	used := (cpuTime() - start).Seconds()
	b.ReportMetric(float64(size)*float64(b.N)/1e6/used, "MB/cpu-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSHA256File is the reference for BenchmarkVerify: what
// sha256sum does with the same file.
func BenchmarkSHA256File(b *testing.B) {
	dir, _, size := benchLog(b)
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	b.ResetTimer()
	cpu := cpuTime()
	defer func() { reportCPU(b, size, cpu) }()
	for range b.N {
		f, err := os.Open(seg(dir, 1))
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.CopyBuffer(h, f, buf); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

var bench struct {
	once sync.Once
	dir  string
	pub  ed25519.PublicKey
	size int64
	err  error
}

// benchLog writes, once per run, a one-segment log of AUDIT_BENCH_MB
// (default 64) MiB into AUDIT_BENCH_DIR, or a temporary directory.
func benchLog(b *testing.B) (string, ed25519.PublicKey, int64) {
	bench.once.Do(func() {
		bench.dir, bench.pub, bench.size, bench.err = writeBenchLog()
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.dir, bench.pub, bench.size
}

func writeBenchLog() (string, ed25519.PublicKey, int64, error) {
	mb, _ := strconv.Atoi(os.Getenv("AUDIT_BENCH_MB"))
	if mb <= 0 {
		mb = 64
	}
	dir := os.Getenv("AUDIT_BENCH_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "audit-bench-"); err != nil {
			return "", nil, 0, err
		}
		benchCleanup = func() { os.RemoveAll(dir) }
	}
	if fi, err := os.Stat(seg(dir, 1)); err == nil && fi.Size() >= int64(mb)<<20 {
		pub, err := LoadPublicKey(filepath.Join(dir, "audit.key"))
		return dir, pub, fi.Size(), err
	}
	l, err := Open(dir, Options{SegmentSize: 1 << 40, openFile: openNoSync})
	if err != nil {
		return "", nil, 0, err
	}
	var size int64
	for i := 0; size < int64(mb)<<20; i++ {
		r, err := l.Append(context.Background(), tokenRequest(i))
		if err != nil {
			return "", nil, 0, err
		}
		size += int64(len(r.Hash)) * 6 // about 384 bytes a line; checked below
		if i%4096 == 0 {
			fi, _ := os.Stat(seg(dir, 1))
			size = fi.Size()
		}
	}
	if err := l.Close(); err != nil {
		return "", nil, 0, err
	}
	fi, err := os.Stat(seg(dir, 1))
	if err != nil {
		return "", nil, 0, err
	}
	return dir, l.PublicKey(), fi.Size(), nil
}
