package storage

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// scanAll runs a scanner to completion and returns the composite keys it produced
// (decoded as "hash/sort"), the number of batches, and the summed kv_count.
func scanAll(t *testing.T, s *testStore, req *rrdb.GetScannerRequest, pidx, count int32) (got []string, batches int, kvCount int32) {
	t.Helper()
	resp, err := s.GetScanner(req, pidx, count)
	seen := map[int64]bool{}
	for {
		if err != nil || resp.Error != 0 {
			t.Fatalf("batch %d: code %d err %v", batches, resp.Error, err)
		}
		batches++
		for _, kv := range resp.Kvs {
			h, sk, err := keys.DecodeKey(kv.Key.Bytes())
			if err != nil {
				t.Fatalf("scan returned a bad key %x", kv.Key.Bytes())
			}
			got = append(got, string(h)+"/"+string(sk))
		}
		if resp.KvCount != nil {
			kvCount += *resp.KvCount
		}
		if resp.ContextID < 0 {
			return got, batches, kvCount
		}
		if seen[resp.ContextID] {
			t.Fatalf("context id %d handed out twice", resp.ContextID)
		}
		seen[resp.ContextID] = true
		id := resp.ContextID
		resp, err = s.Scan(id)
		// A context id is single use.
		if again, _ := s.Scan(id); again.Error != CodeNotFound {
			t.Fatalf("reused context id answered %d", again.Error)
		}
	}
}

func TestScannerBatching(t *testing.T) {
	s := openTestStore(t)
	var ops []Op
	var want []string
	for h := range 25 {
		hk := fmt.Sprintf("h%02d", h)
		for sk := range 100 {
			sks := fmt.Sprintf("s%03d", sk)
			ops = append(ops, putOp(hk, sks, "v", 0))
			want = append(want, hk+"/"+sks)
		}
	}
	s.apply(ops...)
	full := func(batch int32) *rrdb.GetScannerRequest {
		return &rrdb.GetScannerRequest{StartKey: blob("\x00\x00"), StopKey: blob("\xff\xff"), StartInclusive: true, BatchSize: batch}
	}
	for _, tc := range []struct {
		batch       int32
		wantBatches int
	}{
		{1000, 3}, {0, 3}, {-5, 3}, {5000, 3}, {100, 25}, {2500, 3}, {1, 2500}, {999, 3}, {834, 3}, {833, 4},
	} {
		got, batches, _ := scanAll(t, s, full(tc.batch), 0, 0)
		if !slices.Equal(got, want) {
			t.Fatalf("batch %d: %d records, want %d", tc.batch, len(got), len(want))
		}
		if batches != tc.wantBatches {
			t.Errorf("batch %d: %d batches, want %d", tc.batch, batches, tc.wantBatches)
		}
	}
	req := full(0)
	req.OnlyReturnCount = true
	got, _, n := scanAll(t, s, req, 0, 0)
	if len(got) != 0 || n != 2500 {
		t.Fatalf("only_return_count: %d kvs, count %d", len(got), n)
	}
	if s.OpenScanners() != 0 {
		t.Fatalf("%d contexts left open", s.OpenScanners())
	}
}

