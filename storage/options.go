package storage

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
)

// NumLevels is Pebble's fixed LSM depth; per-level options are spelled out for all of
// them so that RocksDB's "same target file size on every level" holds. Compression
// entries beyond it are unused.
const NumLevels = 7

// Options configures one Store. Start from DefaultOptions: a
// zero numeric field falls back to its default, but boolean fields are taken as they are,
// so a zero Options runs with the WAL enabled.
type Options struct {
	// Cache is a block cache shared by every store of the process (RocksDB's block cache
	// is node-wide, and rocksdb_block_cache_capacity sizes that shared cache). The caller
	// owns it. When nil, the store creates a private cache of BlockCacheSize bytes.
	Cache *pebble.Cache
	// BlockCacheSize is the size of the private cache used when Cache is nil.
	BlockCacheSize int64
	// MemTableSize is the size of one memtable (rocksdb_write_buffer_size).
	MemTableSize uint64
	// MemTableCount is the number of memtables, active plus queued for flush, at which
	// writes stop (rocksdb_max_write_buffer_number).
	MemTableCount int
	// L0CompactionThreshold is the L0 read amplification that triggers a compaction
	// (rocksdb_level0_file_num_compaction_trigger).
	L0CompactionThreshold int
	// L0StopWritesThreshold stops writes at this L0 read amplification
	// (rocksdb_level0_stop_writes_trigger). Pebble has no "slowdown" stage.
	L0StopWritesThreshold int
	// LBaseMaxBytes is the size of the base level (rocksdb_max_bytes_for_level_base).
	LBaseMaxBytes int64
	// LevelMultiplier is the size ratio between levels
	// (rocksdb_max_bytes_for_level_multiplier).
	LevelMultiplier int
	// TargetFileSize is the sstable size on every level (rocksdb_target_file_size_base;
	// RocksDB's default target_file_size_multiplier is 1).
	TargetFileSize int64
	// Compression lists the sstable compression per level; the last entry repeats for
	// deeper levels (rocksdb_compression_type, including its per_level: form).
	Compression []pebble.Compression
	// BloomBitsPerKey sizes the per-table bloom filter; 0 disables it
	// (rocksdb_bloom_filter_bits_per_key, rocksdb_disable_bloom_filter).
	BloomBitsPerKey int
	// MaxConcurrentCompactions bounds background compactions
	// (rocksdb_max_background_compactions).
	MaxConcurrentCompactions int
	// DisableAutoCompactions stops background compactions (the bulk_load usage
	// scenario); flushes and manual compactions still run.
	DisableAutoCompactions bool

	// DisableWAL turns the Pebble write-ahead log off (the default): the replica's
	// mutation log provides durability, and the last-applied decree is written in the
	// same batch as the data, so the flushed state always names the decree it contains.
	// With the WAL on, every Apply is synced and durable immediately.
	DisableWAL bool

	// ClusterID is the duplication cluster id stored in timetags (0..127).
	ClusterID uint8
	// Clock supplies "now" for reads (expiry checks, TTL), for mutations that carry no
	// timestamp, and for scanner idle times. Defaults to time.Now.
	Clock func() time.Time
	// Logger receives engine events. Defaults to slog.Default().
	Logger *slog.Logger

	// MaxScanners bounds the number of open scanner contexts; opening one more evicts
	// the least recently used (its client gets "context unknown" and restarts from its
	// last key, which every client supports).
	MaxScanners int
	// ScannerIdleTimeout discards scanner contexts unused for this long (5 min).
	ScannerIdleTimeout time.Duration
	// ScanMaxBatchSize caps the records of one scan batch (rocksdb_max_iteration_count).
	ScanMaxBatchSize int
	// MultiGetMaxKVCount caps the records one multi_get iterates over
	// (rocksdb_multi_get_max_iteration_count, 3000).
	MultiGetMaxKVCount int
	// MultiGetMaxKVSize caps the bytes of keys and values one multi_get returns
	// (rocksdb_multi_get_max_iteration_size, 30 MB).
	MultiGetMaxKVSize int
	// IterationTimeLimit bounds the time one multi_get, sortkey_count or scan batch
	// spends iterating (rocksdb_iteration_threshold_time_ms); 0 means no limit.
	IterationTimeLimit time.Duration

	// PurgeInterval runs the expired-record sweep this often in the background; 0
	// disables the periodic sweep (Compact still purges).
	PurgeInterval time.Duration
	// PurgeGracePeriod keeps expired records this much longer than their expiry before
	// the sweep deletes them; see the package documentation for why.
	PurgeGracePeriod time.Duration

	// CloseFlushTimeout bounds how long Close waits for its final flush (WAL off)
	// before closing anyway (10 s). A flush cannot finish on a full disk; what it
	// would have made durable is still in the replica's mutation log.
	CloseFlushTimeout time.Duration
	// OnDiskFull, when set, is called when a write of the engine fails because the
	// disk is full (ENOSPC). It runs in the engine's goroutines and must not block.
	OnDiskFull func()
}

