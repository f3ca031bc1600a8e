package config

import (
	"fmt"
	"strings"
)

// PegasusServer is [pegasus.server]: storage-engine tuning and read guards.
//
// Upstream tunes RocksDB here. This implementation stores data in Pebble; the
// replica server maps these typed values onto the store's options
// (daemon/replica, storageOptions), so the defaults here are the ones in effect
// and are the ones docs/configuration.md lists. Every key is kept in Settings;
// upstream keys without a typed field are listed in Unmapped so that the replica
// server can log, when it opens its stores, exactly what it ignores. Keys that
// upstream does not define either are config warnings instead.
type PegasusServer struct {
	Settings map[string]string // every key of the section, as written
	Unmapped []string          // known upstream keys with no typed field, in file order

	WriteBufferSize                int64    // rocksdb_write_buffer_size, default 64 MiB (memtable size)
	MaxWriteBufferNumber           int      // rocksdb_max_write_buffer_number, default 3
	Level0FileNumCompactionTrigger int      // rocksdb_level0_file_num_compaction_trigger, default 4
	Level0SlowdownWritesTrigger    int      // rocksdb_level0_slowdown_writes_trigger, default 30
	Level0StopWritesTrigger        int      // rocksdb_level0_stop_writes_trigger, default 60
	TargetFileSizeBase             int64    // rocksdb_target_file_size_base, default 64 MiB
	MaxBytesForLevelBase           int64    // rocksdb_max_bytes_for_level_base, default 640 MiB
	MaxBytesForLevelMultiplier     int      // rocksdb_max_bytes_for_level_multiplier, default 10, at least 2
	Compression                    []string // rocksdb_compression_type; see CompressionFor
	// BlockCacheCapacity is rocksdb_block_cache_capacity, default 64 MiB: one cache
	// shared by every replica of the server (the templates set their own size).
	BlockCacheCapacity       int64
	DisableBloomFilter       bool // rocksdb_disable_bloom_filter
	BloomFilterBitsPerKey    int  // rocksdb_bloom_filter_bits_per_key, default 10
	MaxBackgroundCompactions int  // rocksdb_max_background_compactions, default 2 (per replica)
	// LimiterMaxWriteMegabytesPerSec caps background write bandwidth
	// (rocksdb_limiter_max_write_megabytes_per_sec, default 500, 0 = none).
	LimiterMaxWriteMegabytesPerSec int

	SlowQueryThresholdNs                  int64 // rocksdb_slow_query_threshold_ns, default 100 ms
	AbnormalGetSizeThreshold              int64 // rocksdb_abnormal_get_size_threshold, default 1 MB; 0 = off
	AbnormalMultiGetSizeThreshold         int64 // rocksdb_abnormal_multi_get_size_threshold, default 10 MB
	AbnormalMultiGetIterateCountThreshold int64 // rocksdb_abnormal_multi_get_iterate_count_threshold, default 1000
	MultiGetMaxIterationCount             int   // rocksdb_multi_get_max_iteration_count, default 3000
	MultiGetMaxIterationSize              int64 // rocksdb_multi_get_max_iteration_size, default 30 MiB
	MaxIterationCount                     int   // rocksdb_max_iteration_count, default 1000
	IterationThresholdTimeMs              int64 // rocksdb_iteration_threshold_time_ms, default 30000

	CheckpointReserveMinCount    int   // checkpoint_reserve_min_count, default 2
	CheckpointReserveTimeSeconds int64 // checkpoint_reserve_time_seconds, default 1800

	// PerfCounterUpdateIntervalSeconds is how often a replica server snapshots
	// its legacy perf counters, the interval their rates are over
	// (perf_counter_update_interval_seconds, default 10).
	PerfCounterUpdateIntervalSeconds int

	// ReadCapacityUnitSize and WriteCapacityUnitSize are the bytes of one read
	// and one write capacity unit, powers of two as upstream requires
	// (perf_counter_read_capacity_unit_size,
	// perf_counter_write_capacity_unit_size, default 4096).
	ReadCapacityUnitSize, WriteCapacityUnitSize int64
}

// Compression algorithm names accepted in rocksdb_compression_type.
const (
	CompressionNone   = "none"
	CompressionSnappy = "snappy"
	CompressionLZ4    = "lz4"
	CompressionZSTD   = "zstd"
)

