package kv

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// KV is a sort key and its value.
type KV struct {
	SortKey []byte
	Value   []byte
}

// Filter selects keys by a pattern. The zero value (FT_NO_FILTER) matches everything;
// the match types with an empty pattern match everything too.
type Filter struct {
	Type    rrdb.FilterType // FT_NO_FILTER, FT_MATCH_ANYWHERE, FT_MATCH_PREFIX, FT_MATCH_POSTFIX
	Pattern []byte
}

// Bool returns a pointer to b, for the optional flags of the option structs.
func Bool(b bool) *bool { return &b }

// MultiGetOptions tune MultiGet and MultiGetRange. The zero value reads with the
// defaults: start inclusive, stop exclusive, server-side limits.
type MultiGetOptions struct {
	// StartInclusive and StopInclusive say whether the range bounds are included
	// (MultiGetRange only). Nil means the default: start included, stop excluded.
	StartInclusive, StopInclusive *bool
	// SortKeyFilter keeps only the matching sort keys (ranges only). A prefix filter
	// also narrows the range on the server.
	SortKeyFilter Filter
	// MaxCount and MaxSize limit the records and the bytes (keys plus values)
	// returned; 0 leaves it to the server's caps. When a limit cuts the answer
	// short, complete is false.
	MaxCount, MaxSize int
	// NoValue returns sort keys only (values are empty).
	NoValue bool
	// Reverse reads from the stop end of the range, so that MaxCount keeps the last
	// records; the result is still in ascending order (ranges only).
	Reverse bool
}

// CheckAndSetOptions tune CheckAndSet.
type CheckAndSetOptions struct {
	TTL              time.Duration // TTL of the value set; 0 = none
	ReturnCheckValue bool          // return the checked value in the result
}

// CheckAndSetResult is the outcome of CheckAndSet and CheckAndMutate.
type CheckAndSetResult struct {
	// Succeed reports whether the check passed and the write was applied.
	Succeed bool
	// CheckValueReturned is set when ReturnCheckValue was asked; CheckValueExist and
	// CheckValue then describe the checked record as it was before the write.
	CheckValueReturned bool
	CheckValueExist    bool
	CheckValue         []byte
}

// CheckAndMutateResult is the outcome of CheckAndMutate.
type CheckAndMutateResult = CheckAndSetResult

// MutationOp is the kind of a Mutation.
type MutationOp int

// Mutation kinds.
const (
	MutationPut MutationOp = iota
	MutationDelete
)

// Mutation is one write of CheckAndMutate.
type Mutation struct {
	Op      MutationOp
	SortKey []byte
	Value   []byte        // MutationPut only
	TTL     time.Duration // MutationPut only; 0 = none
}

// FullKey addresses one record.
type FullKey struct {
	HashKey []byte
	SortKey []byte
}

// FullData is one record read by BatchGet.
type FullData struct {
	HashKey []byte
	SortKey []byte
	Value   []byte // nil when the record does not exist
	Exists  bool
}

// Operation descriptors. Put, remove and their multi forms are idempotent, so they
// are retried like reads; incr and the check-and-* writes only when the replica
// surely did not execute them.
var (
	opGet            = opSpec{name: "Get", code: rpc.CodeGet}
	opSet            = opSpec{name: "Set", code: rpc.CodePut, write: true}
	opDel            = opSpec{name: "Del", code: rpc.CodeRemove, write: true}
	opTTL            = opSpec{name: "TTL", code: rpc.CodeTTL}
	opExist          = opSpec{name: "Exist", code: rpc.CodeTTL}
	opIncr           = opSpec{name: "Incr", code: rpc.CodeIncr, safeOnly: true, write: true}
	opMultiSet       = opSpec{name: "MultiSet", code: rpc.CodeMultiPut, write: true}
	opMultiGet       = opSpec{name: "MultiGet", code: rpc.CodeMultiGet}
	opMultiGetRange  = opSpec{name: "MultiGetRange", code: rpc.CodeMultiGet}
	opMultiDel       = opSpec{name: "MultiDel", code: rpc.CodeMultiRemove, write: true}
	opSortKeyCount   = opSpec{name: "SortKeyCount", code: rpc.CodeSortkeyCount}
	opCheckAndSet    = opSpec{name: "CheckAndSet", code: rpc.CodeCheckAndSet, safeOnly: true, write: true}
	opCheckAndMutate = opSpec{name: "CheckAndMutate", code: rpc.CodeCheckAndMutate, safeOnly: true, write: true}
	opBatchGet       = opSpec{name: "BatchGet", code: rpc.CodeBatchGet}
)

