package storage

import (
	"bytes"
	"fmt"
	"hash/crc64"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// The model is a plain map from (hash key, sort key) to record, with the Pegasus
// semantics restated as directly as possible (sort-key comparisons instead of composite
// key bounds, brute-force filtering), so that the engine and the model do not share the
// code they are checked by.

type mkey struct{ h, s string }

type mrec struct {
	value  string
	expire uint32
}

type model struct {
	recs   map[mkey]mrec
	lastTS uint32 // epoch of the last mutation, for the purge threshold
}

func (m *model) clone() *model {
	c := &model{recs: make(map[mkey]mrec, len(m.recs)), lastTS: m.lastTS}
	for k, v := range m.recs {
		c.recs[k] = v
	}
	return c
}

func expiredAt(e, now uint32) bool { return e != 0 && e <= now }

func (m *model) alive(k mkey, now uint32) (mrec, bool) {
	r, ok := m.recs[k]
	if !ok || expiredAt(r.expire, now) {
		return mrec{}, false
	}
	return r, true
}

// compositeLess orders keys like the engine: hash key length, hash key, sort key.
func compositeLess(a, b mkey) bool {
	if len(a.h) != len(b.h) {
		return len(a.h) < len(b.h)
	}
	if a.h != b.h {
		return a.h < b.h
	}
	return a.s < b.s
}

func (m *model) sortedKeys() []mkey {
	out := make([]mkey, 0, len(m.recs))
	for k := range m.recs {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return compositeLess(out[i], out[j]) })
	return out
}

func modelExpire(req int32, defaultTTL int32, now uint32) uint32 {
	if req > 0 {
		return uint32(req)
	}
	if defaultTTL > 0 {
		return now + uint32(defaultTTL)
	}
	return 0
}

