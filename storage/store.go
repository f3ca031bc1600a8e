package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc64"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/pegasusgo/pegasus/internal/ratelog"

	"github.com/pegasusgo/pegasus/storage/keys"
)

// Internal records live outside the user key space [userKeyStart, userKeyEnd), which
// every user iteration is bounded to. Composite keys are at least 2 bytes long and start
// with the u16 length of their hash key, so
//   - the single byte 00 sorts before all of them (it is a proper prefix of the
//     smallest one, 00 00). The decree record lives there because it is rewritten by
//     every mutation: the newest version of the smallest key is always the first node
//     of the memtable skiplist, so inserting it costs one comparison per level instead
//     of a full search, which keeps the per-mutation decree write cheap;
//   - nothing can start with FF FF (0xFFFF is not a valid hash key length); the rarely
//     written records live there under readable names.
//
// (The empty key, which the reference server writes for "empty writes", is not used.)
const (
	metaDecreeKey      = "\x00"                              // u64 BE decree ++ u64 BE timestamp_us
	metaDataVersionKey = "\xff\xffpegasus.meta/data_version" // u32 BE
	userKeyStart       = "\x00\x00"
	userKeyEnd         = "\xff\xff"
)

// pegasusCRC64Poly is the reversed polynomial of the Pegasus partition hash (CRC-64,
// reflected, init and final xor all ones: the standard library's conventions). The
// engine keeps its own copy so that it does not depend on the RPC layer.
const pegasusCRC64Poly = 0x9a6c9329ac4bc9b5

// rrdb "error" codes (RocksDB status codes) used in responses.
const (
	CodeOK                 int32 = 0
	CodeNotFound           int32 = 1
	CodeCorruption         int32 = 2
	CodeInvalidArgument    int32 = 4
	CodeIOError            int32 = 5
	CodeIncomplete         int32 = 7
	CodeShutdownInProgress int32 = 8
	CodeTryAgain           int32 = 13
)

// Errors returned by the store.
var (
	// ErrClosed is returned by every call made after Close.
	ErrClosed = errors.New("storage: store is closed")
	// ErrDecreeGap is returned by Apply when a mutation skips decrees.
	ErrDecreeGap = errors.New("storage: mutation decree is not the next one")
	// ErrBadMutation is returned by Apply for a malformed mutation (a programming error
	// of the caller: an op without exactly one request, a non-positive decree).
	ErrBadMutation = errors.New("storage: malformed mutation")
)

// Store is the data of one partition replica, kept in its own Pebble database. All
// methods are safe for concurrent use; Apply calls are serialised internally.
type Store struct {
	dir         string
	opts        Options
	log         *slog.Logger
	db          *pebble.DB
	dataVersion uint32
	writeOpts   *pebble.WriteOptions
	crcTable    *crc64.Table
	decreeKey   []byte

	// closeMu is held shared by every operation and exclusively by Close, so that Close
	// never pulls the database out from under a running call.
	closeMu sync.RWMutex
	closed  bool

	// applyMu serialises everything that writes: Apply, the expiry sweep's deletes and
	// the flush+checkpoint pair (which must see no write in between).
	applyMu     sync.Mutex
	lastApplied atomic.Int64
	lastTSUS    atomic.Int64 // timestamp of the last applied mutation, for the sweep

	scanners *scannerTable

	stopJanitor context.CancelFunc
	janitorDone chan struct{}
	closeOnce   sync.Once
	closeErr    error

	// The key estimate reads every sstable's properties and monitoring asks for
	// it at each scrape: it is reused for estimateTTL, or until the next flush.
	estMu  sync.Mutex
	estAt  time.Time
	estVal int64
	estIdx int64 // index and filter block bytes of the sstables, read with estVal

	// Pebble reports no entry counts for its memtables, so the store counts the
	// data records it writes (memEntries, of which memDeletions are deletions)
	// and takes off, when a flush ends, the counts it saw when the flush began
	// (flushBase*). A write between the memtable's switch and the start of its
	// flush is taken off too early, and records replayed from the WAL at open
	// are not counted: the figure is an estimate, as RocksDB's is.
	memEntries, memDeletions           atomic.Int64
	flushBaseEntries, flushBaseDeletes atomic.Int64

	// Reads count the records they skip (ReadCounts): expired ones, and ones a
	// hash-key or sort-key filter of a multi_get or scan left out.
	readExpired, readFiltered atomic.Int64

	// refund gives back to the block cache what Pebble reserves in it for the
	// memtables (cacherefund.go); memChanged wakes the janitor to update it.
	refund     memtableRefund
	memChanged chan struct{}

	// flushMu guards lastFlush, the completion channel of the last flush started:
	// a flush waits for the previous one (see flush).
	flushMu   sync.Mutex
	lastFlush <-chan struct{}

	// Pebble reports a failing flush or compaction on every retry; bgErrLog lets
	// one report through every bgErrLogInterval, with a count of the others.
	bgErrLog *ratelog.Limiter
	// expireLog limits the warnings about writes refused for a negative expiry:
	// a client can send them at any rate.
	expireLog *ratelog.Limiter
}

