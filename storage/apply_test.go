package storage

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/storage/keys"
)

func TestPutGetRemove(t *testing.T) {
	longHash := strings.Repeat("h", keys.MaxHashKeyLen)
	tests := []struct {
		name     string
		hash     string
		sort     string
		value    string
		wantCode int32
	}{
		{"plain", "user_1001", "profile", `{"name":"alice"}`, CodeOK},
		{"empty sort key", "user_1001", "", "v", CodeOK},
		{"empty value", "h", "s", "", CodeOK},
		{"binary keys", "\x00\xff\x00", "\xff\x00\xff", "\x00\x01\xff", CodeOK},
		{"utf8", "用户", "名字", "值", CodeOK},
		{"longest hash key", longHash, "s", "v", CodeOK},
		{"large value", "h", "big", strings.Repeat("x", 1<<20), CodeOK},
		{"empty hash key", "", "s", "v", CodeInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t)
			res := s.apply(putOp(tc.hash, tc.sort, tc.value, 0))
			if res[0].Update == nil || res[0].Update.Error != tc.wantCode {
				t.Fatalf("put result %+v, want code %d", res[0].Update, tc.wantCode)
			}
			if res[0].Update.Decree != s.decree {
				t.Errorf("put decree %d, want %d", res[0].Update.Decree, s.decree)
			}
			if tc.wantCode != CodeOK {
				s.mustMiss(tc.hash, tc.sort)
				return
			}
			s.mustGet(tc.hash, tc.sort, tc.value)
			if code := s.apply1(removeOp(tc.hash, tc.sort)); code != CodeOK {
				t.Fatalf("remove code %d", code)
			}
			s.mustMiss(tc.hash, tc.sort)
			// Removing an absent key still succeeds.
			if code := s.apply1(removeOp(tc.hash, tc.sort)); code != CodeOK {
				t.Fatalf("second remove code %d", code)
			}
		})
	}
}

