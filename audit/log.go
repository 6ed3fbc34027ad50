package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

var (
	// ErrUnavailable is wrapped by every error that means the log could not
	// make a record durable. The action the record describes must be refused.
	ErrUnavailable = errors.New("audit: log unavailable")

	// ErrClosed is returned by Append after Close.
	ErrClosed = errors.New("audit: log closed")
)

// Log attribute keys.
const (
	logKeyDir      = "audit_dir"
	logKeySegment  = "segment"
	logKeySeq      = "seq"
	logKeyOffset   = "offset"
	logKeyBytesCut = "bytes_cut"
	logKeyErr      = "err"
)

// Options tune a Log. The zero value is usable.
type Options struct {
	// SegmentSize is the size at which a new segment file is started.
	// A batch is never split, so a segment may exceed it by one batch.
	// Default 64 MiB.
	SegmentSize int64

	// CheckpointEvery is how many records may follow a checkpoint before
	// the next one is written. Default 1000.
	CheckpointEvery int

	// CheckpointInterval is how long records may stay unsigned before a
	// checkpoint is written. Default one minute.
	CheckpointInterval time.Duration

	// SigningKeyFile is the ed25519 key (PKCS#8 PEM) that signs
	// checkpoints. Default dir/audit.key, created if missing.
	SigningKeyFile string

	// Clock returns the time records are stamped with. Default time.Now.
	Clock func() time.Time

	// Logger receives lifecycle and failure messages. Default: discard.
	Logger *slog.Logger

	// OnAppend, when set, is called after each successful Append with the
	// time the caller waited, for metrics.
	OnAppend func(time.Duration)

	// openFile opens segment files; tests replace it to inject failures.
	openFile func(name string) (segmentFile, error)

	// tick, when set, replaces the checkpoint interval ticker in tests.
	tick <-chan time.Time
}