func TestScannerRanges(t *testing.T) {
	s := openTestStore(t)
	var ops []Op
	for _, h := range []string{"a", "b", "ab", "abc", "ba", "\x00", "\xff\xff"} {
		for _, sk := range []string{"", "1", "2", "x\xff"} {
			ops = append(ops, putOp(h, sk, "v:"+h+sk, 0))
		}
	}
	s.apply(ops...)
	key := func(h, sk string) []byte { return ck(h, sk) }
	req := func(start, stop []byte, si, so bool) rrdb.GetScannerRequest {
		return rrdb.GetScannerRequest{StartKey: blob(string(start)), StopKey: blob(string(stop)), StartInclusive: si, StopInclusive: so}
	}
	withFilter := func(r rrdb.GetScannerRequest, ht rrdb.FilterType, hp string, st rrdb.FilterType, sp string) rrdb.GetScannerRequest {
		r.HashKeyFilterType, r.HashKeyFilterPattern, r.SortKeyFilterType, r.SortKeyFilterPattern = ht, blob(hp), st, blob(sp)
		return r
	}
	everything := req(nil, nil, true, false)
	tests := []struct {
		name string
		req  rrdb.GetScannerRequest
		want []string
	}{
		{"one hash key like the go-client", req(key("a", ""), key("a", "\xff\xff"), true, false), []string{"a/", "a/1", "a/2", "a/x\xff"}},
		{"(a/1, a/2]", req(key("a", "1"), key("a", "2"), false, true), []string{"a/2"}},
		{"[a/1, a/2)", req(key("a", "1"), key("a", "2"), true, false), []string{"a/1"}},
		{"[a/1, a/1]", req(key("a", "1"), key("a", "1"), true, true), []string{"a/1"}},
		{"[a/1, a/1)", req(key("a", "1"), key("a", "1"), true, false), nil},
		{"reversed bounds", req(key("b", ""), key("a", ""), true, true), nil},
		{"across hash keys of one length", req(key("a", "2"), key("b", "1"), true, true), []string{"a/2", "a/x\xff", "b/", "b/1"}},
		// Hash keys order by length first: "\x00" < "a" < "b", then "ab" < "ba" < "\xff\xff",
		// then "abc".
		{"empty stop reaches the end", req(key("ba", "x\xff"), nil, true, false),
			[]string{"ba/x\xff", "\xff\xff/", "\xff\xff/1", "\xff\xff/2", "\xff\xff/x\xff", "abc/", "abc/1", "abc/2", "abc/x\xff"}},
		{"stop past ff ff", req(key("abc", "2"), []byte{0xff, 0xff, 0xff}, true, true), []string{"abc/2", "abc/x\xff"}},
		{"hash prefix a", withFilter(everything, rrdb.FilterType_FT_MATCH_PREFIX, "a", 0, ""),
			[]string{"a/", "a/1", "a/2", "a/x\xff", "ab/", "ab/1", "ab/2", "ab/x\xff", "abc/", "abc/1", "abc/2", "abc/x\xff"}},
		{"hash prefix ab, sort 1", withFilter(everything, rrdb.FilterType_FT_MATCH_PREFIX, "ab", rrdb.FilterType_FT_MATCH_PREFIX, "1"),
			[]string{"ab/1", "abc/1"}},
		{"hash anywhere b, sort postfix ff", withFilter(everything, rrdb.FilterType_FT_MATCH_ANYWHERE, "b", rrdb.FilterType_FT_MATCH_POSTFIX, "\xff"),
			[]string{"b/x\xff", "ab/x\xff", "ba/x\xff", "abc/x\xff"}},
		{"hash postfix a", withFilter(everything, rrdb.FilterType_FT_MATCH_POSTFIX, "a", rrdb.FilterType_FT_MATCH_ANYWHERE, "2"),
			[]string{"a/2", "ba/2"}},
		{"hash prefix beyond stop", withFilter(req(key("a", ""), key("b", ""), true, false), rrdb.FilterType_FT_MATCH_PREFIX, "zz", 0, ""), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req
			got, _, _ := scanAll(t, s, &r, 0, 0)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
		})
	}
	// Everything from the start, the \x00 hash key included, and no internal record.
	r := everything
	got, _, _ := scanAll(t, s, &r, 0, 0)
	if len(got) != 28 || got[0] != "\x00/" {
		t.Fatalf("full scan: %d records starting %q", len(got), got[:1])
	}
}

