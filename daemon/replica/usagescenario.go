package replica

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/pegasusgo/pegasus/idl/gen/metadata"
	"github.com/pegasusgo/pegasus/storage"
)

// envUsageScenario is the table env choosing a replica's write tuning
// (spec: operations.md 1.5).
const envUsageScenario = "rocksdb.usage_scenario"

// The usage scenarios.
const (
	scenarioNormal      = "normal"
	scenarioPreferWrite = "prefer_write"
	scenarioBulkLoad    = "bulk_load"
)

// bulkLoadL0 stands for "never" in the L0 thresholds of bulk_load, as
// upstream's 1000000000.
const bulkLoadL0 = 1_000_000_000

// usageScenario is the scenario envs ask for; anything else is normal.
func usageScenario(envs map[string]string) string {
	switch v := envs[envUsageScenario]; v {
	case scenarioPreferWrite, scenarioBulkLoad:
		return v
	}
	return scenarioNormal
}

// scenarioOptions maps a usage scenario onto the store options taken from
// config (base), as upstream maps it onto RocksDB's, without upstream's
// random spread of the memtable size (which staggers flushes across a
// server's replicas; Pebble flushes are cheap enough not to need it):
//
//   - normal: base.
//   - prefer_write: memtables twice as large, and L0 compaction only once L0
//     holds about the base level's size (max(4, base level bytes / memtable
//     size) files), so that fewer, larger compactions follow the writes.
//   - bulk_load: memtables four times as large, at least 6 of them, no
//     automatic compaction and no L0 stall: writes go as fast as flushes, and
//     a manual compaction (or a switch back to normal) tidies up afterwards.
//     Reads slow down as L0 grows.
func scenarioOptions(base storage.Options, scenario string) storage.Options {
	o := base
	switch scenario {
	case scenarioPreferWrite:
		o.MemTableSize = base.MemTableSize * 2
		if o.MemTableSize > 0 && o.LBaseMaxBytes > 0 {
			o.L0CompactionThreshold = max(4, int(uint64(o.LBaseMaxBytes)/o.MemTableSize))
		}
	case scenarioBulkLoad:
		o.MemTableSize = base.MemTableSize * 4
		o.MemTableCount = max(base.MemTableCount, 6)
		o.L0CompactionThreshold = bulkLoadL0
		o.L0StopWritesThreshold = bulkLoadL0
		o.DisableAutoCompactions = true
	}
	return o
}

// storeOptions are the options a replica's store opens with: config's,
// tuned for the table's usage scenario, logging and disk-full reports bound
// to the replica.
func (s *Stub) storeOptions(scenario string, d *disk, log *slog.Logger) storage.Options {
	o := scenarioOptions(s.opts.Storage, scenario)
	o.Logger = log
	o.OnDiskFull = d.noteFull
	return o
}

// reopenEv asks a replica's executor to reopen its store for another usage
// scenario.
type reopenEv struct{ scenario string }

// checkScenario posts a reopen when the table's usage scenario differs from
// the one the replica's store was opened with. Not while a manual compaction
// runs: closing the store waits for it, and would hold the executor (and so
// the replica's writes) that long; the next check tries again.
func (p *partition) checkScenario() {
	want := usageScenario(p.appInfo().Envs)
	if want == p.storeScenario() || p.closing.Load() || p.compact.status() == metadata.ManualCompactionStatus_RUNNING {
		return
	}
	p.post(reopenEv{scenario: want})
}

func (p *partition) storeScenario() string {
	if v, ok := p.scenario.Load().(string); ok {
		return v
	}
	return scenarioNormal
}

// reopenStore reopens the store with the options of scenario, on the
// executor, so that no mutation is applied meanwhile. Pebble fixes these
// options when a store opens (RocksDB changes them in place), so this is the
// one way to apply them: reads that meet the closed store in between fail
// with ERR_INVALID_STATE and are retried by clients, open scanners end.
// Everything applied is flushed first: a store that could not flush is kept
// as it is (a reopened store must hold every applied mutation, since the
// mutation log is only replayed at startup).
func (p *partition) reopenStore(scenario string) {
	if scenario == p.storeScenario() || p.closing.Load() {
		return
	}
	old := p.st()
	applied := old.LastAppliedDecree()
	ctx, cancel := context.WithTimeout(p.stub.ctx, checkpointFlushTimeout)
	err := old.Flush(ctx)
	cancel()
	if err != nil {
		p.log.Warn("usage scenario not applied: the store could not flush; trying again later", "scenario", scenario, "err", err)
		return
	}
	if durable := old.LastDurableDecree(); durable < applied {
		p.log.Warn("usage scenario not applied: the flush did not cover every applied mutation; trying again later",
			"scenario", scenario, "applied", applied, "durable", durable)
		return
	}
	if err := old.Close(); err != nil {
		p.log.Warn("closing the store for a new usage scenario", "err", err)
	}
	dir := filepath.Join(p.dir, "data")
	store, err := storage.Open(dir, p.stub.storeOptions(scenario, p.disk, p.log))
	if err != nil {
		p.log.Error("reopening the store for a new usage scenario failed; trying the previous options", "scenario", scenario, "err", err)
		scenario = p.storeScenario()
		if store, err = storage.Open(dir, p.stub.storeOptions(scenario, p.disk, p.log)); err != nil {
			p.log.Error("reopening the store failed: the replica closes", "err", err)
			p.closeSelf("store reopen failed")
			return
		}
	}
	if got := store.LastAppliedDecree(); got != applied {
		// Cannot happen after the durable check above; if it does, the
		// replica must not serve a store missing mutations.
		p.log.Error("the reopened store lost mutations: the replica closes", "applied", applied, "reopened", got)
		store.Close()
		p.closeSelf("store reopen lost mutations")
		return
	}
	p.store.Store(store)
	p.scenario.Store(scenario)
	p.log.Info("usage scenario applied", "scenario", scenario, "memtable_bytes", p.stub.storeOptions(scenario, p.disk, p.log).MemTableSize)
}
