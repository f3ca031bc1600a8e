package storage

import (
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/rpc/golden"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// fakeClock is a settable clock shared by a test and its store.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// testEpoch is the vectors' "now": 2025-06-01T00:00:00Z.
var testEpoch = time.Unix(1748736000, 0)

func newFakeClock() *fakeClock { return &fakeClock{now: testEpoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// epoch returns the clock's now in seconds since 2016.
func (c *fakeClock) epoch() uint32 { return keys.Epoch2016(c.Now()) }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testOptions returns small-footprint options driven by clk.
func testOptions(clk *fakeClock) Options {
	o := DefaultOptions()
	o.MemTableSize = 1 << 20
	o.BlockCacheSize = 8 << 20
	o.Logger = quietLogger()
	o.PurgeInterval = 0
	o.PurgeGracePeriod = 0
	if clk != nil {
		o.Clock = clk.Now
	}
	return o
}

// testStore wraps a Store with a decree counter for tests that do not care about decrees.
type testStore struct {
	*Store
	t      testing.TB
	clk    *fakeClock
	decree int64
}

func openTestStore(t testing.TB, mutate ...func(*Options)) *testStore {
	t.Helper()
	clk := newFakeClock()
	o := testOptions(clk)
	for _, m := range mutate {
		m(&o)
	}
	dir := filepath.Join(t.TempDir(), "db")
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &testStore{Store: s, t: t, clk: clk, decree: s.LastAppliedDecree()}
}

// apply applies ops as the next mutation, stamped with the fake clock.
func (ts *testStore) apply(ops ...Op) []OpResult {
	ts.t.Helper()
	ts.decree++
	res, err := ts.Apply(&Mutation{Decree: ts.decree, TimestampUS: ts.clk.Now().UnixMicro(), Ops: ops})
	if err != nil {
		ts.t.Fatalf("Apply decree %d: %v", ts.decree, err)
	}
	if len(res) != len(ops) {
		ts.t.Fatalf("Apply returned %d results for %d ops", len(res), len(ops))
	}
	return res
}

// apply1 applies one op and returns its result code.
func (ts *testStore) apply1(op Op) int32 {
	ts.t.Helper()
	return ts.apply(op)[0].Code()
}

func (ts *testStore) get(h, s string) (string, int32) {
	ts.t.Helper()
	resp, err := ts.Get(ck(h, s))
	if err != nil {
		ts.t.Fatalf("Get: %v", err)
	}
	return string(resp.Value.Bytes()), resp.Error
}

// mustGet fails unless (h, s) reads as want.
func (ts *testStore) mustGet(h, s, want string) {
	ts.t.Helper()
	v, code := ts.get(h, s)
	if code != CodeOK || v != want {
		ts.t.Fatalf("get(%q, %q) = %q, code %d; want %q", h, s, v, code, want)
	}
}

func (ts *testStore) mustMiss(h, s string) {
	ts.t.Helper()
	if v, code := ts.get(h, s); code != CodeNotFound {
		ts.t.Fatalf("get(%q, %q) = %q, code %d; want not found", h, s, v, code)
	}
}

// ck builds a composite key from strings.
func ck(h, s string) []byte {
	k, err := keys.EncodeKey([]byte(h), []byte(s))
	if err != nil {
		panic(err)
	}
	return k
}

func blob(s string) *base.Blob { return &base.Blob{Data: []byte(s)} }

func putOp(h, s, v string, expire int32) Op {
	return Op{Put: &rrdb.UpdateRequest{Key: base.NewBlob(ck(h, s)), Value: blob(v), ExpireTsSeconds: expire}}
}

func removeOp(h, s string) Op { return Op{Remove: base.NewBlob(ck(h, s))} }

func multiPutOp(h string, expire int32, kv ...string) Op {
	req := &rrdb.MultiPutRequest{HashKey: blob(h), Kvs: []*rrdb.KeyValue{}, ExpireTsSeconds: expire}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Kvs = append(req.Kvs, &rrdb.KeyValue{Key: blob(kv[i]), Value: blob(kv[i+1])})
	}
	return Op{MultiPut: req}
}

func multiRemoveOp(h string, sorts ...string) Op {
	req := &rrdb.MultiRemoveRequest{HashKey: blob(h), SortKeys: []*base.Blob{}}
	for _, s := range sorts {
		req.SortKeys = append(req.SortKeys, blob(s))
	}
	return Op{MultiRemove: req}
}

func incrOp(h, s string, inc int64, expire int32) Op {
	return Op{Incr: &rrdb.IncrRequest{Key: base.NewBlob(ck(h, s)), Increment: inc, ExpireTsSeconds: expire}}
}

func casOp(h, checkSort string, t rrdb.CasCheckType, operand, setSort, value string) Op {
	return Op{CheckAndSet: &rrdb.CheckAndSetRequest{
		HashKey: blob(h), CheckSortKey: blob(checkSort), CheckType: t, CheckOperand: blob(operand),
		SetDiffSortKey: setSort != checkSort, SetSortKey: blob(setSort), SetValue: blob(value),
		ReturnCheckValue: true,
	}}
}

func vectorsDir(t *testing.T) string { return golden.Dir(t) }