// bgErrLogInterval is the least time between two logged background errors of a store.
const bgErrLogInterval = 5 * time.Second

// refundEvery is how often the janitor updates the memtables' refund to the
// block cache without being told of a change.
const refundEvery = 5 * time.Second

// estimateTTL is how long a key estimate is reused (compactions change it a little).
const estimateTTL = 10 * time.Second

// Open opens (creating it if needed) the store in dir. A store opened from a checkpoint
// directory reports the checkpoint's decree as both its last applied and last durable
// decree.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	s := &Store{
		dir:        dir,
		opts:       opts,
		log:        opts.Logger.With("component", "storage", "dir", dir),
		crcTable:   crc64.MakeTable(pegasusCRC64Poly),
		decreeKey:  []byte(metaDecreeKey),
		writeOpts:  pebble.NoSync,
		bgErrLog:   ratelog.New(bgErrLogInterval),
		expireLog:  ratelog.New(10 * time.Second),
		memChanged: make(chan struct{}, 1),
	}
	if !opts.DisableWAL {
		// With a WAL the store promises that an applied decree is durable.
		s.writeOpts = pebble.Sync
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", dir, err)
	}
	po, cache := opts.pebbleOptions(s.eventListener())
	po.TablePropertyCollectors = []func() pebble.TablePropertyCollector{newExpireCollector}
	po.FS = newBufferedSSTFS(newDiskFullBackoff(opts.OnDiskFull).wrap(vfs.Default))
	db, err := pebble.Open(dir, po)
	if cache != nil {
		// The DB holds its own reference; ours is only needed until Open returns.
		cache.Unref()
	}
	if err != nil {
		return nil, fmt.Errorf("storage: open pebble in %s: %w", dir, err)
	}
	s.db = db
	s.refund.cache = po.Cache
	s.refund.set(s.memtableReserved())
	if err := s.loadMeta(); err != nil {
		s.refund.set(0)
		return nil, errors.Join(err, db.Close())
	}
	s.scanners = newScannerTable(opts.MaxScanners, opts.ScannerIdleTimeout)
	ctx, cancel := context.WithCancel(context.Background())
	s.stopJanitor = cancel
	s.janitorDone = make(chan struct{})
	go s.janitor(ctx)
	s.log.Debug("store opened", "decree", s.lastApplied.Load(), "data_version", s.dataVersion)
	return s, nil
}

