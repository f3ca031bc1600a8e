package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pegasusgo/pegasus/rpc/kv"
)

// StatSortKeyPrefix starts the sort keys of the rows written into the stat
// table: one row per table, "app_stat@<table>", under the hash key of the
// round's time.
const StatSortKeyPrefix = "app_stat@"

// statRecorder writes the per-table statistics into the stat table
// (Options.StatTable), like upstream's collector keeps its figures in a table
// of the cluster itself. It runs in the statistics loop.
type statRecorder struct {
	c         *Collector
	table     *kv.Table
	lastWrite time.Time
	lastErr   string
}

// maybeWrite writes the last round when StatRecordInterval has passed since
// the previous write. The first round is skipped: its rates are not known yet.
func (r *statRecorder) maybeWrite(ctx context.Context) {
	c := r.c
	if c.opts.StatTable == "" {
		return
	}
	c.mu.Lock()
	round, rounds := c.round, c.rounds
	c.mu.Unlock()
	if rounds < 2 || len(round.Tables) == 0 || !r.lastWrite.IsZero() && round.Time.Sub(r.lastWrite) < c.opts.StatRecordInterval {
		return
	}
	if err := r.write(ctx, round); err != nil {
		if ctx.Err() == nil && err.Error() != r.lastErr {
			c.log.Warn("stats: writing the statistics into the stat table failed", "table", c.opts.StatTable, "err", err)
		}
		r.lastErr = err.Error()
		return
	}
	r.lastWrite, r.lastErr = round.Time, ""
}

func (r *statRecorder) write(ctx context.Context, round Round) error {
	c := r.c
	ctx, cancel := context.WithTimeout(ctx, max(c.opts.DetectTimeout, 5*time.Second))
	defer cancel()
	if r.table == nil {
		t, err := c.kv.OpenTable(ctx, c.opts.StatTable)
		if err != nil {
			return fmt.Errorf("open %s: %w", c.opts.StatTable, err)
		}
		r.table = t
	}
	kvs := make([]kv.KV, 0, len(round.Tables))
	for _, t := range round.Tables {
		v, err := json.Marshal(t)
		if err != nil {
			return fmt.Errorf("encode the statistics of %s: %w", t.Table, err)
		}
		kvs = append(kvs, kv.KV{SortKey: []byte(StatSortKeyPrefix + t.Table), Value: v})
	}
	hashKey := []byte(round.Time.Format(timeLayout))
	if err := r.table.MultiSet(ctx, hashKey, kvs, c.opts.RecordTTL); err != nil {
		// A dropped and recreated table needs a fresh routing table.
		r.table = nil
		return fmt.Errorf("write %d rows under %q: %w", len(kvs), hashKey, err)
	}
	return nil
}