func TestInvalidWriteKeys(t *testing.T) {
	s := openTestStore(t)
	bad := [][]byte{nil, {0}, {0, 5, 'a'}, {0, 0, 's'}, {0xff, 0xff, 'x'}}
	for _, k := range bad {
		for _, op := range []Op{
			{Put: &rrdb.UpdateRequest{Key: base.NewBlob(k), Value: blob("v")}},
			{Remove: base.NewBlob(k)},
			{Incr: &rrdb.IncrRequest{Key: base.NewBlob(k), Increment: 1}},
		} {
			if code := s.apply1(op); code != CodeInvalidArgument {
				t.Errorf("key %x: code %d, want 4", k, code)
			}
		}
	}
	tooLong := strings.Repeat("h", keys.MaxHashKeyLen+1)
	for _, op := range []Op{
		{MultiPut: &rrdb.MultiPutRequest{HashKey: blob(tooLong), Kvs: []*rrdb.KeyValue{{Key: blob("s"), Value: blob("v")}}}},
		multiRemoveOp(tooLong, "s"),
		casOp(tooLong, "s", rrdb.CasCheckType_CT_NO_CHECK, "", "s", "v"),
		multiPutOp("", 0, "s", "v"),
		multiRemoveOp("", "s"),
	} {
		if code := s.apply1(op); code != CodeInvalidArgument {
			t.Errorf("op %+v: code %d, want 4", op, code)
		}
	}
	// Nothing at all was written, and the internal records stay out of reach.
	n := 0
	if err := s.ForEach(t.Context(), func(*Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d records written by invalid ops", n)
	}
	if resp, _ := s.Get([]byte(metaDecreeKey)); resp.Error != CodeNotFound {
		t.Errorf("internal decree record readable: %+v", resp)
	}
}

func TestMultiPutMultiRemove(t *testing.T) {
	s := openTestStore(t)
	if code := s.apply1(Op{MultiPut: &rrdb.MultiPutRequest{HashKey: blob("h"), Kvs: nil}}); code != CodeInvalidArgument {
		t.Fatalf("empty multi_put: code %d", code)
	}
	if code := s.apply1(multiPutOp("h", 0, "a", "1", "b", "2", "", "empty", "a", "3")); code != CodeOK {
		t.Fatalf("multi_put: code %d", code)
	}
	s.mustGet("h", "a", "3") // the later duplicate wins
	s.mustGet("h", "b", "2")
	s.mustGet("h", "", "empty")

	if res := s.apply(multiRemoveOp("h")); res[0].MultiRemove.Error != CodeInvalidArgument {
		t.Fatalf("empty multi_remove: %+v", res[0].MultiRemove)
	}
	res := s.apply(multiRemoveOp("h", "a", "missing", ""))
	if r := res[0].MultiRemove; r.Error != CodeOK || r.Count != 3 || r.Decree != s.decree {
		t.Fatalf("multi_remove: %+v", r)
	}
	s.mustMiss("h", "a")
	s.mustMiss("h", "")
	s.mustGet("h", "b", "2")
}

func TestIncr(t *testing.T) {
	type step struct {
		op        Op
		wantCode  int32
		wantValue int64
	}
	tests := []struct {
		name  string
		setup []Op
		steps []step
		final string // stored value after the steps; "-" = absent
	}{
		{"absent counts as zero", nil, []step{{incrOp("h", "c", 5, 0), 0, 5}, {incrOp("h", "c", -7, 0), 0, -2}}, "-2"},
		{"empty value counts as zero", []Op{putOp("h", "c", "", 0)}, []step{{incrOp("h", "c", 3, 0), 0, 3}}, "3"},
		{"existing decimal", []Op{putOp("h", "c", "100", 0)}, []step{{incrOp("h", "c", 1, 0), 0, 101}}, "101"},
		{"negative decimal", []Op{putOp("h", "c", "-9", 0)}, []step{{incrOp("h", "c", 0, 0), 0, -9}}, "-9"},
		{"not a number", []Op{putOp("h", "c", "abc", 0)}, []step{{incrOp("h", "c", 1, 0), 4, 0}}, "abc"},
		{"spaces are not a number", []Op{putOp("h", "c", " 1", 0)}, []step{{incrOp("h", "c", 1, 0), 4, 0}}, " 1"},
		{"value too large for int64", []Op{putOp("h", "c", "9223372036854775808", 0)}, []step{{incrOp("h", "c", 1, 0), 4, 0}}, "9223372036854775808"},
		{"overflow", []Op{putOp("h", "c", strconv.FormatInt(math.MaxInt64, 10), 0)},
			[]step{{incrOp("h", "c", 1, 0), 4, math.MaxInt64}}, strconv.FormatInt(math.MaxInt64, 10)},
		{"underflow", []Op{putOp("h", "c", strconv.FormatInt(math.MinInt64, 10), 0)},
			[]step{{incrOp("h", "c", -1, 0), 4, math.MinInt64}}, strconv.FormatInt(math.MinInt64, 10)},
		{"to the edge", []Op{putOp("h", "c", strconv.FormatInt(math.MaxInt64-1, 10), 0)},
			[]step{{incrOp("h", "c", 1, 0), 0, math.MaxInt64}}, strconv.FormatInt(math.MaxInt64, 10)},
		{"zero increment creates", nil, []step{{incrOp("h", "c", 0, 0), 0, 0}}, "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t)
			for _, op := range tc.setup {
				s.apply(op)
			}
			for i, st := range tc.steps {
				r := s.apply(st.op)[0].Incr
				if r.Error != st.wantCode || r.NewValue_ != st.wantValue || r.Decree != s.decree {
					t.Fatalf("step %d: %+v, want code %d value %d", i, r, st.wantCode, st.wantValue)
				}
			}
			s.mustGet("h", "c", tc.final)
		})
	}
}

func TestIncrTTL(t *testing.T) {
	s := openTestStore(t)
	now := s.clk.epoch()
	ttlOf := func() int32 {
		t.Helper()
		r, err := s.TTL(ck("h", "c"))
		if err != nil || r.Error != CodeOK {
			t.Fatalf("TTL: %+v %v", r, err)
		}
		return r.TTLSeconds
	}
	s.apply(putOp("h", "c", "1", int32(now+100)))
	s.apply(incrOp("h", "c", 1, 0)) // 0 keeps the TTL
	if got := ttlOf(); got != 100 {
		t.Fatalf("kept ttl = %d", got)
	}
	s.apply(incrOp("h", "c", 1, int32(now+50))) // > 0 sets it
	if got := ttlOf(); got != 50 {
		t.Fatalf("set ttl = %d", got)
	}
	s.apply(incrOp("h", "c", 1, -1)) // < 0 clears it
	if got := ttlOf(); got != -1 {
		t.Fatalf("cleared ttl = %d", got)
	}
	s.mustGet("h", "c", "4")

	// An expired counter restarts from zero and does not inherit the old expiry.
	s.apply(putOp("h", "e", "41", int32(now+10)))
	s.clk.Advance(10 * 1e9)
	r := s.apply(incrOp("h", "e", 1, 0))[0].Incr
	if r.Error != CodeOK || r.NewValue_ != 1 {
		t.Fatalf("incr of expired: %+v", r)
	}
	if rr, _ := s.TTL(ck("h", "e")); rr.Error != CodeOK || rr.TTLSeconds != -1 {
		t.Fatalf("ttl after incr of expired: %+v", rr)
	}
}

