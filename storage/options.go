package storage

import (
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
)

// numLevels is Pebble's fixed LSM depth; per-level options are spelled out for all of
// them so that RocksDB's "same target file size on every level" holds.
const numLevels = 7

// Options configures one Store. Start from DefaultOptions (or OptionsFromConfig): a
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
	po.Levels = make([]pebble.LevelOptions, numLevels)
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

// configKey describes how one [pegasus.server] key maps onto Options.
type configKey struct {
	apply func(o *Options, v string) error
}

func intKey(set func(o *Options, n int64), minimum int64) configKey {
	return configKey{apply: func(o *Options, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %w", err)
		}
		if n < minimum {
			return fmt.Errorf("%d is below the minimum %d", n, minimum)
		}
		set(o, n)
		return nil
	}}
}

// configKeys lists the [pegasus.server] keys that have a Pebble or store equivalent.
// A function rather than a package variable keeps the package free of mutable state.
func configKeys() map[string]configKey {
	return map[string]configKey{
		"rocksdb_write_buffer_size":                  intKey(func(o *Options, n int64) { o.MemTableSize = uint64(n) }, 1),
		"rocksdb_max_write_buffer_number":            intKey(func(o *Options, n int64) { o.MemTableCount = int(n) }, 1),
		"rocksdb_level0_file_num_compaction_trigger": intKey(func(o *Options, n int64) { o.L0CompactionThreshold = int(n) }, 1),
		"rocksdb_level0_stop_writes_trigger":         intKey(func(o *Options, n int64) { o.L0StopWritesThreshold = int(n) }, 1),
		"rocksdb_target_file_size_base":              intKey(func(o *Options, n int64) { o.TargetFileSize = n }, 1),
		"rocksdb_max_bytes_for_level_base":           intKey(func(o *Options, n int64) { o.LBaseMaxBytes = n }, 1),
		"rocksdb_max_bytes_for_level_multiplier":     intKey(func(o *Options, n int64) { o.LevelMultiplier = int(n) }, 2),
		"rocksdb_block_cache_capacity":               intKey(func(o *Options, n int64) { o.BlockCacheSize = n }, 1),
		"rocksdb_bloom_filter_bits_per_key":          intKey(func(o *Options, n int64) { o.BloomBitsPerKey = int(n) }, 0),
		"rocksdb_max_background_compactions":         intKey(func(o *Options, n int64) { o.MaxConcurrentCompactions = int(n) }, 1),
		"rocksdb_multi_get_max_iteration_count":      intKey(func(o *Options, n int64) { o.MultiGetMaxKVCount = int(n) }, 1),
		"rocksdb_multi_get_max_iteration_size":       intKey(func(o *Options, n int64) { o.MultiGetMaxKVSize = int(n) }, 1),
		"rocksdb_max_iteration_count":                intKey(func(o *Options, n int64) { o.ScanMaxBatchSize = int(n) }, 1),
		"rocksdb_iteration_threshold_time_ms": intKey(func(o *Options, n int64) {
			o.IterationTimeLimit = time.Duration(n) * time.Millisecond
		}, 0),
		"rocksdb_disable_bloom_filter": {apply: func(o *Options, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("not a boolean: %w", err)
			}
			if b {
				o.BloomBitsPerKey = 0
			}
			return nil
		}},
		"rocksdb_compression_type": {apply: func(o *Options, v string) error {
			c, err := parseCompression(v)
			if err != nil {
				return err
			}
			o.Compression = c
			return nil
		}},
	}
}

// OptionsFromConfig builds Options from the key/value pairs of the [pegasus.server]
// section, starting from DefaultOptions. Keys that start with "rocksdb_" but have no
// Pebble equivalent (slowdown trigger, background flushes, filter type, rate limiter,
// slow-query thresholds, ...) are returned, sorted, so that the caller can log them as
// ignored. Keys without the prefix belong to other components and are neither used nor
// returned. A malformed value of a mapped key is an error.
//
// rocksdb_disable_bloom_filter is applied after rocksdb_bloom_filter_bits_per_key, so it
// wins whatever the map order.
func OptionsFromConfig(cfg map[string]string) (Options, []string, error) {
	o := DefaultOptions()
	known := configKeys()
	var ignored []string
	names := make([]string, 0, len(cfg))
	for k := range cfg {
		names = append(names, k)
	}
	sort.Strings(names)
	// The disable switch must run after the bits-per-key key; sorting puts
	// "rocksdb_bloom..." before "rocksdb_disable...", which is what we want.
	for _, name := range names {
		v := strings.TrimSpace(cfg[name])
		k, ok := known[name]
		if !ok {
			if strings.HasPrefix(name, "rocksdb_") {
				ignored = append(ignored, name)
			}
			continue
		}
		if err := k.apply(&o, v); err != nil {
			return Options{}, nil, fmt.Errorf("storage: [pegasus.server] %s = %q: %w", name, v, err)
		}
	}
	return o, ignored, nil
}

// parseCompression understands RocksDB's compression names and the Pegasus
// "per_level:a,b,c" form. Pebble only has snappy and zstd, so the fast codecs (lz4,
// lz4hc) become snappy and the slow, high-ratio ones (zlib, bzip2) become zstd.
func parseCompression(v string) ([]pebble.Compression, error) {
	one := func(s string) (pebble.Compression, error) {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "none", "no", "kno":
			return pebble.NoCompression, nil
		case "snappy", "ksnappy", "lz4", "lz4hc", "klz4", "klz4hc":
			return pebble.SnappyCompression, nil
		case "zstd", "kzstd", "zlib", "kzlib", "bzip2", "kbzip2":
			return pebble.ZstdCompression, nil
		}
		return 0, fmt.Errorf("unknown compression %q", s)
	}
	if rest, ok := strings.CutPrefix(v, "per_level:"); ok {
		parts := strings.Split(rest, ",")
		out := make([]pebble.Compression, 0, len(parts))
		for _, p := range parts {
			c, err := one(p)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		if len(out) > numLevels {
			out = out[:numLevels]
		}
		return out, nil
	}
	c, err := one(v)
	if err != nil {
		return nil, err
	}
	return []pebble.Compression{c}, nil
}
