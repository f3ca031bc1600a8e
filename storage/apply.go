package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/cockroachdb/pebble"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// Mutation is one replicated write: a decree and the operations committed under it.
type Mutation struct {
	// Decree must be LastAppliedDecree()+1 (or an already applied decree, see Apply).
	Decree int64
	// TimestampUS is the write time in Unix microseconds, assigned by the primary. It
	// feeds the timetags, the table default TTL and the expiry checks of incr and
	// check-and-set, so every replica computes the same result. 0 means "use the
	// store's clock", which is only deterministic on one replica (tests, tools).
	TimestampUS int64
	// Ops are applied in order; a mutation without ops only advances the decree (the
	// replica's empty writes).
	Ops []Op
}

// Op is one client write. Exactly one request field must be set.
type Op struct {
	Put            *rrdb.UpdateRequest
	MultiPut       *rrdb.MultiPutRequest
	Remove         *base.Blob // composite key
	MultiRemove    *rrdb.MultiRemoveRequest
	Incr           *rrdb.IncrRequest
	CheckAndSet    *rrdb.CheckAndSetRequest
	CheckAndMutate *rrdb.CheckAndMutateRequest

	// DefaultTTL is the table's default_ttl env in seconds (0 = none): records written
	// without an expiry get TimestampUS + DefaultTTL.
	DefaultTTL int32
}

type opKind uint8

const (
	opPut opKind = iota
	opMultiPut
	opRemove
	opMultiRemove
	opIncr
	opCheckAndSet
	opCheckAndMutate
)

func (o *Op) kind() (opKind, error) {
	kind, n := opKind(0), 0
	for k, set := range [...]bool{
		opPut: o.Put != nil, opMultiPut: o.MultiPut != nil, opRemove: o.Remove != nil,
		opMultiRemove: o.MultiRemove != nil, opIncr: o.Incr != nil,
		opCheckAndSet: o.CheckAndSet != nil, opCheckAndMutate: o.CheckAndMutate != nil,
	} {
		if set {
			kind, n = opKind(k), n+1
		}
	}
	if n != 1 {
		return 0, fmt.Errorf("%w: op has %d requests, want exactly 1", ErrBadMutation, n)
	}
	return kind, nil
}

// needsRead reports whether the op reads the current value (and so needs a batch that
// can see the earlier ops of its own mutation).
func (k opKind) needsRead() bool {
	return k == opIncr || k == opCheckAndSet || k == opCheckAndMutate
}

// OpResult is the outcome of one op: exactly one response field is set, matching the
// op (put, multi_put and remove all answer with an UpdateResponse). Error and Decree are
// filled; AppID, PartitionIndex and Server are left for the caller.
//
// Duplicate marks the results of a mutation whose decree had already been applied:
// nothing was written, the responses carry error 0 and the decree but not the original
// outcome (which is gone), so they must not be sent to a client. Re-application only
// happens when a replica replays its log after a restart, where nobody waits for them.
type OpResult struct {
	Duplicate      bool
	Update         *rrdb.UpdateResponse
	MultiRemove    *rrdb.MultiRemoveResponse
	Incr           *rrdb.IncrResponse
	CheckAndSet    *rrdb.CheckAndSetResponse
	CheckAndMutate *rrdb.CheckAndMutateResponse
}

// Code returns the rrdb error code of the result.
func (r OpResult) Code() int32 {
	switch {
	case r.Update != nil:
		return r.Update.Error
	case r.MultiRemove != nil:
		return r.MultiRemove.Error
	case r.Incr != nil:
		return r.Incr.Error
	case r.CheckAndSet != nil:
		return r.CheckAndSet.Error
	case r.CheckAndMutate != nil:
		return r.CheckAndMutate.Error
	}
	return CodeOK
}