// loadMeta reads the data version and the last applied decree, initialising the data
// version of a new store.
func (s *Store) loadMeta() error {
	raw, closer, err := s.db.Get([]byte(metaDataVersionKey))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		s.dataVersion = keys.CurrentDataVersion
		var buf [4]byte
		binary.BigEndian.PutUint32(buf[:], s.dataVersion)
		// Losing this write in a crash is harmless: it is rewritten on the next open.
		if err := s.db.Set([]byte(metaDataVersionKey), buf[:], s.writeOpts); err != nil {
			return fmt.Errorf("storage: write data version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("storage: read data version: %w", err)
	default:
		if len(raw) != 4 {
			closer.Close()
			return fmt.Errorf("storage: data version record of %d bytes", len(raw))
		}
		s.dataVersion = binary.BigEndian.Uint32(raw)
		closer.Close()
		if _, err := keys.HeaderLen(s.dataVersion); err != nil {
			return fmt.Errorf("storage: %w", err)
		}
	}
	decree, ts, err := s.readDecree(nil)
	if err != nil {
		return err
	}
	s.lastApplied.Store(decree)
	s.lastTSUS.Store(ts)
	return nil
}

// readDecree reads the decree record, through an iterator with opts when given (used to
// read only the flushed state).
func (s *Store) readDecree(opts *pebble.IterOptions) (decree, timestampUS int64, err error) {
	var raw []byte
	if opts == nil {
		v, closer, err := s.db.Get(s.decreeKey)
		if errors.Is(err, pebble.ErrNotFound) {
			return 0, 0, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("storage: read decree: %w", err)
		}
		raw = append(raw, v...)
		closer.Close()
	} else {
		it, err := s.db.NewIter(opts)
		if err != nil {
			return 0, 0, fmt.Errorf("storage: read decree: %w", err)
		}
		if it.SeekGE(s.decreeKey) && string(it.Key()) == metaDecreeKey {
			raw = append(raw, it.Value()...)
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return 0, 0, fmt.Errorf("storage: read durable decree: %w", err)
		}
		if raw == nil {
			return 0, 0, nil
		}
	}
	if len(raw) != 16 {
		return 0, 0, fmt.Errorf("storage: decree record of %d bytes", len(raw))
	}
	return int64(binary.BigEndian.Uint64(raw)), int64(binary.BigEndian.Uint64(raw[8:])), nil
}

func encodeDecree(dst []byte, decree, timestampUS int64) {
	binary.BigEndian.PutUint64(dst, uint64(decree))
	binary.BigEndian.PutUint64(dst[8:], uint64(timestampUS))
}

func (s *Store) eventListener() *pebble.EventListener {
	return &pebble.EventListener{
		// Called with Pebble's DB mutex held: it must stay quick.
		BackgroundError: s.backgroundError,
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			s.log.Warn("pebble write stall", "reason", info.Reason)
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			s.log.Warn("pebble slow disk", "path", info.Path, "duration", info.Duration)
		},
		FlushBegin: func(pebble.FlushInfo) {
			s.flushBaseEntries.Store(s.memEntries.Load())
			s.flushBaseDeletes.Store(s.memDeletions.Load())
			// A flush begins after a new memtable was allocated.
			s.memtablesChanged()
		},
		FlushEnd: func(info pebble.FlushInfo) {
			s.memtablesChanged()
			if info.Err != nil {
				return
			}
			s.memEntries.Add(-s.flushBaseEntries.Swap(0))
			s.memDeletions.Add(-s.flushBaseDeletes.Swap(0))
		},
	}
}

// countWritten adds the data records of a committed batch to the memtable
// counts of the key estimate.
func (s *Store) countWritten(entries, deletions int) {
	s.memEntries.Add(int64(entries))
	s.memDeletions.Add(int64(deletions))
}

// backgroundError logs a failed flush or compaction. Pebble retries them at once,
// so on a lasting failure (a full disk) the same error comes back many times a
// second: at most one line per bgErrLogInterval is logged, with the count of the
// ones left out since the previous line.
func (s *Store) backgroundError(err error) {
	// Error() and not the error itself: the handler would print the stack trace
	// Pebble's errors carry (%+v), a few KB a line.
	s.bgErrLog.Error(s.log, "pebble background error", "err", err.Error())
}

// acquire enters an operation; it fails once Close has started.
func (s *Store) acquire() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) release() { s.closeMu.RUnlock() }