// CompressionFor is the compression of an LSM level: a single configured
// type applies to all levels, a per-level list to the level at its index,
// with the last entry repeated for deeper levels.
func (s PegasusServer) CompressionFor(level int) string {
	if len(s.Compression) == 0 {
		return CompressionLZ4
	}
	if level < 0 {
		level = 0
	}
	if level >= len(s.Compression) {
		return s.Compression[len(s.Compression)-1]
	}
	return s.Compression[level]
}

// parseCompression accepts one type for all levels, or a per-level list
// ("per_level:none,none,lz4,zstd"; the prefix is optional).
func parseCompression(v string) ([]string, error) {
	v = strings.TrimPrefix(v, "per_level:")
	var out []string
	for i, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		switch item {
		case CompressionNone, CompressionSnappy, CompressionLZ4, CompressionZSTD:
			out = append(out, item)
		default:
			return nil, fmt.Errorf("item %d %q: unknown compression, want one of: none, snappy, lz4, zstd", i+1, item)
		}
	}
	return out, nil
}

// isUpstreamServerKey tells the [pegasus.server] keys that upstream defines,
// so that a misspelt key is reported rather than passed on as "ignored".
func isUpstreamServerKey(k string) bool {
	switch k {
	case "rocksdb_verbose_log", "rocksdb_abnormal_get_time_threshold_ns",
		"rocksdb_abnormal_multi_get_time_threshold_ns", "rocksdb_abnormal_batch_get_size_threshold",
		"rocksdb_abnormal_batch_get_count_threshold", "rocksdb_max_background_flushes", "rocksdb_num_levels",
		"rocksdb_target_file_size_multiplier",
		"rocksdb_disable_table_block_cache", "rocksdb_block_cache_num_shard_bits", "rocksdb_block_cache_type",
		"rocksdb_filter_type", "rocksdb_format_version", "rocksdb_periodic_compaction_seconds",
		"rocksdb_limiter_enable_auto_tune", "rocksdb_enable_write_buffer_manager",
		"rocksdb_total_size_across_write_buffer", "rocksdb_max_open_files", "rocksdb_max_log_file_size",
		"rocksdb_log_file_time_to_roll", "rocksdb_keep_log_file_num", "rocksdb_index_type",
		"rocksdb_partition_filters", "rocksdb_metadata_block_size", "rocksdb_cache_index_and_filter_blocks",
		"rocksdb_pin_top_level_index_and_filter", "rocksdb_cache_index_and_filter_blocks_with_high_priority",
		"rocksdb_pin_l0_filter_and_index_blocks_in_cache", "rocksdb_use_direct_reads",
		"rocksdb_use_direct_io_for_flush_and_compaction", "rocksdb_compaction_readahead_size",
		"rocksdb_writable_file_max_buffer_size", "rocksdb_max_subcompactions",
		"rocksdb_level_compaction_dynamic_level_bytes", "rocksdb_write_global_seqno",
		"rocksdb_enable_pipelined_write", "rocksdb_max_total_wal_size",
		"update_rdb_stat_interval", "updating_rocksdb_sstsize_interval_seconds",
		"manual_compact_min_interval_seconds", "encrypt_data_at_rest", "server_key_for_testing",
		"perf_counter_sink", "perf_counter_cluster_name",
		"perf_counter_enable_stat", "perf_counter_enable_logging", "perf_counter_enable_falcon",
		"falcon_host", "falcon_port", "falcon_path", "prometheus_host", "prometheus_port":
		return true
	}
	return false
}