func parseI64(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// modelCheck restates the check-and-set conditions case by case.
func modelCheck(t rrdb.CasCheckType, exists bool, v, op string) (code int32) {
	pass := false
	switch t {
	case 0:
		pass = true
	case 1:
		pass = !exists
	case 2:
		pass = !exists || v == ""
	case 3:
		pass = exists
	case 4:
		pass = exists && v != ""
	case 5:
		pass = exists && strings.Contains(v, op)
	case 6:
		pass = exists && strings.HasPrefix(v, op)
	case 7:
		pass = exists && strings.HasSuffix(v, op)
	case 8:
		pass = exists && v < op
	case 9:
		pass = exists && v <= op
	case 10:
		pass = exists && v == op
	case 11:
		pass = exists && v >= op
	case 12:
		pass = exists && v > op
	case 13, 14, 15, 16, 17:
		if !exists {
			return 13
		}
		a, ok1 := parseI64(v)
		b, ok2 := parseI64(op)
		if !ok1 || !ok2 {
			return 4
		}
		pass = map[rrdb.CasCheckType]bool{13: a < b, 14: a <= b, 15: a == b, 16: a >= b, 17: a > b}[t]
	default:
		return 4
	}
	if !pass {
		return 13
	}
	return 0
}

// applyOp applies one op to the model and returns the expected result code plus the
// op-specific extra (incr value, check value info).
type modelResult struct {
	code        int32
	incr        int64
	count       int64
	checkExists bool
	checkValue  string
}

func (m *model) applyOp(op *Op, now uint32) modelResult {
	switch {
	case op.Put != nil:
		h, s, err := keys.DecodeKey(op.Put.Key.Bytes())
		if err != nil || len(h) == 0 {
			return modelResult{code: 4}
		}
		m.recs[mkey{string(h), string(s)}] = mrec{string(op.Put.Value.Bytes()), modelExpire(op.Put.ExpireTsSeconds, op.DefaultTTL, now)}
	case op.MultiPut != nil:
		h := string(op.MultiPut.HashKey.Bytes())
		if h == "" || len(op.MultiPut.Kvs) == 0 {
			return modelResult{code: 4}
		}
		for _, kv := range op.MultiPut.Kvs {
			m.recs[mkey{h, string(kv.Key.Bytes())}] = mrec{string(kv.Value.Bytes()), modelExpire(op.MultiPut.ExpireTsSeconds, op.DefaultTTL, now)}
		}
	case op.Remove != nil:
		h, s, err := keys.DecodeKey(op.Remove.Bytes())
		if err != nil || len(h) == 0 {
			return modelResult{code: 4}
		}
		delete(m.recs, mkey{string(h), string(s)})
	case op.MultiRemove != nil:
		h := string(op.MultiRemove.HashKey.Bytes())
		if h == "" || len(op.MultiRemove.SortKeys) == 0 {
			return modelResult{code: 4}
		}
		for _, sk := range op.MultiRemove.SortKeys {
			delete(m.recs, mkey{h, string(sk.Bytes())})
		}
		return modelResult{count: int64(len(op.MultiRemove.SortKeys))}
	case op.Incr != nil:
		h, s, err := keys.DecodeKey(op.Incr.Key.Bytes())
		if err != nil || len(h) == 0 {
			return modelResult{code: 4}
		}
		k := mkey{string(h), string(s)}
		r, ok := m.alive(k, now)
		var old int64
		if ok && r.value != "" {
			n, valid := parseI64(r.value)
			if !valid {
				return modelResult{code: 4}
			}
			old = n
		}
		inc := op.Incr.Increment
		if (inc > 0 && old > (1<<63-1)-inc) || (inc < 0 && old < (-1<<63)-inc) {
			return modelResult{code: 4, incr: old}
		}
		expire := uint32(0)
		switch {
		case op.Incr.ExpireTsSeconds > 0:
			expire = uint32(op.Incr.ExpireTsSeconds)
		case op.Incr.ExpireTsSeconds == 0 && ok:
			expire = r.expire
		}
		if expire == 0 && op.DefaultTTL > 0 {
			expire = now + uint32(op.DefaultTTL)
		}
		m.recs[k] = mrec{strconv.FormatInt(old+inc, 10), expire}
		return modelResult{incr: old + inc}
	case op.CheckAndSet != nil:
		req := op.CheckAndSet
		h := string(req.HashKey.Bytes())
		if h == "" || req.CheckType < 0 || req.CheckType > 17 {
			return modelResult{code: 4}
		}
		r, ok := m.alive(mkey{h, string(req.CheckSortKey.Bytes())}, now)
		res := modelResult{checkExists: ok, checkValue: r.value}
		if res.code = modelCheck(req.CheckType, ok, r.value, string(req.CheckOperand.Bytes())); res.code != 0 {
			return res
		}
		target := string(req.CheckSortKey.Bytes())
		if req.SetDiffSortKey {
			target = string(req.SetSortKey.Bytes())
		}
		m.recs[mkey{h, target}] = mrec{string(req.SetValue.Bytes()), modelExpire(req.SetExpireTsSeconds, op.DefaultTTL, now)}
		return res
	case op.CheckAndMutate != nil:
		req := op.CheckAndMutate
		h := string(req.HashKey.Bytes())
		if h == "" || req.CheckType < 0 || req.CheckType > 17 || len(req.MutateList) == 0 {
			return modelResult{code: 4}
		}
		r, ok := m.alive(mkey{h, string(req.CheckSortKey.Bytes())}, now)
		res := modelResult{checkExists: ok, checkValue: r.value}
		if res.code = modelCheck(req.CheckType, ok, r.value, string(req.CheckOperand.Bytes())); res.code != 0 {
			return res
		}
		for _, mu := range req.MutateList {
			k := mkey{h, string(mu.SortKey.Bytes())}
			if mu.Operation == rrdb.MutateOperation_MO_DELETE {
				delete(m.recs, k)
			} else {
				m.recs[k] = mrec{string(mu.Value.Bytes()), modelExpire(mu.SetExpireTsSeconds, op.DefaultTTL, now)}
			}
		}
		return res
	}
	return modelResult{}
}

func (m *model) purge() {
	for k, r := range m.recs {
		if expiredAt(r.expire, m.lastTS) {
			delete(m.recs, k)
		}
	}
}

func matches(t rrdb.FilterType, p, subject string) bool {
	switch {
	case p == "" || t == 0:
		return true
	case t == 1:
		return strings.Contains(subject, p)
	case t == 2:
		return strings.HasPrefix(subject, p)
	default:
		return strings.HasSuffix(subject, p)
	}
}

// multiGet is the model of the range and point forms, returning sort keys, values and
// the error code.
func (m *model) multiGet(req *rrdb.MultiGetRequest, now uint32, capCount, capSize int) ([]string, []string, int32) {
	h := string(req.HashKey.Bytes())
	maxCount, maxSize := capCount, capSize
	if req.MaxKvCount > 0 {
		maxCount = min(maxCount, int(req.MaxKvCount))
	}
	if req.MaxKvSize > 0 {
		maxSize = min(maxSize, int(req.MaxKvSize))
	}
	var sks, vals []string
	var code int32
	size := 0
	emit := func(sk, v string) {
		if req.NoValue {
			v = ""
		}
		sks, vals = append(sks, sk), append(vals, v)
		size += len(sk) + len(v)
	}
	if len(req.SortKeys) > 0 {
		for _, b := range req.SortKeys {
			if len(sks) >= maxCount || size >= maxSize {
				code = 7
				break
			}
			if r, ok := m.alive(mkey{h, string(b.Bytes())}, now); ok {
				emit(string(b.Bytes()), r.value)
			}
		}
		return sks, vals, code
	}
	start, stop := string(req.StartSortkey.Bytes()), string(req.StopSortkey.Bytes())
	prefix := ""
	if req.SortKeyFilterType == rrdb.FilterType_FT_MATCH_PREFIX {
		prefix = string(req.SortKeyFilterPattern.Bytes())
	}
	var inRange []string
	for k := range m.recs {
		if k.h != h || !strings.HasPrefix(k.s, prefix) {
			continue
		}
		if k.s < start || (k.s == start && !req.StartInclusive) {
			continue
		}
		if stop != "" && (k.s > stop || (k.s == stop && !req.StopInclusive)) {
			continue
		}
		inRange = append(inRange, k.s)
	}
	sort.Strings(inRange)
	if req.Reverse {
		slices.Reverse(inRange)
	}
	for i, sk := range inRange {
		if i >= maxCount || size >= maxSize {
			code = 7
			break
		}
		r, ok := m.alive(mkey{h, sk}, now)
		if !ok || !matches(req.SortKeyFilterType, string(req.SortKeyFilterPattern.Bytes()), sk) {
			continue
		}
		emit(sk, r.value)
	}
	if req.Reverse {
		slices.Reverse(sks)
		slices.Reverse(vals)
	}
	return sks, vals, code
}

// scan is the model of a full scanner run: the "h/s=value" records it returns.
func (m *model) scan(req *rrdb.GetScannerRequest, now uint32, pidx, count int32, table *crc64.Table) []string {
	start, stop := req.StartKey.Bytes(), req.StopKey.Bytes()
	var out []string
	for _, k := range m.sortedKeys() {
		ck, _ := keys.EncodeKey([]byte(k.h), []byte(k.s))
		if c := bytes.Compare(ck, start); c < 0 || (c == 0 && !req.StartInclusive) {
			continue
		}
		if len(stop) > 0 {
			if c := bytes.Compare(ck, stop); c > 0 || (c == 0 && !req.StopInclusive) {
				continue
			}
		}
		if !matches(req.HashKeyFilterType, string(req.HashKeyFilterPattern.Bytes()), k.h) ||
			!matches(req.SortKeyFilterType, string(req.SortKeyFilterPattern.Bytes()), k.s) {
			continue
		}
		if (req.ValidatePartitionHash == nil || *req.ValidatePartitionHash) && count > 0 &&
			crc64.Checksum([]byte(k.h), table)%uint64(count) != uint64(pidx) {
			continue
		}
		r, ok := m.alive(k, now)
		if !ok {
			continue
		}
		v := r.value
		if req.NoValue {
			v = ""
		}
		out = append(out, k.h+"/"+k.s+"="+v)
	}
	return out
}

// modelRun drives one randomized session.
type modelRun struct {
	t      *testing.T
	rng    *rand.Rand
	store  *Store
	dir    string
	opts   Options
	clk    *fakeClock
	m      *model
	decree int64
	table  *crc64.Table
	step   int
}

var (
	modelHashes = []string{"a", "b", "ab", "\x00", "\xff", "hk"}
	modelSorts  = []string{"", "1", "2", "10", "a", "ab", "\xff", "\x00x", "b"}
	modelValues = []string{"", "0", "1", "-3", "42", "9223372036854775807", "x", "ab", "abc", "\xff\x00"}
)

// opGen generates random ops over a small key space, so that ops collide often.
type opGen struct {
	rng    *rand.Rand
	now    uint32 // seconds since 2016, for expiry times
	values []string
}

func (g *opGen) pick(list []string) string { return list[g.rng.IntN(len(list))] }

func (g *opGen) randExpire() int32 {
	switch g.rng.IntN(6) {
	case 0:
		return int32(g.now + uint32(1+g.rng.IntN(6)))
	case 1:
		return int32(g.now) - 1 // already expired
	default:
		return 0
	}
}

func (g *opGen) randOp() Op {
	h, s := g.pick(modelHashes), g.pick(modelSorts)
	if g.rng.IntN(40) == 0 {
		h = "" // invalid writes are per-op errors
	}
	var op Op
	switch g.rng.IntN(10) {
	case 0, 1:
		op = Op{Put: &rrdb.UpdateRequest{Key: base.NewBlob(keys.AppendKey(nil, []byte(h), []byte(s))), Value: blob(g.pick(g.values)), ExpireTsSeconds: g.randExpire()}}
	case 2:
		req := &rrdb.MultiPutRequest{HashKey: blob(h), ExpireTsSeconds: g.randExpire()}
		for range g.rng.IntN(4) {
			req.Kvs = append(req.Kvs, &rrdb.KeyValue{Key: blob(g.pick(modelSorts)), Value: blob(g.pick(g.values))})
		}
		op = Op{MultiPut: req}
	case 3:
		op = Op{Remove: base.NewBlob(keys.AppendKey(nil, []byte(h), []byte(s)))}
	case 4:
		req := &rrdb.MultiRemoveRequest{HashKey: blob(h)}
		for range g.rng.IntN(4) {
			req.SortKeys = append(req.SortKeys, blob(g.pick(modelSorts)))
		}
		op = Op{MultiRemove: req}
	case 5, 6:
		inc := int64(g.rng.IntN(11) - 5)
		if g.rng.IntN(10) == 0 {
			inc = 1 << 62
		}
		exp := g.randExpire()
		if g.rng.IntN(5) == 0 {
			exp = -1
		}
		op = Op{Incr: &rrdb.IncrRequest{Key: base.NewBlob(keys.AppendKey(nil, []byte(h), []byte(s))), Increment: inc, ExpireTsSeconds: exp}}
	case 7, 8:
		op = Op{CheckAndSet: &rrdb.CheckAndSetRequest{
			HashKey: blob(h), CheckSortKey: blob(s), CheckType: rrdb.CasCheckType(g.rng.IntN(19)),
			CheckOperand: blob(g.pick(g.values)), SetDiffSortKey: g.rng.IntN(2) == 0,
			SetSortKey: blob(g.pick(modelSorts)), SetValue: blob(g.pick(g.values)),
			SetExpireTsSeconds: g.randExpire(), ReturnCheckValue: g.rng.IntN(2) == 0,
		}}
	default:
		req := &rrdb.CheckAndMutateRequest{
			HashKey: blob(h), CheckSortKey: blob(s), CheckType: rrdb.CasCheckType(g.rng.IntN(19)),
			CheckOperand: blob(g.pick(g.values)), ReturnCheckValue: g.rng.IntN(2) == 0,
		}
		for range g.rng.IntN(4) {
			req.MutateList = append(req.MutateList, &rrdb.Mutate{
				Operation: rrdb.MutateOperation(g.rng.IntN(2)), SortKey: blob(g.pick(modelSorts)),
				Value: blob(g.pick(g.values)), SetExpireTsSeconds: g.randExpire(),
			})
		}
		op = Op{CheckAndMutate: req}
	}
	if g.rng.IntN(8) == 0 {
		op.DefaultTTL = int32(1 + g.rng.IntN(5))
	}
	return op
}

func (r *modelRun) pick(list []string) string { return list[r.rng.IntN(len(list))] }

func (r *modelRun) gen() *opGen {
	return &opGen{rng: r.rng, now: r.clk.epoch(), values: modelValues}
}

func (r *modelRun) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("step %d: %s", r.step, fmt.Sprintf(format, args...))
}