func TestDefaultTTL(t *testing.T) {
	s := openTestStore(t)
	now := s.clk.epoch()
	withTTL := func(op Op) Op { op.DefaultTTL = 60; return op }
	s.apply(withTTL(putOp("h", "default", "v", 0)))
	s.apply(withTTL(putOp("h", "explicit", "v", int32(now+1000))))
	s.apply(withTTL(multiPutOp("h", 0, "mp", "v")))
	s.apply(withTTL(incrOp("h", "counter", 1, 0)))
	s.apply(putOp("h", "none", "v", 0))
	want := map[string]int32{"default": 60, "explicit": 1000, "mp": 60, "counter": 60, "none": -1}
	for sk, ttl := range want {
		r, _ := s.TTL(ck("h", sk))
		if r.Error != CodeOK || r.TTLSeconds != ttl {
			t.Errorf("ttl of %q = %+v, want %d", sk, r, ttl)
		}
	}
}

// TestCheckTypes runs every check type against an absent, empty, textual and numeric
// check value.
func TestCheckTypes(t *testing.T) {
	const absent = "\x00absent"
	tests := []struct {
		check    rrdb.CasCheckType
		current  string
		operand  string
		wantCode int32
	}{
		{rrdb.CasCheckType_CT_NO_CHECK, absent, "", 0},
		{rrdb.CasCheckType_CT_NO_CHECK, "x", "", 0},
		{rrdb.CasCheckType_CT_VALUE_NOT_EXIST, absent, "", 0},
		{rrdb.CasCheckType_CT_VALUE_NOT_EXIST, "", "", 13},
		{rrdb.CasCheckType_CT_VALUE_NOT_EXIST_OR_EMPTY, absent, "", 0},
		{rrdb.CasCheckType_CT_VALUE_NOT_EXIST_OR_EMPTY, "", "", 0},
		{rrdb.CasCheckType_CT_VALUE_NOT_EXIST_OR_EMPTY, "x", "", 13},
		{rrdb.CasCheckType_CT_VALUE_EXIST, absent, "", 13},
		{rrdb.CasCheckType_CT_VALUE_EXIST, "", "", 0},
		{rrdb.CasCheckType_CT_VALUE_NOT_EMPTY, "", "", 13},
		{rrdb.CasCheckType_CT_VALUE_NOT_EMPTY, absent, "", 13},
		{rrdb.CasCheckType_CT_VALUE_NOT_EMPTY, "x", "", 0},
		{rrdb.CasCheckType_CT_VALUE_MATCH_ANYWHERE, "hello", "ell", 0},
		{rrdb.CasCheckType_CT_VALUE_MATCH_ANYWHERE, "hello", "", 0},
		{rrdb.CasCheckType_CT_VALUE_MATCH_ANYWHERE, absent, "", 13},
		{rrdb.CasCheckType_CT_VALUE_MATCH_ANYWHERE, "hello", "xyz", 13},
		{rrdb.CasCheckType_CT_VALUE_MATCH_ANYWHERE, "he", "hello", 13},
		{rrdb.CasCheckType_CT_VALUE_MATCH_PREFIX, "hello", "he", 0},
		{rrdb.CasCheckType_CT_VALUE_MATCH_PREFIX, "hello", "lo", 13},
		{rrdb.CasCheckType_CT_VALUE_MATCH_PREFIX, "", "", 0},
		{rrdb.CasCheckType_CT_VALUE_MATCH_POSTFIX, "hello", "lo", 0},
		{rrdb.CasCheckType_CT_VALUE_MATCH_POSTFIX, "hello", "he", 13},
		{rrdb.CasCheckType_CT_VALUE_BYTES_LESS, "abc", "abd", 0},
		{rrdb.CasCheckType_CT_VALUE_BYTES_LESS, "ab", "abc", 0},
		{rrdb.CasCheckType_CT_VALUE_BYTES_LESS, "abc", "abc", 13},
		{rrdb.CasCheckType_CT_VALUE_BYTES_LESS, absent, "z", 13},
		{rrdb.CasCheckType_CT_VALUE_BYTES_LESS, "\x7f", "\x80", 0}, // unsigned bytes
		{rrdb.CasCheckType_CT_VALUE_BYTES_LESS_OR_EQUAL, "abc", "abc", 0},
		{rrdb.CasCheckType_CT_VALUE_BYTES_LESS_OR_EQUAL, "abd", "abc", 13},
		{rrdb.CasCheckType_CT_VALUE_BYTES_EQUAL, "abc", "abc", 0},
		{rrdb.CasCheckType_CT_VALUE_BYTES_EQUAL, "", "", 0},
		{rrdb.CasCheckType_CT_VALUE_BYTES_EQUAL, "abc", "ab", 13},
		{rrdb.CasCheckType_CT_VALUE_BYTES_GREATER_OR_EQUAL, "abc", "abc", 0},
		{rrdb.CasCheckType_CT_VALUE_BYTES_GREATER_OR_EQUAL, "ab", "abc", 13},
		{rrdb.CasCheckType_CT_VALUE_BYTES_GREATER, "b", "abc", 0},
		{rrdb.CasCheckType_CT_VALUE_BYTES_GREATER, "abc", "abc", 13},
		{rrdb.CasCheckType_CT_VALUE_INT_LESS, "9", "10", 0}, // numeric, not bytewise
		{rrdb.CasCheckType_CT_VALUE_INT_LESS, "10", "10", 13},
		{rrdb.CasCheckType_CT_VALUE_INT_LESS, "-5", "-4", 0},
		{rrdb.CasCheckType_CT_VALUE_INT_LESS, "x", "10", 4},
		{rrdb.CasCheckType_CT_VALUE_INT_LESS, "", "10", 4},
		{rrdb.CasCheckType_CT_VALUE_INT_LESS, "1", "ten", 4},
		{rrdb.CasCheckType_CT_VALUE_INT_LESS, absent, "ten", 13}, // absence fails first
		{rrdb.CasCheckType_CT_VALUE_INT_LESS_OR_EQUAL, "10", "10", 0},
		{rrdb.CasCheckType_CT_VALUE_INT_LESS_OR_EQUAL, "11", "10", 13},
		{rrdb.CasCheckType_CT_VALUE_INT_EQUAL, "42", "42", 0},
		{rrdb.CasCheckType_CT_VALUE_INT_EQUAL, "42", "43", 13},
		{rrdb.CasCheckType_CT_VALUE_INT_EQUAL, "9223372036854775807", "9223372036854775807", 0},
		{rrdb.CasCheckType_CT_VALUE_INT_GREATER_OR_EQUAL, "42", "42", 0},
		{rrdb.CasCheckType_CT_VALUE_INT_GREATER_OR_EQUAL, "41", "42", 13},
		{rrdb.CasCheckType_CT_VALUE_INT_GREATER, "100", "99", 0},
		{rrdb.CasCheckType_CT_VALUE_INT_GREATER, "99", "99", 13},
		{rrdb.CasCheckType(18), "x", "", 4},
		{rrdb.CasCheckType(-1), "x", "", 4},
	}
	for _, tc := range tests {
		name := tc.check.String() + "/" + strconv.Quote(tc.current) + "/" + strconv.Quote(tc.operand)
		t.Run(name, func(t *testing.T) {
			for _, mutate := range []bool{false, true} {
				s := openTestStore(t)
				exists := tc.current != absent
				if exists {
					s.apply(putOp("h", "check", tc.current, 0))
				}
				var code int32
				var returned, exist bool
				var value []byte
				if mutate {
					r := s.apply(Op{CheckAndMutate: &rrdb.CheckAndMutateRequest{
						HashKey: blob("h"), CheckSortKey: blob("check"), CheckType: tc.check,
						CheckOperand: blob(tc.operand), ReturnCheckValue: true,
						MutateList: []*rrdb.Mutate{
							{Operation: rrdb.MutateOperation_MO_PUT, SortKey: blob("target"), Value: blob("new")},
							{Operation: rrdb.MutateOperation_MO_DELETE, SortKey: blob("check")},
						},
					}})[0].CheckAndMutate
					code, returned, exist, value = r.Error, r.CheckValueReturned, r.CheckValueExist, r.CheckValue.Bytes()
				} else {
					r := s.apply(casOp("h", "check", tc.check, tc.operand, "target", "new"))[0].CheckAndSet
					code, returned, exist, value = r.Error, r.CheckValueReturned, r.CheckValueExist, r.CheckValue.Bytes()
				}
				if code != tc.wantCode {
					t.Fatalf("mutate=%v: code %d, want %d", mutate, code, tc.wantCode)
				}
				if tc.wantCode != CodeInvalidArgument || checkTypeSupported(tc.check) {
					if !returned || exist != exists || (exists && string(value) != tc.current) {
						t.Errorf("mutate=%v: check value returned=%v exist=%v value=%q", mutate, returned, exist, value)
					}
				}
				if tc.wantCode == CodeOK {
					s.mustGet("h", "target", "new")
					if mutate {
						s.mustMiss("h", "check")
					}
				} else {
					s.mustMiss("h", "target")
					if exists {
						s.mustGet("h", "check", tc.current)
					}
				}
			}
		})
	}
}