// Apply applies a mutation: all its ops, in order, and the new last-applied decree are
// written in one Pebble batch, so readers and a crash see either all of it or none.
//
// Decrees are applied strictly in order. A decree <= LastAppliedDecree() is a no-op that
// returns results marked Duplicate (log replay after a restart overlaps what is already
// on disk); a decree > LastAppliedDecree()+1 returns ErrDecreeGap. Invalid requests
// (empty multi_put, bad keys, unsupported check types...) and failed checks are reported
// in the op's result and never fail the mutation. A returned error (closed store, I/O
// failure, malformed Op) means nothing was applied and the decree did not move.
func (s *Store) Apply(m *Mutation) ([]OpResult, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil mutation", ErrBadMutation)
	}
	if m.Decree <= 0 {
		return nil, fmt.Errorf("%w: decree %d", ErrBadMutation, m.Decree)
	}
	kinds := make([]opKind, len(m.Ops))
	indexed := false
	for i := range m.Ops {
		k, err := m.Ops[i].kind()
		if err != nil {
			return nil, fmt.Errorf("decree %d op %d: %w", m.Decree, i, err)
		}
		kinds[i] = k
		indexed = indexed || k.needsRead()
	}
	return s.applyValidated(m, kinds, indexed)
}

// applyValidated and applyLocked are split out of Apply so that each has few enough
// returns for its defers to be open-coded: Apply is on the hot path of every write.
func (s *Store) applyValidated(m *Mutation, kinds []opKind, indexed bool) ([]OpResult, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.release()
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	return s.applyLocked(m, kinds, indexed)
}

func (s *Store) applyLocked(m *Mutation, kinds []opKind, indexed bool) ([]OpResult, error) {
	last := s.lastApplied.Load()
	if m.Decree <= last {
		return duplicateResults(m.Decree, kinds), nil
	}
	if m.Decree != last+1 {
		return nil, fmt.Errorf("%w: got %d, last applied %d", ErrDecreeGap, m.Decree, last)
	}
	ts := m.TimestampUS
	if ts <= 0 {
		ts = s.opts.Clock().UnixMicro()
	}
	w := writer{
		s:       s,
		decree:  m.Decree,
		now:     keys.Epoch2016FromUnixMicros(ts),
		timetag: keys.MakeTimetag(uint64(ts), s.opts.ClusterID, false),
	}
	w.hdr, _ = keys.HeaderLen(s.dataVersion)
	if indexed {
		w.b = s.db.NewIndexedBatch()
	} else {
		w.b = s.db.NewBatch()
	}
	results, err := w.applyAll(m, kinds, ts)
	if err == nil {
		err = w.b.Commit(s.writeOpts)
	}
	if err == nil {
		// Every record but the decree's is data.
		s.countWritten(int(w.b.Count())-1, w.deletions)
	}
	w.b.Close()
	if err != nil {
		return nil, fmt.Errorf("storage: apply decree %d: %w", m.Decree, err)
	}
	s.lastApplied.Store(m.Decree)
	s.lastTSUS.Store(ts)
	return results, nil
}

// applyAll adds every op and the decree record to the batch.
func (w *writer) applyAll(m *Mutation, kinds []opKind, ts int64) ([]OpResult, error) {
	results := newResults(m.Decree, kinds)
	for i := range m.Ops {
		if err := w.apply(&m.Ops[i], kinds[i], &results[i]); err != nil {
			return nil, fmt.Errorf("op %d: %w", i, err)
		}
	}
	op := w.b.SetDeferred(len(w.s.decreeKey), 16)
	copy(op.Key, w.s.decreeKey)
	encodeDecree(op.Value, m.Decree, ts)
	return results, op.Finish()
}

func duplicateResults(decree int64, kinds []opKind) []OpResult {
	out := newResults(decree, kinds)
	for i := range out {
		out[i].Duplicate = true
	}
	return out
}

// singleUpdate lets the most common mutation, one put or remove, allocate its result
// slice and its response at once.
type singleUpdate struct {
	res  [1]OpResult
	resp rrdb.UpdateResponse
}

func newResults(decree int64, kinds []opKind) []OpResult {
	if len(kinds) == 1 && (kinds[0] == opPut || kinds[0] == opMultiPut || kinds[0] == opRemove) {
		su := &singleUpdate{resp: rrdb.UpdateResponse{Decree: decree}}
		su.res[0].Update = &su.resp
		return su.res[:]
	}
	out := make([]OpResult, len(kinds))
	for i, k := range kinds {
		out[i] = newResult(k, decree)
	}
	return out
}

