package storage

import (
	"sync"

	"github.com/cockroachdb/pebble"
)

// Pebble charges its memtables to the block cache: every memtable it allocates,
// and the one it keeps for reuse, reserves its size in Options.Cache, which
// shrinks what the cache may hold for blocks by as much. The configured capacity
// (rocksdb_block_cache_capacity) is meant for blocks alone: RocksDB charges
// write buffers to its block cache only with a write buffer manager, which
// Pegasus does not set up. On a replica server the cache is shared by every
// partition, and their memtables together reserve more than the whole cache:
// it then holds no block at all, and every read goes to the files (the onebox
// read benchmark measured no hit and about nine misses per get, 17% of a
// replica's CPU in pread). So each store gives back to the cache what its own
// memtables reserve, and takes it back when they shrink and when it closes.

// memtableRefund is what one store has given back to its block cache.
type memtableRefund struct {
	mu    sync.Mutex
	cache *pebble.Cache
	total int64  // bytes given back
	undo  func() // takes them back; nil when total is 0
}

// set makes the refund reserved bytes.
func (r *memtableRefund) set(reserved int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cache == nil || reserved == r.total {
		return
	}
	// The new refund first, then the old one taken back: the cache's target
	// never dips below where it ends, so no block is evicted on the way.
	var undo func()
	if reserved > 0 {
		// A negative reservation raises the cache's target size.
		undo = r.cache.Reserve(-int(reserved))
	}
	if r.undo != nil {
		r.undo()
	}
	r.undo, r.total = undo, reserved
}

// given returns the bytes given back.
func (r *memtableRefund) given() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// memtableReserved returns the bytes Pebble has reserved in the block cache for
// the store's memtables: the live ones and those waiting to be freed or reused.
func (s *Store) memtableReserved() int64 {
	m := s.db.Metrics()
	return int64(m.MemTable.Size + m.MemTable.ZombieSize)
}

// refundMemtables brings the store's refund to the block cache up to date.
func (s *Store) refundMemtables() {
	if err := s.acquire(); err != nil {
		return
	}
	defer s.release()
	s.refund.set(s.memtableReserved())
}

// memtablesChanged tells the janitor that the memtables changed (a flush began
// or ended). It never blocks: Pebble calls it with its mutex held.
func (s *Store) memtablesChanged() {
	select {
	case s.memChanged <- struct{}{}:
	default:
	}
}