func (r *modelRun) write() {
	ops := make([]Op, r.rng.IntN(4))
	for i := range ops {
		ops[i] = r.gen().randOp()
	}
	r.decree++
	ts := r.clk.Now().UnixMicro()
	res, err := r.store.Apply(&Mutation{Decree: r.decree, TimestampUS: ts, Ops: ops})
	if err != nil {
		r.fail("apply: %v", err)
	}
	now := keys.Epoch2016FromUnixMicros(ts)
	r.m.lastTS = now
	for i := range ops {
		want := r.m.applyOp(&ops[i], now)
		got := res[i]
		if got.Code() != want.code {
			r.fail("op %d %+v: code %d, model %d", i, ops[i], got.Code(), want.code)
		}
		switch {
		case got.Incr != nil && got.Incr.NewValue_ != want.incr && (want.code == 0 || want.incr != 0):
			r.fail("incr: %d, model %d", got.Incr.NewValue_, want.incr)
		case got.MultiRemove != nil && got.MultiRemove.Count != want.count:
			r.fail("multi_remove count %d, model %d", got.MultiRemove.Count, want.count)
		case got.CheckAndSet != nil && ops[i].CheckAndSet.ReturnCheckValue && want.code != 4:
			if got.CheckAndSet.CheckValueExist != want.checkExists || string(got.CheckAndSet.CheckValue.Bytes()) != want.checkValue {
				r.fail("cas check value %+v, model %+v", got.CheckAndSet, want)
			}
		case got.CheckAndMutate != nil && ops[i].CheckAndMutate.ReturnCheckValue && want.code != 4:
			if got.CheckAndMutate.CheckValueExist != want.checkExists || string(got.CheckAndMutate.CheckValue.Bytes()) != want.checkValue {
				r.fail("cam check value %+v, model %+v", got.CheckAndMutate, want)
			}
		}
	}
}