// newResult returns the zero (error 0) response of an op kind, with the decree set and
// every non-optional blob present so that the struct can be serialised as is.
func newResult(k opKind, decree int64) OpResult {
	switch k {
	case opMultiRemove:
		return OpResult{MultiRemove: &rrdb.MultiRemoveResponse{Decree: decree}}
	case opIncr:
		return OpResult{Incr: &rrdb.IncrResponse{Decree: decree}}
	case opCheckAndSet:
		return OpResult{CheckAndSet: &rrdb.CheckAndSetResponse{Decree: decree, CheckValue: &base.Blob{}}}
	case opCheckAndMutate:
		return OpResult{CheckAndMutate: &rrdb.CheckAndMutateResponse{Decree: decree, CheckValue: &base.Blob{}}}
	default:
		return OpResult{Update: &rrdb.UpdateResponse{Decree: decree}}
	}
}

// writer applies the ops of one mutation into one batch.
type writer struct {
	s       *Store
	b       *pebble.Batch
	decree  int64
	now     uint32 // mutation time, seconds since 2016
	timetag uint64
	hdr     int // value header length of the data version
	// deletions counts the records the batch deletes, for the key estimate.
	deletions int
}

// apply applies one op and fills its pre-built result r.
func (w *writer) apply(op *Op, k opKind, r *OpResult) error {
	var err error
	switch k {
	case opPut:
		r.Update.Error, err = w.put(op.Put, op.DefaultTTL)
	case opMultiPut:
		r.Update.Error, err = w.multiPut(op.MultiPut, op.DefaultTTL)
	case opRemove:
		r.Update.Error, err = w.remove(op.Remove.Bytes())
	case opMultiRemove:
		r.MultiRemove.Error, r.MultiRemove.Count, err = w.multiRemove(op.MultiRemove)
	case opIncr:
		err = w.incr(op.Incr, op.DefaultTTL, r.Incr)
	case opCheckAndSet:
		err = w.checkAndSet(op.CheckAndSet, op.DefaultTTL, r.CheckAndSet)
	case opCheckAndMutate:
		err = w.checkAndMutate(op.CheckAndMutate, op.DefaultTTL, r.CheckAndMutate)
	}
	return err
}

// expireTS turns the absolute expiry of a put, multi_put, check_and_set or
// check_and_mutate into the stored one: a positive value is kept, 0 means "no expiry",
// which the table default TTL then replaces. A negative value has no meaning for these
// writes (incr has its own rules): it is what a client gets when now + TTL overflows
// int32, so storing it as "never expires" would silently drop the TTL the client
// asked for. ok is false for it, and the write must be refused as an invalid argument.
func (w *writer) expireTS(op string, requested int32, defaultTTL int32) (expire uint32, ok bool) {
	switch {
	case requested < 0:
		w.s.expireLog.Warn(w.s.log, "write refused: negative expire_ts_seconds (a TTL past 2084-01-19, or a client bug)",
			"op", op, "expire_ts_seconds", requested, "decree", w.decree)
		return 0, false
	case requested > 0:
		return uint32(requested), true
	}
	return w.withDefaultTTL(0, defaultTTL), true
}

func (w *writer) withDefaultTTL(expire uint32, defaultTTL int32) uint32 {
	if expire == 0 && defaultTTL > 0 {
		return uint32(min(uint64(w.now)+uint64(defaultTTL), math.MaxUint32))
	}
	return expire
}

// validWriteKey reports whether a client-supplied composite key may be written: it must
// decode and carry a non-empty hash key (clients never send an empty one; refusing it
// keeps the empty-hash-key range, used by raw scan bounds, free of data).
func validWriteKey(key []byte) bool {
	h, _, err := keys.DecodeKey(key)
	return err == nil && len(h) > 0
}

// set writes key (given as a composite key, or as hash and sort key when key is nil)
// with a stored value encoded straight into the batch buffer.
func (w *writer) set(key, hashKey, sortKey []byte, expire uint32, value []byte) error {
	klen := len(key)
	if key == nil {
		klen = 2 + len(hashKey) + len(sortKey)
	}
	op := w.b.SetDeferred(klen, w.hdr+len(value))
	if key == nil {
		keys.AppendKey(op.Key[:0], hashKey, sortKey)
	} else {
		copy(op.Key, key)
	}
	keys.PutValue(op.Value, w.s.dataVersion, expire, w.timetag, value)
	return op.Finish()
}

