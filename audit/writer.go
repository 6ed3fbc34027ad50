package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// A batch stops growing at maxBatchBytes of record bodies, so one sync
// never carries an unbounded amount of data.
const maxBatchBytes = 1 << 20

// maxGatherWait bounds how long a batch waits for more callers.
const maxGatherWait = time.Millisecond

// segment is the file being appended to.
type segment struct {
	f    segmentFile
	path string
	num  int
	off  int64 // end of the last durable record
}

// segmentFile is the part of *os.File the writer uses.
type segmentFile interface {
	WriteAt(b []byte, off int64) (int, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

func openSegmentFile(name string) (segmentFile, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
}

// writer is the state of the chain, owned by the writer goroutine.
type writer struct {
	hash           *lineHasher
	seg            *segment
	buf            []byte
	dirty          bool // a failed write may have left bytes past seg.off
	closeErr       error
	timer          *time.Timer   // bounds gather's wait
	lastSync       time.Duration // how long the last write and sync took
	chain          chainState
	lastCheckpoint time.Time
}

// chainState is what a failed batch rolls back.
type chainState struct {
	seq   uint64
	prev  string
	last  time.Time
	since int // records since the last checkpoint
}

// run is the writer goroutine: it takes whatever appends are queued,
// writes them with one write and one sync, and answers each caller.
func (l *Log) run() {
	defer close(l.done)
	batch := make([]*request, 0, 256)
	for {
		select {
		case req, ok := <-l.reqs:
			if !ok {
				l.w.closeErr = l.commit(nil, true)
				return
			}
			batch = l.gather(append(batch[:0], req))
			l.commit(batch, false)
			for _, r := range batch {
				close(r.done)
			}
			clear(batch)
		case <-l.tick:
			l.commit(nil, false)
		}
	}
}

// gather adds to batch the requests already queued. While some callers
// are inside Append but not yet in the batch (typically the ones the last
// sync just released, about to append again), it waits for them, up to
// half a sync: without that, concurrent callers split into two groups that
// take turns, and each sync carries half of them.
func (l *Log) gather(batch []*request) []*request {
	size := len(batch[0].body)
	waiting := false
	for size < maxBatchBytes {
		select {
		case req, ok := <-l.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, req)
			size += len(req.body)
			continue
		default:
		}
		if int64(len(batch)) >= l.active.Load() {
			return batch
		}
		if !waiting {
			waiting = true
			l.w.timer.Reset(min(l.w.lastSync/2, maxGatherWait))
			defer l.w.timer.Stop()
		}
		select {
		case req, ok := <-l.reqs:
			if !ok {
				return batch
			}
			batch = append(batch, req)
			size += len(req.body)
		case <-l.nudge:
		case <-l.w.timer.C:
			return batch
		}
	}
	return batch
}

// commit makes batch durable, adding checkpoints where due (or one at the
// end when final), and sets each request's error. On failure the chain
// rolls back, so the next batch reuses the same sequence numbers.
func (l *Log) commit(batch []*request, final bool) error {
	w := &l.w
	saved := w.chain
	now := l.now()
	buf := w.buf[:0]
	for _, req := range batch {
		buf = l.add(buf, &req.rec, req.body, now)
		if w.chain.since >= l.opts.CheckpointEvery {
			buf = l.addCheckpoint(buf, now)
		}
	}
	due := now.Sub(w.lastCheckpoint) >= l.opts.CheckpointInterval
	if w.chain.since > 0 && (due || final) {
		buf = l.addCheckpoint(buf, now)
	}
	if len(buf) == 0 {
		return nil
	}
	records := w.chain.seq - saved.seq
	err := l.write(buf)
	if cap(buf) <= 4*maxBatchBytes {
		w.buf = buf[:0]
	}
	if err != nil {
		w.chain = saved
		l.stats.failures.Add(1)
	} else {
		l.stats.records.Add(records)
	}
	l.setHealth(err)
	for _, req := range batch {
		req.err = err
	}
	return err
}

func (l *Log) now() time.Time {
	t := l.opts.Clock().Round(0).UTC()
	if t.Before(l.w.chain.last) {
		t = l.w.chain.last // time order must hold even if the clock steps back
	}
	return t
}

// add appends the line for rec to buf and advances the chain.
func (l *Log) add(buf []byte, rec *Record, body []byte, now time.Time) []byte {
	c := &l.w.chain
	c.seq++
	rec.Time, rec.Seq, rec.PrevHash = now, c.seq, c.prev
	buf, rec.Hash = appendLine(buf, l.w.hash, now, c.seq, body, c.prev)
	c.prev, c.last = rec.Hash, now
	if rec.Kind != KindCheckpoint {
		c.since++
	}
	return buf
}

func (l *Log) addCheckpoint(buf []byte, now time.Time) []byte {
	rec := newCheckpoint(l.key, l.w.chain.seq, l.w.chain.prev)
	body, _ := encodeBody(rec) // cannot fail: the log built rec
	buf = l.add(buf, &rec, body, now)
	l.w.chain.since = 0
	l.w.lastCheckpoint = now
	return buf
}

// write writes buf at the end of the current segment and syncs it. After
// a failure it cuts the segment back to the last durable record, so no
// partial line stays behind.
func (l *Log) write(buf []byte) error {
	w := &l.w
	if w.dirty {
		if err := l.repair(); err != nil {
			return err
		}
	}
	if w.seg.off > 0 && w.seg.off+int64(len(buf)) > l.opts.SegmentSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	l.stats.fsyncs.Add(1)
	start := time.Now()
	_, err := w.seg.f.WriteAt(buf, w.seg.off)
	if err == nil {
		err = datasync(w.seg.f)
	}
	w.lastSync = time.Since(start)
	if err != nil {
		w.dirty = true
		l.repair() // best effort; retried before the next write
		return l.fail("write segment", w.seg.path, err)
	}
	w.seg.off += int64(len(buf))
	return nil
}

func (l *Log) repair() error {
	seg := l.w.seg
	err := seg.f.Truncate(seg.off)
	if err == nil {
		err = datasync(seg.f)
	}
	if err != nil {
		return l.fail("truncate segment", seg.path, err)
	}
	l.w.dirty = false
	return nil
}

// rotate starts the next segment. The chain simply continues into it.
func (l *Log) rotate() error {
	w := &l.w
	num := w.seg.num + 1
	path := filepath.Join(l.dir, segmentName(num))
	f, err := createSegment(l.opts.openFile, path)
	if err != nil {
		return l.fail("create segment", path, err)
	}
	if err := syncDir(l.dir); err != nil {
		f.Close()
		os.Remove(path)
		return l.fail("create segment", path, err)
	}
	w.seg.f.Close() // already synced
	w.seg = &segment{f: f, path: path, num: num}
	l.opts.Logger.Info("audit segment started",
		logKeySegment, path, logKeySeq, w.chain.seq+1)
	return nil
}

// createSegment opens a new, empty segment file. A leftover empty file
// from a failed rotation is reused; one with data is never overwritten.
func createSegment(open func(string) (segmentFile, error),
	path string) (segmentFile, error) {
	fi, err := os.Stat(path)
	if err == nil && fi.Size() > 0 {
		return nil, fmt.Errorf("%w: segment already has data", fs.ErrExist)
	}
	return open(path)
}

func (l *Log) fail(what, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &unavailableError{fmt.Errorf("audit: append: %s %q: %w", what, path, err)}
}

// setHealth records the outcome of the last write for Healthy, logging
// each change between available and unavailable once.
func (l *Log) setHealth(err error) {
	old := l.health.Load()
	switch {
	case err == nil && old != nil:
		l.health.Store(nil)
		l.opts.Logger.Info("audit log available again", logKeyDir, l.dir)
	case err != nil:
		l.health.Store(&err)
		if old == nil {
			l.opts.Logger.Error("audit log unavailable; refusing audited actions",
				logKeyDir, l.dir, logKeyErr, err)
		}
	}
}
