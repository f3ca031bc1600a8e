package kv

import (
	"bytes"
	"context"
	"fmt"
	"math"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// ScannerOptions tune scanners. The zero value scans with the defaults.
type ScannerOptions struct {
	// BatchSize is the number of records asked per round trip (default 1000; the
	// server caps it).
	BatchSize int
	// StartInclusive and StopInclusive say whether the sort-key bounds of GetScanner
	// are included. Nil means the default: start included, stop excluded. Full
	// table scans ignore them.
	StartInclusive, StopInclusive *bool
	// HashKeyFilter and SortKeyFilter keep only the matching records (filtered on
	// the server).
	HashKeyFilter, SortKeyFilter Filter
	// NoValue returns keys only (values are empty).
	NoValue bool
}

const defaultBatchSize = 1000

// Scanner states of the server-side context.
const (
	ctxNotOpen  = -2 // GET_SCANNER has not been sent for the current range
	ctxFinished = -1 // the server said the current range is done
)

// Scanner iterates over records in composite-key order within each partition: the
// sort keys of one hash key (GetScanner), or the partitions of a table one after the
// other (GetUnorderedScanners). A Scanner is not safe for concurrent use.
type Scanner struct {
	t    *Table
	op   string
	opts ScannerOptions

	// Range of every partition scanned, as composite keys.
	start, stop               []byte
	startIncl, stopIncl       bool
	validateHash              bool
	ordered                   bool
	hash                      uint64 // header partition hash of an ordered scanner
	partitions                []int  // partitions still to scan (unordered), the current first
	contextID                 int64
	lastKey                   []byte // last composite key handed out in the current range
	batch                     []*rrdb.KeyValue
	pos                       int
	closed, done              bool
	reopens                   int // contexts lost and reopened, for tests
	contextPidx, contextCount int // where contextID lives, for CLEAR_SCANNER
}

// GetScanner returns a scanner over the sort keys of hashKey from start to stop. An
// empty start means the first sort key, an empty stop the end of the hash key. With a
// prefix sort-key filter the range is narrowed to the prefix. Nothing is sent until
// the first Next, so ctx is not used yet.
func (t *Table) GetScanner(ctx context.Context, hashKey, start, stop []byte, opts ScannerOptions) (*Scanner, error) {
	const op = "GetScanner"
	if err := t.checkHashKey(op, hashKey); err != nil {
		return nil, err
	}
	if opts.BatchSize < 0 {
		return nil, invalidArg(op, t.name, "negative batch size %d", opts.BatchSize)
	}
	s := &Scanner{
		t: t, op: "Scanner.Next", opts: opts, ordered: true, hash: rpc.PartitionHash(hashKey),
		start:     keys.AppendKey(nil, hashKey, start),
		startIncl: opts.StartInclusive == nil || *opts.StartInclusive,
		contextID: ctxNotOpen,
	}
	if len(stop) == 0 {
		// The end of the hash key, whatever its sort keys start with.
		s.stop, _ = keys.HashKeyEnd(hashKey)
	} else {
		s.stop = keys.AppendKey(nil, hashKey, stop)
		s.stopIncl = opts.StopInclusive != nil && *opts.StopInclusive
	}
	if f := opts.SortKeyFilter; f.Type == rrdb.FilterType_FT_MATCH_PREFIX && len(f.Pattern) > 0 {
		// Records outside the prefix would all be filtered out: do not read them.
		prefixStart := keys.AppendKey(nil, hashKey, f.Pattern)
		if bytes.Compare(prefixStart, s.start) > 0 {
			s.start, s.startIncl = prefixStart, true
		}
		if prefixEnd := keys.PrefixSuccessor(prefixStart); bytes.Compare(prefixEnd, s.stop) < 0 ||
			bytes.Equal(prefixEnd, s.stop) && s.stopIncl {
			s.stop, s.stopIncl = prefixEnd, false
		}
	}
	return s, nil
}

// GetUnorderedScanners splits a full scan of the table into at most maxSplit
// scanners, each covering a contiguous run of partitions that it scans one after
// another. Together they return every record of the table exactly once (records
// written or deleted during the scan may or may not be seen). Records are in key
// order within a partition only. Nothing is sent until the first Next.
func (t *Table) GetUnorderedScanners(ctx context.Context, maxSplit int, opts ScannerOptions) ([]*Scanner, error) {
	const op = "GetUnorderedScanners"
	if maxSplit <= 0 {
		return nil, invalidArg(op, t.name, "maxSplit %d, want >= 1", maxSplit)
	}
	if opts.BatchSize < 0 {
		return nil, invalidArg(op, t.name, "negative batch size %d", opts.BatchSize)
	}
	count := t.PartitionCount()
	n := min(maxSplit, count)
	out := make([]*Scanner, 0, n)
	next := 0
	for i := range n {
		size := count / n
		if i < count%n {
			size++
		}
		s := &Scanner{
			t: t, op: "Scanner.Next", opts: opts,
			// The whole user key space of the partition: 00 00 up to FF FF.
			start: []byte{0, 0}, startIncl: true,
			stop:         []byte{0xFF, 0xFF},
			validateHash: true,
			contextID:    ctxNotOpen,
		}
		for p := next; p < next+size; p++ {
			s.partitions = append(s.partitions, p)
		}
		next += size
		out = append(out, s)
	}
	return out, nil
}

// Next returns the next record. ok is false once the scan is complete (or the
// scanner closed). An error leaves the scanner where it was: Next may be called
// again to retry.
func (s *Scanner) Next(ctx context.Context) (hashKey, sortKey, value []byte, ok bool, err error) {
	for {
		if s.closed || s.done {
			return nil, nil, nil, false, nil
		}
		if s.pos < len(s.batch) {
			kv := s.batch[s.pos]
			s.pos++
			key := kv.Key.Bytes()
			h, sk, err := keys.DecodeKey(key)
			if err != nil {
				return nil, nil, nil, false, &Error{Op: s.op, Table: s.t.name, Code: base.ErrInvalidData, Err: fmt.Errorf("reply holds a bad key: %w", err)}
			}
			s.lastKey = key
			return h, nonNil(sk), nonNil(kv.Value.Bytes()), true, nil
		}
		switch {
		case s.contextID == ctxFinished:
			s.nextPartition()
			continue
		case s.contextID == ctxNotOpen:
			err = s.open(ctx)
		default:
			err = s.scan(ctx)
		}
		if err != nil {
			return nil, nil, nil, false, err
		}
	}
}

// nextPartition moves an unordered scanner to its next partition, or ends the scan.
func (s *Scanner) nextPartition() {
	if !s.ordered && len(s.partitions) > 1 {
		s.partitions = s.partitions[1:]
		s.lastKey = nil
		s.contextID = ctxNotOpen
		return
	}
	s.done = true
}

func (s *Scanner) target() target {
	if s.ordered {
		hash := s.hash
		return func(r *routing) (int, uint64, error) {
			return rpc.PartitionIndex(hash, r.count), hash, nil
		}
	}
	// Unordered scanners carry the partition index as their partition hash, which
	// passes the server's split check for that partition.
	p := s.partitions[0]
	return byPartition(p, uint64(p))
}

// open sends GET_SCANNER for the current range, resuming after the last key handed
// out when a context was lost.
func (s *Scanner) open(ctx context.Context) error {
	if !s.ordered && len(s.partitions) == 0 {
		s.done = true
		return nil
	}
	batch := s.opts.BatchSize
	if batch == 0 {
		batch = defaultBatchSize
	}
	req := &rrdb.GetScannerRequest{
		StartKey:              base.NewBlob(s.start),
		StopKey:               base.NewBlob(s.stop),
		StartInclusive:        s.startIncl,
		StopInclusive:         s.stopIncl,
		BatchSize:             int32(min(batch, math.MaxInt32)),
		NoValue:               s.opts.NoValue,
		HashKeyFilterType:     s.opts.HashKeyFilter.Type,
		HashKeyFilterPattern:  base.NewBlob(s.opts.HashKeyFilter.Pattern),
		SortKeyFilterType:     s.opts.SortKeyFilter.Type,
		SortKeyFilterPattern:  base.NewBlob(s.opts.SortKeyFilter.Pattern),
		ValidatePartitionHash: Bool(s.validateHash),
	}
	if s.lastKey != nil {
		req.StartKey, req.StartInclusive = base.NewBlob(s.lastKey), false
	}
	op := opSpec{name: s.op, code: rpc.CodeGetScanner}
	resp, err := call[rrdb.ScanResponse](ctx, s.t, op, s.target(), req)
	if err != nil {
		return err
	}
	return s.accept(op, resp)
}

// scan sends SCAN for the live context; a context the server lost (error 1: expired,
// evicted, or a new primary) is reopened from the last key handed out.
func (s *Scanner) scan(ctx context.Context) error {
	op := opSpec{name: s.op, code: rpc.CodeScan}
	resp, err := call[rrdb.ScanResponse](ctx, s.t, op, s.target(), &rrdb.ScanRequest{ContextID: s.contextID})
	if err != nil {
		return err
	}
	if resp.Error == StatusNotFound {
		s.t.c.log.Debug("scanner context lost, reopening", "table", s.t.name, "context", s.contextID)
		s.contextID = ctxNotOpen
		s.reopens++
		return nil
	}
	return s.accept(op, resp)
}

// accept takes a GET_SCANNER or SCAN reply. Error 7 (the server's time budget ended
// the batch early) still carries records and a valid context, so the scan goes on.
func (s *Scanner) accept(op opSpec, resp *rrdb.ScanResponse) error {
	if resp.Error != StatusOK && resp.Error != StatusIncomplete {
		hint := ""
		if resp.Error == StatusInvalidArgument {
			hint = "unsupported filter type"
		}
		return storageError(op.name, s.t.name, resp.Error, hint)
	}
	s.batch, s.pos = resp.Kvs, 0
	s.contextID = resp.ContextID
	if s.contextID < 0 {
		s.contextID = ctxFinished
	} else {
		r := s.t.route.Load()
		if pidx, _, err := s.target()(r); err == nil {
			s.contextPidx, s.contextCount = pidx, r.count
		}
	}
	return nil
}

// Close ends the scan. When a server-side context is still open it sends the
// one-way RPC_RRDB_RRDB_CLEAR_SCANNER (servers never answer it) so the server can
// free it at once; it does not wait for anything else. The error only reports that
// the request could not be queued: the server discards idle contexts anyway.
func (s *Scanner) Close(ctx context.Context) error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.batch = nil
	if s.contextID < 0 {
		return nil
	}
	id := s.contextID
	s.contextID = ctxFinished
	r := s.t.route.Load()
	if r.count != s.contextCount || s.contextPidx >= r.count {
		return nil
	}
	p := r.parts[s.contextPidx]
	if p.session == nil {
		return nil
	}
	hash := s.hash
	if !s.ordered {
		hash = uint64(s.contextPidx)
	}
	err := p.session.Call(ctx, rpc.Request{Code: rpc.CodeClearScanner, AppID: r.appID, PartitionIndex: int32(s.contextPidx),
		PartitionHash: hash, Args: &rpc.I64{V: id}}, nil)
	if err != nil {
		return &Error{Op: "Scanner.Close", Table: s.t.name, Code: rpc.ErrorCode(err), Err: err}
	}
	return nil
}