func (w *writer) put(req *rrdb.UpdateRequest, defaultTTL int32) (int32, error) {
	key := req.Key.Bytes()
	if !validWriteKey(key) {
		return CodeInvalidArgument, nil
	}
	expire, ok := w.expireTS("put", req.ExpireTsSeconds, defaultTTL)
	if !ok {
		return CodeInvalidArgument, nil
	}
	return CodeOK, w.set(key, nil, nil, expire, req.Value.Bytes())
}

func (w *writer) multiPut(req *rrdb.MultiPutRequest, defaultTTL int32) (int32, error) {
	h := req.HashKey.Bytes()
	if keys.ValidateHashKey(h) != nil || len(req.Kvs) == 0 {
		return CodeInvalidArgument, nil
	}
	expire, ok := w.expireTS("multi_put", req.ExpireTsSeconds, defaultTTL)
	if !ok {
		return CodeInvalidArgument, nil
	}
	for _, kv := range req.Kvs {
		if kv == nil {
			continue
		}
		if err := w.set(nil, h, kv.Key.Bytes(), expire, kv.Value.Bytes()); err != nil {
			return CodeOK, err
		}
	}
	return CodeOK, nil
}

func (w *writer) remove(key []byte) (int32, error) {
	if !validWriteKey(key) {
		return CodeInvalidArgument, nil
	}
	w.deletions++
	return CodeOK, w.b.Delete(key, nil)
}

func (w *writer) multiRemove(req *rrdb.MultiRemoveRequest) (int32, int64, error) {
	h := req.HashKey.Bytes()
	if keys.ValidateHashKey(h) != nil || len(req.SortKeys) == 0 {
		return CodeInvalidArgument, 0, nil
	}
	buf := make([]byte, 0, 64)
	for _, sk := range req.SortKeys {
		buf = keys.AppendKey(buf[:0], h, sk.Bytes())
		w.deletions++
		if err := w.b.Delete(buf, nil); err != nil {
			return CodeOK, 0, err
		}
	}
	// The count is the number of keys asked for, not the number that existed.
	return CodeOK, int64(len(req.SortKeys)), nil
}

// get reads key as the mutation sees it: the database plus the earlier ops of the same
// batch. An expired record (at mutation time) reads as absent. The value is a copy.
func (w *writer) get(key []byte) (keys.Value, bool, error) {
	raw, closer, err := w.b.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return keys.Value{}, false, nil
	}
	if err != nil {
		return keys.Value{}, false, fmt.Errorf("read %x: %w", key, err)
	}
	defer closer.Close()
	v, err := keys.DecodeValue(w.s.dataVersion, raw)
	if err != nil {
		return keys.Value{}, false, fmt.Errorf("decode %x: %w", key, err)
	}
	if keys.IsExpired(v.ExpireTS, w.now) {
		return keys.Value{}, false, nil
	}
	v.UserValue = bytes.Clone(v.UserValue)
	return v, true, nil
}

func (w *writer) incr(req *rrdb.IncrRequest, defaultTTL int32, resp *rrdb.IncrResponse) error {
	key := req.Key.Bytes()
	if !validWriteKey(key) {
		resp.Error = CodeInvalidArgument
		return nil
	}
	cur, exists, err := w.get(key)
	if err != nil {
		return err
	}
	var old int64
	if exists && len(cur.UserValue) > 0 {
		old, err = strconv.ParseInt(string(cur.UserValue), 10, 64)
		if err != nil {
			resp.Error = CodeInvalidArgument
			return nil
		}
	}
	sum := old + req.Increment
	if (req.Increment > 0 && sum < old) || (req.Increment < 0 && sum > old) {
		resp.Error, resp.NewValue_ = CodeInvalidArgument, old
		return nil
	}
	// Unlike the other writes, incr gives every expire_ts_seconds a meaning: 0 keeps
	// the record's expiry, a negative value (clients send -1) clears it.
	var expire uint32
	switch {
	case req.ExpireTsSeconds > 0:
		expire = uint32(req.ExpireTsSeconds)
	case req.ExpireTsSeconds == 0 && exists:
		expire = cur.ExpireTS
	}
	expire = w.withDefaultTTL(expire, defaultTTL)
	if err := w.set(key, nil, nil, expire, strconv.AppendInt(nil, sum, 10)); err != nil {
		return err
	}
	resp.NewValue_ = sum
	return nil
}

