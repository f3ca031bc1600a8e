package storage

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/pegasusgo/pegasus/internal/waitfor"
)

func storedCount(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	if err := s.ForEach(t.Context(), func(*Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCompactPurgesExpired(t *testing.T) {
	s := openTestStore(t)
	now := s.clk.epoch()
	var ops []Op
	for i := range 300 {
		expire := int32(0)
		if i%3 == 0 {
			expire = int32(now + 10)
		}
		ops = append(ops, putOp("h", fmt.Sprintf("%04d", i), "v", expire))
	}
	s.apply(ops...)
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := digestOf(t, s.Store, s.clk)
	if err := s.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := storedCount(t, s.Store); n != 300 {
		t.Fatalf("compaction before expiry left %d records", n)
	}
	// Once expired the records are invisible at once and gone after compaction; the
	// next mutation's timestamp lets the sweep go that far.
	s.clk.Advance(10 * time.Second)
	s.apply()
	afterExpiry := digestOf(t, s.Store, s.clk)
	if afterExpiry == before {
		t.Fatal("digest ignores expiry")
	}
	if err := s.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := storedCount(t, s.Store); n != 200 {
		t.Fatalf("after purge %d records stored, want 200", n)
	}
	if got := digestOf(t, s.Store, s.clk); got != afterExpiry {
		t.Fatal("purging changed the live data")
	}
	if s.LastAppliedDecree() != s.decree {
		t.Fatal("purge moved the decree")
	}
}

func TestPurgeThreshold(t *testing.T) {
	s := openTestStore(t, func(o *Options) { o.PurgeGracePeriod = time.Minute })
	now := s.clk.epoch()
	s.apply(putOp("h", "a", "v", int32(now+5)))
	// The clock passes the expiry, but no mutation has: the record may still be read
	// by a write stamped before its expiry, so it stays.
	s.clk.Advance(2 * time.Minute)
	if n, err := s.PurgeExpired(t.Context()); err != nil || n != 0 {
		t.Fatalf("purged %d (%v) before a mutation passed the expiry", n, err)
	}
	s.mustMiss("h", "a") // invisible all the same
	// A mutation stamped after the expiry but within the grace period: still kept.
	s.clk.Advance(-2*time.Minute + 30*time.Second)
	s.apply()
	if n, _ := s.PurgeExpired(t.Context()); n != 0 {
		t.Fatalf("purged %d within the grace period", n)
	}
	s.clk.Advance(time.Minute)
	s.apply()
	if n, err := s.PurgeExpired(t.Context()); err != nil || n != 1 {
		t.Fatalf("purged %d (%v) after the grace period, want 1", n, err)
	}
}

// TestPurgeRacesWithApply rewrites expired records with live values while sweeps run:
// a sweep must never delete a record that an Apply has just made live again.
func TestPurgeRacesWithApply(t *testing.T) {
	s := openTestStore(t)
	now := s.clk.epoch()
	const n = 2000
	var ops []Op
	for i := range n {
		ops = append(ops, putOp("h", fmt.Sprintf("%05d", i), "old", int32(now+1)))
	}
	s.apply(ops...)
	s.clk.Advance(2 * time.Second)
	s.apply()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 5 {
			if _, err := s.PurgeExpired(t.Context()); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := n - 1; i >= 0; i-- {
		s.apply(putOp("h", fmt.Sprintf("%05d", i), "new", 0))
	}
	wg.Wait()
	for i := range n {
		s.mustGet("h", fmt.Sprintf("%05d", i), "new")
	}
}

// TestExpireTableProperty checks that the sweep's table filter skips sstables without
// expiring records and keeps those with them.
func TestExpireTableProperty(t *testing.T) {
	s := openTestStore(t)
	now := s.clk.epoch()
	var ops []Op
	for i := range 2000 {
		ops = append(ops, putOp("plain", fmt.Sprintf("%05d", i), "value without ttl", 0))
	}
	s.apply(ops...)
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.apply(putOp("ttl", "late", "v", int32(now+1000)), putOp("ttl", "later", "v", int32(now+2000)))
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	visit := func(threshold uint32) int {
		it, err := s.db.NewIter(&pebble.IterOptions{
			LowerBound:  []byte{0, 0},
			UpperBound:  []byte(userKeyEnd),
			TableFilter: mayHoldExpired(threshold),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		return n
	}
	if got := visit(now + 999); got != 0 {
		t.Fatalf("threshold below every expiry visited %d records", got)
	}
	if got := visit(now + 1000); got != 2 {
		t.Fatalf("threshold at the first expiry visited %d records, want the 2 of its table", got)
	}
	// A table without the marker property is always read.
	if !mayHoldExpired(0)(map[string]string{}) || mayHoldExpired(5)(map[string]string{propExpireMarker: "1"}) {
		t.Fatal("mayHoldExpired misreads the properties")
	}
}

func TestPeriodicPurge(t *testing.T) {
	s := openTestStore(t, func(o *Options) { o.PurgeInterval = 200 * time.Millisecond })
	now := s.clk.epoch()
	s.apply(putOp("h", "a", "v", int32(now+1)), putOp("h", "b", "v", 0))
	s.clk.Advance(time.Second)
	s.apply()
	waitfor.Until(t, 10*time.Second, 50*time.Millisecond, "the background sweep to purge the expired record", func() (bool, string) {
		n := storedCount(t, s.Store)
		return n == 1, fmt.Sprintf("%d records stored", n)
	})
}