func (r *modelRun) read() {
	now := r.clk.epoch()
	h, s := r.pick(modelHashes), r.pick(modelSorts)
	switch r.rng.IntN(6) {
	case 0:
		resp, err := r.store.Get(ck(h, s))
		rec, ok := r.m.alive(mkey{h, s}, now)
		if err != nil || (resp.Error == 0) != ok || string(resp.Value.Bytes()) != rec.value {
			r.fail("get %q/%q: %+v %v, model %v %q", h, s, resp, err, ok, rec.value)
		}
	case 1:
		resp, _ := r.store.TTL(ck(h, s))
		rec, ok := r.m.alive(mkey{h, s}, now)
		want := int32(-1)
		if rec.expire != 0 {
			want = int32(rec.expire - now)
		}
		if (resp.Error == 0) != ok || (ok && resp.TTLSeconds != want) {
			r.fail("ttl %q/%q: %+v, model %v %d", h, s, resp, ok, want)
		}
	case 2:
		resp, _ := r.store.SortkeyCount([]byte(h))
		want := int64(0)
		for k := range r.m.recs {
			if _, ok := r.m.alive(k, now); ok && k.h == h {
				want++
			}
		}
		if resp.Error != 0 || resp.Count != want {
			r.fail("count %q: %+v, model %d", h, resp, want)
		}
	case 3:
		req := &rrdb.MultiGetRequest{
			HashKey: blob(h), MaxKvCount: int32(r.rng.IntN(6)), MaxKvSize: int32(r.rng.IntN(3) * r.rng.IntN(12)),
			NoValue: r.rng.IntN(4) == 0, StartSortkey: blob(r.pick(modelSorts)), StartInclusive: r.rng.IntN(2) == 0,
			StopInclusive: r.rng.IntN(2) == 0, Reverse: r.rng.IntN(2) == 0,
			SortKeyFilterType: rrdb.FilterType(r.rng.IntN(4)), SortKeyFilterPattern: blob(r.pick([]string{"", "a", "1", "b", "\xff"})),
		}
		if r.rng.IntN(3) > 0 {
			req.StopSortkey = blob(r.pick(modelSorts))
		}
		if r.rng.IntN(4) == 0 {
			for range 1 + r.rng.IntN(4) {
				req.SortKeys = append(req.SortKeys, blob(r.pick(modelSorts)))
			}
		}
		resp, err := r.store.MultiGet(req)
		wantKeys, wantVals, wantCode := r.m.multiGet(req, now, r.opts.MultiGetMaxKVCount, r.opts.MultiGetMaxKVSize)
		var gotKeys, gotVals []string
		for _, kv := range resp.Kvs {
			gotKeys, gotVals = append(gotKeys, string(kv.Key.Bytes())), append(gotVals, string(kv.Value.Bytes()))
		}
		if err != nil || resp.Error != wantCode || !slices.Equal(gotKeys, wantKeys) || !slices.Equal(gotVals, wantVals) {
			r.fail("multi_get %+v:\n got %q %q code %d %v\nmodel %q %q code %d", req, gotKeys, gotVals, resp.Error, err, wantKeys, wantVals, wantCode)
		}
	case 4:
		req := &rrdb.BatchGetRequest{}
		var want []string
		for range 1 + r.rng.IntN(4) {
			h, s := r.pick(modelHashes), r.pick(modelSorts)
			req.Keys = append(req.Keys, &rrdb.FullKey{HashKey: blob(h), SortKey: blob(s)})
			if rec, ok := r.m.alive(mkey{h, s}, now); ok {
				want = append(want, h+"/"+s+"="+rec.value)
			}
		}
		resp, err := r.store.BatchGet(req)
		var got []string
		for _, d := range resp.Data {
			got = append(got, string(d.HashKey.Bytes())+"/"+string(d.SortKey.Bytes())+"="+string(d.Value.Bytes()))
		}
		if err != nil || resp.Error != 0 || !slices.Equal(got, want) {
			r.fail("batch_get: %q, model %q", got, want)
		}
	default:
		r.scan()
	}
}

func (r *modelRun) scan() {
	bound := func() []byte {
		if r.rng.IntN(3) == 0 {
			return nil
		}
		return ck(r.pick(modelHashes), r.pick(modelSorts))
	}
	validate := r.rng.IntN(2) == 0
	req := &rrdb.GetScannerRequest{
		StartKey: base.NewBlob(bound()), StopKey: base.NewBlob(bound()),
		StartInclusive: r.rng.IntN(2) == 0, StopInclusive: r.rng.IntN(2) == 0,
		BatchSize: int32(r.rng.IntN(5)), NoValue: r.rng.IntN(4) == 0,
		HashKeyFilterType: rrdb.FilterType(r.rng.IntN(4)), HashKeyFilterPattern: blob(r.pick([]string{"", "a", "b", "\xff"})),
		SortKeyFilterType: rrdb.FilterType(r.rng.IntN(4)), SortKeyFilterPattern: blob(r.pick([]string{"", "a", "1", "\xff"})),
		ValidatePartitionHash: &validate,
	}
	pidx, count := int32(r.rng.IntN(4)), int32(4)
	now := r.clk.epoch()
	want := r.m.scan(req, now, pidx, count, r.table)
	resp, err := r.store.GetScanner(req, pidx, count)
	var got []string
	for {
		if err != nil || resp.Error != 0 {
			r.fail("scan: code %d %v", resp.Error, err)
		}
		limit := int(req.BatchSize)
		if limit <= 0 {
			limit = r.opts.ScanMaxBatchSize
		}
		if len(resp.Kvs) > limit {
			r.fail("scan batch of %d records, batch size %d", len(resp.Kvs), limit)
		}
		for _, kv := range resp.Kvs {
			hk, sk, _ := keys.DecodeKey(kv.Key.Bytes())
			got = append(got, string(hk)+"/"+string(sk)+"="+string(kv.Value.Bytes()))
		}
		if resp.ContextID < 0 {
			break
		}
		// Writes between batches must not show: the scan reads its starting snapshot.
		if r.rng.IntN(3) == 0 {
			r.write()
		}
		resp, err = r.store.Scan(resp.ContextID)
	}
	if !slices.Equal(got, want) {
		r.fail("scan %+v pidx %d:\n got %q\nmodel %q", req, pidx, got, want)
	}
}

