package audit

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
)

// Verify hashes every byte of the log, which is most of its work, so it
// spreads that over all CPUs: the file is read in large chunks of whole
// lines that workers split, parse and hash, and the chain is then checked
// chunk by chunk, in order, on one goroutine.

const chunkSize = 1 << 20

type pipeline struct {
	wg      sync.WaitGroup
	started bool
	h       *lineHasher // for small files, hashed without the workers
	v       *verifier
	work    chan *chunk
	queue   []*chunk // handed to workers, oldest first
	free    []*chunk
	depth   int // chunks in flight before reading waits for the oldest
	line    int // lines of the current file checked so far
	carry   []byte
	// bufSize is how much one read asks for: chunkSize, or less for a
	// small file. A chunk holds that after the carried partial line.
	bufSize int
}

// chunk is a run of whole lines of one file.
type chunk struct {
	path  string
	off   int64 // of buf[0] in the file
	buf   []byte
	lines []int // start of each line in buf
	res   []lineResult
	done  chan struct{}
}

// lineResult is what a worker learns about one line.
type lineResult struct {
	li     lineInfo
	err    error
	hashOK bool
}

func newPipeline(v *verifier) *pipeline {
	n := runtime.GOMAXPROCS(0)
	return &pipeline{v: v, h: newLineHasher(), work: make(chan *chunk, 2*n), depth: 2 * n}
}

// startWorkers starts the hashing goroutines, the first time a file is
// big enough to need them.
func (p *pipeline) startWorkers() {
	if p.started {
		return
	}
	p.started = true
	for range runtime.GOMAXPROCS(0) {
		p.wg.Go(func() {
			h := newLineHasher()
			for c := range p.work {
				hashChunk(h, c)
			}
		})
	}
}

// hashChunk splits a chunk into lines, and parses and hashes each.
func hashChunk(h *lineHasher, c *chunk) {
	c.lines, c.res = c.lines[:0], c.res[:0]
	for start := 0; start < len(c.buf); {
		end := start + bytes.IndexByte(c.buf[start:], '\n')
		line := c.buf[start:end]
		li, err := parseLine(line)
		if err == nil && len(line) >= maxLine {
			err = errLong
		}
		ok := err == nil && checkHash(h, line, li)
		c.lines = append(c.lines, start)
		c.res = append(c.res, lineResult{li: li, err: err, hashOK: ok})
		start = end + 1
	}
	close(c.done)
}

// readFile feeds a whole file through the workers and checks it. It
// returns what follows the last newline, and its offset.
func (p *pipeline) readFile(f *os.File, path string) ([]byte, int64, error) {
	p.line, p.carry = 0, p.carry[:0]
	p.bufSize = chunkSize
	if fi, err := f.Stat(); err == nil && fi.Size() < chunkSize {
		p.bufSize = int(fi.Size()) + 1 // small files need no big buffer
	}
	var off int64
	for p.v.rep.FirstBad == nil && len(p.carry) <= maxLine {
		c := p.newChunk(path, off)
		n, err := io.ReadFull(f, c.buf[len(c.buf):cap(c.buf)])
		c.buf = c.buf[:len(c.buf)+n]
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return nil, 0, err
		}
		cut := bytes.LastIndexByte(c.buf, '\n') + 1
		p.carry = append(p.carry[:0], c.buf[cut:]...)
		c.buf = c.buf[:cut]
		off += int64(cut)
		p.dispatch(c)
		if eof {
			break
		}
	}
	p.flush()
	return p.carry, off, nil
}

func (p *pipeline) newChunk(path string, off int64) *chunk {
	var c *chunk
	need := len(p.carry) + p.bufSize
	if n := len(p.free); n > 0 && cap(p.free[n-1].buf) >= need {
		c, p.free = p.free[n-1], p.free[:n-1]
	} else {
		c = &chunk{buf: make([]byte, 0, max(need, min(p.bufSize, chunkSize)+maxLine))}
	}
	c.path, c.off, c.done = path, off, make(chan struct{})
	c.buf = append(c.buf[:0], p.carry...)
	c.off -= int64(len(p.carry))
	return c
}

func (p *pipeline) dispatch(c *chunk) {
	if p.bufSize < chunkSize {
		hashChunk(p.h, c) // a small file: not worth a goroutine
	} else {
		p.startWorkers()
		p.work <- c
	}
	p.queue = append(p.queue, c)
	for len(p.queue) >= p.depth && p.v.rep.FirstBad == nil {
		p.checkOldest()
	}
}

// flush checks every chunk handed out so far.
func (p *pipeline) flush() {
	for len(p.queue) > 0 && p.v.rep.FirstBad == nil {
		p.checkOldest()
	}
	p.queue = p.queue[:0]
}

func (p *pipeline) checkOldest() {
	c := p.queue[0]
	p.queue = p.queue[1:]
	<-c.done
	for i, start := range c.lines {
		p.line++
		end := len(c.buf) - 1
		if i+1 < len(c.lines) {
			end = c.lines[i+1] - 1
		}
		line := c.buf[start:end]
		if why := p.v.check(line, &c.res[i]); why != "" {
			p.v.bad(c.path, p.line, c.off+int64(start), line, why)
			return
		}
	}
	p.free = append(p.free, c)
}

// stop lets the workers exit once they finish what they hold.
func (p *pipeline) stop() {
	close(p.work)
	p.wg.Wait()
}