// DefaultOptions returns the Pegasus defaults of [pegasus.server], translated to Pebble.
func DefaultOptions() Options {
	return Options{
		BlockCacheSize:           64 << 20,
		MemTableSize:             64 << 20,
		MemTableCount:            3,
		L0CompactionThreshold:    4,
		L0StopWritesThreshold:    60,
		LBaseMaxBytes:            640 << 20,
		LevelMultiplier:          10,
		TargetFileSize:           64 << 20,
		Compression:              []pebble.Compression{pebble.SnappyCompression},
		BloomBitsPerKey:          10,
		MaxConcurrentCompactions: 2,
		DisableWAL:               true,
		MaxScanners:              1000,
		ScannerIdleTimeout:       5 * time.Minute,
		ScanMaxBatchSize:         1000,
		MultiGetMaxKVCount:       3000,
		MultiGetMaxKVSize:        30 << 20,
		IterationTimeLimit:       30 * time.Second,
		PurgeInterval:            time.Hour,
		PurgeGracePeriod:         10 * time.Minute,
		CloseFlushTimeout:        10 * time.Second,
	}
}

// withDefaults fills zero numeric fields from DefaultOptions.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.BlockCacheSize <= 0 {
		o.BlockCacheSize = d.BlockCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = d.MemTableSize
	}
	if o.MemTableCount <= 0 {
		o.MemTableCount = d.MemTableCount
	}
	if o.L0CompactionThreshold <= 0 {
		o.L0CompactionThreshold = d.L0CompactionThreshold
	}
	if o.L0StopWritesThreshold <= 0 {
		o.L0StopWritesThreshold = d.L0StopWritesThreshold
	}
	if o.LBaseMaxBytes <= 0 {
		o.LBaseMaxBytes = d.LBaseMaxBytes
	}
	if o.LevelMultiplier <= 0 {
		o.LevelMultiplier = d.LevelMultiplier
	}
	if o.TargetFileSize <= 0 {
		o.TargetFileSize = d.TargetFileSize
	}
	if len(o.Compression) == 0 {
		o.Compression = d.Compression
	}
	if o.BloomBitsPerKey < 0 {
		o.BloomBitsPerKey = 0
	}
	if o.MaxConcurrentCompactions <= 0 {
		o.MaxConcurrentCompactions = d.MaxConcurrentCompactions
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxScanners <= 0 {
		o.MaxScanners = d.MaxScanners
	}
	if o.ScannerIdleTimeout <= 0 {
		o.ScannerIdleTimeout = d.ScannerIdleTimeout
	}
	if o.ScanMaxBatchSize <= 0 {
		o.ScanMaxBatchSize = d.ScanMaxBatchSize
	}
	if o.MultiGetMaxKVCount <= 0 {
		o.MultiGetMaxKVCount = d.MultiGetMaxKVCount
	}
	if o.MultiGetMaxKVSize <= 0 {
		o.MultiGetMaxKVSize = d.MultiGetMaxKVSize
	}
	if o.IterationTimeLimit < 0 {
		o.IterationTimeLimit = 0
	}
	if o.PurgeInterval < 0 {
		o.PurgeInterval = 0
	}
	if o.PurgeGracePeriod < 0 {
		o.PurgeGracePeriod = 0
	}
	if o.CloseFlushTimeout <= 0 {
		o.CloseFlushTimeout = d.CloseFlushTimeout
	}
	o.ClusterID &= 127
	return o
}

// pebbleOptions translates the store options. The returned cache, when non-nil, was
// created for this store and must be released (Unref) after the DB is closed.
func (o Options) pebbleOptions(listener *pebble.EventListener) (*pebble.Options, *pebble.Cache) {
	po := &pebble.Options{
		DisableWAL:                  o.DisableWAL,
		MemTableSize:                o.MemTableSize,
		MemTableStopWritesThreshold: o.MemTableCount,
		L0CompactionThreshold:       o.L0CompactionThreshold,
		L0StopWritesThreshold:       o.L0StopWritesThreshold,
		LBaseMaxBytes:               o.LBaseMaxBytes,
		DisableAutomaticCompactions: o.DisableAutoCompactions,
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      pebbleLogger{o.Logger},
		EventListener:               listener,
	}
	po.Experimental.LevelMultiplier = o.LevelMultiplier
	compactions := o.MaxConcurrentCompactions
	po.MaxConcurrentCompactions = func() int { return compactions }
	if po.L0StopWritesThreshold < po.L0CompactionThreshold {
		po.L0StopWritesThreshold = po.L0CompactionThreshold
	}
	if po.MemTableStopWritesThreshold < 2 {
		// Pebble needs a second memtable to keep accepting writes while one flushes.
		po.MemTableStopWritesThreshold = 2
	}
	po.Levels = make([]pebble.LevelOptions, NumLevels)
	for i := range po.Levels {
		l := &po.Levels[i]
		l.TargetFileSize = o.TargetFileSize
		l.Compression = o.Compression[min(i, len(o.Compression)-1)]
		if o.BloomBitsPerKey > 0 {
			l.FilterPolicy = bloom.FilterPolicy(o.BloomBitsPerKey)
			l.FilterType = pebble.TableFilter
		}
	}
	var own *pebble.Cache
	po.Cache = o.Cache
	if po.Cache == nil {
		own = pebble.NewCache(o.BlockCacheSize)
		po.Cache = own
	}
	return po, own
}

// pebbleLogger adapts slog to Pebble's logger. Pebble calls Fatalf on broken invariants
// and expects it not to return.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Info(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble")
	panic("pebble: " + msg)
}
