package shell

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/shell/opts"
	"github.com/pegasusgo/pegasus/shell/table"
)

// replicaMetrics indexes the replica entities of snapshots by node and gpid.
type replicaMetrics map[string]map[string]*metrics.EntitySnapshot

func indexReplicas(res map[string]metricsResult) replicaMetrics {
	out := replicaMetrics{}
	for addr, m := range res {
		if m.err != nil {
			continue
		}
		byGpid := map[string]*metrics.EntitySnapshot{}
		for i := range m.snap.Entities {
			e := &m.snap.Entities[i]
			if e.Type != "replica" {
				continue
			}
			id := e.ID
			if t, p := e.Attributes["table_id"], e.Attributes["partition_id"]; t != "" && p != "" {
				id = t + "." + p
			}
			byGpid[id] = e
		}
		out[addr] = byGpid
	}
	return out
}

func (rm replicaMetrics) get(addr string, appID, pidx int32) *metrics.EntitySnapshot {
	return rm[addr][fmt.Sprintf("%d.%d", appID, pidx)]
}

// reportFailures prints one line per node whose metrics could not be read.
func (s *Shell) reportFailures(what string, res map[string]metricsResult) {
	for addr, m := range res {
		if m.err != nil {
			s.errorf("query %s metrics from node %s failed: %v", what, addr, m.err)
		}
	}
}

func cmdAppDisk(ctx context.Context, s *Shell, r *opts.Result) error {
	app, err := appArg(r)
	if err != nil {
		return err
	}
	cfg, err := s.queryApp(ctx, app)
	if err != nil {
		return err
	}
	alive, err := s.aliveNodes(ctx)
	if err != nil {
		return fmt.Errorf("list nodes failed, error=%v", err)
	}
	res := s.fetchAll(ctx, alive, []string{"replica"}, []string{"rdb_total_sst_files", "rdb_total_sst_size_mb"})
	s.reportFailures("disk", res)
	rm := indexReplicas(res)
	maxRep := maxReplicaCount(cfg)
	var primaryMB, allMB float64
	partsNotCounted, replicasNotCounted := 0, 0
	details := table.New("details", table.L("pidx"), table.L("ballot"), table.L("replica_count"), table.L("primary"), table.L("secondaries"))
	describe := func(addr string, pidx int32) (string, float64, bool) {
		name := addr
		if r.Bool("resolve_ip") {
			name = resolveAddr(ctx, addr)
		}
		e := rm.get(addr, cfg.AppID, pidx)
		if e == nil {
			return name + "(-)", 0, false
		}
		size := e.ValueOf("rdb_total_sst_size_mb")
		return fmt.Sprintf("%s(%s,#%d)", name, table.Float(size, 2), int64(e.ValueOf("rdb_total_sst_files"))), size, true
	}
	for _, pc := range cfg.Partitions {
		pidx := pc.Pid.PartitionIndex
		alive := len(pc.Secondaries)
		primary := "-"
		counted := 0
		if pc.Primary.IsValid() {
			alive++
			desc, size, ok := describe(pc.Primary.String(), pidx)
			primary = desc
			if ok {
				primaryMB += size
				allMB += size
				counted++
			} else {
				partsNotCounted++
			}
		} else {
			partsNotCounted++
		}
		secs := "["
		for i, sec := range pc.Secondaries {
			desc, size, ok := describe(sec.String(), pidx)
			if i > 0 {
				secs += ","
			}
			secs += desc
			if ok {
				allMB += size
				counted++
			}
		}
		secs += "]"
		replicasNotCounted += int(pc.MaxReplicaCount) - counted
		details.Row(pidx, pc.Ballot, fmt.Sprintf("%d/%d", alive, pc.MaxReplicaCount), primary, secs)
	}
	params := table.NewKV("parameters").KV("app_name", app)
	if r.Has("output") {
		params.KV("out_file", r.String("output", ""))
	}
	params.KV("detailed", r.Bool("detailed"))
	result := table.NewKV("result").
		KV("app_name", app).
		KV("app_id", cfg.AppID).
		KV("partition_count", cfg.PartitionCount).
		KV("max_replica_count", maxRep).
		KV("disk_used_for_primary_replicas(MB)", primaryMB).
		KV("disk_used_for_all_replicas(MB)", allMB).
		KV("partitions not counted", fmt.Sprintf("%d/%d", partsNotCounted, cfg.PartitionCount)).
		KV("replicas not counted", fmt.Sprintf("%d/%d", replicasNotCounted, cfg.PartitionCount*maxRep))
	tables := []*table.Table{params, result}
	if r.Bool("detailed") {
		tables = append(tables, details)
	}
	return s.output(r, func(w io.Writer) error { return table.Multi(w, r.Bool("json"), tables...) })
}