func TestScannerOptions(t *testing.T) {
	s := openTestStore(t)
	now := s.clk.epoch()
	s.apply(putOp("h", "a", "va", 0), putOp("h", "b", "vb", int32(now+100)), putOp("h", "c", "vc", int32(now+1)))
	s.clk.Advance(time.Second)
	yes := true
	resp, err := s.GetScanner(&rrdb.GetScannerRequest{StartKey: blob(""), StartInclusive: true, ReturnExpireTs: &yes}, 0, 0)
	if err != nil || resp.Error != 0 || len(resp.Kvs) != 2 || resp.ContextID != -1 || resp.KvCount != nil {
		t.Fatalf("scan: %+v %v", resp, err)
	}
	if e := resp.Kvs[0].ExpireTsSeconds; e == nil || *e != 0 {
		t.Errorf("expire_ts of a: %v", e)
	}
	if e := resp.Kvs[1].ExpireTsSeconds; e == nil || *e != int32(now+100) {
		t.Errorf("expire_ts of b: %v", e)
	}
	if string(resp.Kvs[1].Value.Bytes()) != "vb" || string(resp.Kvs[1].Key.Bytes()) != string(ck("h", "b")) {
		t.Errorf("kv: %+v", resp.Kvs[1])
	}
	resp, _ = s.GetScanner(&rrdb.GetScannerRequest{StartKey: blob(""), StartInclusive: true, NoValue: true}, 0, 0)
	if len(resp.Kvs) != 2 || resp.Kvs[0].Value == nil || resp.Kvs[0].Value.Len() != 0 || resp.Kvs[0].ExpireTsSeconds != nil {
		t.Fatalf("no_value scan: %+v", resp.Kvs)
	}
	for _, bad := range []*rrdb.GetScannerRequest{
		{HashKeyFilterType: 4}, {SortKeyFilterType: -1},
	} {
		resp, err := s.GetScanner(bad, 0, 0)
		if err != nil || resp.Error != CodeInvalidArgument || resp.ContextID != -1 || resp.Kvs == nil {
			t.Fatalf("bad filter: %+v %v", resp, err)
		}
	}
	// An empty range finishes at once, also when only counting.
	resp, _ = s.GetScanner(&rrdb.GetScannerRequest{StartKey: blob("z"), StopKey: blob("a"), OnlyReturnCount: true}, 0, 0)
	if resp.Error != 0 || resp.ContextID != -1 || len(resp.Kvs) != 0 || resp.KvCount == nil || *resp.KvCount != 0 {
		t.Fatalf("empty range: %+v", resp)
	}
	if resp, _ := s.Scan(12345); resp.Error != CodeNotFound || resp.ContextID != -1 {
		t.Fatalf("unknown id: %+v", resp)
	}
}

// TestScannerPartitionHash checks validate_partition_hash against the shared CRC-64
// vectors (which also validates the engine's own copy of the partition hash).
func TestScannerPartitionHash(t *testing.T) {
	f, err := os.Open(filepath.Join(vectorsDir(t), "crc64.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := openTestStore(t)
	wantByPidx := map[int32][]string{}
	var all []string
	var ops []Op
	header := true
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		if header {
			header = false
			continue
		}
		cols := strings.Split(line, "\t")
		h, err1 := hex.DecodeString(cols[0])
		crc, err2 := strconv.ParseUint(cols[1], 16, 64)
		pidx, err3 := strconv.Atoi(cols[2])
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("crc64.tsv row %q: %v", line, err)
		}
		if got := s.partitionHash(h); got != crc {
			t.Errorf("partitionHash(%x) = %016x, want %016x", h, got, crc)
		}
		if len(h) == 0 {
			continue // empty hash keys cannot be written
		}
		ops = append(ops, putOp(string(h), "s", "v", 0))
		wantByPidx[int32(pidx)] = append(wantByPidx[int32(pidx)], string(h)+"/s")
		all = append(all, string(h)+"/s")
	}
	s.apply(ops...)
	no := false
	total := 0
	for pidx := range int32(4) {
		got, _, _ := scanAll(t, s, &rrdb.GetScannerRequest{StartKey: blob("\x00\x00"), StopKey: blob("\xff\xff"), StartInclusive: true}, pidx, 4)
		want := wantByPidx[pidx]
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("pidx %d: got %d keys, want %d", pidx, len(got), len(want))
		}
		total += len(got)
		got, _, _ = scanAll(t, s, &rrdb.GetScannerRequest{StartKey: blob("\x00\x00"), StartInclusive: true, ValidatePartitionHash: &no}, pidx, 4)
		if len(got) != len(all) {
			t.Errorf("pidx %d without validation: %d keys, want %d", pidx, len(got), len(all))
		}
	}
	if total != len(all) {
		t.Errorf("partitions hold %d keys in total, want %d", total, len(all))
	}
}

