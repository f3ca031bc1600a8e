package kv

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// TestOperations runs every table operation against one fake cluster.
func TestOperations(t *testing.T) {
	e := newEnv(t, 8, nil)
	ctx, cancel := e.ctx()
	defer cancel()
	tbl := e.tbl

	t.Run("table info", func(t *testing.T) {
		if tbl.Name() != "t" || tbl.AppID() < 1 || tbl.PartitionCount() != 8 {
			t.Fatalf("name %q app %d partitions %d", tbl.Name(), tbl.AppID(), tbl.PartitionCount())
		}
		// The routing vectors of the protocol: CRC64("hk") % 8 = 3, CRC64("a") % 8 = 4.
		if got := tbl.PartitionOf([]byte("hk")); got != 3 {
			t.Errorf("PartitionOf(hk) = %d, want 3", got)
		}
		if got := tbl.PartitionOf([]byte("a")); got != 4 {
			t.Errorf("PartitionOf(a) = %d, want 4", got)
		}
		for pidx := range tbl.PartitionCount() {
			hk := tbl.HashKeyForPartition(pidx, "probe_")
			if !bytes.HasPrefix(hk, []byte("probe_")) || tbl.PartitionOf(hk) != pidx {
				t.Fatalf("HashKeyForPartition(%d) = %q routes to %d", pidx, hk, tbl.PartitionOf(hk))
			}
			if again := tbl.HashKeyForPartition(pidx, "probe_"); !bytes.Equal(again, hk) {
				t.Fatalf("HashKeyForPartition is not deterministic: %q then %q", hk, again)
			}
			if tbl.Primary(pidx) != e.c.Primary("t", pidx).Addr() {
				t.Fatalf("Primary(%d) = %s", pidx, tbl.Primary(pidx))
			}
		}
		if tbl.HashKeyForPartition(8, "x") != nil || tbl.HashKeyForPartition(-1, "x") != nil || tbl.Primary(8) != "" {
			t.Fatal("out-of-range partitions must give nil / empty")
		}
	})

	t.Run("set get del", func(t *testing.T) {
		cases := []struct {
			name   string
			hk, sk []byte
			value  []byte
		}{
			{"plain", []byte("user1"), []byte("name"), []byte("alice")},
			{"empty sort key", []byte("user1"), nil, []byte("root")},
			{"empty value", []byte("user2"), []byte("empty"), []byte{}},
			{"binary", []byte{0, 0xff, 1}, []byte{0xff, 0xff, 0}, []byte{0, 1, 2, 0xff}},
			{"long hash key", bytes.Repeat([]byte("h"), 65534), []byte("s"), []byte("v")},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if err := tbl.Set(ctx, tc.hk, tc.sk, tc.value, 0); err != nil {
					t.Fatal(err)
				}
				got, err := tbl.Get(ctx, tc.hk, tc.sk)
				if err != nil || got == nil || !bytes.Equal(got, tc.value) {
					t.Fatalf("get = %q, %v; want %q", got, err, tc.value)
				}
				if ok, err := tbl.Exist(ctx, tc.hk, tc.sk); err != nil || !ok {
					t.Fatalf("exist = %v, %v", ok, err)
				}
				if err := tbl.Del(ctx, tc.hk, tc.sk); err != nil {
					t.Fatal(err)
				}
				if got, err := tbl.Get(ctx, tc.hk, tc.sk); err != nil || got != nil {
					t.Fatalf("after del: get = %q, %v; want nil", got, err)
				}
				if ok, err := tbl.Exist(ctx, tc.hk, tc.sk); err != nil || ok {
					t.Fatalf("after del: exist = %v, %v", ok, err)
				}
				// Deleting again is fine.
				if err := tbl.Del(ctx, tc.hk, tc.sk); err != nil {
					t.Fatal(err)
				}
			})
		}
	})

	t.Run("ttl", func(t *testing.T) {
		hk := []byte("ttl")
		if err := tbl.Set(ctx, hk, []byte("forever"), []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		if err := tbl.Set(ctx, hk, []byte("short"), []byte("v"), 100*time.Second); err != nil {
			t.Fatal(err)
		}
		if s, found, err := tbl.TTL(ctx, hk, []byte("forever")); err != nil || !found || s != -1 {
			t.Fatalf("TTL(forever) = %d %v %v, want -1", s, found, err)
		}
		if s, found, err := tbl.TTL(ctx, hk, []byte("short")); err != nil || !found || s < 98 || s > 100 {
			t.Fatalf("TTL(short) = %d %v %v, want ~100", s, found, err)
		}
		if _, found, err := tbl.TTL(ctx, hk, []byte("absent")); err != nil || found {
			t.Fatalf("TTL(absent) found=%v err=%v", found, err)
		}
		if err := tbl.Set(ctx, hk, []byte("soon"), []byte("v"), 10*time.Second); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
		defer e.clock.Advance(-time.Minute) // later subtests write TTLs in real time
		if v, err := tbl.Get(ctx, hk, []byte("soon")); err != nil || v != nil {
			t.Fatalf("expired record: get = %q, %v", v, err)
		}
		if ok, err := tbl.Exist(ctx, hk, []byte("soon")); err != nil || ok {
			t.Fatalf("expired record: exist = %v, %v", ok, err)
		}
		if v, err := tbl.Get(ctx, hk, []byte("forever")); err != nil || string(v) != "v" {
			t.Fatalf("record without TTL: get = %q, %v", v, err)
		}
	})

	t.Run("incr", func(t *testing.T) {
		hk, sk := []byte("counter"), []byte("n")
		steps := []struct {
			delta int64
			ttl   time.Duration
			want  int64
			ttlOK func(s int32) bool
		}{
			{5, 0, 5, func(s int32) bool { return s == -1 }},
			{-7, 0, -2, func(s int32) bool { return s == -1 }},
			{0, 0, -2, func(s int32) bool { return s == -1 }},
			{10, 50 * time.Second, 8, func(s int32) bool { return s > 45 && s <= 50 }},
			{1, 0, 9, func(s int32) bool { return s > 45 && s <= 50 }}, // 0 keeps the TTL
			{1, -1, 10, func(s int32) bool { return s == -1 }},         // < 0 clears it
		}
		for i, st := range steps {
			got, err := tbl.Incr(ctx, hk, sk, st.delta, st.ttl)
			if err != nil || got != st.want {
				t.Fatalf("step %d: incr = %d, %v; want %d", i, got, err, st.want)
			}
			s, found, err := tbl.TTL(ctx, hk, sk)
			if err != nil || !found || !st.ttlOK(s) {
				t.Fatalf("step %d: ttl = %d %v %v", i, s, found, err)
			}
		}
		if v := e.get("counter", "n"); string(v) != "10" {
			t.Fatalf("stored %q, want decimal 10", v)
		}
		e.set("counter", "text", "abc")
		_, err := tbl.Incr(ctx, hk, []byte("text"), 1, 0)
		var ke *Error
		if !errors.As(err, &ke) || ke.Code != "kInvalidArgument" || ke.Status != StatusInvalidArgument || ke.Op != "Incr" {
			t.Fatalf("incr on text: %v", err)
		}
	})

	t.Run("multi set, multi get, multi del, count", func(t *testing.T) {
		hk := []byte("multi")
		var kvs []KV
		for i := range 10 {
			kvs = append(kvs, KV{SortKey: fmt.Appendf(nil, "k%02d", i), Value: fmt.Appendf(nil, "v%d", i)})
		}
		kvs = append(kvs, KV{SortKey: []byte("other"), Value: []byte("o")})
		if err := tbl.MultiSet(ctx, hk, kvs, 0); err != nil {
			t.Fatal(err)
		}
		if n, err := tbl.SortKeyCount(ctx, hk); err != nil || n != 11 {
			t.Fatalf("count = %d, %v", n, err)
		}
		got, complete, err := tbl.MultiGet(ctx, hk, bs("k05", "missing", "k01"), MultiGetOptions{})
		if err != nil || !complete || kvString(got) != "k05=v5 k01=v1" {
			t.Fatalf("listed keys: %q complete=%v err=%v", kvString(got), complete, err)
		}
		got, complete, err = tbl.MultiGet(ctx, hk, nil, MultiGetOptions{})
		if err != nil || !complete || len(got) != 11 || string(got[0].SortKey) != "k00" || string(got[10].SortKey) != "other" {
			t.Fatalf("all keys: %q complete=%v err=%v", kvString(got), complete, err)
		}
		got, complete, err = tbl.MultiGet(ctx, hk, nil, MultiGetOptions{MaxCount: 3, NoValue: true})
		if err != nil || complete || kvString(got) != "k00= k01= k02=" {
			t.Fatalf("limited: %q complete=%v err=%v", kvString(got), complete, err)
		}
		got, complete, err = tbl.MultiGet(ctx, hk, bs("k01", "k02", "k03"), MultiGetOptions{MaxCount: 2})
		if err != nil || complete || kvString(got) != "k01=v1 k02=v2" {
			t.Fatalf("limited listed keys: %q complete=%v err=%v", kvString(got), complete, err)
		}

		ranges := []struct {
			name        string
			start, stop string
			opts        MultiGetOptions
			want        string
			complete    bool
		}{
			{"default bounds", "k02", "k05", MultiGetOptions{}, "k02=v2 k03=v3 k04=v4", true},
			{"both inclusive", "k02", "k05", MultiGetOptions{StopInclusive: Bool(true)}, "k02=v2 k03=v3 k04=v4 k05=v5", true},
			{"both exclusive", "k02", "k05", MultiGetOptions{StartInclusive: Bool(false)}, "k03=v3 k04=v4", true},
			{"open end", "k08", "", MultiGetOptions{}, "k08=v8 k09=v9 other=o", true},
			{"prefix filter", "", "", MultiGetOptions{SortKeyFilter: Filter{Type: rrdb.FilterType_FT_MATCH_PREFIX, Pattern: []byte("ot")}}, "other=o", true},
			{"postfix filter", "", "", MultiGetOptions{SortKeyFilter: Filter{Type: rrdb.FilterType_FT_MATCH_POSTFIX, Pattern: []byte("7")}}, "k07=v7", true},
			{"anywhere filter", "", "", MultiGetOptions{SortKeyFilter: Filter{Type: rrdb.FilterType_FT_MATCH_ANYWHERE, Pattern: []byte("th")}}, "other=o", true},
			{"reverse keeps the last ones, ascending", "k00", "k09", MultiGetOptions{Reverse: true, MaxCount: 2}, "k07=v7 k08=v8", false},
			{"size limit", "", "", MultiGetOptions{MaxSize: 10}, "k00=v0 k01=v1", false},
			{"empty range", "k05", "k02", MultiGetOptions{}, "", true},
		}
		for _, tc := range ranges {
			t.Run(tc.name, func(t *testing.T) {
				got, complete, err := tbl.MultiGetRange(ctx, hk, []byte(tc.start), []byte(tc.stop), tc.opts)
				if err != nil || kvString(got) != tc.want || complete != tc.complete {
					t.Fatalf("got %q complete=%v err=%v; want %q complete=%v", kvString(got), complete, err, tc.want, tc.complete)
				}
			})
		}

		_, _, err = tbl.MultiGetRange(ctx, hk, nil, nil, MultiGetOptions{SortKeyFilter: Filter{Type: 9}})
		if ErrorCode(err) != "kInvalidArgument" {
			t.Fatalf("bad filter type: %v", err)
		}

		if n, err := tbl.MultiDel(ctx, hk, bs("k00", "k01", "nope")); err != nil || n != 3 {
			t.Fatalf("multi del = %d, %v", n, err)
		}
		if n, err := tbl.SortKeyCount(ctx, hk); err != nil || n != 9 {
			t.Fatalf("count after del = %d, %v", n, err)
		}
		if n, err := tbl.SortKeyCount(ctx, []byte("nothing here")); err != nil || n != 0 {
			t.Fatalf("count of an unknown hash key = %d, %v", n, err)
		}
		// TTL applies to every record of a multi set.
		if err := tbl.MultiSet(ctx, []byte("multi_ttl"), []KV{{SortKey: []byte("a"), Value: []byte("1")}}, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if s, found, err := tbl.TTL(ctx, []byte("multi_ttl"), []byte("a")); err != nil || !found || s < 28 || s > 30 {
			t.Fatalf("multi set TTL = %d %v %v", s, found, err)
		}
	})

	t.Run("check and set", func(t *testing.T) {
		hk := []byte("cas")
		e.set("cas", "num", "10")
		e.set("cas", "str", "hello")
		cases := []struct {
			name      string
			checkSK   string
			checkType rrdb.CasCheckType
			operand   string
			setSK     string
			succeed   bool
		}{
			{"not exist passes", "absent", rrdb.CasCheckType_CT_VALUE_NOT_EXIST, "", "absent", true},
			{"not exist fails", "str", rrdb.CasCheckType_CT_VALUE_NOT_EXIST, "", "str2", false},
			{"exist", "str", rrdb.CasCheckType_CT_VALUE_EXIST, "", "out_exist", true},
			{"prefix", "str", rrdb.CasCheckType_CT_VALUE_MATCH_PREFIX, "he", "out_prefix", true},
			{"prefix fails", "str", rrdb.CasCheckType_CT_VALUE_MATCH_PREFIX, "lo", "out_prefix2", false},
			{"bytes equal", "str", rrdb.CasCheckType_CT_VALUE_BYTES_EQUAL, "hello", "out_eq", true},
			{"int greater", "num", rrdb.CasCheckType_CT_VALUE_INT_GREATER, "9", "out_gt", true},
			{"int less fails", "num", rrdb.CasCheckType_CT_VALUE_INT_LESS, "9", "out_lt", false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res, err := tbl.CheckAndSet(ctx, hk, []byte(tc.checkSK), tc.checkType, []byte(tc.operand), []byte(tc.setSK), []byte("set"), CheckAndSetOptions{})
				if err != nil || res.Succeed != tc.succeed || res.CheckValueReturned {
					t.Fatalf("res %+v err %v; want succeed=%v", res, err, tc.succeed)
				}
				v, err := tbl.Get(ctx, hk, []byte(tc.setSK))
				if err != nil {
					t.Fatal(err)
				}
				if tc.succeed != (string(v) == "set") {
					t.Fatalf("set key holds %q after succeed=%v", v, tc.succeed)
				}
			})
		}
		res, err := tbl.CheckAndSet(ctx, hk, []byte("str"), rrdb.CasCheckType_CT_VALUE_NOT_EMPTY, nil, []byte("str"), []byte("bye"),
			CheckAndSetOptions{ReturnCheckValue: true, TTL: 40 * time.Second})
		if err != nil || !res.Succeed || !res.CheckValueReturned || !res.CheckValueExist || string(res.CheckValue) != "hello" {
			t.Fatalf("return check value: %+v %v", res, err)
		}
		if s, found, err := tbl.TTL(ctx, hk, []byte("str")); err != nil || !found || s < 38 || s > 40 {
			t.Fatalf("TTL after check and set = %d %v %v", s, found, err)
		}
		res, err = tbl.CheckAndSet(ctx, hk, []byte("nope"), rrdb.CasCheckType_CT_VALUE_EXIST, nil, []byte("x"), []byte("y"), CheckAndSetOptions{ReturnCheckValue: true})
		if err != nil || res.Succeed || !res.CheckValueReturned || res.CheckValueExist || res.CheckValue != nil {
			t.Fatalf("failed check on an absent key: %+v %v", res, err)
		}
		_, err = tbl.CheckAndSet(ctx, hk, []byte("str"), rrdb.CasCheckType_CT_VALUE_INT_EQUAL, []byte("1"), []byte("x"), []byte("y"), CheckAndSetOptions{})
		if ErrorCode(err) != "kInvalidArgument" {
			t.Fatalf("integer check on text: %v", err)
		}
	})

	t.Run("check and mutate", func(t *testing.T) {
		hk := []byte("cam")
		e.set("cam", "lock", "free")
		e.set("cam", "old", "x")
		muts := []Mutation{
			{Op: MutationPut, SortKey: []byte("a"), Value: []byte("1")},
			{Op: MutationPut, SortKey: []byte("b"), Value: []byte("2"), TTL: time.Minute},
			{Op: MutationDelete, SortKey: []byte("old")},
		}
		res, err := tbl.CheckAndMutate(ctx, hk, []byte("lock"), rrdb.CasCheckType_CT_VALUE_BYTES_EQUAL, []byte("free"), muts, true)
		if err != nil || !res.Succeed || string(res.CheckValue) != "free" {
			t.Fatalf("check and mutate: %+v %v", res, err)
		}
		got, _, err := tbl.MultiGet(ctx, hk, nil, MultiGetOptions{})
		if err != nil || kvString(got) != "a=1 b=2 lock=free" {
			t.Fatalf("after mutate: %q %v", kvString(got), err)
		}
		if s, found, err := tbl.TTL(ctx, hk, []byte("b")); err != nil || !found || s < 58 || s > 60 {
			t.Fatalf("mutation TTL = %d %v %v", s, found, err)
		}
		res, err = tbl.CheckAndMutate(ctx, hk, []byte("lock"), rrdb.CasCheckType_CT_VALUE_BYTES_EQUAL, []byte("taken"),
			[]Mutation{{Op: MutationDelete, SortKey: []byte("a")}}, false)
		if err != nil || res.Succeed || res.CheckValueReturned {
			t.Fatalf("failed check: %+v %v", res, err)
		}
		if v := e.get("cam", "a"); string(v) != "1" {
			t.Fatalf("a failed check must not write: a = %q", v)
		}
	})

	t.Run("batch get", func(t *testing.T) {
		var list []FullKey
		want := map[string]string{}
		for i := range 40 {
			hk, sk := fmt.Sprintf("bg%d", i), "s"
			if i%3 != 0 {
				e.set(hk, sk, "v"+hk)
				want[hk] = "v" + hk
			}
			list = append(list, FullKey{HashKey: []byte(hk), SortKey: []byte(sk)})
		}
		list = append(list, list[1]) // a repeated key
		before := e.c.Calls(rpc.CodeBatchGet)
		got, err := tbl.BatchGet(ctx, list)
		if err != nil || len(got) != len(list) {
			t.Fatalf("batch get: %d results, %v", len(got), err)
		}
		for i, d := range got {
			w, ok := want[string(list[i].HashKey)]
			if !bytes.Equal(d.HashKey, list[i].HashKey) || !bytes.Equal(d.SortKey, list[i].SortKey) || d.Exists != ok || string(d.Value) != w {
				t.Fatalf("result %d = %+v, want exists=%v value %q", i, d, ok, w)
			}
		}
		if calls := e.c.Calls(rpc.CodeBatchGet) - before; calls > tbl.PartitionCount() {
			t.Fatalf("%d BATCH_GET calls for %d partitions", calls, tbl.PartitionCount())
		}
		if got, err := tbl.BatchGet(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("empty batch: %v %v", got, err)
		}
	})

	t.Run("raw call", func(t *testing.T) {
		hk := tbl.HashKeyForPartition(5, "raw")
		e.set(string(hk), "s", "raw value")
		key, err := keys.EncodeKey(hk, []byte("s"))
		if err != nil {
			t.Fatal(err)
		}
		var resp rrdb.ReadResponse
		if err := tbl.RawCall(ctx, 5, rpc.PartitionHash(hk), rpc.CodeGet, base.NewBlob(key), &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Error != 0 || string(resp.Value.Bytes()) != "raw value" || resp.PartitionIndex != 5 {
			t.Fatalf("raw get: %+v", resp)
		}
		err = tbl.RawCall(ctx, 9, 9, rpc.CodeGet, base.NewBlob(key), &resp)
		if !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("raw call to partition 9 of 8: %v", err)
		}
	})
}