// Close stops the background work, discards open scanners, flushes the memtables (with
// the WAL off they would otherwise be lost) and closes the database. It waits for
// running calls to finish. Calling it again returns the first result.
//
// The final flush is given Options.CloseFlushTimeout: one that cannot finish (a full
// disk) is abandoned and the database closed anyway, which loses nothing the replica
// needs: its state on disk stays the last flushed one, which names its decree, and
// the replica's mutation log keeps every mutation after that decree (it is trimmed
// only up to LastDurableDecree) and replays them on the next open. Close then
// returns an error saying so.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopJanitor()
		<-s.janitorDone
		s.closeMu.Lock()
		defer s.closeMu.Unlock()
		s.closed = true
		s.scanners.closeAll()
		var flushErr error
		if s.opts.DisableWAL {
			var stalled bool
			stalled, flushErr = s.flushForClose()
			if stalled {
				// Pebble stopped writes (every memtable full while flushes fail) and
				// holds its commit pipeline, which DB.Close takes first: it would
				// wait as long. The database is left to the process's exit.
				s.log.Error("the engine is stalled: closing without closing the database", "err", flushErr)
				s.refund.set(0)
				s.closeErr = flushErr
				return
			}
			if flushErr != nil {
				s.log.Warn("the final flush did not finish: closing anyway; the mutations since the last flush are in the replica's log", "err", flushErr)
			}
		}
		if n := s.bgErrLog.TakeSuppressed(); n > 0 {
			s.log.Error("pebble background errors not logged", "count", n)
		}
		// The cache outlives the store when it is shared: take back what the
		// store gave, while its database still holds the cache.
		s.refund.set(0)
		if err := s.db.Close(); err != nil {
			s.closeErr = errors.Join(flushErr, fmt.Errorf("storage: close pebble: %w", err))
			return
		}
		s.closeErr = flushErr
	})
	return s.closeErr
}

// flushForClose flushes everything applied, waiting at most CloseFlushTimeout.
// Starting the flush can itself block, when Pebble stalls writes, so it runs in a
// goroutine of its own; stalled reports that it had not returned by then (the
// goroutine ends when the stall does).
func (s *Store) flushForClose() (stalled bool, err error) {
	timer := time.NewTimer(s.opts.CloseFlushTimeout)
	defer timer.Stop()
	type started struct {
		done <-chan struct{}
		err  error
	}
	startc := make(chan started, 1)
	go func() {
		done, err := s.db.AsyncFlush()
		startc <- started{done, err}
	}()
	var st started
	select {
	case st = <-startc:
	case <-timer.C:
		return true, fmt.Errorf("storage: flush on close: not started within %v", s.opts.CloseFlushTimeout)
	}
	if st.err != nil {
		return false, fmt.Errorf("storage: flush on close: %w", st.err)
	}
	select {
	case <-st.done:
		return false, nil
	case <-timer.C:
		return false, fmt.Errorf("storage: flush on close: not done within %v", s.opts.CloseFlushTimeout)
	}
}

// Dir returns the directory of the store.
func (s *Store) Dir() string { return s.dir }

// DataVersion returns the value schema version of the store (1 for new stores).
func (s *Store) DataVersion() uint32 { return s.dataVersion }

// LastAppliedDecree returns the decree of the last applied mutation (0 for a new store).
func (s *Store) LastAppliedDecree() int64 { return s.lastApplied.Load() }

// LastDurableDecree returns the highest decree whose effects survive a crash. With the
// WAL off this is the decree recorded in the flushed state (sstables only), read back
// from disk rather than tracked, so that it is exact whatever triggered the flushes;
// with the WAL on every applied mutation is synced and this is LastAppliedDecree. On a
// read error it logs and returns 0, which only makes the caller keep more log.
func (s *Store) LastDurableDecree() int64 {
	if !s.opts.DisableWAL {
		return s.lastApplied.Load()
	}
	if err := s.acquire(); err != nil {
		return 0
	}
	defer s.release()
	d, _, err := s.readDecree(&pebble.IterOptions{
		LowerBound:                []byte(metaDecreeKey),
		UpperBound:                keys.KeySuccessor([]byte(metaDecreeKey)),
		OnlyReadGuaranteedDurable: true,
	})
	if err != nil {
		s.log.Error("reading durable decree", "err", err)
		return 0
	}
	return d
}