func TestScannerSnapshot(t *testing.T) {
	s := openTestStore(t)
	s.apply(putOp("h", "1", "old", 0), putOp("h", "2", "old", 0), putOp("h", "3", "old", 0))
	resp, _ := s.GetScanner(&rrdb.GetScannerRequest{StartKey: blob(""), StartInclusive: true, BatchSize: 1}, 0, 0)
	s.apply(putOp("h", "2", "new", 0), removeOp("h", "3"), putOp("h", "4", "new", 0))
	var values []string
	for {
		for _, kv := range resp.Kvs {
			values = append(values, string(kv.Value.Bytes()))
		}
		if resp.ContextID < 0 {
			break
		}
		resp, _ = s.Scan(resp.ContextID)
	}
	if want := []string{"old", "old", "old"}; !slices.Equal(values, want) {
		t.Fatalf("scan across writes saw %q, want its starting snapshot %q", values, want)
	}
}

func TestScannerContextLimits(t *testing.T) {
	s := openTestStore(t, func(o *Options) { o.MaxScanners = 3; o.ScannerIdleTimeout = time.Minute })
	var ops []Op
	for i := range 10 {
		ops = append(ops, putOp("h", strconv.Itoa(i), "v", 0))
	}
	s.apply(ops...)
	open := func() int64 {
		resp, err := s.GetScanner(&rrdb.GetScannerRequest{StartKey: blob(""), StartInclusive: true, BatchSize: 2}, 0, 0)
		if err != nil || resp.ContextID < 0 {
			t.Fatalf("open: %+v %v", resp, err)
		}
		return resp.ContextID
	}
	var ids []int64
	for range 5 {
		ids = append(ids, open())
	}
	if n := s.OpenScanners(); n != 3 {
		t.Fatalf("%d contexts open, bound is 3", n)
	}
	// The two least recently used were evicted; the others still work.
	for i, id := range ids {
		resp, _ := s.Scan(id)
		want := CodeOK
		if i < 2 {
			want = CodeNotFound
		}
		if resp.Error != want {
			t.Errorf("scanner %d: code %d, want %d", i, resp.Error, want)
		}
		if resp.ContextID >= 0 {
			ids[i] = resp.ContextID
		}
	}
	// Clearing discards; clearing an unknown id is harmless.
	s.ClearScanner(ids[2])
	s.ClearScanner(-7)
	if resp, _ := s.Scan(ids[2]); resp.Error != CodeNotFound {
		t.Fatalf("cleared context answered %d", resp.Error)
	}
	// Lazy expiry: an idle context is gone on its next use.
	s.clk.Advance(time.Minute)
	if resp, _ := s.Scan(ids[3]); resp.Error != CodeNotFound {
		t.Fatalf("idle context answered %d", resp.Error)
	}
	// The janitor closes idle contexts without being asked.
	if n := s.OpenScanners(); n != 1 {
		t.Fatalf("%d contexts open before the janitor runs", n)
	}
	if n := s.scanners.expire(s.clk.Now()); n != 1 {
		t.Fatalf("expire closed %d contexts", n)
	}
}

func TestScannerJanitor(t *testing.T) {
	s := openTestStore(t, func(o *Options) { o.ScannerIdleTimeout = time.Second })
	s.apply(putOp("h", "1", "v", 0), putOp("h", "2", "v", 0))
	resp, _ := s.GetScanner(&rrdb.GetScannerRequest{StartKey: blob(""), StartInclusive: true, BatchSize: 1}, 0, 0)
	if resp.ContextID < 0 || s.OpenScanners() != 1 {
		t.Fatalf("no context stored: %+v", resp)
	}
	s.clk.Advance(2 * time.Second)
	waitfor.Until(t, 10*time.Second, 50*time.Millisecond, "the janitor to expire the idle context", func() (bool, string) {
		n := s.OpenScanners()
		return n == 0, fmt.Sprintf("%d contexts open", n)
	})
}

func TestScannerAfterClose(t *testing.T) {
	s := openTestStore(t)
	s.apply(putOp("h", "1", "v", 0), putOp("h", "2", "v", 0))
	resp, _ := s.GetScanner(&rrdb.GetScannerRequest{StartKey: blob(""), StartInclusive: true, BatchSize: 1}, 0, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Scan(resp.ContextID)
	if !errors.Is(err, ErrClosed) || r.Error != CodeShutdownInProgress {
		t.Fatalf("scan after close: %+v %v", r, err)
	}
	if _, err := s.Get(ck("h", "1")); !errors.Is(err, ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
	if _, err := s.Apply(&Mutation{Decree: 2}); !errors.Is(err, ErrClosed) {
		t.Fatalf("apply after close: %v", err)
	}
	s.ClearScanner(resp.ContextID)
}
