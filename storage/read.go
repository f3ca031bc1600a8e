package storage

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// Reads return a response that is always complete enough to send (every non-optional
// blob and list present) together with a Go error for engine failures; on such a failure
// the response carries a matching rrdb code (8 after Close, 5 for I/O, 2 for a record
// that does not decode), so a caller may log the error and still answer.

// timeBudget bounds one iteration by IterationTimeLimit, reading the clock only every
// few steps to keep it off the per-record cost.
type timeBudget struct {
	clock    func() time.Time
	deadline time.Time
	steps    int
}

func (s *Store) newBudget() timeBudget {
	if s.opts.IterationTimeLimit <= 0 {
		return timeBudget{}
	}
	return timeBudget{clock: s.opts.Clock, deadline: s.opts.Clock().Add(s.opts.IterationTimeLimit)}
}

func (b *timeBudget) exceeded() bool {
	if b.clock == nil {
		return false
	}
	b.steps++
	return b.steps%64 == 0 && !b.clock().Before(b.deadline)
}

// errCode maps an engine error to the rrdb code reported with it.
func errCode(err error) int32 {
	switch {
	case errors.Is(err, ErrClosed):
		return CodeShutdownInProgress
	case errors.Is(err, keys.ErrValueTooShort), errors.Is(err, keys.ErrDataVersion):
		return CodeCorruption
	default:
		return CodeIOError
	}
}

// lookup reads one composite key through r and returns a copy of its user value and
// expiry; found is false for absent and expired records.
func (s *Store) lookup(r pebble.Reader, key []byte, now uint32) (value []byte, expire uint32, found bool, err error) {
	raw, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("storage: get %x: %w", key, err)
	}
	defer closer.Close()
	v, err := keys.DecodeValue(s.dataVersion, raw)
	if err != nil {
		return nil, 0, false, fmt.Errorf("storage: record %x: %w", key, err)
	}
	if keys.IsExpired(v.ExpireTS, now) {
		s.readExpired.Add(1)
		return nil, 0, false, nil
	}
	return bytes.Clone(v.UserValue), v.ExpireTS, true, nil
}

// Get reads one record by composite key: error 1 when it is absent, expired, or the key
// is not a valid composite key (which also keeps the engine's internal records out of
// reach).
func (s *Store) Get(key []byte) (*rrdb.ReadResponse, error) {
	resp := &rrdb.ReadResponse{Value: &base.Blob{}}
	if err := s.acquire(); err != nil {
		resp.Error = errCode(err)
		return resp, err
	}
	defer s.release()
	if _, _, err := keys.DecodeKey(key); err != nil {
		resp.Error = CodeNotFound
		return resp, nil
	}
	value, _, found, err := s.lookup(s.db, key, s.nowEpoch())
	switch {
	case err != nil:
		resp.Error = errCode(err)
		return resp, err
	case !found:
		resp.Error = CodeNotFound
	default:
		resp.Value.Data = value
	}
	return resp, nil
}

// TTL returns the remaining time to live of a record in seconds, -1 when it has no
// expiry, and error 1 when it is absent or expired.
func (s *Store) TTL(key []byte) (*rrdb.TTLResponse, error) {
	resp := &rrdb.TTLResponse{}
	if err := s.acquire(); err != nil {
		resp.Error = errCode(err)
		return resp, err
	}
	defer s.release()
	if _, _, err := keys.DecodeKey(key); err != nil {
		resp.Error = CodeNotFound
		return resp, nil
	}
	now := s.nowEpoch()
	_, expire, found, err := s.lookup(s.db, key, now)
	switch {
	case err != nil:
		resp.Error = errCode(err)
		return resp, err
	case !found:
		resp.Error = CodeNotFound
	default:
		resp.TTLSeconds = int32(min(keys.RemainingTTL(expire, now), 1<<31-1))
	}
	return resp, nil
}