func TestCheckAndSetDetails(t *testing.T) {
	s := openTestStore(t)
	now := s.clk.epoch()
	// Same sort key: set_diff_sort_key false writes the check key itself.
	r := s.apply(Op{CheckAndSet: &rrdb.CheckAndSetRequest{
		HashKey: blob("h"), CheckSortKey: blob("k"), CheckType: rrdb.CasCheckType_CT_VALUE_NOT_EXIST,
		SetSortKey: blob("ignored"), SetValue: blob("v1"), SetExpireTsSeconds: int32(now + 30),
	}})[0].CheckAndSet
	if r.Error != 0 || r.CheckValueReturned || r.CheckValue == nil {
		t.Fatalf("cas: %+v", r)
	}
	s.mustGet("h", "k", "v1")
	s.mustMiss("h", "ignored")
	if tr, _ := s.TTL(ck("h", "k")); tr.TTLSeconds != 30 {
		t.Fatalf("cas ttl %+v", tr)
	}
	// An expired check value counts as absent.
	s.clk.Advance(30 * 1e9)
	r = s.apply(casOp("h", "k", rrdb.CasCheckType_CT_VALUE_NOT_EXIST, "", "k", "v2"))[0].CheckAndSet
	if r.Error != 0 || r.CheckValueExist {
		t.Fatalf("cas on expired: %+v", r)
	}
	s.mustGet("h", "k", "v2")
	// A check in the same mutation sees the earlier ops of that mutation.
	res := s.apply(
		putOp("h", "same", "1", 0),
		casOp("h", "same", rrdb.CasCheckType_CT_VALUE_BYTES_EQUAL, "1", "same", "2"),
		incrOp("h", "same", 5, 0),
	)
	if res[1].Code() != 0 || res[2].Incr.NewValue_ != 7 {
		t.Fatalf("same-mutation visibility: %+v %+v", res[1].CheckAndSet, res[2].Incr)
	}
	s.mustGet("h", "same", "7")
}