// compositeKey validates the hash key and encodes (hashKey, sortKey).
func (t *Table) compositeKey(op string, hashKey, sortKey []byte) ([]byte, error) {
	if err := t.checkHashKey(op, hashKey); err != nil {
		return nil, err
	}
	key, err := keys.EncodeKey(hashKey, sortKey)
	if err != nil {
		return nil, invalidArg(op, t.name, "%v", err)
	}
	return key, nil
}

func (t *Table) checkHashKey(op string, hashKey []byte) error {
	if err := keys.ValidateHashKey(hashKey); err != nil {
		return invalidArg(op, t.name, "hash key: %v", err)
	}
	return nil
}

// maxExpireTS is the latest expiry a write can carry: expire_ts_seconds is an int32
// count of seconds since 2016-01-01, so it ends at 2084-01-19T03:14:07Z.
const maxExpireTS = math.MaxInt32

// MaxTTL returns the longest TTL a write sent at now can carry (about 58 years in
// 2026); a longer one is refused rather than cut to it.
func MaxTTL(now time.Time) time.Duration {
	return time.Duration(max(maxExpireTS-(now.Unix()-keys.Epoch2016Unix), 0)) * time.Second
}

// expireTS converts a relative TTL into the absolute expire_ts of a write request:
// 0 for no TTL; an error for a negative TTL or one past MaxTTL, which has no
// encoding (clamping it would quietly shorten the TTL the caller asked for). A TTL
// below one second is rounded up: truncating it would mean "never expires".
func expireTS(ttl time.Duration, now time.Time) (int32, error) {
	switch {
	case ttl < 0:
		return 0, fmt.Errorf("negative TTL %v", ttl)
	case ttl == 0:
		return 0, nil
	}
	secs := int64(max(ttl, time.Second) / time.Second)
	if limit := int64(MaxTTL(now) / time.Second); secs > limit {
		return 0, fmt.Errorf("TTL %v (%d s) is past the maximum of %d s: expire_ts is an int32 count of seconds since 2016-01-01, so no record can expire after %s",
			ttl, secs, limit, keys.TimeFromEpoch2016(maxExpireTS).UTC().Format(time.RFC3339))
	}
	return int32(secs + now.Unix() - keys.Epoch2016Unix), nil
}

// expireTS is the package expireTS reporting a refused TTL as an invalid argument
// of op.
func (t *Table) expireTS(op string, ttl time.Duration, now time.Time) (int32, error) {
	ts, err := expireTS(ttl, now)
	if err != nil {
		return 0, invalidArg(op, t.name, "%v", err)
	}
	return ts, nil
}

// Get reads the value of (hashKey, sortKey). It returns nil and no error when the
// record does not exist or has expired; an existing empty value is a non-nil empty
// slice.
func (t *Table) Get(ctx context.Context, hashKey, sortKey []byte) ([]byte, error) {
	key, err := t.compositeKey(opGet.name, hashKey, sortKey)
	if err != nil {
		return nil, err
	}
	resp, err := call[rrdb.ReadResponse](ctx, t, opGet, byHashKey(hashKey), base.NewBlob(key))
	if err != nil {
		return nil, err
	}
	switch resp.Error {
	case StatusOK:
		if v := resp.Value.Bytes(); v != nil {
			return v, nil
		}
		return []byte{}, nil
	case StatusNotFound:
		return nil, nil
	}
	return nil, storageError(opGet.name, t.name, resp.Error, "")
}

// Set writes value under (hashKey, sortKey). ttl 0 means no expiry (the table's
// default_ttl, if any, then applies).
func (t *Table) Set(ctx context.Context, hashKey, sortKey, value []byte, ttl time.Duration) error {
	key, err := t.compositeKey(opSet.name, hashKey, sortKey)
	if err != nil {
		return err
	}
	expire, err := t.expireTS(opSet.name, ttl, time.Now())
	if err != nil {
		return err
	}
	req := &rrdb.UpdateRequest{Key: base.NewBlob(key), Value: base.NewBlob(value), ExpireTsSeconds: expire}
	resp, err := call[rrdb.UpdateResponse](ctx, t, opSet, byHashKey(hashKey), req)
	if err != nil {
		return err
	}
	if resp.Error != StatusOK {
		return storageError(opSet.name, t.name, resp.Error, "")
	}
	return nil
}