// SortkeyCount counts the unexpired records of a hash key. If the iteration time limit
// ends the count early the answer is -1 (with error 0), as in the reference server.
func (s *Store) SortkeyCount(hashKey []byte) (*rrdb.CountResponse, error) {
	resp := &rrdb.CountResponse{}
	if err := s.acquire(); err != nil {
		resp.Error = errCode(err)
		return resp, err
	}
	defer s.release()
	if len(hashKey) > keys.MaxHashKeyLen {
		resp.Error = CodeInvalidArgument
		return resp, nil
	}
	lower := keys.AppendKey(nil, hashKey, nil)
	upper, _ := keys.HashKeyEnd(hashKey)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		resp.Error = errCode(err)
		return resp, fmt.Errorf("storage: sortkey_count: %w", err)
	}
	defer it.Close()
	now := s.nowEpoch()
	budget := s.newBudget()
	// Counted locally and added once: one shared atomic add per skipped record
	// makes concurrent scans of expired ranges contend on a cache line.
	var expired int64
	defer func() { s.readExpired.Add(expired) }()
	for valid := it.First(); valid; valid = it.Next() {
		if budget.exceeded() {
			resp.Count = -1
			return resp, nil
		}
		raw, err := it.ValueAndErr()
		if err != nil {
			resp.Error, resp.Count = errCode(err), 0
			return resp, fmt.Errorf("storage: sortkey_count: %w", err)
		}
		v, err := keys.DecodeValue(s.dataVersion, raw)
		if err != nil {
			resp.Error, resp.Count = CodeCorruption, 0
			return resp, fmt.Errorf("storage: record %x: %w", it.Key(), err)
		}
		if !keys.IsExpired(v.ExpireTS, now) {
			resp.Count++
		} else {
			expired++
		}
	}
	if err := it.Error(); err != nil {
		resp.Error, resp.Count = errCode(err), 0
		return resp, fmt.Errorf("storage: sortkey_count: %w", err)
	}
	return resp, nil
}

// multiGetLimits returns the caps of one multi_get: records iterated (returned or
// skipped as expired/filtered) and bytes returned. A request limit <= 0 means the
// server cap, and a request cannot raise the server cap.
func (s *Store) multiGetLimits(req *rrdb.MultiGetRequest) (count, size int) {
	count, size = s.opts.MultiGetMaxKVCount, s.opts.MultiGetMaxKVSize
	if req.MaxKvCount > 0 {
		count = min(count, int(req.MaxKvCount))
	}
	if req.MaxKvSize > 0 {
		size = min(size, int(req.MaxKvSize))
	}
	return count, size
}

// MultiGet reads records of one hash key, either the listed sort keys (point form) or
// a sort-key range (range form, when SortKeys is empty). Keys in the answer are sort
// keys; the range form answers in ascending order even when reverse, the point form in
// request order. Error 7 says that a limit (max_kv_count, max_kv_size, the server caps
// or the time limit) cut the answer short while more records were left.
//
// Range form: [start, stop] with the inclusive flags, an empty stop meaning the end of
// the hash key; a non-empty FT_MATCH_PREFIX filter narrows the range to the prefix.
// Iteration walks every stored record of the range, counting expired and filtered ones
// against the count cap. Point form: the sort-key filter does not apply, and the count
// and size limits apply to returned records.
func (s *Store) MultiGet(req *rrdb.MultiGetRequest) (*rrdb.MultiGetResponse, error) {
	resp := &rrdb.MultiGetResponse{Kvs: []*rrdb.KeyValue{}}
	if err := s.acquire(); err != nil {
		resp.Error = errCode(err)
		return resp, err
	}
	defer s.release()
	h := req.HashKey.Bytes()
	if len(h) > keys.MaxHashKeyLen || !filterTypeSupported(req.SortKeyFilterType) {
		resp.Error = CodeInvalidArgument
		return resp, nil
	}
	var err error
	if len(req.SortKeys) > 0 {
		err = s.multiGetPoints(req, h, resp)
	} else {
		err = s.multiGetRange(req, h, resp)
	}
	if err != nil {
		resp.Error, resp.Kvs = errCode(err), []*rrdb.KeyValue{}
	}
	return resp, err
}

func (s *Store) multiGetPoints(req *rrdb.MultiGetRequest, h []byte, resp *rrdb.MultiGetResponse) error {
	maxCount, maxSize := s.multiGetLimits(req)
	snap := s.db.NewSnapshot()
	defer snap.Close()
	now := s.nowEpoch()
	size := 0
	key := make([]byte, 0, 64)
	for _, sk := range req.SortKeys {
		if len(resp.Kvs) >= maxCount || size >= maxSize {
			// This key and maybe more are left unread.
			resp.Error = CodeIncomplete
			break
		}
		key = keys.AppendKey(key[:0], h, sk.Bytes())
		value, _, found, err := s.lookup(snap, key, now)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		if req.NoValue {
			value = nil
		}
		resp.Kvs = append(resp.Kvs, &rrdb.KeyValue{Key: &base.Blob{Data: bytes.Clone(sk.Bytes())}, Value: &base.Blob{Data: value}})
		size += len(sk.Bytes()) + len(value)
	}
	return nil
}

