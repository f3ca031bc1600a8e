package replica

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/pegasusgo/pegasus/config"
	"github.com/pegasusgo/pegasus/storage"
)

// serverSection parses a [pegasus.server] section as config.ini would hold it.
func serverSection(t *testing.T, lines ...string) config.PegasusServer {
	t.Helper()
	text := "[pegasus.server]\n" + strings.Join(lines, "\n") + "\n"
	cfg, err := config.Parse("test.ini", []byte(text), config.Options{})
	if err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	return cfg.Server
}

func TestStorageOptions(t *testing.T) {
	o, ignored := storageOptions(serverSection(t,
		"rocksdb_write_buffer_size = 33554432",
		"rocksdb_max_write_buffer_number = 4",
		"rocksdb_level0_file_num_compaction_trigger = 8",
		"rocksdb_level0_slowdown_writes_trigger = 30",
		"rocksdb_level0_stop_writes_trigger = 70",
		"rocksdb_target_file_size_base = 16777216",
		"rocksdb_max_bytes_for_level_base = 134217728",
		"rocksdb_max_bytes_for_level_multiplier = 8",
		"rocksdb_compression_type = per_level:none,none,lz4,lz4,zstd",
		"rocksdb_block_cache_capacity = 1073741824",
		"rocksdb_bloom_filter_bits_per_key = 12",
		"rocksdb_max_background_compactions =  6 ",
		"rocksdb_max_background_flushes = 4",
		"rocksdb_filter_type = prefix",
		"rocksdb_multi_get_max_iteration_count = 100",
		"rocksdb_multi_get_max_iteration_size = 1000",
		"rocksdb_max_iteration_count = 500",
		"rocksdb_iteration_threshold_time_ms = 2500",
		"checkpoint_reserve_min_count = 2", // not ours, not reported
	))
	want := []string{"rocksdb_filter_type", "rocksdb_level0_slowdown_writes_trigger", "rocksdb_max_background_flushes"}
	if !slices.Equal(ignored, want) {
		t.Errorf("ignored = %q, want %q", ignored, want)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"memtable size", o.MemTableSize, uint64(32 << 20)},
		{"memtable count", o.MemTableCount, 4},
		{"L0 compaction", o.L0CompactionThreshold, 8},
		{"L0 stop", o.L0StopWritesThreshold, 70},
		{"target file", o.TargetFileSize, int64(16 << 20)},
		{"level base", o.LBaseMaxBytes, int64(128 << 20)},
		{"multiplier", o.LevelMultiplier, 8},
		{"cache", o.BlockCacheSize, int64(1 << 30)},
		{"bloom", o.BloomBitsPerKey, 12},
		{"compactions", o.MaxConcurrentCompactions, 6},
		{"multi_get count", o.MultiGetMaxKVCount, 100},
		{"multi_get size", o.MultiGetMaxKVSize, 1000},
		{"scan batch", o.ScanMaxBatchSize, 500},
		{"time limit", o.IterationTimeLimit, 2500 * time.Millisecond},
		{"WAL off by default", o.DisableWAL, true},
		{"scanner idle", o.ScannerIdleTimeout, 5 * time.Minute},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	wantComp := []pebble.Compression{pebble.NoCompression, pebble.NoCompression, pebble.SnappyCompression, pebble.SnappyCompression, pebble.ZstdCompression}
	if !slices.Equal(o.Compression, wantComp) {
		t.Errorf("compression = %v", o.Compression)
	}

	// The disable switch wins over the bits per key.
	o, _ = storageOptions(serverSection(t, "rocksdb_bloom_filter_bits_per_key = 10", "rocksdb_disable_bloom_filter = true"))
	if o.BloomBitsPerKey != 0 {
		t.Errorf("disable bloom: %d bits per key", o.BloomBitsPerKey)
	}
	for _, c := range []struct{ v, want string }{{"none", "NoCompression"}, {"snappy", "snappy"}, {"lz4", "snappy"}, {"zstd", "ZSTD"}} {
		o, _ := storageOptions(serverSection(t, "rocksdb_compression_type = "+c.v))
		if len(o.Compression) != 1 || !strings.EqualFold(o.Compression[0].String(), c.want) {
			t.Errorf("compression %q: %v", c.v, o.Compression)
		}
	}
}

// An empty section gives the documented defaults (docs/configuration.md), which
// are storage.DefaultOptions: the config package and the store agree on them.
func TestStorageOptionsDefaults(t *testing.T) {
	o, ignored := storageOptions(serverSection(t))
	if len(ignored) != 0 {
		t.Errorf("ignored %q in an empty section", ignored)
	}
	d := storage.DefaultOptions()
	if !reflect.DeepEqual(o, d) {
		t.Errorf("defaults differ:\n config %+v\n  store %+v", o, d)
	}
	if o.BlockCacheSize != 64<<20 || o.MaxConcurrentCompactions != 2 {
		t.Errorf("block cache %d, compactions %d: want the documented 64 MiB and 2", o.BlockCacheSize, o.MaxConcurrentCompactions)
	}
}
