package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"

	"github.com/pegasusgo/pegasus/rpc/kv"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// Target is what a run drives. Set and Get are called from many goroutines at once.
type Target interface {
	// Name describes the target in reports, e.g. "cluster temp@127.0.0.1:34601".
	Name() string
	// Set writes one record.
	Set(ctx context.Context, hashKey, sortKey, value []byte) error
	// Get reads one record; found is false when it does not exist.
	Get(ctx context.Context, hashKey, sortKey []byte) (found bool, err error)
	// ErrorName names an error of Set or Get in the report's error counts.
	ErrorName(err error) string
}

// Cluster is a table of a Pegasus cluster reached through the data client.
type Cluster struct {
	name   string
	client *kv.Client
	table  *kv.Table
}

// OpenCluster connects to the meta servers and opens a table. opTimeout bounds each
// operation, retries included (0 keeps the client's default).
func OpenCluster(ctx context.Context, metas []string, table string, opTimeout time.Duration) (*Cluster, error) {
	client, err := kv.NewClient(kv.Config{MetaServers: metas, OperationTimeout: opTimeout})
	if err != nil {
		return nil, fmt.Errorf("bench: connect to %s: %w", strings.Join(metas, ","), err)
	}
	t, err := client.OpenTable(ctx, table)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("bench: open table %s: %w", table, err)
	}
	return &Cluster{
		name:   fmt.Sprintf("cluster %s@%s", table, strings.Join(metas, ",")),
		client: client,
		table:  t,
	}, nil
}

// Name implements Target.
func (c *Cluster) Name() string { return c.name }

// Set implements Target.
func (c *Cluster) Set(ctx context.Context, hashKey, sortKey, value []byte) error {
	return c.table.Set(ctx, hashKey, sortKey, value, 0)
}

// Get implements Target.
func (c *Cluster) Get(ctx context.Context, hashKey, sortKey []byte) (bool, error) {
	v, err := c.table.Get(ctx, hashKey, sortKey)
	return v != nil, err
}

// ErrorName implements Target with the Pegasus error name (ERR_TIMEOUT, ERR_BUSY...).
func (c *Cluster) ErrorName(err error) string { return kv.ErrorCode(err) }

// Close closes the client's connections.
func (c *Cluster) Close() error { return c.client.Close() }

// Pebble is a single in-process Pebble database: the baseline of the comparison.
// Writes go through the WAL without syncing it (pebble.NoSync), the closest raw
// equivalent of a replica, whose mutation log is not fsynced by default either.
type Pebble struct {
	name  string
	dir   string
	temp  bool
	db    *pebble.DB
	cache *pebble.Cache
}

// Baseline engine settings: those of a replica's store in the onebox (block cache of
// rocksdb_block_cache_capacity, 64 MB memtables, bloom filters, snappy), so that the
// comparison measures the replication and RPC layers rather than tuning.
const (
	pebbleCacheSize    = 256 << 20
	pebbleMemTableSize = 64 << 20
)

// OpenPebble opens (creating it if needed) a Pebble database in dir. An empty dir
// means a fresh temporary directory, deleted by Close.
func OpenPebble(dir string) (*Pebble, error) {
	temp := dir == ""
	if temp {
		d, err := os.MkdirTemp("", "pegasus_bench_pebble_")
		if err != nil {
			return nil, fmt.Errorf("bench: temporary pebble directory: %w", err)
		}
		dir = d
	}
	cache := pebble.NewCache(pebbleCacheSize)
	opts := &pebble.Options{
		Cache:                       cache,
		MemTableSize:                pebbleMemTableSize,
		MemTableStopWritesThreshold: 3,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       60,
		MaxConcurrentCompactions:    func() int { return 2 },
		Logger:                      quietLogger{},
	}
	opts.Levels = make([]pebble.LevelOptions, 7)
	for i := range opts.Levels {
		opts.Levels[i] = pebble.LevelOptions{
			TargetFileSize: 64 << 20,
			Compression:    pebble.SnappyCompression,
			FilterPolicy:   bloom.FilterPolicy(10),
			FilterType:     pebble.TableFilter,
		}
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		cache.Unref()
		if temp {
			os.RemoveAll(dir)
		}
		return nil, fmt.Errorf("bench: open pebble in %s: %w", dir, err)
	}
	return &Pebble{name: "pebble " + dir, dir: dir, temp: temp, db: db, cache: cache}, nil
}

// Name implements Target.
func (p *Pebble) Name() string { return p.name }

// Set implements Target. The key is encoded as a replica encodes it, so both engines
// store the same bytes.
func (p *Pebble) Set(_ context.Context, hashKey, sortKey, value []byte) error {
	if err := p.db.Set(keys.AppendKey(nil, hashKey, sortKey), value, pebble.NoSync); err != nil {
		return fmt.Errorf("pebble set: %w", err)
	}
	return nil
}

// Get implements Target.
func (p *Pebble) Get(_ context.Context, hashKey, sortKey []byte) (bool, error) {
	_, closer, err := p.db.Get(keys.AppendKey(nil, hashKey, sortKey))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pebble get: %w", err)
	}
	return true, closer.Close()
}

// ErrorName implements Target: Pebble errors have no Pegasus name.
func (p *Pebble) ErrorName(error) string { return "ERR_PEBBLE" }

// Close closes the database and deletes it if it was temporary.
func (p *Pebble) Close() error {
	err := p.db.Close()
	p.cache.Unref()
	if p.temp {
		if rerr := os.RemoveAll(p.dir); rerr != nil && err == nil {
			err = fmt.Errorf("bench: remove %s: %w", p.dir, rerr)
		}
	}
	if err != nil {
		return fmt.Errorf("bench: close pebble: %w", err)
	}
	return nil
}

// quietLogger drops Pebble's informational messages, which would interleave with the
// report; a fatal one still stops the process as Pebble requires.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}

func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