// Del deletes (hashKey, sortKey); deleting a missing record is not an error.
func (t *Table) Del(ctx context.Context, hashKey, sortKey []byte) error {
	key, err := t.compositeKey(opDel.name, hashKey, sortKey)
	if err != nil {
		return err
	}
	resp, err := call[rrdb.UpdateResponse](ctx, t, opDel, byHashKey(hashKey), base.NewBlob(key))
	if err != nil {
		return err
	}
	if resp.Error != StatusOK {
		return storageError(opDel.name, t.name, resp.Error, "")
	}
	return nil
}

// TTL returns the remaining time to live of (hashKey, sortKey) in seconds, -1 when
// the record never expires. found is false when the record does not exist or has
// expired.
func (t *Table) TTL(ctx context.Context, hashKey, sortKey []byte) (seconds int32, found bool, err error) {
	return t.ttl(ctx, opTTL, hashKey, sortKey)
}

// Exist reports whether (hashKey, sortKey) exists and has not expired.
func (t *Table) Exist(ctx context.Context, hashKey, sortKey []byte) (bool, error) {
	_, found, err := t.ttl(ctx, opExist, hashKey, sortKey)
	return found, err
}

func (t *Table) ttl(ctx context.Context, op opSpec, hashKey, sortKey []byte) (int32, bool, error) {
	key, err := t.compositeKey(op.name, hashKey, sortKey)
	if err != nil {
		return 0, false, err
	}
	resp, err := call[rrdb.TTLResponse](ctx, t, op, byHashKey(hashKey), base.NewBlob(key))
	if err != nil {
		return 0, false, err
	}
	switch resp.Error {
	case StatusOK:
		return resp.TTLSeconds, true, nil
	case StatusNotFound:
		return 0, false, nil
	}
	return 0, false, storageError(op.name, t.name, resp.Error, "")
}

// Incr adds delta to the integer stored as a decimal string under (hashKey, sortKey)
// (a missing, expired or empty value counts as 0) and returns the new value. ttl 0
// keeps the record's expiry, ttl > 0 sets a new one, ttl < 0 removes it. A value that
// is not an integer, or an overflow, fails with Code kInvalidArgument.
//
// Incr is not idempotent: it is retried only after errors proving the replica did
// not execute it.
func (t *Table) Incr(ctx context.Context, hashKey, sortKey []byte, delta int64, ttl time.Duration) (int64, error) {
	key, err := t.compositeKey(opIncr.name, hashKey, sortKey)
	if err != nil {
		return 0, err
	}
	// incr's expire_ts_seconds: 0 keeps the record's expiry, -1 clears it.
	expire := int32(-1)
	if ttl >= 0 {
		if expire, err = t.expireTS(opIncr.name, ttl, time.Now()); err != nil {
			return 0, err
		}
	}
	req := &rrdb.IncrRequest{Key: base.NewBlob(key), Increment: delta, ExpireTsSeconds: expire}
	resp, err := call[rrdb.IncrResponse](ctx, t, opIncr, byHashKey(hashKey), req)
	if err != nil {
		return 0, err
	}
	if resp.Error != StatusOK {
		hint := ""
		if resp.Error == StatusInvalidArgument {
			hint = "the stored value is not a decimal int64, or the sum overflows"
		}
		return resp.NewValue_, storageError(opIncr.name, t.name, resp.Error, hint)
	}
	return resp.NewValue_, nil
}

// MultiSet writes several sort keys of one hash key atomically, all with the same
// TTL (0 = none).
func (t *Table) MultiSet(ctx context.Context, hashKey []byte, kvs []KV, ttl time.Duration) error {
	if err := t.checkHashKey(opMultiSet.name, hashKey); err != nil {
		return err
	}
	if len(kvs) == 0 {
		return invalidArg(opMultiSet.name, t.name, "no records to set")
	}
	expire, err := t.expireTS(opMultiSet.name, ttl, time.Now())
	if err != nil {
		return err
	}
	req := &rrdb.MultiPutRequest{HashKey: base.NewBlob(hashKey), Kvs: make([]*rrdb.KeyValue, len(kvs)), ExpireTsSeconds: expire}
	for i, kv := range kvs {
		req.Kvs[i] = &rrdb.KeyValue{Key: base.NewBlob(kv.SortKey), Value: base.NewBlob(kv.Value)}
	}
	resp, err := call[rrdb.UpdateResponse](ctx, t, opMultiSet, byHashKey(hashKey), req)
	if err != nil {
		return err
	}
	if resp.Error != StatusOK {
		return storageError(opMultiSet.name, t.name, resp.Error, "")
	}
	return nil
}