// check reads the check key of a check-and-set/mutate, fills the check_value fields when
// asked, and evaluates the check. It returns the rrdb code to answer with when the write
// must not happen, or CodeOK.
func (w *writer) check(hashKey, checkSortKey []byte, t rrdb.CasCheckType, operand []byte,
	returnValue bool, returned, exist *bool, value **base.Blob) (int32, error) {
	cur, exists, err := w.get(keys.AppendKey(nil, hashKey, checkSortKey))
	if err != nil {
		return 0, err
	}
	if returnValue {
		*returned, *exist = true, exists
		if exists {
			*value = &base.Blob{Data: cur.UserValue}
		}
	}
	pass, invalid := evalCheck(t, exists, cur.UserValue, operand)
	switch {
	case invalid:
		return CodeInvalidArgument, nil
	case !pass:
		return CodeTryAgain, nil
	}
	return CodeOK, nil
}

func (w *writer) checkAndSet(req *rrdb.CheckAndSetRequest, defaultTTL int32, resp *rrdb.CheckAndSetResponse) error {
	h := req.HashKey.Bytes()
	if keys.ValidateHashKey(h) != nil || !checkTypeSupported(req.CheckType) {
		resp.Error = CodeInvalidArgument
		return nil
	}
	// The expiry is checked before the check runs, so that an invalid request
	// neither writes nor reports the check value.
	expire, ok := w.expireTS("check_and_set", req.SetExpireTsSeconds, defaultTTL)
	if !ok {
		resp.Error = CodeInvalidArgument
		return nil
	}
	code, err := w.check(h, req.CheckSortKey.Bytes(), req.CheckType, req.CheckOperand.Bytes(),
		req.ReturnCheckValue, &resp.CheckValueReturned, &resp.CheckValueExist, &resp.CheckValue)
	if err != nil || code != CodeOK {
		resp.Error = code
		return err
	}
	setSortKey := req.CheckSortKey.Bytes()
	if req.SetDiffSortKey {
		setSortKey = req.SetSortKey.Bytes()
	}
	return w.set(nil, h, setSortKey, expire, req.SetValue.Bytes())
}

func (w *writer) checkAndMutate(req *rrdb.CheckAndMutateRequest, defaultTTL int32, resp *rrdb.CheckAndMutateResponse) error {
	h := req.HashKey.Bytes()
	if keys.ValidateHashKey(h) != nil || !checkTypeSupported(req.CheckType) || len(req.MutateList) == 0 {
		resp.Error = CodeInvalidArgument
		return nil
	}
	expires := make([]uint32, len(req.MutateList))
	for i, m := range req.MutateList {
		if m == nil || (m.Operation != rrdb.MutateOperation_MO_PUT && m.Operation != rrdb.MutateOperation_MO_DELETE) {
			resp.Error = CodeInvalidArgument
			return nil
		}
		if m.Operation == rrdb.MutateOperation_MO_PUT {
			// A delete's set_expire_ts_seconds means nothing and is not checked.
			var ok bool
			if expires[i], ok = w.expireTS("check_and_mutate", m.SetExpireTsSeconds, defaultTTL); !ok {
				resp.Error = CodeInvalidArgument
				return nil
			}
		}
	}
	code, err := w.check(h, req.CheckSortKey.Bytes(), req.CheckType, req.CheckOperand.Bytes(),
		req.ReturnCheckValue, &resp.CheckValueReturned, &resp.CheckValueExist, &resp.CheckValue)
	if err != nil || code != CodeOK {
		resp.Error = code
		return err
	}
	buf := make([]byte, 0, 64)
	for i, m := range req.MutateList {
		if m.Operation == rrdb.MutateOperation_MO_DELETE {
			buf = keys.AppendKey(buf[:0], h, m.SortKey.Bytes())
			w.deletions++
			if err := w.b.Delete(buf, nil); err != nil {
				return err
			}
			continue
		}
		if err := w.set(nil, h, m.SortKey.Bytes(), expires[i], m.Value.Bytes()); err != nil {
			return err
		}
	}
	return nil
}
