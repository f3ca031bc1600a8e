package storage

import (
	"bytes"
	"container/list"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// scanContext is the state of an open scanner between two batches. It keeps its Pebble
// iterator open, positioned on the first record not yet examined, so a scan reads one
// consistent snapshot across batches (as the reference server's RocksDB iterator does).
// The price is that an open context pins the memtables and sstables of its snapshot;
// the idle timeout and the bound on open contexts limit that.
type scanContext struct {
	it             *pebble.Iterator
	batchSize      int
	noValue        bool
	returnExpireTS bool
	onlyCount      bool
	validateHash   bool
	pidx           uint64
	partitionCount uint64
	hashFilter     rrdb.FilterType
	hashPattern    []byte
	sortFilter     rrdb.FilterType
	sortPattern    []byte

	// Cache of the partition check of the last hash key seen: consecutive records
	// usually share their hash key.
	lastHash    []byte
	lastHashOK  bool
	lastHashSet bool

	lastUsed time.Time
	elem     *list.Element // position in scannerTable.lru while stored
	id       int64
}

func (c *scanContext) close() {
	if c.it != nil {
		_ = c.it.Close()
		c.it = nil
	}
}

// scannerTable holds the stored scan contexts, bounded in number (least recently used
// evicted) and in idle time.
type scannerTable struct {
	mu     sync.Mutex
	byID   map[int64]*scanContext
	lru    *list.List // front = most recently stored
	nextID int64
	max    int
	idle   time.Duration
}

func newScannerTable(maxContexts int, idle time.Duration) *scannerTable {
	return &scannerTable{
		byID: make(map[int64]*scanContext),
		lru:  list.New(),
		// Ids start at a random multiple of 2^32, so that ids handed out before a restart
		// are very unlikely to name a context after it (the reference server does the
		// same). 31 random bits keep every id positive.
		nextID: int64(rand.Uint32()>>1) << 32,
		max:    maxContexts,
		idle:   idle,
	}
}

// put stores c under a new id and returns the id, evicting the least recently used
// context when the table is full.
func (t *scannerTable) put(c *scanContext, now time.Time) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.byID) >= t.max {
		oldest := t.lru.Back().Value.(*scanContext)
		t.removeLocked(oldest)
		oldest.close()
	}
	t.nextID++
	c.id, c.lastUsed = t.nextID, now
	c.elem = t.lru.PushFront(c)
	t.byID[c.id] = c
	return c.id
}

func (t *scannerTable) removeLocked(c *scanContext) {
	delete(t.byID, c.id)
	t.lru.Remove(c.elem)
	c.elem = nil
}

// take removes and returns the context of id; a context idle for too long is closed
// and reported as unknown.
func (t *scannerTable) take(id int64, now time.Time) (*scanContext, bool) {
	t.mu.Lock()
	c, ok := t.byID[id]
	if ok {
		t.removeLocked(c)
	}
	t.mu.Unlock()
	if !ok {
		return nil, false
	}
	if now.Sub(c.lastUsed) >= t.idle {
		c.close()
		return nil, false
	}
	return c, true
}

// drop discards the context of id, if any.
func (t *scannerTable) drop(id int64) {
	t.mu.Lock()
	c, ok := t.byID[id]
	if ok {
		t.removeLocked(c)
	}
	t.mu.Unlock()
	if ok {
		c.close()
	}
}

// expire closes the contexts idle for the timeout or longer.
func (t *scannerTable) expire(now time.Time) int {
	var stale []*scanContext
	t.mu.Lock()
	for e := t.lru.Back(); e != nil; {
		c := e.Value.(*scanContext)
		prev := e.Prev()
		if now.Sub(c.lastUsed) >= t.idle {
			t.removeLocked(c)
			stale = append(stale, c)
		}
		e = prev
	}
	t.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
	return len(stale)
}

func (t *scannerTable) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.byID {
		t.removeLocked(c)
		c.close()
	}
}