// MultiGet reads the listed sort keys of hashKey, or every sort key when sortKeys is
// empty (then as MultiGetRange over the whole hash key, with opts' filter and
// Reverse). Missing and expired records are left out; listed keys come back in
// request order, ranges in ascending order. complete is false when a limit (opts or
// the server's caps) cut the answer short.
func (t *Table) MultiGet(ctx context.Context, hashKey []byte, sortKeys [][]byte, opts MultiGetOptions) ([]KV, bool, error) {
	if len(sortKeys) == 0 {
		opts.StartInclusive, opts.StopInclusive = Bool(true), Bool(false)
		return t.multiGet(ctx, opMultiGet, hashKey, nil, nil, opts)
	}
	if err := t.checkHashKey(opMultiGet.name, hashKey); err != nil {
		return nil, false, err
	}
	req := multiGetRequest(hashKey, opts)
	req.SortKeys = make([]*base.Blob, len(sortKeys))
	for i, sk := range sortKeys {
		req.SortKeys[i] = base.NewBlob(sk)
	}
	return t.sendMultiGet(ctx, opMultiGet, hashKey, req)
}

// MultiGetRange reads the sort keys of hashKey between start and stop (an empty stop
// means the end of the hash key), subject to opts.
func (t *Table) MultiGetRange(ctx context.Context, hashKey, start, stop []byte, opts MultiGetOptions) ([]KV, bool, error) {
	return t.multiGet(ctx, opMultiGetRange, hashKey, start, stop, opts)
}

func (t *Table) multiGet(ctx context.Context, op opSpec, hashKey, start, stop []byte, opts MultiGetOptions) ([]KV, bool, error) {
	if err := t.checkHashKey(op.name, hashKey); err != nil {
		return nil, false, err
	}
	req := multiGetRequest(hashKey, opts)
	req.StartSortkey = base.NewBlob(start)
	req.StopSortkey = base.NewBlob(stop)
	req.StartInclusive = opts.StartInclusive == nil || *opts.StartInclusive
	req.StopInclusive = opts.StopInclusive != nil && *opts.StopInclusive
	req.SortKeyFilterType = opts.SortKeyFilter.Type
	req.SortKeyFilterPattern = base.NewBlob(opts.SortKeyFilter.Pattern)
	req.Reverse = opts.Reverse
	return t.sendMultiGet(ctx, op, hashKey, req)
}

func multiGetRequest(hashKey []byte, opts MultiGetOptions) *rrdb.MultiGetRequest {
	return &rrdb.MultiGetRequest{
		HashKey:              base.NewBlob(hashKey),
		SortKeys:             []*base.Blob{},
		MaxKvCount:           clampInt32(opts.MaxCount),
		MaxKvSize:            clampInt32(opts.MaxSize),
		NoValue:              opts.NoValue,
		StartSortkey:         &base.Blob{},
		StopSortkey:          &base.Blob{},
		StartInclusive:       true,
		SortKeyFilterPattern: &base.Blob{},
	}
}

func clampInt32(n int) int32 {
	return int32(min(max(n, 0), math.MaxInt32))
}