// appStatRate are the app_stat columns computed as rates (or increases, for the
// capacity units) between two samples, with their metrics.
var appStatRate = []struct{ col, metric string }{
	{"GET", "get_requests"}, {"MGET", "multi_get_requests"}, {"BGET", "batch_get_requests"},
	{"PUT", "put_requests"}, {"MPUT", "multi_put_requests"}, {"DEL", "remove_requests"},
	{"MDEL", "multi_remove_requests"}, {"INCR", "incr_requests"}, {"CAS", "check_and_set_requests"},
	{"CAM", "check_and_mutate_requests"}, {"SCAN", "scan_requests"}, {"RCU", "read_capacity_units"},
	{"WCU", "write_capacity_units"}, {"expire", "read_expired_values"}, {"filter", "read_filtered_values"},
	{"abnormal", "abnormal_read_requests"}, {"delay", "throttling_delayed_write_requests"},
	{"reject", "throttling_rejected_write_requests"},
}

// appStatUsage are the storage columns, read from the second sample.
var appStatUsage = []struct {
	col, metric string
	div         float64
}{
	{"file_mb", "rdb_total_sst_size_mb", 1}, {"file_num", "rdb_total_sst_files", 1},
	{"mem_tbl_mb", "rdb_memtable_mem_usage_bytes", mb}, {"mem_idx_mb", "rdb_index_and_filter_blocks_mem_usage_bytes", mb},
}

var appStatRatioMetrics = []string{
	"rdb_block_cache_hit_count", "rdb_block_cache_total_count", "rdb_bloom_filter_seek_negatives",
	"rdb_bloom_filter_seek_total", "rdb_bloom_filter_point_negatives", "rdb_bloom_filter_point_positive_true",
	"rdb_bloom_filter_point_positive_total",
}

// statRow accumulates one app_stat row.
type statRow struct {
	rates   []float64
	usage   []float64
	ratios  [7]float64
	counted bool
}