// len returns the number of stored contexts.
func (t *scannerTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// OpenScanners returns the number of scanner contexts currently stored.
func (s *Store) OpenScanners() int { return s.scanners.len() }

// scanBounds computes the [lower, upper) bounds of a scanner; ok is false when the range
// is empty. Upper never passes the end of the user key space.
func scanBounds(req *rrdb.GetScannerRequest) (lower, upper []byte, ok bool) {
	lower = bytes.Clone(req.StartKey.Bytes())
	if !req.StartInclusive {
		lower = keys.KeySuccessor(lower)
	}
	if bytes.Compare(lower, []byte(userKeyStart)) < 0 {
		lower = []byte(userKeyStart)
	}
	if p := req.HashKeyFilterPattern.Bytes(); req.HashKeyFilterType == rrdb.FilterType_FT_MATCH_PREFIX && len(p) > 0 {
		if len(p) > keys.MaxHashKeyLen {
			return nil, nil, false
		}
		// Hash keys shorter than the pattern sort before composite(pattern, "") and
		// cannot match; longer ones sort after it, so only the start can move.
		if start := keys.AppendKey(nil, p, nil); bytes.Compare(start, lower) > 0 {
			lower = start
		}
	}
	upper = []byte(userKeyEnd)
	if stop := req.StopKey.Bytes(); len(stop) > 0 {
		if req.StopInclusive {
			stop = keys.KeySuccessor(stop)
		}
		if bytes.Compare(stop, upper) < 0 {
			upper = bytes.Clone(stop)
		}
	}
	return lower, upper, bytes.Compare(lower, upper) < 0
}

func newScanResponse() *rrdb.ScanResponse {
	return &rrdb.ScanResponse{Kvs: []*rrdb.KeyValue{}, ContextID: -1}
}

// GetScanner starts a scan over the composite key range of req and returns its first
// batch. pidx and partitionCount identify the partition this store serves; with
// validate_partition_hash (true when unset, the IDL default) and partitionCount > 0,
// records whose hash key belongs to another partition are skipped. context_id is -1
// when the range is finished (also for an empty range), otherwise the id to pass to
// Scan. An empty stop key means "to the end of the partition".
func (s *Store) GetScanner(req *rrdb.GetScannerRequest, pidx, partitionCount int32) (*rrdb.ScanResponse, error) {
	resp := newScanResponse()
	if err := s.acquire(); err != nil {
		resp.Error = errCode(err)
		return resp, err
	}
	defer s.release()
	if req.OnlyReturnCount {
		resp.KvCount = new(int32)
	}
	if !filterTypeSupported(req.HashKeyFilterType) || !filterTypeSupported(req.SortKeyFilterType) {
		resp.Error = CodeInvalidArgument
		return resp, nil
	}
	lower, upper, ok := scanBounds(req)
	if !ok {
		return resp, nil
	}
	batch := int(req.BatchSize)
	if batch <= 0 || batch > s.opts.ScanMaxBatchSize {
		batch = s.opts.ScanMaxBatchSize
	}
	c := &scanContext{
		batchSize:      batch,
		noValue:        req.NoValue,
		returnExpireTS: req.ReturnExpireTs != nil && *req.ReturnExpireTs,
		onlyCount:      req.OnlyReturnCount,
		validateHash:   (req.ValidatePartitionHash == nil || *req.ValidatePartitionHash) && partitionCount > 0 && pidx >= 0,
		hashFilter:     req.HashKeyFilterType,
		hashPattern:    bytes.Clone(req.HashKeyFilterPattern.Bytes()),
		sortFilter:     req.SortKeyFilterType,
		sortPattern:    bytes.Clone(req.SortKeyFilterPattern.Bytes()),
	}
	if c.validateHash {
		c.pidx, c.partitionCount = uint64(pidx), uint64(partitionCount)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		resp.Error = errCode(err)
		return resp, fmt.Errorf("storage: get_scanner: %w", err)
	}
	c.it = it
	it.First()
	return s.continueScan(c, resp)
}

// Scan returns the next batch of the scanner context id. Every call consumes the id;
// when more remains the context is stored again under a new id. An unknown or expired
// id answers error 1 with context_id -1.
func (s *Store) Scan(contextID int64) (*rrdb.ScanResponse, error) {
	resp := newScanResponse()
	if err := s.acquire(); err != nil {
		resp.Error = errCode(err)
		return resp, err
	}
	defer s.release()
	c, ok := s.scanners.take(contextID, s.opts.Clock())
	if !ok {
		resp.Error = CodeNotFound
		return resp, nil
	}
	if c.onlyCount {
		resp.KvCount = new(int32)
	}
	return s.continueScan(c, resp)
}

// ClearScanner discards a scanner context; unknown ids are ignored.
func (s *Store) ClearScanner(contextID int64) {
	if s.acquire() != nil {
		return
	}
	defer s.release()
	s.scanners.drop(contextID)
}

// continueScan fills one batch from c and then stores c again or closes it.
func (s *Store) continueScan(c *scanContext, resp *rrdb.ScanResponse) (*rrdb.ScanResponse, error) {
	err := s.fillBatch(c, resp)
	if err != nil {
		c.close()
		resp.Error, resp.Kvs, resp.ContextID = errCode(err), []*rrdb.KeyValue{}, -1
		if resp.KvCount != nil {
			*resp.KvCount = 0
		}
		return resp, err
	}
	if !c.it.Valid() {
		c.close()
		resp.ContextID = -1
		return resp, nil
	}
	resp.ContextID = s.scanners.put(c, s.opts.Clock())
	return resp, nil
}

// fillBatch collects up to batchSize matching records, leaving the iterator on the first
// record it did not examine. Running out of time ends the batch early with error 7.
func (s *Store) fillBatch(c *scanContext, resp *rrdb.ScanResponse) error {
	now := s.nowEpoch()
	budget := s.newBudget()
	n := 0
	var expired, filtered int64 // added once at the end, see SortkeyCount
	defer func() {
		s.readExpired.Add(expired)
		s.readFiltered.Add(filtered)
	}()
	for it := c.it; it.Valid(); it.Next() {
		if n >= c.batchSize {
			break
		}
		if budget.exceeded() {
			resp.Error = CodeIncomplete
			break
		}
		key := it.Key()
		h, sk, err := keys.DecodeKey(key)
		if err != nil {
			// Not a composite key (e.g. the reference server's empty-key record).
			continue
		}
		if !matchFilter(c.hashFilter, c.hashPattern, h) || !matchFilter(c.sortFilter, c.sortPattern, sk) {
			filtered++
			continue
		}
		if c.validateHash && !c.ownsHashKey(s, h) {
			continue
		}
		raw, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("storage: scan: %w", err)
		}
		v, err := keys.DecodeValue(s.dataVersion, raw)
		if err != nil {
			return fmt.Errorf("storage: record %x: %w", key, err)
		}
		if keys.IsExpired(v.ExpireTS, now) {
			expired++
			continue
		}
		n++
		if c.onlyCount {
			continue
		}
		kv := &rrdb.KeyValue{Key: &base.Blob{Data: bytes.Clone(key)}, Value: &base.Blob{}}
		if !c.noValue {
			kv.Value.Data = bytes.Clone(v.UserValue)
		}
		if c.returnExpireTS {
			e := int32(v.ExpireTS)
			kv.ExpireTsSeconds = &e
		}
		resp.Kvs = append(resp.Kvs, kv)
	}
	if resp.KvCount != nil {
		*resp.KvCount = int32(n)
	}
	if err := c.it.Error(); err != nil {
		return fmt.Errorf("storage: scan: %w", err)
	}
	return nil
}

func (c *scanContext) ownsHashKey(s *Store, h []byte) bool {
	if c.lastHashSet && bytes.Equal(h, c.lastHash) {
		return c.lastHashOK
	}
	c.lastHash = append(c.lastHash[:0], h...)
	c.lastHashOK = s.partitionHash(h)%c.partitionCount == c.pidx
	c.lastHashSet = true
	return c.lastHashOK
}
