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
