package storage

import (
	"testing"

	"github.com/cockroachdb/pebble"
)

// The per-level options are spelled out for every level: the last compression
// entry repeats for deeper levels, and the target file size, bloom filter and
// write stop apply as set.
func TestPebbleOptions(t *testing.T) {
	o := DefaultOptions()
	o.MemTableCount = 4
	o.TargetFileSize = 16 << 20
	o.MaxConcurrentCompactions = 6
	o.Compression = []pebble.Compression{pebble.NoCompression, pebble.NoCompression, pebble.SnappyCompression, pebble.SnappyCompression, pebble.ZstdCompression}
	po, cache := o.pebbleOptions(nil)
	defer cache.Unref()
	if po.Levels[6].Compression != pebble.ZstdCompression || po.Levels[1].Compression != pebble.NoCompression {
		t.Errorf("per-level compression not applied: %v", po.Levels)
	}
	if po.Levels[3].TargetFileSize != 16<<20 || po.Levels[0].FilterPolicy == nil {
		t.Errorf("level options: %+v", po.Levels[3])
	}
	if po.MaxConcurrentCompactions() != 6 || !po.DisableWAL || po.MemTableStopWritesThreshold != 4 {
		t.Errorf("pebble options: %+v", po)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	d := DefaultOptions()
	if o.MemTableSize != d.MemTableSize || o.MultiGetMaxKVCount != 3000 || o.MultiGetMaxKVSize != 30<<20 ||
		o.ScanMaxBatchSize != 1000 || o.Clock == nil || o.Logger == nil || o.MaxScanners <= 0 {
		t.Fatalf("zero options were not defaulted: %+v", o)
	}
	if o.DisableWAL {
		t.Fatal("a zero Options must keep its WAL setting (on)")
	}
}