// rangeBounds computes the [lower, upper) iteration bounds of a range multi_get; ok is
// false when the range is empty.
func rangeBounds(req *rrdb.MultiGetRequest, h []byte) (lower, upper []byte, ok bool) {
	lower = keys.AppendKey(nil, h, req.StartSortkey.Bytes())
	if !req.StartInclusive {
		lower = keys.KeySuccessor(lower)
	}
	if req.StopSortkey.Len() == 0 {
		upper, _ = keys.HashKeyEnd(h)
	} else {
		upper = keys.AppendKey(nil, h, req.StopSortkey.Bytes())
		if req.StopInclusive {
			upper = keys.KeySuccessor(upper)
		}
	}
	if p := req.SortKeyFilterPattern.Bytes(); req.SortKeyFilterType == rrdb.FilterType_FT_MATCH_PREFIX && len(p) > 0 {
		prefixStart := keys.AppendKey(nil, h, p)
		if bytes.Compare(prefixStart, lower) > 0 {
			lower = prefixStart
		}
		// Non-nil: the u16 length prefix of a valid hash key always has a non-FF byte.
		if prefixEnd := keys.PrefixSuccessor(prefixStart); bytes.Compare(prefixEnd, upper) < 0 {
			upper = prefixEnd
		}
	}
	return lower, upper, bytes.Compare(lower, upper) < 0
}

func (s *Store) multiGetRange(req *rrdb.MultiGetRequest, h []byte, resp *rrdb.MultiGetResponse) error {
	lower, upper, ok := rangeBounds(req, h)
	if !ok {
		return nil
	}
	maxCount, maxSize := s.multiGetLimits(req)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("storage: multi_get: %w", err)
	}
	defer it.Close()
	step, valid := it.Next, it.First()
	if req.Reverse {
		step, valid = it.Prev, it.Last()
	}
	now := s.nowEpoch()
	budget := s.newBudget()
	iterated, size := 0, 0
	var expired, filtered int64 // added once at the end, see SortkeyCount
	defer func() {
		s.readExpired.Add(expired)
		s.readFiltered.Add(filtered)
	}()
	for ; valid; valid = step() {
		if iterated >= maxCount || size >= maxSize || budget.exceeded() {
			// The iterator still holds a record of the range: the answer is partial.
			resp.Error = CodeIncomplete
			break
		}
		iterated++
		_, sk, err := keys.DecodeKey(it.Key())
		if err != nil {
			continue
		}
		if !matchFilter(req.SortKeyFilterType, req.SortKeyFilterPattern.Bytes(), sk) {
			filtered++
			continue
		}
		raw, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("storage: multi_get: %w", err)
		}
		v, err := keys.DecodeValue(s.dataVersion, raw)
		if err != nil {
			return fmt.Errorf("storage: record %x: %w", it.Key(), err)
		}
		if keys.IsExpired(v.ExpireTS, now) {
			expired++
			continue
		}
		kv := &rrdb.KeyValue{Key: &base.Blob{Data: bytes.Clone(sk)}, Value: &base.Blob{}}
		if !req.NoValue {
			kv.Value.Data = bytes.Clone(v.UserValue)
		}
		resp.Kvs = append(resp.Kvs, kv)
		size += len(sk) + len(kv.Value.Data)
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("storage: multi_get: %w", err)
	}
	if req.Reverse {
		slices.Reverse(resp.Kvs)
	}
	return nil
}

// BatchGet reads (hash key, sort key) pairs, possibly of different hash keys, from one
// consistent snapshot and returns the found, unexpired ones in request order. An empty
// key list or an unencodable hash key is error 4.
func (s *Store) BatchGet(req *rrdb.BatchGetRequest) (*rrdb.BatchGetResponse, error) {
	resp := &rrdb.BatchGetResponse{Data: []*rrdb.FullData{}}
	if err := s.acquire(); err != nil {
		resp.Error = errCode(err)
		return resp, err
	}
	defer s.release()
	if len(req.Keys) == 0 {
		resp.Error = CodeInvalidArgument
		return resp, nil
	}
	for _, k := range req.Keys {
		if k == nil || k.HashKey.Len() > keys.MaxHashKeyLen {
			resp.Error = CodeInvalidArgument
			return resp, nil
		}
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	now := s.nowEpoch()
	key := make([]byte, 0, 64)
	for _, k := range req.Keys {
		key = keys.AppendKey(key[:0], k.HashKey.Bytes(), k.SortKey.Bytes())
		value, _, found, err := s.lookup(snap, key, now)
		if err != nil {
			resp.Error, resp.Data = errCode(err), []*rrdb.FullData{}
			return resp, err
		}
		if found {
			resp.Data = append(resp.Data, &rrdb.FullData{
				HashKey: &base.Blob{Data: bytes.Clone(k.HashKey.Bytes())},
				SortKey: &base.Blob{Data: bytes.Clone(k.SortKey.Bytes())},
				Value:   &base.Blob{Data: value},
			})
		}
	}
	return resp, nil
}
