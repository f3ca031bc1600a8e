package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/daemon/remotecmd"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/rpc/kv"
	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Collector. New fills the zero values with upstream's
// defaults.
type Options struct {
	ClusterName string
	MetaServers []string // "ip:port" each

	// DetectTable is the table probed for availability.
	DetectTable string
	// DetectInterval is the time between two probes of a partition.
	DetectInterval time.Duration
	// DetectTimeout bounds the write, and then the read, of one probe.
	DetectTimeout time.Duration
	// AlertFailCount is the number of failed probes in a row of one partition
	// that is logged as an alert.
	AlertFailCount int
	// RecordTTL is the TTL of the rows the collector writes: the
	// detect_available_* history rows and the statistics; 0 writes none.
	RecordTTL time.Duration
	// HistoryTable receives the availability of each closed period, as
	// upstream's detect_available_<minute|hour|day> rows
	// ([pegasus.collector] available_detect_history_app); empty keeps no
	// history. Not the detect table: that one stays empty between probes.
	HistoryTable string

	// StatInterval is the time between two collections of /metrics.
	StatInterval time.Duration
	// StatTable, when set, receives the per-table statistics every
	// StatRecordInterval, with RecordTTL ([pegasus.collector] usage_stat_app
	// and storage_size_fetch_interval_seconds).
	StatTable          string
	StatRecordInterval time.Duration
	// HistorySize is the number of rounds kept in the per-table history.
	HistorySize int
	// HotThreshold, HotHistory and HotMinRate tune the hot partition detector:
	// the z-score from which a partition is hot, the rounds of rates it
	// compares with, and the rate below which nothing is hot.
	HotThreshold float64
	HotHistory   int
	HotMinRate   float64
	// HotOccurrence is the number of rounds in a row a partition stays hot
	// before it is logged as a lasting hotspot (occurrence_threshold).
	HotOccurrence int

	StartTime time.Time
	Logger    *slog.Logger
	// NetStats reads the RPC server's connection accounting for the
	// pegasus_network_* series (nil: not exported).
	NetStats func() rpc.ServerStats
	// Now is the clock of the availability periods; nil is time.Now.
	Now func() time.Time
	// HTTP reads the nodes' /metrics; nil uses a client bounded by StatInterval.
	HTTP *http.Client
}

// DefaultHotMinRate is the rate, in operations per second, below which no
// partition is reported hot. It is the threshold of upstream's Go collector
// (hotspot_partition_min_qps).
const DefaultHotMinRate = 100

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.DetectTable == "" {
		o.DetectTable = "temp"
	}
	def(&o.DetectInterval, 3*time.Second)
	def(&o.DetectTimeout, time.Second)
	def(&o.StatInterval, 10*time.Second)
	def(&o.StatRecordInterval, time.Hour)
	if o.AlertFailCount <= 0 {
		o.AlertFailCount = 30
	}
	if o.HistorySize <= 0 {
		o.HistorySize = 60
	}
	if o.HotThreshold <= 0 {
		o.HotThreshold = 3
	}
	if o.HotHistory <= 0 {
		o.HotHistory = 100
	}
	if o.HotOccurrence <= 0 {
		o.HotOccurrence = 3
	}
	if o.HotMinRate <= 0 {
		o.HotMinRate = DefaultHotMinRate
	}
	if o.StartTime.IsZero() {
		o.StartTime = time.Now()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: min(max(o.StatInterval, 2*time.Second), 10*time.Second)}
	}
}

// Collector watches one cluster: availability probes, metric collection and
// hot partition detection.
type Collector struct {
	opts Options
	log  *slog.Logger
	kv   *kv.Client
	book *availabilityBook
	// history keeps the closed periods in the history table.
	history *historyStore
	cmds    *remotecmd.Registry
	reg     *prometheus.Registry

	scrapeFailures atomic.Int64 // nodes whose /metrics could not be read
	metaFailures   atomic.Int64 // rounds whose node or table list failed

	mu       sync.Mutex
	agg      *aggregator
	hot      *hotspotDetector
	round    Round
	scores   map[int32][numKinds][]PartitionScore
	nodes    []string    // the last node list the meta gave
	tables   []tableInfo // the last table list the meta gave
	lastGood time.Time   // end of the last complete collection
	rounds   int         // collections applied
}