func (o Options) withDefaults(dir string) Options {
	if o.SegmentSize <= 0 {
		o.SegmentSize = 64 << 20
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = 1000
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = time.Minute
	}
	if o.SigningKeyFile == "" {
		o.SigningKeyFile = filepath.Join(dir, "audit.key")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.openFile == nil {
		o.openFile = openSegmentFile
	}
	return o
}

// Stats counts what the log has written since Open.
type Stats struct {
	Records  uint64 // records made durable, checkpoints included
	Fsyncs   uint64 // write+sync rounds; Records/Fsyncs is the batch size
	Failures uint64 // batches that could not be made durable
}

// Log is an open audit log. It is safe for concurrent use.
type Log struct {
	dir  string
	opts Options
	key  ed25519.PrivateKey
	lock *os.File

	mu     sync.RWMutex // guards closed against sends on reqs
	closed bool
	reqs   chan *request
	done   chan struct{}
	tick   <-chan time.Time

	// active counts callers inside Append; each one leaving nudges the
	// writer, which may be waiting for them to join a batch.
	active atomic.Int64
	nudge  chan struct{}

	health atomic.Pointer[error]
	stats  struct{ records, fsyncs, failures atomic.Uint64 }

	// Owned by the writer goroutine.
	w writer
}

// request is one queued Append.
type request struct {
	rec  Record
	body []byte
	err  error
	done chan struct{}
}

// Open opens the log in dir, creating dir and the first segment when
// needed. A torn last line left by a crash is cut off and a log_recovered
// record saying so is appended before Open returns.
func Open(dir string, opts Options) (*Log, error) {
	opts = opts.withDefaults(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	l := &Log{dir: dir, opts: opts, lock: lock, done: make(chan struct{}),
		nudge: make(chan struct{}, 1)}
	if err := l.open(); err != nil {
		l.closeFiles()
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	l.reqs = make(chan *request, 1024)
	ticker := time.NewTicker(opts.CheckpointInterval)
	l.tick = ticker.C
	if opts.tick != nil {
		l.tick = opts.tick
	}
	go func() {
		defer ticker.Stop()
		l.run()
	}()
	return l, nil
}

func (l *Log) open() error {
	key, err := loadOrCreateKey(l.opts.SigningKeyFile)
	if err != nil {
		return err
	}
	l.key = key
	l.w = writer{hash: newLineHasher(), lastCheckpoint: l.opts.Clock(),
		timer: time.NewTimer(time.Hour)}
	l.w.timer.Stop()
	cut, err := l.recover()
	if err != nil {
		return err
	}
	if cut == nil {
		return nil
	}
	l.opts.Logger.Warn("audit log had a torn tail; cut it off",
		logKeySegment, cut.Segment, logKeyOffset, cut.Offset,
		logKeyBytesCut, cut.BytesCut)
	req := &request{rec: cut.record()}
	if req.body, err = encodeBody(req.rec); err != nil {
		return err
	}
	l.commit([]*request{req}, false)
	return req.err
}

// Append writes r to the log and returns it as written, with Time, Seq,
// PrevHash and Hash filled in. It returns only once the record is on disk
// (fsynced), sharing the sync with concurrent callers. An error wrapping
// ErrUnavailable means the record is not in the log and the action it
// describes must not go ahead. If ctx ends after r was queued, Append
// returns ctx's error, and r may still be written.
func (l *Log) Append(ctx context.Context, r Record) (Record, error) {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("audit: append: %w", err)
	}
	if err := checkKind(r.Kind); err != nil {
		return Record{}, fmt.Errorf("audit: append: %w", err)
	}
	body, err := encodeBody(r)
	if err != nil {
		return Record{}, fmt.Errorf("audit: append: %w", err)
	}
	if len(body) > maxBody {
		return Record{}, fmt.Errorf("audit: append: record of %d bytes "+
			"is over the limit of %d", len(body), maxBody)
	}
	req := &request{rec: r, body: body, done: make(chan struct{})}
	l.active.Add(1)
	defer l.leave()
	if err := l.enqueue(ctx, req); err != nil {
		return Record{}, err
	}
	select {
	case <-req.done:
	case <-ctx.Done():
		return Record{}, fmt.Errorf("audit: append: %w", ctx.Err())
	}
	if req.err != nil {
		return Record{}, req.err
	}
	if l.opts.OnAppend != nil {
		l.opts.OnAppend(time.Since(start))
	}
	return req.rec, nil
}

func (l *Log) leave() {
	l.active.Add(-1)
	select {
	case l.nudge <- struct{}{}:
	default:
	}
}

func (l *Log) enqueue(ctx context.Context, req *request) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	select {
	case l.reqs <- req:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: append: %w", ctx.Err())
	}
}

// checkKind refuses kinds the log writes itself, and spellings that would
// need escaping in JSON.
func checkKind(k Kind) error {
	if k == KindCheckpoint || k == KindLogRecovered {
		return fmt.Errorf("kind %q is written by the log itself", k)
	}
	if k == "" || len(k) > 64 {
		return fmt.Errorf("kind %q: want 1 to 64 characters", k)
	}
	for _, c := range []byte(k) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return fmt.Errorf("kind %q: want lowercase letters, digits and _", k)
		}
	}
	return nil
}

// Healthy returns nil when the last write succeeded, else the error that
// made the log unavailable (wrapping ErrUnavailable). For readiness checks.
func (l *Log) Healthy() error {
	if p := l.health.Load(); p != nil {
		return *p
	}
	return nil
}

// Stats returns counters since Open.
func (l *Log) Stats() Stats {
	return Stats{
		Records:  l.stats.records.Load(),
		Fsyncs:   l.stats.fsyncs.Load(),
		Failures: l.stats.failures.Load(),
	}
}

// PublicKey returns the key that verifies this log's checkpoints.
func (l *Log) PublicKey() ed25519.PublicKey {
	return l.key.Public().(ed25519.PublicKey)
}

// Dir returns the directory that holds the log.
func (l *Log) Dir() string { return l.dir }

// Close writes a final checkpoint, waits for queued appends, and closes
// the files. Appends after Close return ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	close(l.reqs)
	l.mu.Unlock()

	<-l.done
	err := l.w.closeErr
	if cerr := l.closeFiles(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audit: close: %w", err)
	}
	return nil
}

func (l *Log) closeFiles() error {
	var err error
	if l.w.seg != nil {
		err = l.w.seg.f.Close()
	}
	if l.lock != nil {
		l.lock.Close()
	}
	return err
}

// unavailableError carries both ErrUnavailable and the cause, with the
// message of the cause alone.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string   { return e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }
