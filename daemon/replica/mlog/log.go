package mlog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
)

const (
	defaultFileSizeBytes   = 32 << 20
	defaultMaxPendingBytes = 4 << 20
)

// Options configures a Log.
type Options struct {
	// Dir holds the log files. It is created if missing.
	Dir string
	// FileSizeBytes is the size at which a new file is started. Default 32 MiB, as
	// upstream's log_private_file_size_mb.
	FileSizeBytes int64
	// ForceFlush fsyncs every batch before acknowledging it. The default (false) matches
	// upstream's plog_force_flush: writes reach the OS page cache, which survives a
	// process kill but not a machine crash.
	ForceFlush bool
	// MaxPendingBytes bounds the encoded records waiting for the writer, excluding the
	// batch being written. Beyond it Append blocks. Default 4 MiB.
	MaxPendingBytes int64
	// Logger receives recovery and failure messages. Nil discards them.
	Logger *slog.Logger
}

// Record is one log entry. Data is opaque to the log: a thrift-encoded mutation.
type Record struct {
	Decree, Ballot int64
	Data           []byte
}

// ErrClosed is reported by operations on a closed log.
var ErrClosed = errors.New("mlog: log closed")

// entry is one queued Append. err is set when the record is rejected without being
// written; its callback still goes through the writer so that callbacks keep append order.
type entry struct {
	done   func(error)
	decree int64
	err    error
}

// Log is a replica's private mutation log. Its methods are safe for concurrent use,
// except that Replay must not overlap Append, GC or Reset.
type Log struct {
	opts   Options
	logger *slog.Logger

	mu       sync.Mutex
	work     sync.Cond // the writer waits on it for appends, a reset or close
	notFull  sync.Cond // back-pressured appenders wait on it
	pendBuf  []byte    // encoded records of the next batch
	pendEnt  []entry
	failed   error // sticky write error
	closing  bool
	appended bool
	resetReq chan error

	resetMu    sync.Mutex // one Reset at a time: there is a single resetReq slot
	gcMu       sync.Mutex
	writerDone chan struct{}

	filesMu sync.Mutex
	files   []segment // oldest first; the last one is being written

	end       atomic.Int64 // global offset just past the last written byte
	maxDecree atomic.Int64
	batches   atomic.Int64 // successful writes, for tests and benchmarks

	// Owned by the writer goroutine once Open returns.
	cur      *os.File
	curSeg   segment
	curSize  int64
	curMax   int64 // highest decree in the current file and all earlier ones
	closeErr error

	beforeWrite func() // test hook, runs in the writer goroutine before each write
}

