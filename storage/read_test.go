package storage

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
)

// rangeFixture is one hash key with sort keys chosen around the interesting boundaries,
// surrounded by neighbouring hash keys that must never leak into its reads.
var rangeFixtureSorts = []string{"", "a", "ab", "abc", "b", "ba", "c", "\xff", "\xff\xff"}

func loadRangeFixture(t *testing.T) *testStore {
	s := openTestStore(t)
	var ops []Op
	for _, sk := range rangeFixtureSorts {
		ops = append(ops, putOp("h", sk, "v"+sk, 0))
	}
	for _, h := range []string{"g", "i", "hh", "\xff"} {
		ops = append(ops, putOp(h, "", "x", 0), putOp(h, "a", "x", 0), putOp(h, "\xff", "x", 0))
	}
	s.apply(ops...)
	return s
}

func sortKeysOf(kvs []*rrdb.KeyValue) []string {
	out := []string{}
	for _, kv := range kvs {
		out = append(out, string(kv.Key.Bytes()))
	}
	return out
}

func TestMultiGetRange(t *testing.T) {
	s := loadRangeFixture(t)
	all := rangeFixtureSorts
	type req = rrdb.MultiGetRequest
	tests := []struct {
		name     string
		req      req
		want     []string
		wantCode int32
	}{
		{"everything", req{StartInclusive: true}, all, 0},
		{"start exclusive drops the empty sort key", req{}, all[1:], 0},
		{"a to b", req{StartSortkey: blob("a"), StopSortkey: blob("b"), StartInclusive: true}, []string{"a", "ab", "abc"}, 0},
		{"(a, b]", req{StartSortkey: blob("a"), StopSortkey: blob("b"), StopInclusive: true}, []string{"ab", "abc", "b"}, 0},
		{"[b, b]", req{StartSortkey: blob("b"), StopSortkey: blob("b"), StartInclusive: true, StopInclusive: true}, []string{"b"}, 0},
		{"[b, b)", req{StartSortkey: blob("b"), StopSortkey: blob("b"), StartInclusive: true}, []string{}, 0},
		{"start after stop", req{StartSortkey: blob("c"), StopSortkey: blob("a"), StartInclusive: true, StopInclusive: true}, []string{}, 0},
		{"stop at ff ff inclusive", req{StartSortkey: blob("c"), StopSortkey: blob("\xff\xff"), StartInclusive: true, StopInclusive: true}, []string{"c", "\xff", "\xff\xff"}, 0},
		{"prefix a", req{StartInclusive: true, SortKeyFilterType: rrdb.FilterType_FT_MATCH_PREFIX, SortKeyFilterPattern: blob("a")}, []string{"a", "ab", "abc"}, 0},
		{"prefix a from ab", req{StartSortkey: blob("ab"), StartInclusive: true, SortKeyFilterType: rrdb.FilterType_FT_MATCH_PREFIX, SortKeyFilterPattern: blob("a")}, []string{"ab", "abc"}, 0},
		{"prefix a until ab", req{StopSortkey: blob("ab"), StartInclusive: true, SortKeyFilterType: rrdb.FilterType_FT_MATCH_PREFIX, SortKeyFilterPattern: blob("a")}, []string{"a"}, 0},
		{"prefix ff", req{StartInclusive: true, SortKeyFilterType: rrdb.FilterType_FT_MATCH_PREFIX, SortKeyFilterPattern: blob("\xff")}, []string{"\xff", "\xff\xff"}, 0},
		{"prefix nothing", req{StartInclusive: true, SortKeyFilterType: rrdb.FilterType_FT_MATCH_PREFIX, SortKeyFilterPattern: blob("zz")}, []string{}, 0},
		{"empty prefix", req{StartInclusive: true, SortKeyFilterType: rrdb.FilterType_FT_MATCH_PREFIX}, all, 0},
		{"anywhere b", req{StartInclusive: true, SortKeyFilterType: rrdb.FilterType_FT_MATCH_ANYWHERE, SortKeyFilterPattern: blob("b")}, []string{"ab", "abc", "b", "ba"}, 0},
		{"postfix a", req{StartInclusive: true, SortKeyFilterType: rrdb.FilterType_FT_MATCH_POSTFIX, SortKeyFilterPattern: blob("a")}, []string{"a", "ba"}, 0},
		{"postfix longer than keys", req{StartInclusive: true, SortKeyFilterType: rrdb.FilterType_FT_MATCH_POSTFIX, SortKeyFilterPattern: blob("xabc")}, []string{}, 0},
		{"count 2", req{StartInclusive: true, MaxKvCount: 2}, []string{"", "a"}, 7},
		{"count 2 reverse", req{StartInclusive: true, MaxKvCount: 2, Reverse: true}, []string{"\xff", "\xff\xff"}, 7},
		{"count exact", req{StartInclusive: true, MaxKvCount: int32(len(all))}, all, 0},
		{"reverse everything", req{StartInclusive: true, Reverse: true}, all, 0},
		{"reverse a to b", req{StartSortkey: blob("a"), StopSortkey: blob("b"), StartInclusive: true, MaxKvCount: 2, Reverse: true}, []string{"ab", "abc"}, 7},
		// Filtered records count against the cap: two iterations, nothing matched.
		{"filtered count toward cap", req{StartInclusive: true, MaxKvCount: 2, SortKeyFilterType: rrdb.FilterType_FT_MATCH_ANYWHERE, SortKeyFilterPattern: blob("c")}, []string{}, 7},
		// Size counts sort key + value: "" + "v" = 1, "a" + "va" = 3: the second record
		// reaches 4 and ends the answer.
		{"size 4", req{StartInclusive: true, MaxKvSize: 4}, []string{"", "a"}, 7},
		{"size 1", req{StartInclusive: true, MaxKvSize: 1}, []string{""}, 7},
		{"size large", req{StartInclusive: true, MaxKvSize: 1 << 20}, all, 0},
		{"no value size", req{StartInclusive: true, MaxKvSize: 3, NoValue: true}, []string{"", "a", "ab"}, 7},
		{"bad filter type", req{StartInclusive: true, SortKeyFilterType: 4}, []string{}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req
			r.HashKey = blob("h")
			resp, err := s.MultiGet(&r)
			if err != nil {
				t.Fatal(err)
			}
			if got := sortKeysOf(resp.Kvs); resp.Error != tc.wantCode || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q code %d, want %q code %d", got, resp.Error, tc.want, tc.wantCode)
			}
			for _, kv := range resp.Kvs {
				want := "v" + string(kv.Key.Bytes())
				if r.NoValue {
					want = ""
				}
				if string(kv.Value.Bytes()) != want {
					t.Errorf("value of %q = %q", kv.Key.Bytes(), kv.Value.Bytes())
				}
			}
		})
	}
}

func TestMultiGetServerCaps(t *testing.T) {
	s := openTestStore(t, func(o *Options) { o.MultiGetMaxKVCount = 5; o.MultiGetMaxKVSize = 1000 })
	var ops []Op
	for i := range 10 {
		ops = append(ops, putOp("h", fmt.Sprintf("%02d", i), strings.Repeat("v", 100), 0))
	}
	s.apply(ops...)
	for _, tc := range []struct {
		count, size int32
		want        int
		code        int32
	}{
		{0, 0, 5, 7},    // the server count cap applies by default
		{100, 0, 5, 7},  // and a request cannot raise it
		{3, 0, 3, 7},    // a smaller request limit wins
		{0, 250, 3, 7},  // 102 bytes per record: the third reaches 250
		{0, 5000, 5, 7}, // the size cap cannot be raised either (but count hits first)
	} {
		resp, err := s.MultiGet(&rrdb.MultiGetRequest{HashKey: blob("h"), StartInclusive: true, MaxKvCount: tc.count, MaxKvSize: tc.size})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) != tc.want || resp.Error != tc.code {
			t.Errorf("count %d size %d: %d kvs code %d, want %d code %d", tc.count, tc.size, len(resp.Kvs), resp.Error, tc.want, tc.code)
		}
	}
}

func TestMultiGetPoints(t *testing.T) {
	s := loadRangeFixture(t)
	now := s.clk.epoch()
	s.apply(putOp("h", "expiring", "v", int32(now+5)))
	s.clk.Advance(5 * time.Second)
	sorts := func(ss ...string) []*base.Blob {
		out := []*base.Blob{}
		for _, x := range ss {
			out = append(out, blob(x))
		}
		return out
	}
	tests := []struct {
		name string
		req  rrdb.MultiGetRequest
		want []string
		code int32
	}{
		{"request order, duplicates kept, missing and expired dropped",
			rrdb.MultiGetRequest{SortKeys: sorts("b", "missing", "", "expiring", "b")}, []string{"b", "", "b"}, 0},
		// Range fields and the filter do not apply to the point form.
		{"range fields ignored", rrdb.MultiGetRequest{SortKeys: sorts("c", "a"), StartSortkey: blob("zz"),
			SortKeyFilterType: rrdb.FilterType_FT_MATCH_PREFIX, SortKeyFilterPattern: blob("q")}, []string{"c", "a"}, 0},
		{"count limit", rrdb.MultiGetRequest{SortKeys: sorts("a", "b", "c"), MaxKvCount: 2}, []string{"a", "b"}, 7},
		{"count limit on the last key", rrdb.MultiGetRequest{SortKeys: sorts("a", "b"), MaxKvCount: 2}, []string{"a", "b"}, 0},
		{"size limit", rrdb.MultiGetRequest{SortKeys: sorts("a", "b", "c"), MaxKvSize: 3}, []string{"a"}, 7},
		{"no value", rrdb.MultiGetRequest{SortKeys: sorts("a"), NoValue: true}, []string{"a"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req
			r.HashKey = blob("h")
			resp, err := s.MultiGet(&r)
			if err != nil {
				t.Fatal(err)
			}
			if got := sortKeysOf(resp.Kvs); resp.Error != tc.code || !slices.Equal(got, tc.want) {
				t.Fatalf("got %q code %d, want %q code %d", got, resp.Error, tc.want, tc.code)
			}
			if r.NoValue && len(resp.Kvs) > 0 && resp.Kvs[0].Value.Len() != 0 {
				t.Errorf("no_value returned a value")
			}
		})
	}
}

func TestBatchGet(t *testing.T) {
	s := openTestStore(t)
	now := s.clk.epoch()
	s.apply(putOp("a", "1", "a1", 0), putOp("b", "", "b", 0), putOp("c", "x", "gone", int32(now+1)))
	s.clk.Advance(time.Second)
	fk := func(h, sk string) *rrdb.FullKey { return &rrdb.FullKey{HashKey: blob(h), SortKey: blob(sk)} }
	resp, err := s.BatchGet(&rrdb.BatchGetRequest{Keys: []*rrdb.FullKey{fk("b", ""), fk("a", "1"), fk("a", "2"), fk("c", "x")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range resp.Data {
		got = append(got, string(d.HashKey.Bytes())+"/"+string(d.SortKey.Bytes())+"="+string(d.Value.Bytes()))
	}
	if want := []string{"b/=b", "a/1=a1"}; resp.Error != 0 || !slices.Equal(got, want) {
		t.Fatalf("batch_get = %q code %d, want %q", got, resp.Error, want)
	}
	if resp, _ := s.BatchGet(&rrdb.BatchGetRequest{}); resp.Error != CodeInvalidArgument || resp.Data == nil {
		t.Fatalf("empty batch_get: %+v", resp)
	}
	long := strings.Repeat("x", 70000)
	if resp, _ := s.BatchGet(&rrdb.BatchGetRequest{Keys: []*rrdb.FullKey{fk(long, "")}}); resp.Error != CodeInvalidArgument {
		t.Fatalf("unencodable batch_get key: %+v", resp)
	}
}

func TestSortkeyCountAndTTL(t *testing.T) {
	s := loadRangeFixture(t)
	now := s.clk.epoch()
	s.apply(putOp("h", "t1", "v", int32(now+100)), putOp("h", "t2", "v", int32(now+1)))
	count := func(h string) int64 {
		r, err := s.SortkeyCount([]byte(h))
		if err != nil || r.Error != 0 {
			t.Fatalf("count: %+v %v", r, err)
		}
		return r.Count
	}
	if got := count("h"); got != int64(len(rangeFixtureSorts)+2) {
		t.Fatalf("count = %d", got)
	}
	ttl := func(h, sk string) (int32, int32) {
		r, err := s.TTL(ck(h, sk))
		if err != nil {
			t.Fatal(err)
		}
		return r.TTLSeconds, r.Error
	}
	if v, code := ttl("h", "t1"); v != 100 || code != 0 {
		t.Fatalf("ttl t1 = %d/%d", v, code)
	}
	if v, code := ttl("h", "a"); v != -1 || code != 0 {
		t.Fatalf("ttl without expiry = %d/%d", v, code)
	}
	if _, code := ttl("h", "missing"); code != CodeNotFound {
		t.Fatalf("ttl missing code %d", code)
	}
	s.clk.Advance(time.Second)
	if _, code := ttl("h", "t2"); code != CodeNotFound {
		t.Fatalf("ttl expired code %d", code)
	}
	if got := count("h"); got != int64(len(rangeFixtureSorts)+1) {
		t.Fatalf("count after expiry = %d", got)
	}
	if got := count("nothing"); got != 0 {
		t.Fatalf("count of an absent hash key = %d", got)
	}
	if r, _ := s.TTL([]byte{1}); r.Error != CodeNotFound {
		t.Fatalf("ttl of a malformed key: %+v", r)
	}
	if r, _ := s.SortkeyCount(make([]byte, 70000)); r.Error != CodeInvalidArgument {
		t.Fatalf("count of an unencodable hash key: %+v", r)
	}
}

// TestExpiryInvisibleEverywhere writes a record that expires and checks every read.
func TestExpiryInvisibleEverywhere(t *testing.T) {
	s := openTestStore(t)
	now := s.clk.epoch()
	s.apply(putOp("h", "live", "v", 0), putOp("h", "dying", "v", int32(now+10)))
	visible := func() []string {
		t.Helper()
		var seen []string
		if _, code := s.get("h", "dying"); code == CodeOK {
			seen = append(seen, "get")
		}
		if r, _ := s.TTL(ck("h", "dying")); r.Error == CodeOK {
			seen = append(seen, "ttl")
		}
		if r, _ := s.MultiGet(&rrdb.MultiGetRequest{HashKey: blob("h"), StartInclusive: true}); len(r.Kvs) == 2 {
			seen = append(seen, "multi_get")
		}
		if r, _ := s.MultiGet(&rrdb.MultiGetRequest{HashKey: blob("h"), SortKeys: []*base.Blob{blob("dying")}}); len(r.Kvs) == 1 {
			seen = append(seen, "multi_get points")
		}
		if r, _ := s.BatchGet(&rrdb.BatchGetRequest{Keys: []*rrdb.FullKey{{HashKey: blob("h"), SortKey: blob("dying")}}}); len(r.Data) == 1 {
			seen = append(seen, "batch_get")
		}
		if r, _ := s.SortkeyCount([]byte("h")); r.Count == 2 {
			seen = append(seen, "count")
		}
		if r, _ := s.GetScanner(&rrdb.GetScannerRequest{StartKey: blob(""), StartInclusive: true}, 0, 0); len(r.Kvs) == 2 {
			seen = append(seen, "scan")
		}
		return seen
	}
	all := []string{"get", "ttl", "multi_get", "multi_get points", "batch_get", "count", "scan"}
	s.clk.Advance(9 * time.Second)
	if got := visible(); !slices.Equal(got, all) {
		t.Fatalf("one second before expiry visible in %q", got)
	}
	s.clk.Advance(time.Second)
	if got := visible(); len(got) != 0 {
		t.Fatalf("expired record visible in %q", got)
	}
}

// tickClock advances by step on every reading, to drive the iteration time limit.
type tickClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *tickClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

func TestIterationTimeLimit(t *testing.T) {
	clk := &tickClock{now: testEpoch, step: time.Second}
	s := openTestStore(t, func(o *Options) { o.Clock = clk.Now; o.IterationTimeLimit = 5 * time.Second })
	var ops []Op
	for i := range 2000 {
		ops = append(ops, putOp("h", fmt.Sprintf("%05d", i), "v", 0))
	}
	s.apply(ops...)
	mg, err := s.MultiGet(&rrdb.MultiGetRequest{HashKey: blob("h"), StartInclusive: true})
	if err != nil || mg.Error != CodeIncomplete || len(mg.Kvs) == 0 || len(mg.Kvs) >= 2000 {
		t.Fatalf("multi_get under a time limit: code %d, %d kvs, %v", mg.Error, len(mg.Kvs), err)
	}
	cnt, err := s.SortkeyCount([]byte("h"))
	if err != nil || cnt.Error != 0 || cnt.Count != -1 {
		t.Fatalf("sortkey_count under a time limit: %+v %v", cnt, err)
	}
	sc, err := s.GetScanner(&rrdb.GetScannerRequest{StartKey: blob(""), StartInclusive: true, BatchSize: 1000}, 0, 0)
	if err != nil || sc.Error != CodeIncomplete || len(sc.Kvs) == 0 || len(sc.Kvs) >= 1000 || sc.ContextID < 0 {
		t.Fatalf("scan under a time limit: code %d, %d kvs, id %d, %v", sc.Error, len(sc.Kvs), sc.ContextID, err)
	}
	s.ClearScanner(sc.ContextID)
}