func TestCheckAndMutateValidation(t *testing.T) {
	s := openTestStore(t)
	s.apply(putOp("h", "c", "v", 0))
	for name, req := range map[string]*rrdb.CheckAndMutateRequest{
		"empty mutate list": {HashKey: blob("h"), CheckSortKey: blob("c"), CheckType: rrdb.CasCheckType_CT_NO_CHECK},
		"bad operation": {HashKey: blob("h"), CheckSortKey: blob("c"), CheckType: rrdb.CasCheckType_CT_NO_CHECK,
			MutateList: []*rrdb.Mutate{{Operation: rrdb.MutateOperation_MO_PUT, SortKey: blob("x")}, {Operation: 7, SortKey: blob("y")}}},
		"bad check type": {HashKey: blob("h"), CheckSortKey: blob("c"), CheckType: 99,
			MutateList: []*rrdb.Mutate{{Operation: rrdb.MutateOperation_MO_PUT, SortKey: blob("x")}}},
		"empty hash key": {HashKey: blob(""), CheckSortKey: blob("c"), CheckType: rrdb.CasCheckType_CT_NO_CHECK,
			MutateList: []*rrdb.Mutate{{Operation: rrdb.MutateOperation_MO_PUT, SortKey: blob("x")}}},
	} {
		if code := s.apply1(Op{CheckAndMutate: req}); code != CodeInvalidArgument {
			t.Errorf("%s: code %d", name, code)
		}
	}
	s.mustMiss("h", "x")
	s.mustGet("h", "c", "v")
}