// Open opens the log in opts.Dir, creating it if needed. It repairs a torn tail left by a
// crash in the middle of a write (see the package comment) and starts the writer
// goroutine. The caller must call Close.
func Open(opts Options) (*Log, error) {
	if opts.Dir == "" {
		return nil, errors.New("mlog: Options.Dir is empty")
	}
	if opts.FileSizeBytes <= 0 {
		opts.FileSizeBytes = defaultFileSizeBytes
	}
	if opts.MaxPendingBytes <= 0 {
		opts.MaxPendingBytes = defaultMaxPendingBytes
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("plog", opts.Dir)
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	segs, err := loadSegments(opts.Dir, logger)
	if err != nil {
		return nil, err
	}

	l := &Log{opts: opts, logger: logger, writerDone: make(chan struct{})}
	l.work.L = &l.mu
	l.notFull.L = &l.mu
	if len(segs) == 0 {
		seg := newSegment(opts.Dir, 1, 0, 0, flagFirst)
		f, err := createSegment(opts.Dir, seg, opts.ForceFlush)
		if err != nil {
			return nil, err
		}
		l.cur, l.curSeg, l.curSize = f, seg, segHeaderSize
		segs = []segment{seg}
	} else {
		last := segs[len(segs)-1]
		f, err := os.OpenFile(last.path, os.O_RDWR|os.O_APPEND, 0)
		if err != nil {
			return nil, fmt.Errorf("open log file: %w", err)
		}
		end, maxDecree, err := recoverTail(f, last, logger)
		if err != nil {
			f.Close()
			return nil, err
		}
		l.cur, l.curSeg, l.curSize = f, last, end
		l.curMax = max(last.prevMax, maxDecree)
	}
	l.files = segs
	l.end.Store(l.curSeg.start + l.curSize)
	l.maxDecree.Store(l.curMax)
	go l.run()
	return l, nil
}

// Append queues r for the next batch and returns without waiting for the write. done,
// which may be nil, is called exactly once from the writer goroutine, in append order,
// after the batch holding r has been written (and fsynced with ForceFlush). It gets nil on
// success, and the log's sticky error once a write has failed. done must not block or
// call back into the log, because it delays every later batch.
//
// Append copies r.Data before returning. It blocks while Options.MaxPendingBytes are
// already queued. On a closed log, done(ErrClosed) is called before Append returns.
func (l *Log) Append(r Record, done func(error)) {
	var hdr [recHeaderSize]byte
	var rejected error
	if len(r.Data) > MaxRecordBytes {
		rejected = fmt.Errorf("append decree %d: %d-byte record exceeds the limit of %d bytes",
			r.Decree, len(r.Data), MaxRecordBytes)
	} else {
		// Checksums are computed here so that concurrent appenders share the work
		// instead of serializing it in the writer.
		hdr = encodeRecHeader(r)
	}

	l.mu.Lock()
	for !l.closing && l.failed == nil && rejected == nil && int64(len(l.pendBuf)) >= l.opts.MaxPendingBytes {
		l.notFull.Wait()
	}
	if l.closing {
		l.mu.Unlock()
		if done != nil {
			done(ErrClosed)
		}
		return
	}
	l.appended = true
	e := entry{done: done, decree: r.Decree, err: rejected}
	if e.err == nil {
		e.err = l.failed
	}
	if e.err == nil {
		l.pendBuf = append(l.pendBuf, hdr[:]...)
		l.pendBuf = append(l.pendBuf, r.Data...)
		raiseTo(&l.maxDecree, r.Decree)
	}
	l.pendEnt = append(l.pendEnt, e)
	l.mu.Unlock()
	l.work.Signal()
}

// run is the writer goroutine. It ends once Close has been called and everything queued
// before that has been written and acknowledged.
func (l *Log) run() {
	defer close(l.writerDone)
	var spareBuf []byte
	var spareEnt []entry
	for {
		l.mu.Lock()
		for len(l.pendEnt) == 0 && !l.closing && l.resetReq == nil {
			l.work.Wait()
		}
		buf, ents := l.pendBuf, l.pendEnt
		l.pendBuf, l.pendEnt = spareBuf[:0], spareEnt[:0]
		reset := l.resetReq
		l.resetReq = nil
		failed := l.failed
		l.mu.Unlock()
		l.notFull.Broadcast()

		if len(ents) > 0 {
			l.commit(buf, ents, failed)
		}
		clear(ents) // drop the callbacks so their closures can be collected
		spareBuf, spareEnt = buf[:0], ents[:0]
		if int64(cap(spareBuf)) > 2*l.opts.MaxPendingBytes {
			spareBuf = nil // one huge record must not pin its buffer for the log's lifetime
		}
		if reset != nil {
			l.mu.Lock()
			failed = l.failed
			l.mu.Unlock()
			if failed != nil {
				reset <- fmt.Errorf("reset: log has failed: %w", failed)
			} else {
				reset <- l.reset()
			}
		}

		l.mu.Lock()
		done := l.closing && len(l.pendEnt) == 0 && l.resetReq == nil
		l.mu.Unlock()
		if done {
			l.closeErr = l.closeFile()
			return
		}
	}
}

// commit writes one batch and runs its callbacks.
func (l *Log) commit(buf []byte, ents []entry, failed error) {
	err := failed
	if err == nil && len(buf) > 0 {
		if err = l.write(buf); err != nil {
			l.fail(err)
		} else {
			for i := range ents {
				if ents[i].err == nil {
					l.curMax = max(l.curMax, ents[i].decree)
				}
			}
		}
	}
	if err == nil && l.curSize >= l.opts.FileSizeBytes {
		// Rolling before the callbacks means an acknowledged caller sees the files
		// and Size in a settled state. The batch itself is already written, so a
		// failed roll does not fail it. It fails the log instead, because the next
		// write has nowhere to go.
		if rerr := l.roll(); rerr != nil {
			l.fail(rerr)
		}
	}
	for _, e := range ents {
		if e.done == nil {
			continue
		}
		if e.err != nil {
			e.done(e.err)
		} else {
			e.done(err)
		}
	}
}

func (l *Log) write(buf []byte) error {
	if l.beforeWrite != nil {
		l.beforeWrite()
	}
	n, err := l.cur.Write(buf)
	l.curSize += int64(n)
	l.end.Add(int64(n))
	if err != nil {
		return fmt.Errorf("append to %s: %w", l.curSeg.path, err)
	}
	if l.opts.ForceFlush {
		if err := l.cur.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", l.curSeg.path, err)
		}
	}
	l.batches.Add(1)
	return nil
}

