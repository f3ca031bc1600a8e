package storage

import (
	"context"
	"fmt"
	"testing"
)

// The key estimate follows what was flushed: written records count, deleted ones
// stop counting, as with RocksDB's estimate.
func TestEstimatedKeys(t *testing.T) {
	ts := openTestStore(t)
	if n := ts.Stats().EstimatedKeys; n != 0 {
		t.Fatalf("empty store estimates %d keys", n)
	}
	for i := 0; i < 1000; i++ {
		ts.apply(putOp(fmt.Sprintf("h%04d", i), "s", "v", 0))
	}
	ctx := context.Background()
	if err := ts.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The decree record is one more key.
	if n := ts.Stats().EstimatedKeys; n < 1000 || n > 1002 {
		t.Fatalf("after 1000 puts: estimate %d", n)
	}
	for i := 0; i < 400; i++ {
		ts.apply(removeOp(fmt.Sprintf("h%04d", i), "s"))
	}
	if err := ts.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := ts.Stats().EstimatedKeys; n < 600 || n > 603 {
		t.Fatalf("after removing 400 of 1000: estimate %d", n)
	}
}

// Between flushes the estimate is reused rather than recomputed at every call.
func TestEstimatedKeysReused(t *testing.T) {
	ts := openTestStore(t)
	ts.apply(putOp("a", "s", "v", 0))
	if err := ts.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := ts.Stats().EstimatedKeys
	// Written behind the store's back (no flush through it): not seen until the
	// estimate expires or the store flushes.
	ts.apply(putOp("b", "s", "v", 0))
	if err := ts.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := ts.Stats().EstimatedKeys; n != first {
		t.Fatalf("estimate recomputed within its lifetime: %d then %d", first, n)
	}
	if err := ts.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := ts.Stats().EstimatedKeys; n <= first {
		t.Fatalf("estimate not refreshed by a flush: %d then %d", first, n)
	}
}

// Records still in memtables count: right after writing, before any flush, the
// estimate is within 10% of what was written, and deletions take records off.
func TestEstimatedKeysCountMemtables(t *testing.T) {
	ts := openTestStore(t)
	const n = 5000
	for i := 0; i < n; i++ {
		ts.apply(putOp(fmt.Sprintf("h%05d", i), "s", "v", 0))
	}
	if st := ts.Stats(); st.SSTFiles != 0 {
		t.Fatalf("%d sstables: the test wants the records in memtables", st.SSTFiles)
	}
	if e := ts.Stats().EstimatedKeys; e < n*9/10 || e > n*11/10 {
		t.Fatalf("estimate %d before any flush, want within 10%% of %d", e, n)
	}

	// Deletions count; a flush moves the memtable counts to the sstables' (whose
	// figure, for records deleted within one memtable, is RocksDB's formula's
	// business) without counting them twice.
	ts2 := openTestStore(t)
	for i := 0; i < n; i++ {
		ts2.apply(putOp(fmt.Sprintf("h%05d", i), "s", "v", 0))
	}
	for i := 0; i < n/2; i++ {
		ts2.apply(removeOp(fmt.Sprintf("h%05d", i), "s"))
	}
	if e := ts2.Stats().EstimatedKeys; e < n/2*9/10 || e > n/2*11/10 {
		t.Fatalf("estimate %d after removing half before a flush, want about %d", e, n/2)
	}
	if err := ts2.db.Flush(); err != nil { // behind the store: only the listener sees it
		t.Fatal(err)
	}
	if e, d := ts2.memEntries.Load(), ts2.memDeletions.Load(); e != 0 || d != 0 {
		t.Fatalf("after the flush the memtables still count %d entries, %d deletions", e, d)
	}
}
