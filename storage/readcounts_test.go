package storage

import (
	"context"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
)

// Reads count the expired records they skip and the records a filter leaves out
// (upstream's recent.expire.count and recent.filter.count).
func TestReadCounts(t *testing.T) {
	s := openTestStore(t)
	now := s.clk.epoch()
	s.apply(putOp("h", "a1", "v", 0), putOp("h", "a2", "v", 0), putOp("h", "b1", "v", 0),
		putOp("h", "dying", "v", int32(now+10)))
	s.clk.Advance(10 * time.Second) // "dying" is expired from here on
	prefix := func(p string) *base.Blob { return blob(p) }
	cases := []struct {
		name              string
		read              func()
		expired, filtered int64
	}{
		{"get of a live record", func() { s.get("h", "a1") }, 0, 0},
		{"get of an absent record", func() { s.get("h", "none") }, 0, 0},
		{"get of an expired record", func() { s.get("h", "dying") }, 1, 0},
		{"ttl of an expired record", func() { s.TTL(ck("h", "dying")) }, 1, 0},
		{"multi_get range", func() { s.MultiGet(&rrdb.MultiGetRequest{HashKey: blob("h"), StartInclusive: true}) }, 1, 0},
		{"multi_get range with a filter", func() {
			s.MultiGet(&rrdb.MultiGetRequest{HashKey: blob("h"), StartInclusive: true,
				SortKeyFilterType: rrdb.FilterType_FT_MATCH_POSTFIX, SortKeyFilterPattern: prefix("1")})
		}, 0, 2}, // a2 and dying filtered out before their expiry is looked at
		{"multi_get points", func() {
			s.MultiGet(&rrdb.MultiGetRequest{HashKey: blob("h"), SortKeys: []*base.Blob{blob("a1"), blob("dying")}})
		}, 1, 0},
		{"batch_get", func() {
			s.BatchGet(&rrdb.BatchGetRequest{Keys: []*rrdb.FullKey{{HashKey: blob("h"), SortKey: blob("dying")}}})
		}, 1, 0},
		{"sortkey_count", func() { s.SortkeyCount([]byte("h")) }, 1, 0},
		{"scan", func() {
			s.GetScanner(&rrdb.GetScannerRequest{StartKey: blob(""), StartInclusive: true, BatchSize: 100}, 0, 0)
		}, 1, 0},
		{"scan with a sort-key filter", func() {
			s.GetScanner(&rrdb.GetScannerRequest{StartKey: blob(""), StartInclusive: true, BatchSize: 100,
				SortKeyFilterType: rrdb.FilterType_FT_MATCH_PREFIX, SortKeyFilterPattern: prefix("a")}, 0, 0)
		}, 0, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e0, f0 := s.ReadCounts()
			tc.read()
			e1, f1 := s.ReadCounts()
			if e1-e0 != tc.expired || f1-f0 != tc.filtered {
				t.Errorf("counted %d expired, %d filtered; want %d, %d", e1-e0, f1-f0, tc.expired, tc.filtered)
			}
		})
	}
}

// The index and filter blocks of the flushed sstables are reported with the key
// estimate.
func TestIndexFilterBytes(t *testing.T) {
	s := openTestStore(t)
	if n := s.Stats().IndexFilterBytes; n != 0 {
		t.Fatalf("empty store: %d index and filter bytes", n)
	}
	for i := 0; i < 100; i++ {
		s.apply(putOp("h", string(rune('a'+i%26))+string(rune('a'+i/26)), "v", 0))
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.Stats().IndexFilterBytes; n <= 0 {
		t.Fatalf("after a flush: %d index and filter bytes", n)
	}
}