// New returns a collector; it does not connect until Run.
func New(opts Options) (*Collector, error) {
	opts.setDefaults()
	client, err := kv.NewClient(kv.Config{
		MetaServers:      opts.MetaServers,
		OperationTimeout: opts.DetectTimeout,
		Logger:           opts.Logger,
		// A probe must see the failure of a dead primary within its timeout,
		// not wait out a long dial.
		RPC: rpc.ClientOptions{DialTimeout: min(opts.DetectTimeout, time.Second), Logger: opts.Logger},
	})
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	c := &Collector{
		opts:   opts,
		log:    opts.Logger,
		kv:     client,
		book:   newAvailabilityBook(opts.DetectTable, opts.Now),
		cmds:   remotecmd.New("collector", opts.StartTime),
		agg:    newAggregator(opts.HistorySize),
		hot:    newHotspotDetector(hotspotConfig{History: opts.HotHistory, Threshold: opts.HotThreshold, MinRate: opts.HotMinRate}),
		scores: map[int32][numKinds][]PartitionScore{},
	}
	c.history = &historyStore{c: c}
	c.reg = newPromRegistry(c)
	c.registerCommands()
	return c, nil
}

// Close releases the connections.
func (c *Collector) Close() error { return c.kv.Close() }

// Register adds the collector's RPC handlers (remote commands) to mux.
func (c *Collector) Register(mux *rpc.Mux) { c.cmds.Handle(mux) }

// Run probes and collects until ctx ends, then waits for every goroutine it
// started.
func (c *Collector) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		c.runDetector(ctx)
	}()
	go func() {
		defer wg.Done()
		c.runStats(ctx)
	}()
	wg.Wait()
	return nil
}

// ---------------------------------------------------------------- availability

// runDetector probes every partition of the detect table each interval. A
// partition whose previous probe is still running is skipped this time, so that
// one unreachable primary neither piles up probes nor delays the others.
func (c *Collector) runDetector(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ticker := time.NewTicker(c.opts.DetectInterval)
	defer ticker.Stop()
	var (
		table    *kv.Table
		keys     [][]byte
		inflight []atomic.Bool
		reopen   atomic.Bool
		lastErr  string
	)
	for {
		c.writeRecords(ctx, &wg, table, c.book.tick())
		if reopen.Swap(false) {
			table = nil
		}
		if table == nil {
			t, err := c.openDetectTable(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				// Logged once per distinct cause: the collector may start
				// long before the table exists.
				if msg := err.Error(); msg != lastErr {
					c.log.Warn("availability: cannot open the detect table; no probe until it opens", "table", c.opts.DetectTable, "err", err)
					lastErr = msg
				}
			case err == nil:
				lastErr = ""
				table = t
				n := t.PartitionCount()
				c.book.setTable(t.AppID(), n)
				keys = make([][]byte, n)
				for p := range n {
					keys[p] = t.HashKeyForPartition(p, "detect_available_p"+strconv.Itoa(p)+"_")
				}
				inflight = make([]atomic.Bool, n)
				c.log.Info("availability: probing the detect table", "table", c.opts.DetectTable, "app_id", t.AppID(), "partitions", n, "interval", c.opts.DetectInterval)
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.history.moveLegacyRows(ctx, t)
				}()
			}
		}
		for p := range keys {
			if table == nil || inflight[p].Swap(true) {
				continue
			}
			wg.Add(1)
			go func(t *kv.Table, p int, key []byte, busy *atomic.Bool) {
				defer wg.Done()
				defer busy.Store(false)
				if gone := c.probe(ctx, t, p, key); gone {
					reopen.Store(true)
				}
			}(table, p, keys[p], &inflight[p])
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func (c *Collector) openDetectTable(ctx context.Context) (*kv.Table, error) {
	ctx, cancel := context.WithTimeout(ctx, max(c.opts.DetectTimeout, c.opts.DetectInterval))
	defer cancel()
	t, err := c.kv.OpenTable(ctx, c.opts.DetectTable)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", c.opts.DetectTable, err)
	}
	return t, nil
}

// probe runs one probe of partition pidx and accounts it, then deletes the
// row it wrote. It reports whether the table no longer exists.
func (c *Collector) probe(ctx context.Context, t *kv.Table, pidx int, key []byte) (gone bool) {
	start := time.Now()
	failure, written, err := c.writeRead(ctx, t, key)
	latency := time.Since(start)
	if written {
		c.removeProbeRow(ctx, t, pidx, key)
	}
	if ctx.Err() != nil {
		// Shutting down: the probe was cut short by us, not by the cluster.
		return false
	}
	probe := c.book.record(pidx, latency, failure)
	if failure != "" {
		c.log.Warn("availability probe failed", "table", t.Name(), "pidx", pidx, "primary", t.Primary(pidx),
			"consecutive_failures", probe.ConsecutiveFailures, "latency", latency, "err", err)
		if probe.ConsecutiveFailures == c.opts.AlertFailCount {
			c.log.Error("availability alert: partition failed too many probes in a row", "table", t.Name(), "pidx", pidx,
				"consecutive_failures", probe.ConsecutiveFailures)
		}
	}
	return errors.Is(err, kv.ErrTableNotFound)
}

// probeRowTTL is the TTL of a probe row: a safety net for a collector stopped
// for good between the write and the delete (a restarted one writes and
// deletes the same keys again). It is long because the expiry time is
// computed from the collector's clock, and a short TTL would make every probe
// fail against servers whose clocks are ahead by more than it.
const probeRowTTL = time.Hour

// writeRead is upstream's probe: set (key, "", "detect_value_<unix seconds>")
// then get it back, each within the timeout. failure is the short reason shown
// in /availability, err the full one for the log; written says the set
// succeeded or may have, so that there may be a row to delete.
func (c *Collector) writeRead(ctx context.Context, t *kv.Table, key []byte) (failure string, written bool, err error) {
	value := []byte("detect_value_" + strconv.FormatInt(c.opts.Now().Unix(), 10))
	wctx, cancel := context.WithTimeout(ctx, c.opts.DetectTimeout)
	err = t.Set(wctx, key, nil, value, probeRowTTL)
	cancel()
	if err != nil {
		// A write cut short because the collector is stopping may still
		// have been applied: it counts as written, so that the stop leaves no
		// row (deleting a row that is not there costs nothing). After an
		// ordinary failure the partition's next probe deletes any row.
		return "write: " + kv.ErrorCode(err), ctx.Err() != nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, c.opts.DetectTimeout)
	got, err := t.Get(rctx, key, nil)
	cancel()
	switch {
	case err != nil:
		return "read: " + kv.ErrorCode(err), true, err
	case !bytes.Equal(got, value):
		return "read: a different value", true, fmt.Errorf("read back %q, wrote %q", got, value)
	}
	return "", true, nil
}

// removeProbeRow deletes the row of a probe, so that the detect table (temp on
// a default cluster, which clients expect to find empty) holds nothing
// between probes. It is not part of the probe's result, as upstream's probe is
// the write and the read; a failure is logged. It runs even when the
// collector is stopping, within the timeout, so that a stop leaves no row.
func (c *Collector) removeProbeRow(ctx context.Context, t *kv.Table, pidx int, key []byte) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.DetectTimeout)
	defer cancel()
	if err := t.Del(dctx, key, nil); err != nil {
		c.log.Warn("availability: deleting the probe row failed; the next probe of the partition deletes it", "table", t.Name(), "pidx", pidx, "err", err)
	}
}

func (c *Collector) logClosed(closed []closedPeriod) {
	for _, p := range closed {
		level := slog.LevelInfo
		switch {
		case p.Failures > 0:
			level = slog.LevelWarn
		case p.Kind == minutePeriod:
			level = slog.LevelDebug
		}
		c.log.Log(context.Background(), level, "availability of the detect table", "table", c.opts.DetectTable, "period", p.Kind.String(),
			"time", p.Period, "attempts", p.Attempts, "failures", p.Failures, "ppm", p.PPM)
	}
}

// writeRecords writes the periods that just closed into the history table
// (see history.go). It does not wait for the writes. Nothing is written while
// the detect table is not open: a period without probes would read as fully
// available.
func (c *Collector) writeRecords(ctx context.Context, wg *sync.WaitGroup, t *kv.Table, closed []closedPeriod) {
	c.logClosed(closed)
	if t == nil || !c.history.enabled() || len(closed) == 0 {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.history.write(ctx, closed)
	}()
}

// Availability returns the figures of the /availability document kept in
// memory; AvailabilityWithHistory adds the history read from the table.
func (c *Collector) Availability() AvailabilityReport {
	return c.book.report(c.opts.DetectInterval)
}

// ---------------------------------------------------------------- statistics

func (c *Collector) runStats(ctx context.Context) {
	ticker := time.NewTicker(c.opts.StatInterval)
	defer ticker.Stop()
	rec := statRecorder{c: c}
	for {
		c.collect(ctx)
		rec.maybeWrite(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// collect reads the node and table lists from the meta leader and /metrics
// from every alive node, and aggregates them. When the meta cannot be reached
// the previous lists are used, so that the figures keep flowing while the meta
// group elects a leader.
func (c *Collector) collect(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, min(max(c.opts.StatInterval, 2*time.Second), 10*time.Second))
	defer cancel()
	nodes, nerr := c.listNodes(ctx)
	tables, terr := c.listTables(ctx)
	if parent.Err() != nil {
		return
	}
	c.mu.Lock()
	if nerr != nil || terr != nil {
		c.metaFailures.Add(1)
		c.log.Warn("stats: listing nodes or tables from the meta failed; using the previous lists", "nodes_err", nerr, "tables_err", terr)
	}
	if nerr == nil {
		c.nodes = nodes
	}
	if terr == nil {
		c.tables = tables
	}
	nodes, tables = c.nodes, c.tables
	c.mu.Unlock()

	scrapes := make([]nodeScrape, len(nodes))
	var wg sync.WaitGroup
	for i, addr := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snap, err := c.scrape(ctx, addr)
			scrapes[i] = nodeScrape{Addr: addr, Snap: snap, Err: err}
		}()
	}
	wg.Wait()
	if parent.Err() != nil {
		return
	}
	for _, s := range scrapes {
		if s.Err != nil {
			c.scrapeFailures.Add(1)
			c.log.Warn("stats: reading a node's metrics failed", "node", s.Addr, "err", s.Err)
		}
	}
	c.apply(tables, scrapes, nerr == nil && terr == nil)
}