func TestValidation(t *testing.T) {
	e := newEnv(t, 4, nil)
	ctx, cancel := e.ctx()
	defer cancel()
	tbl := e.tbl
	long := bytes.Repeat([]byte("h"), 65535)
	k, v := []byte("k"), []byte("v")
	cases := []struct {
		name string
		call func() error
	}{
		{"get empty hash key", func() error { _, err := tbl.Get(ctx, nil, k); return err }},
		{"get long hash key", func() error { _, err := tbl.Get(ctx, long, k); return err }},
		{"set empty hash key", func() error { return tbl.Set(ctx, []byte{}, k, v, 0) }},
		{"set negative ttl", func() error { return tbl.Set(ctx, k, k, v, -time.Second) }},
		{"del empty hash key", func() error { return tbl.Del(ctx, nil, k) }},
		{"exist empty hash key", func() error { _, err := tbl.Exist(ctx, nil, k); return err }},
		{"ttl long hash key", func() error { _, _, err := tbl.TTL(ctx, long, k); return err }},
		{"incr empty hash key", func() error { _, err := tbl.Incr(ctx, nil, k, 1, 0); return err }},
		{"multi set no records", func() error { return tbl.MultiSet(ctx, k, nil, 0) }},
		{"multi set negative ttl", func() error { return tbl.MultiSet(ctx, k, []KV{{k, v}}, -1) }},
		{"multi get empty hash key", func() error { _, _, err := tbl.MultiGet(ctx, nil, bs("a"), MultiGetOptions{}); return err }},
		{"multi get all, empty hash key", func() error { _, _, err := tbl.MultiGet(ctx, nil, nil, MultiGetOptions{}); return err }},
		{"multi get range long hash key", func() error { _, _, err := tbl.MultiGetRange(ctx, long, nil, nil, MultiGetOptions{}); return err }},
		{"multi del no keys", func() error { _, err := tbl.MultiDel(ctx, k, nil); return err }},
		{"sort key count empty hash key", func() error { _, err := tbl.SortKeyCount(ctx, nil); return err }},
		{"check and set empty hash key", func() error {
			_, err := tbl.CheckAndSet(ctx, nil, k, rrdb.CasCheckType_CT_NO_CHECK, nil, k, v, CheckAndSetOptions{})
			return err
		}},
		{"check and mutate no mutations", func() error {
			_, err := tbl.CheckAndMutate(ctx, k, k, rrdb.CasCheckType_CT_NO_CHECK, nil, nil, false)
			return err
		}},
		{"check and mutate bad op", func() error {
			_, err := tbl.CheckAndMutate(ctx, k, k, rrdb.CasCheckType_CT_NO_CHECK, nil, []Mutation{{Op: 7, SortKey: k}}, false)
			return err
		}},
		{"batch get empty hash key", func() error { _, err := tbl.BatchGet(ctx, []FullKey{{HashKey: k}, {HashKey: nil}}); return err }},
		{"scanner empty hash key", func() error { _, err := tbl.GetScanner(ctx, nil, nil, nil, ScannerOptions{}); return err }},
		{"scanner negative batch", func() error { _, err := tbl.GetScanner(ctx, k, nil, nil, ScannerOptions{BatchSize: -1}); return err }},
		{"unordered scanners zero split", func() error { _, err := tbl.GetUnorderedScanners(ctx, 0, ScannerOptions{}); return err }},
		{"open table without name", func() error { _, err := e.client.OpenTable(ctx, ""); return err }},
	}
	codes := []string{rpc.CodeGet, rpc.CodePut, rpc.CodeRemove, rpc.CodeTTL, rpc.CodeIncr, rpc.CodeMultiPut, rpc.CodeMultiGet,
		rpc.CodeMultiRemove, rpc.CodeSortkeyCount, rpc.CodeCheckAndSet, rpc.CodeCheckAndMutate, rpc.CodeBatchGet, rpc.CodeGetScanner}
	calls := func() int {
		n := 0
		for _, c := range codes {
			n += e.c.Calls(c)
		}
		return n
	}
	before := calls()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, ErrInvalidArgument) || ErrorCode(err) != base.ErrInvalidParameters {
				t.Fatalf("err = %v, want a validation error", err)
			}
			if !strings.HasPrefix(err.Error(), "kv: ") {
				t.Fatalf("message %q", err)
			}
		})
	}
	if n := calls() - before; n != 0 {
		t.Fatalf("validation failures sent %d requests", n)
	}
}

