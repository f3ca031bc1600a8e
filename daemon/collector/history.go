package collector

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/rpc/kv"
)

// The availability history is kept in upstream's row format (hash key
// detect_available_<minute|hour|day>, sort key the period, value
// "attempts,successes,ppm"), but in the history table (Options.HistoryTable,
// [pegasus.collector] available_detect_history_app, "stat" by default)
// instead of the detect table: the detect table of a default cluster is temp,
// which clients and their test suites expect to find empty.

// historyHashKeyPrefix starts the hash keys of the history rows.
const historyHashKeyPrefix = "detect_available_"

// HistoryRows is how many of the latest periods of each kind /availability
// reads back from the history table.
const HistoryRows = 10

// legacyBatch is how many rows one step of the move of old history rows out of
// the detect table reads; legacyMaxBatches bounds one pass (90 days of
// minutes is 129600 rows), the next opening of the detect table goes on.
const (
	legacyBatch      = 1000
	legacyMaxBatches = 200
)

// historyStore writes closed periods into the history table and reads them
// back. Its methods are safe for concurrent use.
type historyStore struct {
	c *Collector
	// writeMu serialises the writers (period rows, the move of old rows), so
	// that a slow one cannot be overtaken; readers do not take it.
	writeMu sync.Mutex

	mu      sync.Mutex
	table   *kv.Table // nil until opened, and after a failure
	lastErr string    // the last failure logged, to log each cause once
}

// enabled reports whether the collector keeps a history.
func (h *historyStore) enabled() bool {
	return h.c.opts.HistoryTable != "" && h.c.opts.RecordTTL > 0
}

// open returns the history table, opening it if needed.
func (h *historyStore) open(ctx context.Context) (*kv.Table, error) {
	h.mu.Lock()
	t := h.table
	h.mu.Unlock()
	if t != nil {
		return t, nil
	}
	t, err := h.c.kv.OpenTable(ctx, h.c.opts.HistoryTable)
	if err != nil {
		return nil, fmt.Errorf("open the history table %s: %w", h.c.opts.HistoryTable, err)
	}
	h.mu.Lock()
	h.table = t
	h.mu.Unlock()
	return t, nil
}

// fail forgets the table handle (a dropped and recreated table needs a fresh
// routing table) and logs err unless it is the cause logged last time: a
// missing history table would otherwise log at every period boundary.
func (h *historyStore) fail(ctx context.Context, what string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.table = nil
	if ctx.Err() != nil {
		return
	}
	if msg := err.Error(); msg != h.lastErr {
		h.c.log.Warn("availability: "+what+" failed; probes go on, the history is not kept until it works", "history_table", h.c.opts.HistoryTable, "err", err)
		h.lastErr = msg
	}
}

// ok notes a success: the next failure is logged whatever its cause.
func (h *historyStore) ok() {
	h.mu.Lock()
	h.lastErr = ""
	h.mu.Unlock()
}

// write stores closed periods, oldest first.
func (h *historyStore) write(ctx context.Context, closed []closedPeriod) {
	if !h.enabled() || len(closed) == 0 {
		return
	}
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	for _, p := range closed {
		wctx, cancel := context.WithTimeout(ctx, h.c.opts.DetectTimeout)
		t, err := h.open(wctx)
		if err == nil {
			value := fmt.Sprintf("%d,%d,%d", p.Attempts, p.Attempts-p.Failures, p.PPM)
			err = t.Set(wctx, []byte(historyHashKeyPrefix+p.Kind.String()), []byte(p.Period), []byte(value), h.c.opts.RecordTTL)
			if err != nil {
				err = fmt.Errorf("write the %s %s: %w", p.Kind, p.Period, err)
			}
		}
		cancel()
		if err != nil {
			h.fail(ctx, "writing the availability history", err)
			return
		}
		h.ok()
	}
}

// moveLegacyRows moves the history rows earlier versions wrote into the detect
// table over to the history table (with a fresh TTL), or deletes them when no
// history is kept, so that the detect table holds nothing between probes. It
// does nothing when the two tables are the same.
func (h *historyStore) moveLegacyRows(ctx context.Context, detect *kv.Table) {
	if detect.Name() == h.c.opts.HistoryTable {
		return
	}
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	moved := 0
	for k := range numPeriods {
		hashKey := []byte(historyHashKeyPrefix + k.String())
		for range legacyMaxBatches {
			n, done, err := h.moveBatch(ctx, detect, hashKey)
			moved += n
			if err != nil {
				h.fail(ctx, "moving old history rows out of the detect table", err)
				return
			}
			if done {
				break
			}
		}
	}
	if moved > 0 {
		h.c.log.Info("availability: moved old history rows out of the detect table", "detect_table", detect.Name(),
			"history_table", h.c.opts.HistoryTable, "rows", moved, "kept", h.enabled())
	}
}