func (l *Log) fail(err error) {
	l.logger.Error("mutation log failed; every later append fails", "err", err)
	l.mu.Lock()
	if l.failed == nil {
		l.failed = err
	}
	l.mu.Unlock()
	l.notFull.Broadcast()
}

func (l *Log) roll() error {
	seg := newSegment(l.opts.Dir, l.curSeg.index+1, l.curSeg.start+l.curSize, l.curMax, 0)
	f, err := createSegment(l.opts.Dir, seg, l.opts.ForceFlush)
	if err != nil {
		return fmt.Errorf("start log file after %s: %w", l.curSeg.path, err)
	}
	old, oldPath := l.cur, l.curSeg.path
	l.filesMu.Lock()
	l.cur, l.curSeg, l.curSize = f, seg, segHeaderSize
	l.files = append(l.files, seg)
	l.end.Add(segHeaderSize)
	l.filesMu.Unlock()
	if err := old.Close(); err != nil {
		return fmt.Errorf("close %s: %w", oldPath, err)
	}
	return nil
}

// reset runs in the writer goroutine, so no write can interleave with it.
func (l *Log) reset() error {
	seg := newSegment(l.opts.Dir, l.curSeg.index+1, l.curSeg.start+l.curSize, 0, flagFirst)
	// Always synced, even without ForceFlush: once this file exists, Open discards
	// every older file, so it must not vanish while some of them are already gone.
	f, err := createSegment(l.opts.Dir, seg, true)
	if err != nil {
		return fmt.Errorf("reset %s: %w", l.opts.Dir, err)
	}
	old := l.cur
	l.filesMu.Lock()
	oldFiles := l.files
	l.files = []segment{seg}
	l.cur, l.curSeg, l.curSize, l.curMax = f, seg, segHeaderSize, 0
	l.end.Store(seg.start + segHeaderSize)
	l.filesMu.Unlock()

	// Records appended while the reset was in progress belong to the new log.
	l.mu.Lock()
	var m int64
	for _, e := range l.pendEnt {
		if e.err == nil {
			m = max(m, e.decree)
		}
	}
	l.maxDecree.Store(m)
	l.mu.Unlock()

	errs := []error{old.Close()}
	for _, s := range oldFiles {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			// Harmless for correctness: Open removes files older than the new one.
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reset %s: discard old files: %w", l.opts.Dir, err)
	}
	return nil
}

// closeFile does not fsync. With ForceFlush every batch is already synced. Without
// it, the policy is to leave flushing to the OS. A server that shuts down thousands of
// replicas should not wait for thousands of fsyncs, and a process exit keeps the page
// cache anyway.
func (l *Log) closeFile() error {
	if err := l.cur.Close(); err != nil {
		return fmt.Errorf("close %s: %w", l.curSeg.path, err)
	}
	return nil
}

// Replay calls fn for every record, oldest file first, in the order they were appended.
// Each Record.Data is a fresh slice that fn may keep. Replay must be called before the
// first Append, because the records it reads must not change under it; it returns an
// error otherwise. It must not run concurrently with GC or Reset. A torn tail was already
// cut off by Open, so any bad record found here is an error wrapping ErrCorrupt that names
// the file and the offset. An error from fn stops the replay and is returned wrapped.
func (l *Log) Replay(fn func(r Record) error) error {
	l.mu.Lock()
	closing, appended := l.closing, l.appended
	l.mu.Unlock()
	if closing {
		return ErrClosed
	}
	if appended {
		return errors.New("mlog: Replay after Append: replay must come before the first append")
	}
	l.filesMu.Lock()
	files := slices.Clone(l.files)
	end := l.end.Load()
	l.filesMu.Unlock()

	for i, s := range files {
		size := end - s.start
		if i+1 < len(files) {
			size = files[i+1].start - s.start
		}
		if err := l.replaySegment(s, size, fn); err != nil {
			return err
		}
	}
	return nil
}