// TestExpireTSRange: a negative expire_ts_seconds is refused by the writes that set
// an absolute expiry, never stored as "no TTL" (it is what a client's int32 overflow of
// now + a long TTL gives); incr keeps its documented meaning of negative values, and a
// delete mutation's expiry is ignored.
func TestExpireTSRange(t *testing.T) {
	now := int64(keys.Epoch2016(testEpoch))
	// The official go-client computes int32(ttl) + int32(now) and wraps for a TTL
	// past 2084: 60 years from 2025 is such a TTL.
	overflowed := int32(now + 60*365*24*3600)
	if overflowed >= 0 {
		t.Fatalf("test setup: %d did not wrap", overflowed)
	}
	mutate := func(op rrdb.MutateOperation, expire int32) Op {
		return Op{CheckAndMutate: &rrdb.CheckAndMutateRequest{HashKey: blob("h"), CheckSortKey: blob("c"),
			CheckType: rrdb.CasCheckType_CT_NO_CHECK, ReturnCheckValue: true,
			MutateList: []*rrdb.Mutate{{Operation: op, SortKey: blob("s"), Value: blob("v"), SetExpireTsSeconds: expire}}}}
	}
	cas := func(expire int32) Op {
		op := casOp("h", "c", rrdb.CasCheckType_CT_NO_CHECK, "", "s", "v")
		op.CheckAndSet.SetExpireTsSeconds = expire
		return op
	}
	tests := []struct {
		name     string
		op       Op
		wantCode int32
		wantTTL  int32 // remaining TTL of h/s after the write; 0 = h/s must be absent
	}{
		{"put -1", putOp("h", "s", "v", -1), CodeInvalidArgument, 0},
		{"put min int32", putOp("h", "s", "v", math.MinInt32), CodeInvalidArgument, 0},
		{"put overflowed TTL", putOp("h", "s", "v", overflowed), CodeInvalidArgument, 0},
		{"put 0 is no TTL", putOp("h", "s", "v", 0), CodeOK, -1},
		{"put max int32", putOp("h", "s", "v", math.MaxInt32), CodeOK, int32(math.MaxInt32 - now)},
		{"multi_put -1", multiPutOp("h", -1, "s", "v"), CodeInvalidArgument, 0},
		{"multi_put overflowed TTL", multiPutOp("h", overflowed, "s", "v"), CodeInvalidArgument, 0},
		{"multi_put 100 s", multiPutOp("h", int32(now+100), "s", "v"), CodeOK, 100},
		{"check_and_set -1", cas(-1), CodeInvalidArgument, 0},
		{"check_and_set overflowed TTL", cas(overflowed), CodeInvalidArgument, 0},
		{"check_and_set 0", cas(0), CodeOK, -1},
		{"check_and_mutate put -1", mutate(rrdb.MutateOperation_MO_PUT, -1), CodeInvalidArgument, 0},
		{"check_and_mutate put 100 s", mutate(rrdb.MutateOperation_MO_PUT, int32(now+100)), CodeOK, 100},
		{"check_and_mutate delete ignores expiry", mutate(rrdb.MutateOperation_MO_DELETE, -1), CodeOK, 0},
		{"incr -1 clears the TTL", incrOp("h", "s", 1, -1), CodeOK, -1},
		{"incr min int32 clears the TTL", incrOp("h", "s", 1, math.MinInt32), CodeOK, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t)
			s.apply(putOp("h", "c", "checked", 0))
			res := s.apply(tc.op)[0]
			if code := res.Code(); code != tc.wantCode {
				t.Fatalf("code %d, want %d", code, tc.wantCode)
			}
			if tc.wantCode != CodeOK && res.CheckAndSet != nil && res.CheckAndSet.CheckValueReturned {
				t.Errorf("a refused check_and_set returned the check value")
			}
			r, err := s.TTL(ck("h", "s"))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantTTL == 0 && r.Error != CodeNotFound:
				t.Errorf("h/s is stored (ttl %d), want absent", r.TTLSeconds)
			case tc.wantTTL != 0 && (r.Error != CodeOK || r.TTLSeconds != tc.wantTTL):
				t.Errorf("ttl of h/s: %+v, want %d", r, tc.wantTTL)
			}
		})
	}
}

