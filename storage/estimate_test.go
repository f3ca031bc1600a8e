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