func (l *Log) replaySegment(s segment, size int64, fn func(Record) error) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	check := segment{index: s.index, start: s.start}
	b := make([]byte, segHeaderSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return fmt.Errorf("replay %s: read header: %w", s.path, err)
	}
	if err := parseSegmentHeader(&check, b); err != nil {
		return fmt.Errorf("replay %s: %w", s.path, err)
	}
	rr := newRecordReader(f, segHeaderSize, size)
	for {
		off := rr.off
		rec, err := rr.next(true)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("replay %s: record at offset %d: %w", s.path, off, err)
		}
		raiseTo(&l.maxDecree, rec.Decree)
		if err := fn(rec); err != nil {
			return fmt.Errorf("replay %s: record at offset %d (decree %d): %w", s.path, off, rec.Decree, err)
		}
	}
}

// GC deletes whole files, oldest first, while every record in them has a decree no
// higher than durableDecree. It never deletes the current file. The decision uses only
// file headers (see the package comment). On error, removed counts the files already
// deleted.
func (l *Log) GC(durableDecree int64) (removed int, err error) {
	l.gcMu.Lock()
	defer l.gcMu.Unlock()
	for {
		// The lock is not held across the unlink: removing a 32 MiB file can take a
		// while, and a roll in the writer must not wait for it.
		l.filesMu.Lock()
		if len(l.files) < 2 || l.files[1].prevMax > durableDecree {
			l.filesMu.Unlock()
			return removed, nil
		}
		victim := l.files[0]
		l.filesMu.Unlock()

		if err := os.Remove(victim.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("gc: remove %s: %w", victim.path, err)
		}
		l.filesMu.Lock()
		// A Reset may have replaced the list meanwhile.
		if len(l.files) > 1 && l.files[0].path == victim.path {
			l.files = slices.Delete(l.files, 0, 1)
		}
		l.filesMu.Unlock()
		removed++
	}
}

// Reset discards every record and starts an empty log, for a learner that replaces its
// whole state. Appends queued before Reset are written and acknowledged first, then
// discarded. The reset is atomic across a crash: a new first file is created and synced
// before the old files are removed, and Open removes any old file that a crash left behind.
func (l *Log) Reset() error {
	l.resetMu.Lock()
	defer l.resetMu.Unlock()
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return ErrClosed
	}
	if l.failed != nil {
		err := l.failed
		l.mu.Unlock()
		return fmt.Errorf("reset: log has failed: %w", err)
	}
	ch := make(chan error, 1)
	l.resetReq = ch
	l.mu.Unlock()
	l.work.Signal()
	return <-ch
}

// Size returns the bytes the log's files take on disk.
func (l *Log) Size() int64 {
	l.filesMu.Lock()
	defer l.filesMu.Unlock()
	return l.end.Load() - l.files[0].start
}

// MaxDecree returns the highest decree appended, replayed or found in the log by Open.
// After Reset it counts only records appended since.
func (l *Log) MaxDecree() int64 {
	return l.maxDecree.Load()
}

// Close writes and acknowledges everything appended so far, closes the current file
// (fsyncing nothing beyond what ForceFlush already does), and stops the writer goroutine. Appends made after Close starts fail with
// ErrClosed. Calling Close again returns nil.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		<-l.writerDone
		return nil
	}
	l.closing = true
	l.mu.Unlock()
	l.work.Signal()
	l.notFull.Broadcast()
	<-l.writerDone
	return l.closeErr
}

// raiseTo is a lock-free max. Replay's callback may append while Replay is still raising
// the value.
func raiseTo(v *atomic.Int64, x int64) {
	for {
		cur := v.Load()
		if x <= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}