func (r *modelRun) reopen() {
	if err := r.store.Close(); err != nil {
		r.fail("close: %v", err)
	}
	s, err := Open(r.dir, r.opts)
	if err != nil {
		r.fail("reopen: %v", err)
	}
	r.store = s
	if s.LastAppliedDecree() != r.decree || s.LastDurableDecree() != r.decree {
		r.fail("reopened at applied %d durable %d, want %d", s.LastAppliedDecree(), s.LastDurableDecree(), r.decree)
	}
}

// TestModel runs a long random sequence of mutations and reads against the model.
// PEGASUS_MODEL_SEED and PEGASUS_MODEL_STEPS override the seed and the length.
func TestModel(t *testing.T) {
	seed := uint64(20250601)
	if v := os.Getenv("PEGASUS_MODEL_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = n
	}
	steps := 6000
	if testing.Short() {
		steps = 1500
	}
	if v := os.Getenv("PEGASUS_MODEL_STEPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		steps = n
	}
	t.Logf("seed %d, %d steps (rerun with PEGASUS_MODEL_SEED=%d)", seed, steps, seed)
	clk := newFakeClock()
	opts := testOptions(clk)
	opts.MultiGetMaxKVCount = 4 // small caps so that the limits are exercised
	opts.MultiGetMaxKVSize = 40
	opts.ScanMaxBatchSize = 3
	r := &modelRun{
		t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), clk: clk,
		dir: filepath.Join(t.TempDir(), "db"), opts: opts,
		m: &model{recs: map[mkey]mrec{}}, table: crc64.MakeTable(pegasusCRC64Poly),
	}
	s, err := Open(r.dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.store = s
	defer func() { r.store.Close() }()
	for r.step = 0; r.step < steps; r.step++ {
		switch x := r.rng.IntN(100); {
		case x < 45:
			r.write()
		case x < 93:
			r.read()
		case x < 96:
			r.clk.Advance(time.Duration(r.rng.IntN(3)) * time.Second)
		case x < 98:
			if _, err := r.store.PurgeExpired(t.Context()); err != nil {
				r.fail("purge: %v", err)
			}
			r.m.purge()
		case x < 99:
			if err := r.store.Compact(t.Context()); err != nil {
				r.fail("compact: %v", err)
			}
			r.m.purge()
		default:
			r.reopen()
		}
	}
	// Final full comparison of the raw records, expired ones included.
	var got []string
	err = r.store.ForEach(t.Context(), func(rec *Record) error {
		got = append(got, fmt.Sprintf("%s/%s=%s@%d", rec.HashKey, rec.SortKey, rec.Value, rec.ExpireTS))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, k := range r.m.sortedKeys() {
		rec := r.m.recs[k]
		want = append(want, fmt.Sprintf("%s/%s=%s@%d", k.h, k.s, rec.value, rec.expire))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("final state differs:\n got %q\nmodel %q", got, want)
	}
}