func TestDecreeOrder(t *testing.T) {
	s := openTestStore(t)
	apply := func(d int64, ops ...Op) ([]OpResult, error) {
		return s.Apply(&Mutation{Decree: d, TimestampUS: s.clk.Now().UnixMicro(), Ops: ops})
	}
	if _, err := apply(2, putOp("h", "s", "v", 0)); !errors.Is(err, ErrDecreeGap) {
		t.Fatalf("gap: %v", err)
	}
	if _, err := apply(0); !errors.Is(err, ErrBadMutation) {
		t.Fatalf("decree 0: %v", err)
	}
	if _, err := apply(1, Op{}); !errors.Is(err, ErrBadMutation) {
		t.Fatalf("empty op: %v", err)
	}
	if _, err := apply(1, Op{Put: &rrdb.UpdateRequest{}, Remove: blob("x")}); !errors.Is(err, ErrBadMutation) {
		t.Fatalf("two requests: %v", err)
	}
	if s.LastAppliedDecree() != 0 {
		t.Fatalf("failed applies moved the decree to %d", s.LastAppliedDecree())
	}
	// An empty mutation only advances the decree.
	if res, err := apply(1); err != nil || len(res) != 0 {
		t.Fatalf("empty mutation: %v %v", res, err)
	}
	res, err := apply(2, putOp("h", "s", "v1", 0), incrOp("h", "n", 1, 0))
	if err != nil || res[0].Duplicate {
		t.Fatalf("apply 2: %v %+v", err, res)
	}
	// Re-applying decree 2 (or 1) writes nothing and reports duplicates.
	res, err = apply(2, putOp("h", "s", "other", 0), incrOp("h", "n", 1, 0))
	if err != nil || len(res) != 2 || !res[0].Duplicate || !res[1].Duplicate || res[1].Incr == nil {
		t.Fatalf("duplicate: %v %+v", err, res)
	}
	s.mustGet("h", "s", "v1")
	s.mustGet("h", "n", "1")
	if s.LastAppliedDecree() != 2 {
		t.Fatalf("decree %d", s.LastAppliedDecree())
	}
	// A mutation with an invalid op still applies and advances the decree.
	res, err = apply(3, multiPutOp("h", 0), putOp("h", "t", "v", 0))
	if err != nil || res[0].Code() != CodeInvalidArgument || res[1].Code() != CodeOK || s.LastAppliedDecree() != 3 {
		t.Fatalf("partial invalid: %v %+v", err, res)
	}
	s.mustGet("h", "t", "v")
}

func TestTimetag(t *testing.T) {
	s := openTestStore(t, func(o *Options) { o.ClusterID = 5 })
	ts := s.clk.Now().UnixMicro() + 123
	if _, err := s.Apply(&Mutation{Decree: 1, TimestampUS: ts, Ops: []Op{putOp("h", "s", "v", 0)}}); err != nil {
		t.Fatal(err)
	}
	var got uint64
	err := s.ForEach(t.Context(), func(r *Record) error { got = r.Timetag; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if want := keys.MakeTimetag(uint64(ts), 5, false); got != want {
		t.Fatalf("timetag %x, want %x", got, want)
	}
}

func TestAtomicMutationVisibility(t *testing.T) {
	// Readers racing with multi-op mutations must see each mutation entirely or not at
	// all: every mutation writes the same counter value to all ten sort keys.
	s := openTestStore(t)
	const sorts = 10
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		for {
			select {
			case <-done:
				return
			default:
			}
			resp, err := s.MultiGet(&rrdb.MultiGetRequest{HashKey: blob("h"), StartInclusive: true})
			if err != nil {
				errc <- err
				return
			}
			for _, kv := range resp.Kvs {
				if !bytes.Equal(kv.Value.Data, resp.Kvs[0].Value.Data) {
					errc <- errors.New("torn mutation: " + string(kv.Value.Data) + " vs " + string(resp.Kvs[0].Value.Data))
					return
				}
			}
		}
	}()
	for i := range 300 {
		ops := make([]Op, sorts)
		for j := range ops {
			ops[j] = putOp("h", strconv.Itoa(j), strconv.Itoa(i), 0)
		}
		s.apply(ops...)
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
