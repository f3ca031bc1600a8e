package storage

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A manual compaction of a store full of overwrites and deletes shrinks it,
// keeps the live data, and records its finish time durably.
func TestManualCompactShrinksAndRecords(t *testing.T) {
	s := openTestStore(t)
	if last, err := s.LastManualCompactFinish(); err != nil || !last.IsZero() {
		t.Fatalf("a new store's last manual compaction: %v %v", last, err)
	}
	value := strings.Repeat("x", 1000)
	for round := range 5 {
		var ops []Op
		for i := range 400 {
			ops = append(ops, putOp("h", fmt.Sprintf("%04d", i), fmt.Sprint(value, round), 0))
		}
		s.apply(ops...)
		if err := s.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var dels []Op
	for i := range 300 {
		dels = append(dels, removeOp("h", fmt.Sprintf("%04d", i)))
	}
	s.apply(dels...)
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := s.SizeOnDisk()
	digest := digestOf(t, s.Store, s.clk)

	finish, err := s.ManualCompact(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if after := s.SizeOnDisk(); after*2 > before {
		t.Errorf("on-disk size %d -> %d: want it at least halved", before, after)
	}
	if got := digestOf(t, s.Store, s.clk); got != digest {
		t.Error("manual compaction changed the live data")
	}
	if n := storedCount(t, s.Store); n != 100 {
		t.Errorf("%d records stored after compaction, want 100", n)
	}
	if !finish.Equal(s.clk.Now().Truncate(time.Millisecond)) && !finish.Equal(s.clk.Now()) {
		t.Errorf("finish time %v, clock %v", finish, s.clk.Now())
	}
	last, err := s.LastManualCompactFinish()
	if err != nil || last.UnixMilli() != finish.UnixMilli() {
		t.Errorf("recorded finish %v %v, want %v", last, err, finish)
	}
}