// Flush writes the memtables to sstables and waits for it, making everything applied so
// far durable. If ctx ends first Flush returns its error; the flush itself continues.
func (s *Store) Flush(ctx context.Context) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	return s.flush(ctx)
}

// flush starts a flush once the previous one is done, and waits for it. While
// flushes fail (a full disk) each new one would queue one more memtable for a flush
// that does not come, until Pebble stalls every write; waiting keeps the queue at
// one forced flush.
func (s *Store) flush(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: flush: %w", err)
	}
	// Callers waiting on the same previous flush must not each start one: the
	// check and the start happen under flushMu, and a waiter looks again.
	var done <-chan struct{}
	for done == nil {
		s.flushMu.Lock()
		prev := s.lastFlush
		if prev != nil {
			select {
			case <-prev:
				prev = nil
			default:
			}
		}
		if prev == nil {
			d, err := s.db.AsyncFlush()
			if err != nil {
				s.flushMu.Unlock()
				return fmt.Errorf("storage: flush: %w", err)
			}
			s.lastFlush, done = d, d
			s.flushMu.Unlock()
			break
		}
		s.flushMu.Unlock()
		select {
		case <-prev:
		case <-ctx.Done():
			return fmt.Errorf("storage: flush: the previous flush is not done: %w", ctx.Err())
		}
	}
	select {
	case <-done:
		s.estMu.Lock()
		s.estAt = time.Time{} // the flushed records count from now on
		s.estMu.Unlock()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("storage: flush: %w", ctx.Err())
	}
}

// Checkpoint writes a consistent copy of the store into dir (which must not exist) and
// returns the decree it contains. Writes are held off while the memtables are flushed
// and the checkpoint is cut, so the checkpoint holds exactly decrees 1..decree; a store
// opened from dir reports that decree. The copy hard-links sstables where possible.
func (s *Store) Checkpoint(ctx context.Context, dir string) (int64, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	decree := s.lastApplied.Load()
	if s.opts.DisableWAL {
		// Without a WAL the checkpoint only carries sstables.
		if err := s.flush(ctx); err != nil {
			return 0, fmt.Errorf("storage: checkpoint: %w", err)
		}
	}
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return 0, fmt.Errorf("storage: checkpoint into %s: %w", dir, err)
	}
	return decree, nil
}

// SizeOnDisk returns the bytes the store occupies on disk (sstables, WAL, manifests).
func (s *Store) SizeOnDisk() int64 {
	if err := s.acquire(); err != nil {
		return 0
	}
	defer s.release()
	return int64(s.db.Metrics().DiskSpaceUsage())
}

// Stats are engine figures for monitoring.
type Stats struct {
	SSTFiles         int64
	SSTBytes         int64
	MemtableBytes    int64
	BlockCacheHits   int64
	BlockCacheMisses int64
	// EstimatedKeys estimates the records of the store as RocksDB's
	// rocksdb.estimate-num-keys does: over the sstables, entries minus twice the
	// deletions (a deletion hides one record and is one entry), over the
	// sstables and the memtables. Pebble gives no entry counts for memtables, so
	// their share is the data records written since the last flush, counted by
	// the store (see Store.memEntries): an estimate, like RocksDB's.
	EstimatedKeys int64
	// IndexFilterBytes is the size of the sstables' index and filter blocks (from
	// their properties, read with EstimatedKeys): what RocksDB's
	// estimate-table-readers-mem counts, the memory they take once read.
	IndexFilterBytes int64
}

// ReadCounts returns how many records the reads of this store skipped since it
// was opened: expired ones (get, multi_get, batch_get, sortkey_count, ttl,
// scan), and ones a multi_get or scan filter left out.
func (s *Store) ReadCounts() (expired, filtered int64) {
	return s.readExpired.Load(), s.readFiltered.Load()
}

