package audit

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const crashChildEnv = "AUDIT_CRASH_CHILD_DIR"

// crashChild appends from many goroutines and prints "seq hash" for each
// acknowledged record, until the parent kills it.
func crashChild(dir string) {
	l, err := Open(dir, Options{CheckpointEvery: 100})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				r, err := l.Append(context.Background(), tokenRequest(w*1e6+i))
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Printf("%d %s\n", r.Seq, r.Hash)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

func TestCrashDuringAppends(t *testing.T) {
	dir := t.TempDir()
	for round := range 3 {
		acked := killChildMidAppend(t, dir, 2000)
		l, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("round %d: open after SIGKILL: %v", round, err)
		}
		mustClose(t, l)
		rep := mustVerify(t, dir, l.PublicKey())

		recs := allRecords(t, dir)
		for seq, hash := range acked {
			if seq > uint64(len(recs)) || recs[seq-1].Hash != hash {
				t.Fatalf("round %d: acknowledged seq %d lost", round, seq)
			}
		}
		t.Logf("round %d: %d acknowledged, %d records, %d recoveries",
			round, len(acked), rep.Records, rep.Recoveries)
	}
}

// killChildMidAppend runs crashChild on dir, SIGKILLs it once it has
// acknowledged n records, and returns every acknowledgement it printed.
func killChildMidAppend(t *testing.T, dir string, n int) map[uint64]string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[uint64]string{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		seqText, hash, ok := strings.Cut(sc.Text(), " ")
		seq, err := strconv.ParseUint(seqText, 10, 64)
		if !ok || err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked[seq] = hash
		if len(acked) == n {
			cmd.Process.Kill() // SIGKILL; keep reading what it printed before
		}
	}
	cmd.Wait()
	if len(acked) < n {
		t.Fatalf("child acknowledged only %d records", len(acked))
	}
	return acked
}