// moveBatch moves up to legacyBatch rows of hashKey; done says none is left.
func (h *historyStore) moveBatch(ctx context.Context, detect *kv.Table, hashKey []byte) (moved int, done bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, max(h.c.opts.DetectTimeout, 5*time.Second))
	defer cancel()
	rows, complete, err := detect.MultiGet(ctx, hashKey, nil, kv.MultiGetOptions{MaxCount: legacyBatch})
	if err != nil {
		return 0, false, fmt.Errorf("read %s from %s: %w", hashKey, detect.Name(), err)
	}
	if len(rows) == 0 {
		return 0, true, nil
	}
	if h.enabled() {
		t, err := h.open(ctx)
		if err != nil {
			return 0, false, err
		}
		if err := t.MultiSet(ctx, hashKey, rows, h.c.opts.RecordTTL); err != nil {
			return 0, false, fmt.Errorf("copy %d rows of %s into %s: %w", len(rows), hashKey, t.Name(), err)
		}
	}
	keys := make([][]byte, len(rows))
	for i, r := range rows {
		keys[i] = r.SortKey
	}
	if _, err := detect.MultiDel(ctx, hashKey, keys); err != nil {
		return 0, false, fmt.Errorf("delete %d rows of %s from %s: %w", len(rows), hashKey, detect.Name(), err)
	}
	return len(rows), complete, nil
}

// AvailabilityRecord is one closed period as stored in the history table.
type AvailabilityRecord struct {
	Kind     string `json:"kind"`   // "minute", "hour" or "day"
	Period   string `json:"period"` // as AvailabilityPeriod.Period
	Attempts int64  `json:"attempts"`
	Failures int64  `json:"failures"`
	PPM      int64  `json:"ppm"`
}

// recent reads the latest HistoryRows periods of each kind, minute then hour
// then day, each oldest first.
func (h *historyStore) recent(ctx context.Context) ([]AvailabilityRecord, error) {
	out := []AvailabilityRecord{}
	if !h.enabled() {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.c.opts.DetectTimeout)
	defer cancel()
	t, err := h.open(ctx)
	if err != nil {
		return out, err
	}
	for k := range numPeriods {
		rows, _, err := t.MultiGet(ctx, []byte(historyHashKeyPrefix+k.String()), nil, kv.MultiGetOptions{MaxCount: HistoryRows, Reverse: true})
		if err != nil {
			return out, fmt.Errorf("read the %s history from %s: %w", k, t.Name(), err)
		}
		for _, r := range rows {
			rec, err := parseRecord(k, r)
			if err != nil {
				h.c.log.Debug("availability: skipping a malformed history row", "table", t.Name(), "err", err)
				continue
			}
			out = append(out, rec)
		}
	}
	return out, nil
}

// parseRecord reads a "attempts,successes,ppm" row.
func parseRecord(k periodKind, r kv.KV) (AvailabilityRecord, error) {
	f := bytes.Split(r.Value, []byte(","))
	if len(f) != 3 {
		return AvailabilityRecord{}, fmt.Errorf("%s %q: value %q is not attempts,successes,ppm", k, r.SortKey, r.Value)
	}
	var n [3]int64
	for i := range f {
		v, err := strconv.ParseInt(strings.TrimSpace(string(f[i])), 10, 64)
		if err != nil {
			return AvailabilityRecord{}, fmt.Errorf("%s %q: value %q: %w", k, r.SortKey, r.Value, err)
		}
		n[i] = v
	}
	if n[1] > n[0] || n[1] < 0 {
		return AvailabilityRecord{}, fmt.Errorf("%s %q: value %q: successes out of 0..attempts", k, r.SortKey, r.Value)
	}
	return AvailabilityRecord{Kind: k.String(), Period: string(r.SortKey), Attempts: n[0], Failures: n[0] - n[1], PPM: n[2]}, nil
}

// AvailabilityWithHistory is the /availability document: the in-memory
// figures of Availability, plus the latest periods read back from the
// history table. A failure to read them is reported in the document
// (history_error), not as a failure of the whole document.
func (c *Collector) AvailabilityWithHistory(ctx context.Context) AvailabilityReport {
	r := c.Availability()
	r.HistoryTable = c.opts.HistoryTable
	if !c.history.enabled() {
		r.HistoryTable = ""
	}
	hist, err := c.history.recent(ctx)
	r.History = hist
	if err != nil {
		r.HistoryError = err.Error()
		c.log.Debug("availability: reading the history failed", "err", err)
	}
	return r
}