func (t *Table) sendMultiGet(ctx context.Context, op opSpec, hashKey []byte, req *rrdb.MultiGetRequest) ([]KV, bool, error) {
	resp, err := call[rrdb.MultiGetResponse](ctx, t, op, byHashKey(hashKey), req)
	if err != nil {
		return nil, false, err
	}
	if resp.Error != StatusOK && resp.Error != StatusIncomplete {
		return nil, false, storageError(op.name, t.name, resp.Error, "")
	}
	out := make([]KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = KV{SortKey: nonNil(kv.Key.Bytes()), Value: nonNil(kv.Value.Bytes())}
	}
	return out, resp.Error == StatusOK, nil
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// MultiDel deletes the listed sort keys of hashKey atomically and returns the number
// of keys deleted as the server counts it (the number requested).
func (t *Table) MultiDel(ctx context.Context, hashKey []byte, sortKeys [][]byte) (int64, error) {
	if err := t.checkHashKey(opMultiDel.name, hashKey); err != nil {
		return 0, err
	}
	if len(sortKeys) == 0 {
		return 0, invalidArg(opMultiDel.name, t.name, "no sort keys to delete")
	}
	req := &rrdb.MultiRemoveRequest{HashKey: base.NewBlob(hashKey), SortKeys: make([]*base.Blob, len(sortKeys))}
	for i, sk := range sortKeys {
		req.SortKeys[i] = base.NewBlob(sk)
	}
	resp, err := call[rrdb.MultiRemoveResponse](ctx, t, opMultiDel, byHashKey(hashKey), req)
	if err != nil {
		return 0, err
	}
	if resp.Error != StatusOK {
		return 0, storageError(opMultiDel.name, t.name, resp.Error, "")
	}
	return resp.Count, nil
}

// SortKeyCount counts the unexpired sort keys of hashKey. The server answers -1 when
// its iteration time limit ended the count early.
func (t *Table) SortKeyCount(ctx context.Context, hashKey []byte) (int64, error) {
	if err := t.checkHashKey(opSortKeyCount.name, hashKey); err != nil {
		return 0, err
	}
	resp, err := call[rrdb.CountResponse](ctx, t, opSortKeyCount, byHashKey(hashKey), base.NewBlob(hashKey))
	if err != nil {
		return 0, err
	}
	if resp.Error != StatusOK {
		return 0, storageError(opSortKeyCount.name, t.name, resp.Error, "")
	}
	return resp.Count, nil
}

// CheckAndSet checks the value of (hashKey, checkSortKey) against operand with
// checkType and, if the check passes, writes setValue under (hashKey, setSortKey).
// A failed check is not an error: the result says Succeed == false. An unsupported
// check type, or an integer comparison on a non-integer, fails with Code
// kInvalidArgument.
//
// CheckAndSet is not idempotent: it is retried only after errors proving the replica
// did not execute it.
func (t *Table) CheckAndSet(ctx context.Context, hashKey, checkSortKey []byte, checkType rrdb.CasCheckType, operand, setSortKey, setValue []byte, opts CheckAndSetOptions) (*CheckAndSetResult, error) {
	if err := t.checkHashKey(opCheckAndSet.name, hashKey); err != nil {
		return nil, err
	}
	expire, err := t.expireTS(opCheckAndSet.name, opts.TTL, time.Now())
	if err != nil {
		return nil, err
	}
	req := &rrdb.CheckAndSetRequest{
		HashKey:            base.NewBlob(hashKey),
		CheckSortKey:       base.NewBlob(checkSortKey),
		CheckType:          checkType,
		CheckOperand:       base.NewBlob(operand),
		SetDiffSortKey:     !bytes.Equal(checkSortKey, setSortKey),
		SetSortKey:         base.NewBlob(setSortKey),
		SetValue:           base.NewBlob(setValue),
		SetExpireTsSeconds: expire,
		ReturnCheckValue:   opts.ReturnCheckValue,
	}
	resp, err := call[rrdb.CheckAndSetResponse](ctx, t, opCheckAndSet, byHashKey(hashKey), req)
	if err != nil {
		return nil, err
	}
	return t.checkResult(opCheckAndSet.name, resp.Error, resp.CheckValueReturned, resp.CheckValueExist, resp.CheckValue)
}

// CheckAndMutate is CheckAndSet with a list of puts and deletes under hashKey,
// applied atomically when the check passes.
func (t *Table) CheckAndMutate(ctx context.Context, hashKey, checkSortKey []byte, checkType rrdb.CasCheckType, operand []byte, mutations []Mutation, returnCheckValue bool) (*CheckAndMutateResult, error) {
	if err := t.checkHashKey(opCheckAndMutate.name, hashKey); err != nil {
		return nil, err
	}
	if len(mutations) == 0 {
		return nil, invalidArg(opCheckAndMutate.name, t.name, "no mutations")
	}
	now := time.Now()
	list := make([]*rrdb.Mutate, len(mutations))
	for i, m := range mutations {
		switch m.Op {
		case MutationPut:
			expire, err := t.expireTS(opCheckAndMutate.name, m.TTL, now)
			if err != nil {
				return nil, err
			}
			list[i] = &rrdb.Mutate{Operation: rrdb.MutateOperation_MO_PUT, SortKey: base.NewBlob(m.SortKey),
				Value: base.NewBlob(m.Value), SetExpireTsSeconds: expire}
		case MutationDelete:
			list[i] = &rrdb.Mutate{Operation: rrdb.MutateOperation_MO_DELETE, SortKey: base.NewBlob(m.SortKey), Value: &base.Blob{}}
		default:
			return nil, invalidArg(opCheckAndMutate.name, t.name, "mutation %d: unknown operation %d", i, m.Op)
		}
	}
	req := &rrdb.CheckAndMutateRequest{
		HashKey:          base.NewBlob(hashKey),
		CheckSortKey:     base.NewBlob(checkSortKey),
		CheckType:        checkType,
		CheckOperand:     base.NewBlob(operand),
		MutateList:       list,
		ReturnCheckValue: returnCheckValue,
	}
	resp, err := call[rrdb.CheckAndMutateResponse](ctx, t, opCheckAndMutate, byHashKey(hashKey), req)
	if err != nil {
		return nil, err
	}
	return t.checkResult(opCheckAndMutate.name, resp.Error, resp.CheckValueReturned, resp.CheckValueExist, resp.CheckValue)
}

func (t *Table) checkResult(op string, status int32, returned, exist bool, value *base.Blob) (*CheckAndSetResult, error) {
	if status != StatusOK && status != StatusTryAgain {
		hint := ""
		if status == StatusInvalidArgument {
			hint = "unsupported check type, or an integer check on a non-integer value or operand"
		}
		return nil, storageError(op, t.name, status, hint)
	}
	res := &CheckAndSetResult{Succeed: status == StatusOK, CheckValueReturned: returned, CheckValueExist: exist}
	if returned && exist {
		res.CheckValue = nonNil(value.Bytes())
	}
	return res, nil
}

// BatchGet reads many records, possibly of different hash keys. The keys are grouped
// by partition and each group is read with one RPC_RRDB_RRDB_BATCH_GET, the groups in
// parallel. The result is aligned with keys: result[i] describes keys[i].
func (t *Table) BatchGet(ctx context.Context, keyList []FullKey) ([]FullData, error) {
	out := make([]FullData, len(keyList))
	groups := map[int][]int{} // partition -> indexes into keyList
	for i, k := range keyList {
		if err := keys.ValidateHashKey(k.HashKey); err != nil {
			return nil, invalidArg(opBatchGet.name, t.name, "key %d: hash key: %v", i, err)
		}
		out[i] = FullData{HashKey: k.HashKey, SortKey: k.SortKey}
		p := t.PartitionOf(k.HashKey)
		groups[p] = append(groups[p], i)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, idx := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.batchGetGroup(ctx, keyList, idx, out); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// batchGetGroup reads the keys keyList[idx...], which share a partition, and fills
// their entries of out (each goroutine writes distinct entries).
func (t *Table) batchGetGroup(ctx context.Context, keyList []FullKey, idx []int, out []FullData) error {
	req := &rrdb.BatchGetRequest{Keys: make([]*rrdb.FullKey, len(idx))}
	where := make(map[string][]int, len(idx)) // composite key -> indexes (keys may repeat)
	for j, i := range idx {
		k := keyList[i]
		req.Keys[j] = &rrdb.FullKey{HashKey: base.NewBlob(k.HashKey), SortKey: base.NewBlob(k.SortKey)}
		ck := string(keys.AppendKey(nil, k.HashKey, k.SortKey))
		where[ck] = append(where[ck], i)
	}
	// Every key of the group routes to the partition of its first hash key.
	resp, err := call[rrdb.BatchGetResponse](ctx, t, opBatchGet, byHashKey(keyList[idx[0]].HashKey), req)
	if err != nil {
		return err
	}
	if resp.Error != StatusOK {
		return storageError(opBatchGet.name, t.name, resp.Error, "")
	}
	for _, d := range resp.Data {
		h := d.HashKey.Bytes()
		if len(h) > keys.MaxHashKeyLen {
			return &Error{Op: opBatchGet.name, Table: t.name, Code: base.ErrInvalidData, Err: fmt.Errorf("reply holds a hash key of %d bytes", len(h))}
		}
		for _, i := range where[string(keys.AppendKey(nil, h, d.SortKey.Bytes()))] {
			out[i].Value = nonNil(d.Value.Bytes())
			out[i].Exists = true
		}
	}
	return nil
}

// RawCall sends one request to the primary of partition pidx with header partition
// hash hash, and decodes the reply into result, for probes and tools that need a
// specific partition. It routes and refreshes like the other operations, but retries
// only after errors proving the replica did not execute the request, so it is safe
// for any RPC. The rrdb error field of the reply is left to the caller.
func (t *Table) RawCall(ctx context.Context, pidx int, hash uint64, code string, args, result rpc.Value) error {
	op := opSpec{name: "RawCall(" + code + ")", code: code, safeOnly: true}
	_, err := t.do(ctx, op, byPartition(pidx, hash), args, func() rpc.Value { return result })
	return err
}