func (row *statRow) add(e1, e2 *metrics.EntitySnapshot, secs float64) {
	row.counted = true
	if row.rates == nil {
		row.rates = make([]float64, len(appStatRate))
		row.usage = make([]float64, len(appStatUsage))
	}
	for i, c := range appStatRate {
		d := e2.ValueOf(c.metric)
		if e1 != nil {
			d -= e1.ValueOf(c.metric)
		}
		if c.col != "RCU" && c.col != "WCU" {
			d /= secs
		}
		row.rates[i] += d
	}
	for i, c := range appStatUsage {
		row.usage[i] += e2.ValueOf(c.metric) / c.div
	}
	for i, m := range appStatRatioMetrics {
		row.ratios[i] += e2.ValueOf(m)
	}
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

func (row *statRow) cells(onlyQPS, onlyUsage bool) []any {
	var out []any
	if row.rates == nil {
		row.rates = make([]float64, len(appStatRate))
		row.usage = make([]float64, len(appStatUsage))
	}
	if !onlyUsage {
		for _, v := range row.rates {
			out = append(out, table.Float(v, 3))
		}
	}
	if !onlyQPS {
		for _, v := range row.usage {
			out = append(out, table.Float(v, 3))
		}
	}
	rt := row.ratios
	out = append(out,
		table.Float(ratio(rt[0], rt[1]), 3),
		table.Float(ratio(rt[2], rt[3]), 3),
		table.Float(ratio(rt[4], rt[4]+rt[6]), 3),
		table.Float(ratio(rt[6]-rt[5], rt[6]), 3))
	return out
}

func (row *statRow) merge(o *statRow) {
	if o.rates == nil {
		return
	}
	if row.rates == nil {
		row.rates = make([]float64, len(appStatRate))
		row.usage = make([]float64, len(appStatUsage))
	}
	for i := range o.rates {
		row.rates[i] += o.rates[i]
	}
	for i := range o.usage {
		row.usage[i] += o.usage[i]
	}
	for i := range o.ratios {
		row.ratios[i] += o.ratios[i]
	}
}

func cmdAppStat(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	onlyQPS, onlyUsage := r.Bool("only_qps"), r.Bool("only_usage")
	if onlyQPS && onlyUsage {
		return badUsage("only_qps and only_usage can not be both set")
	}
	interval, err := r.Int("sample_interval_ms", 1000)
	if err != nil || interval <= 0 {
		return badUsage("invalid sample_interval_ms")
	}
	one := r.String("app_name", "")
	var apps []*layer2.AppInfo
	if one != "" {
		info, err := s.appInfo(ctx, one)
		if err != nil {
			return fmt.Errorf("query app %s failed, error=%v", one, err)
		}
		apps = []*layer2.AppInfo{info}
	} else if apps, err = s.listApps(ctx, layer2.AppStatus_AS_AVAILABLE, "", 0); err != nil {
		return fmt.Errorf("list apps failed, error=%v", err)
	}
	cfgs := map[int32]*layer2.QueryCfgResponse{}
	for _, a := range apps {
		cfg, err := s.queryConfig(ctx, a.AppName)
		if err != nil {
			return fmt.Errorf("query app %s failed, error=%v", a.AppName, err)
		}
		cfgs[a.AppID] = cfg
	}
	alive, err := s.aliveNodes(ctx)
	if err != nil {
		return fmt.Errorf("list nodes failed, error=%v", err)
	}
	names := append([]string{}, appStatRatioMetrics...)
	for _, c := range appStatRate {
		names = append(names, c.metric)
	}
	for _, c := range appStatUsage {
		names = append(names, c.metric)
	}
	start := time.Now()
	first := s.fetchAll(ctx, alive, []string{"replica"}, names)
	if !onlyUsage {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(interval) * time.Millisecond):
		}
	}
	second := s.fetchAll(ctx, alive, []string{"replica"}, names)
	secs := time.Since(start).Seconds()
	s.reportFailures("app stat", second)
	rm1, rm2 := indexReplicas(first), indexReplicas(second)

	title := table.L("app_name")
	if one != "" {
		title = table.L("pidx")
	}
	cols := []table.Column{title}
	if one == "" {
		cols = append(cols, table.R("app_id"), table.R("pcount"))
	}
	if !onlyUsage {
		for _, c := range appStatRate {
			cols = append(cols, table.R(c.col))
		}
	}
	if !onlyQPS {
		for _, c := range appStatUsage {
			cols = append(cols, table.R(c.col))
		}
	}
	for _, c := range []string{"hit_rate", "seek_n_rate", "point_n_rate", "point_fp_rate"} {
		cols = append(cols, table.R(c))
	}
	t := table.New("app_stat", cols...)
	var total statRow
	count := 0
	for _, a := range apps {
		cfg := cfgs[a.AppID]
		var appRow statRow
		for _, pc := range cfg.Partitions {
			var prow statRow
			if pc.Primary.IsValid() {
				addr := pc.Primary.String()
				if e2 := rm2.get(addr, a.AppID, pc.Pid.PartitionIndex); e2 != nil {
					prow.add(rm1.get(addr, a.AppID, pc.Pid.PartitionIndex), e2, secs)
				}
			}
			if one != "" {
				t.Row(append([]any{pc.Pid.PartitionIndex}, prow.cells(onlyQPS, onlyUsage)...)...)
				count++
			}
			appRow.merge(&prow)
		}
		if one == "" {
			t.Row(append([]any{a.AppName, a.AppID, a.PartitionCount}, appRow.cells(onlyQPS, onlyUsage)...)...)
			count++
		}
		total.merge(&appRow)
	}
	totalRow := []any{"(total:" + strconv.Itoa(count) + ")"}
	if one == "" {
		totalRow = append(totalRow, "", "")
	}
	t.Row(append(totalRow, total.cells(onlyQPS, onlyUsage)...)...)
	if len(alive) == 0 {
		s.warnf("no alive replica server: the statistics are empty")
	}
	return s.output(r, func(w io.Writer) error { return table.Single(w, r.Bool("json"), t) })
}
