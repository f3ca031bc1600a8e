package replica

import (
	"sort"
	"strings"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/pegasusgo/pegasus/config"
	"github.com/pegasusgo/pegasus/storage"
)

// storageMappedKeys are the [pegasus.server] keys storageOptions applies.
func storageMappedKeys() map[string]bool {
	return map[string]bool{
		"rocksdb_write_buffer_size": true, "rocksdb_max_write_buffer_number": true,
		"rocksdb_level0_file_num_compaction_trigger": true, "rocksdb_level0_stop_writes_trigger": true,
		"rocksdb_target_file_size_base": true, "rocksdb_max_bytes_for_level_base": true,
		"rocksdb_max_bytes_for_level_multiplier": true, "rocksdb_compression_type": true,
		"rocksdb_block_cache_capacity": true, "rocksdb_bloom_filter_bits_per_key": true,
		"rocksdb_disable_bloom_filter": true, "rocksdb_max_background_compactions": true,
		"rocksdb_multi_get_max_iteration_count": true, "rocksdb_multi_get_max_iteration_size": true,
		"rocksdb_max_iteration_count": true, "rocksdb_iteration_threshold_time_ms": true,
	}
}

// storageOptions translates the decoded [pegasus.server] section, whose values
// the config package has already checked and defaulted (its defaults are the
// ones in effect), into the store's options. It also returns, sorted, the
// rocksdb_* keys set in the file that have no Pebble equivalent (slowdown
// trigger, background flushes, filter type, rate limiter, slow-query
// thresholds, ...), for the caller to log as ignored. Keys without the prefix
// belong to other components.
func storageOptions(c config.PegasusServer) (storage.Options, []string) {
	o := storage.DefaultOptions()
	o.MemTableSize = uint64(c.WriteBufferSize)
	o.MemTableCount = c.MaxWriteBufferNumber
	o.L0CompactionThreshold = c.Level0FileNumCompactionTrigger
	o.L0StopWritesThreshold = c.Level0StopWritesTrigger
	o.TargetFileSize = c.TargetFileSizeBase
	o.LBaseMaxBytes = c.MaxBytesForLevelBase
	o.LevelMultiplier = c.MaxBytesForLevelMultiplier
	o.BlockCacheSize = c.BlockCacheCapacity
	o.BloomBitsPerKey = c.BloomFilterBitsPerKey
	if c.DisableBloomFilter {
		o.BloomBitsPerKey = 0
	}
	o.MaxConcurrentCompactions = c.MaxBackgroundCompactions
	o.MultiGetMaxKVCount = c.MultiGetMaxIterationCount
	o.MultiGetMaxKVSize = int(c.MultiGetMaxIterationSize)
	o.ScanMaxBatchSize = c.MaxIterationCount
	o.IterationTimeLimit = time.Duration(c.IterationThresholdTimeMs) * time.Millisecond
	if len(c.Compression) > 0 {
		o.Compression = make([]pebble.Compression, 0, min(len(c.Compression), storage.NumLevels))
		for level := 0; level < len(c.Compression) && level < storage.NumLevels; level++ {
			o.Compression = append(o.Compression, pebbleCompression(c.CompressionFor(level)))
		}
	}
	mapped := storageMappedKeys()
	var ignored []string
	for k := range c.Settings {
		if strings.HasPrefix(k, "rocksdb_") && !mapped[k] {
			ignored = append(ignored, k)
		}
	}
	sort.Strings(ignored)
	return o, ignored
}

// pebbleCompression maps the configured compression names. Pebble has no LZ4, so
// lz4 becomes Snappy, the other fast codec.
func pebbleCompression(name string) pebble.Compression {
	switch name {
	case config.CompressionNone:
		return pebble.NoCompression
	case config.CompressionZSTD:
		return pebble.ZstdCompression
	default: // snappy, lz4
		return pebble.SnappyCompression
	}
}