func decodePegasusServer(r *sectionReader) PegasusServer {
	s := PegasusServer{
		Settings: map[string]string{},

		WriteBufferSize:                r.int64("rocksdb_write_buffer_size", 64<<20, positive),
		MaxWriteBufferNumber:           r.integer("rocksdb_max_write_buffer_number", 3, positive),
		Level0FileNumCompactionTrigger: r.integer("rocksdb_level0_file_num_compaction_trigger", 4, positive),
		Level0SlowdownWritesTrigger:    r.integer("rocksdb_level0_slowdown_writes_trigger", 30, positive),
		Level0StopWritesTrigger:        r.integer("rocksdb_level0_stop_writes_trigger", 60, positive),
		TargetFileSizeBase:             r.int64("rocksdb_target_file_size_base", 64<<20, positive),
		MaxBytesForLevelBase:           r.int64("rocksdb_max_bytes_for_level_base", 640<<20, positive),
		MaxBytesForLevelMultiplier:     r.integer("rocksdb_max_bytes_for_level_multiplier", 10, between(2, 1000)),
		BlockCacheCapacity:             r.int64("rocksdb_block_cache_capacity", 64<<20, positive),
		DisableBloomFilter:             r.boolean("rocksdb_disable_bloom_filter", false),
		BloomFilterBitsPerKey:          r.integer("rocksdb_bloom_filter_bits_per_key", 10, positive),
		MaxBackgroundCompactions:       r.integer("rocksdb_max_background_compactions", 2, positive),
		LimiterMaxWriteMegabytesPerSec: r.integer("rocksdb_limiter_max_write_megabytes_per_sec", 500, nonNegative),

		SlowQueryThresholdNs:                  r.int64("rocksdb_slow_query_threshold_ns", 100_000_000, positive),
		AbnormalGetSizeThreshold:              r.int64("rocksdb_abnormal_get_size_threshold", 1_000_000, nonNegative),
		AbnormalMultiGetSizeThreshold:         r.int64("rocksdb_abnormal_multi_get_size_threshold", 10_000_000, nonNegative),
		AbnormalMultiGetIterateCountThreshold: r.int64("rocksdb_abnormal_multi_get_iterate_count_threshold", 1000, nonNegative),
		MultiGetMaxIterationCount:             r.integer("rocksdb_multi_get_max_iteration_count", 3000, positive),
		MultiGetMaxIterationSize:              r.int64("rocksdb_multi_get_max_iteration_size", 30<<20, positive),
		MaxIterationCount:                     r.integer("rocksdb_max_iteration_count", 1000, positive),
		IterationThresholdTimeMs:              r.int64("rocksdb_iteration_threshold_time_ms", 30000, nonNegative),

		CheckpointReserveMinCount:    r.integer("checkpoint_reserve_min_count", 2, positive),
		CheckpointReserveTimeSeconds: r.int64("checkpoint_reserve_time_seconds", 1800, nonNegative),

		PerfCounterUpdateIntervalSeconds: r.integer("perf_counter_update_interval_seconds", 10, positive),

		ReadCapacityUnitSize:  r.int64("perf_counter_read_capacity_unit_size", 4096, powerOfTwo),
		WriteCapacityUnitSize: r.int64("perf_counter_write_capacity_unit_size", 4096, powerOfTwo),
	}
	s.Compression = []string{CompressionLZ4}
	if v, from := r.lookup("rocksdb_compression_type"); from != "" {
		c, err := parseCompression(v)
		if err != nil {
			r.fail("rocksdb_compression_type", v, from, err)
		} else {
			s.Compression = c
		}
		r.record("rocksdb_compression_type", FlagString, v, true)
	} else {
		r.record("rocksdb_compression_type", FlagString, CompressionLZ4, false)
	}
	// RocksDB refuses these orderings; catching them here gives a clearer
	// message than the storage engine would.
	if s.Level0SlowdownWritesTrigger < s.Level0FileNumCompactionTrigger &&
		r.valid("rocksdb_level0_slowdown_writes_trigger", "rocksdb_level0_file_num_compaction_trigger") {
		r.failKey("rocksdb_level0_slowdown_writes_trigger", s.Level0SlowdownWritesTrigger, fmt.Errorf("must not be less than rocksdb_level0_file_num_compaction_trigger (%d)", s.Level0FileNumCompactionTrigger))
	}
	if s.Level0StopWritesTrigger < s.Level0SlowdownWritesTrigger &&
		r.valid("rocksdb_level0_stop_writes_trigger", "rocksdb_level0_slowdown_writes_trigger") {
		r.failKey("rocksdb_level0_stop_writes_trigger", s.Level0StopWritesTrigger, fmt.Errorf("must not be less than rocksdb_level0_slowdown_writes_trigger (%d)", s.Level0SlowdownWritesTrigger))
	}

	if r.sec != nil {
		for _, k := range r.sec.keys {
			s.Settings[k] = r.sec.values[k]
			switch {
			case r.used[k]:
			case isUpstreamServerKey(k):
				r.used[k] = true
				s.Unmapped = append(s.Unmapped, k)
			}
		}
	}
	r.finish()
	return s
}