// Stats reads the engine's figures (zero when the store is closed).
func (s *Store) Stats() Stats {
	if err := s.acquire(); err != nil {
		return Stats{}
	}
	defer s.release()
	m := s.db.Metrics()
	st := Stats{
		MemtableBytes:    int64(m.MemTable.Size),
		BlockCacheHits:   m.BlockCache.Hits,
		BlockCacheMisses: m.BlockCache.Misses,
	}
	for _, l := range m.Levels {
		st.SSTFiles += l.NumFiles
		st.SSTBytes += l.Size
	}
	st.EstimatedKeys, st.IndexFilterBytes = s.estimateKeys()
	return st
}

// estimateKeys sums the sstables' entry and deletion counts (read from their
// properties, which Pebble caches with the open tables) and the memtables'
// counted ones, and the sizes of the sstables' index and filter blocks.
func (s *Store) estimateKeys() (n, indexFilterBytes int64) {
	s.estMu.Lock()
	defer s.estMu.Unlock()
	now := time.Now()
	if !s.estAt.IsZero() && now.Sub(s.estAt) < estimateTTL {
		return s.estVal, s.estIdx
	}
	entries, deletions, idx := s.countKeys()
	entries += max(s.memEntries.Load(), 0)
	deletions += max(s.memDeletions.Load(), 0)
	s.estVal, s.estIdx = max(entries-2*deletions, 0), idx
	s.estAt = now
	return s.estVal, s.estIdx
}

func (s *Store) countKeys() (entries, deletions, indexFilterBytes int64) {
	levels, err := s.db.SSTables(pebble.WithProperties())
	if err != nil {
		s.opts.Logger.Warn("reading sstable properties for the key estimate failed", "err", err)
		return 0, 0, 0
	}
	var ent, del, idx uint64
	for _, tables := range levels {
		for _, t := range tables {
			if t.Properties != nil {
				ent += t.Properties.NumEntries
				del += t.Properties.NumDeletions
				idx += t.Properties.IndexSize + t.Properties.FilterSize
			}
		}
	}
	return int64(ent), int64(del), int64(idx)
}

// partitionHash is the Pegasus partition hash of a hash key.
func (s *Store) partitionHash(hashKey []byte) uint64 {
	return crc64.Checksum(hashKey, s.crcTable)
}

// nowEpoch returns the read-side "now" in seconds since 2016-01-01.
func (s *Store) nowEpoch() uint32 { return keys.Epoch2016(s.opts.Clock()) }

// janitor expires idle scanner contexts and runs the periodic expiry sweep until ctx
// ends (Close cancels it and waits).
func (s *Store) janitor(ctx context.Context) {
	defer close(s.janitorDone)
	scanEvery := min(max(s.opts.ScannerIdleTimeout/4, time.Second), time.Minute)
	scanTick := time.NewTicker(scanEvery)
	defer scanTick.Stop()
	// Memtables are also freed without a flush event, when the last reader of
	// a flushed one lets go of it.
	refundTick := time.NewTicker(refundEvery)
	defer refundTick.Stop()
	// A nil channel never fires, which disables the periodic sweep.
	var purgeC <-chan time.Time
	var purgeTimer *time.Timer
	if s.opts.PurgeInterval > 0 {
		// Jitter spreads the sweeps of the many replicas of one node.
		first := s.opts.PurgeInterval/2 + rand.N(s.opts.PurgeInterval/2+1)
		purgeTimer = time.NewTimer(first)
		defer purgeTimer.Stop()
		purgeC = purgeTimer.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-scanTick.C:
			s.scanners.expire(s.opts.Clock())
		case <-s.memChanged:
			s.refundMemtables()
		case <-refundTick.C:
			s.refundMemtables()
		case <-purgeC:
			if n, err := s.PurgeExpired(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("expiry sweep", "err", err)
			} else if n > 0 {
				s.log.Info("expiry sweep", "purged", n)
			}
			purgeTimer.Reset(s.opts.PurgeInterval)
		}
	}
}