func TestOpenTable(t *testing.T) {
	e := newEnv(t, 1, nil)
	ctx, cancel := e.ctx()
	defer cancel()

	_, err := e.client.OpenTable(ctx, "no_such_table")
	if !errors.Is(err, ErrTableNotFound) || ErrorCode(err) != base.ErrObjectNotFound {
		t.Fatalf("unknown table: %v", err)
	}

	// A table of one partition works.
	if e.tbl.PartitionCount() != 1 || e.tbl.PartitionOf([]byte("anything")) != 0 {
		t.Fatalf("partitions %d", e.tbl.PartitionCount())
	}
	e.set("a", "b", "c")
	if v := e.get("a", "b"); string(v) != "c" {
		t.Fatalf("get = %q", v)
	}

	// Tables opened from one client share the connections.
	e.c.CreateTable("second", 4)
	second := e.open("second")
	if second.AppID() == e.tbl.AppID() {
		t.Fatal("two tables with one app id")
	}
	if err := second.Set(ctx, []byte("a"), []byte("b"), []byte("other table"), 0); err != nil {
		t.Fatal(err)
	}
	if v := e.get("a", "b"); string(v) != "c" {
		t.Fatalf("tables are not separate: %q", v)
	}
	e.client.mu.Lock()
	sessions := len(e.client.sessions)
	e.client.mu.Unlock()
	if sessions > 3 {
		t.Fatalf("%d replica connections for 3 nodes", sessions)
	}
	if e.client.Meta() == nil {
		t.Fatal("no meta client")
	}
}

func TestClientClose(t *testing.T) {
	e := newEnv(t, 2, nil)
	ctx, cancel := e.ctx()
	defer cancel()
	e.set("k", "s", "v")
	if err := e.client.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	start := time.Now()
	_, err := e.tbl.Get(ctx, []byte("k"), []byte("s"))
	if !errors.Is(err, ErrClientClosed) || ErrorCode(err) != base.ErrSessionReset {
		t.Fatalf("get after close: %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("an operation on a closed client took %v", time.Since(start))
	}
	if _, err := e.client.OpenTable(ctx, "t"); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("open after close: %v", err)
	}
}
