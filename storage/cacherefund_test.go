package storage

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/pegasusgo/pegasus/internal/waitfor"
)

// TestBlockCacheHoldsBlocksBesideMemtables: two stores share a block cache
// smaller than what their memtables reserve in it. The blocks a store reads
// must still stay cached, as RocksDB's cache of that capacity would keep them;
// without the refund Pebble leaves the cache no room and every read misses.
func TestBlockCacheHoldsBlocksBesideMemtables(t *testing.T) {
	cache := pebble.NewCache(2 << 20)
	defer cache.Unref()
	open := func() *testStore {
		return openTestStore(t, func(o *Options) {
			o.Cache = cache
			o.MemTableSize = 1 << 20
		})
	}
	a, b := open(), open()
	value := bytes.Repeat([]byte("v"), 1024)
	// 4 MB a store: its memtables grow from 256 KB to 1 MB, and a full one
	// plus the one Pebble keeps for reuse reserve 2 MB, the whole cache.
	for _, s := range []*testStore{a, b} {
		for batch := 0; batch < 40; batch++ {
			kv := make([]string, 0, 200)
			for i := 0; i < 100; i++ {
				kv = append(kv, fmt.Sprintf("s%05d", batch*100+i), string(value))
			}
			s.apply(multiPutOp("h", 0, kv...))
		}
		if err := s.Compact(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	reserved := a.memtableReserved() + b.memtableReserved()
	if reserved < cache.MaxSize() {
		t.Fatalf("the memtables reserve %d bytes of a %d-byte cache: the test needs them to fill it", reserved, cache.MaxSize())
	}
	waitfor.Until(t, 10*time.Second, 10*time.Millisecond, "the stores to give back their memtables' reservations", func() (bool, string) {
		ga, gb := a.refund.given(), b.refund.given()
		ra, rb := a.memtableReserved(), b.memtableReserved()
		return ga == ra && gb == rb, fmt.Sprintf("given %d and %d, reserved %d and %d", ga, gb, ra, rb)
	})

	// 500 KB of values, read twice: the second pass finds them in the cache.
	read := func() {
		for i := 0; i < 500; i++ {
			a.mustGet("h", fmt.Sprintf("s%05d", i), string(value))
		}
	}
	read()
	before := cache.Metrics()
	read()
	after := cache.Metrics()
	hits, misses := after.Hits-before.Hits, after.Misses-before.Misses
	if misses*10 > hits {
		t.Fatalf("second pass over 500 KB with a 2 MB cache: %d hits, %d misses", hits, misses)
	}

	// What a store gave back it takes back when it closes: the cache is then
	// the configured size again for the stores that remain.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if g := b.refund.given(); g != 0 {
		t.Fatalf("closed store still gives %d bytes to the cache", g)
	}
}