// apply aggregates one round of scrapes and scores the partitions. complete
// says the node and table lists came from the meta this round.
func (c *Collector) apply(tables []tableInfo, scrapes []nodeScrape, complete bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	round := c.agg.update(c.opts.Now(), tables, scrapes)
	live := map[int32]bool{}
	scores := map[int32][numKinds][]PartitionScore{}
	for _, t := range round.Tables {
		live[t.AppID] = true
		s := c.hot.observe(t.AppID, t.PartitionRates)
		scores[t.AppID] = s
		for k := range numKinds {
			for _, p := range s[k] {
				switch {
				case !p.Hot:
				case p.Consecutive == 1:
					c.log.Info("hot partition", "table", t.Table, "pidx", p.Partition, "kind", k.String(),
						"ops_per_second", p.Rate, "score", p.Score, "primary", t.primaryOf(p.Partition))
				case p.Consecutive == c.opts.HotOccurrence:
					c.log.Warn("hot partition persists", "table", t.Table, "pidx", p.Partition, "kind", k.String(),
						"rounds", p.Consecutive, "ops_per_second", p.Rate, "score", p.Score, "primary", t.primaryOf(p.Partition))
				}
			}
		}
	}
	c.hot.forget(live)
	c.round, c.scores = round, scores
	c.rounds++
	if complete {
		c.lastGood = round.Time
	}
}

func (c *Collector) listNodes(ctx context.Context) ([]string, error) {
	r, err := rpc.CallMeta[admin.ConfigurationListNodesResponse](ctx, c.kv.Meta(), rpc.CodeListNodes,
		&admin.ConfigurationListNodesRequest{Status: admin.NodeStatus_NS_ALIVE})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	if !r.Err.OK() {
		return nil, fmt.Errorf("list nodes: %s", r.Err)
	}
	out := make([]string, 0, len(r.Infos))
	for _, n := range r.Infos {
		if n.Node != nil {
			out = append(out, n.Node.String())
		}
	}
	return out, nil
}

func (c *Collector) listTables(ctx context.Context) ([]tableInfo, error) {
	r, err := rpc.CallMeta[admin.ConfigurationListAppsResponse](ctx, c.kv.Meta(), rpc.CodeListApps,
		&admin.ConfigurationListAppsRequest{Status: layer2.AppStatus_AS_AVAILABLE})
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	if !r.Err.OK() {
		return nil, fmt.Errorf("list tables: %s", r.Err)
	}
	out := make([]tableInfo, 0, len(r.Infos))
	for _, a := range r.Infos {
		out = append(out, tableInfo{Name: a.AppName, AppID: a.AppID, PartitionCount: int(a.PartitionCount)})
	}
	return out, nil
}

// scrape reads a replica server's /metrics (the same port serves THFT and HTTP).
func (c *Collector) scrape(ctx context.Context, addr string) (*metrics.Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics?types=replica,server", nil)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", addr, err)
	}
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics of %s: HTTP %s", addr, resp.Status)
	}
	var snap metrics.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return nil, fmt.Errorf("metrics of %s: decode: %w", addr, err)
	}
	return &snap, nil
}

// state is a consistent copy of the collected figures.
type state struct {
	round    Round
	scores   map[int32][numKinds][]PartitionScore
	history  map[int32][]HistoryPoint
	lastGood time.Time
}

func (c *Collector) snapshot(withHistory bool) state {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := state{round: c.round, scores: c.scores, lastGood: c.lastGood}
	if withHistory {
		s.history = map[int32][]HistoryPoint{}
		for _, t := range c.round.Tables {
			s.history[t.AppID] = c.agg.historyOf(t.AppID)
		}
	}
	return s
}
