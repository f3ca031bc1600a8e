package replica

import (
	"context"
	"math"
	"time"

	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/daemon/remotecmd"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/storage"
)

// The legacy perf counters (upstream's perf_counters, read by admin-cli's
// node-stat, table-stat, partition-stat and disk-replica, and by the C++ shell
// and collector through the perf-counters remote commands) are derived from the
// /metrics figures, so that both always tell the same story: a snapshot of
// /metrics is taken every [pegasus.server] perf_counter_update_interval_seconds
// and turned into upstream's names, types and semantics.

// Legacy counter name parts.
const (
	pcApp     = "replica*app.pegasus*"
	pcStub    = "replica*eon.replica_stub*"
	pcServer  = "replica*server*"
	pcProfile = "zion*profiler*"
)

// legacyOps are the operations with per-partition <op>_qps (RATE) and
// <op>_latency (PERCENTILE, ns) counters, from the replica entity's
// <op>_requests and <op>_latency_ns. Each also has a node-level
// zion*profiler*<task code>.qps, the sum over the node's partitions; scan has
// none, since its count includes get_scanner, which is another task code.
var legacyOps = []struct{ op, code string }{
	{"get", "RPC_RRDB_RRDB_GET"},
	{"multi_get", "RPC_RRDB_RRDB_MULTI_GET"},
	{"batch_get", "RPC_RRDB_RRDB_BATCH_GET"},
	{"scan", ""},
	{"put", "RPC_RRDB_RRDB_PUT"},
	{"multi_put", "RPC_RRDB_RRDB_MULTI_PUT"},
	{"remove", "RPC_RRDB_RRDB_REMOVE"},
	{"multi_remove", "RPC_RRDB_RRDB_MULTI_REMOVE"},
	{"incr", "RPC_RRDB_RRDB_INCR"},
	{"check_and_set", "RPC_RRDB_RRDB_CHECK_AND_SET"},
	{"check_and_mutate", "RPC_RRDB_RRDB_CHECK_AND_MUTATE"},
}

// byteOps are the operations with a per-partition <op>_bytes counter (RATE,
// bytes/s, from the replica entity's <op>_bytes), upstream's capacity unit
// calculator's.
var byteOps = []string{"get", "multi_get", "batch_get", "scan", "put", "multi_put", "check_and_set", "check_and_mutate"}

// partitionGauges map replica-entity gauges onto per-partition NUMBER counters.
var partitionGauges = []struct{ legacy, metric string }{
	{"disk.storage.sst(MB)", "rdb_total_sst_size_mb"},
	{"disk.storage.sst.count", "rdb_total_sst_files"},
	{"rdb.estimate_num_keys", "rdb_estimated_keys"},
	{"rdb.memtable.memory_usage", "rdb_memtable_mem_usage_bytes"},
	{"rdb.index_and_filter_blocks.memory_usage", "rdb_index_and_filter_blocks_mem_usage_bytes"},
	{"rdb.block_cache.hit_count", "rdb_block_cache_hit_count"},
	{"rdb.block_cache.total_count", "rdb_block_cache_total_count"},
}

// partitionVolatile map replica-entity counters onto per-partition
// VOLATILE_NUMBER counters: the count since the previous snapshot.
var partitionVolatile = []struct{ legacy, metric string }{
	{"recent.expire.count", "read_expired_values"},
	{"recent.filter.count", "read_filtered_values"},
}

// serverGauges map server-entity gauges onto node-level NUMBER counters.
var serverGauges = []struct{ legacy, metric string }{
	{pcServer + "memused.res(MB)", "resident_mem_usage_mb"},
	{pcServer + "memused.virt(MB)", "virtual_mem_usage_mb"},
	{pcApp + "rdb.block_cache.memory_usage", "rdb_block_cache_mem_usage_bytes"},
	{pcStub + "replica(Count)", "total_replicas"},
	{pcStub + "replicas.learning.count", "learning_replicas"},
}

// legacyCounters turns a /metrics snapshot taken at now into the legacy
// counters. d holds the cumulative counts of the previous snapshot: RATE and
// VOLATILE_NUMBER counters are the increase since then.
func legacyCounters(snap metrics.Snapshot, d *remotecmd.Deltas, now time.Time) []remotecmd.Counter {
	var out []remotecmd.Counter
	number := func(name string, v float64) {
		out = append(out, remotecmd.Counter{Name: name, Type: remotecmd.TypeNumber, Value: v})
	}
	counts := map[string]float64{} // cumulative counts, by legacy name
	kinds := map[string]string{}   // their types
	perOp := map[string][]string{} // per-partition qps names, by operation
	var disks []metrics.EntitySnapshot
	for _, e := range snap.Entities {
		switch e.Type {
		case "server":
			for _, g := range serverGauges {
				number(g.legacy, e.ValueOf(g.metric))
			}
		case "disk":
			disks = append(disks, e)
		case "replica":
			at := "@" + e.Attributes["table_id"] + "." + e.Attributes["partition_id"]
			for _, o := range legacyOps {
				name := pcApp + o.op + "_qps" + at
				counts[name], kinds[name] = e.ValueOf(o.op+"_requests"), remotecmd.TypeRate
				perOp[o.op] = append(perOp[o.op], name)
				// As upstream's snapshot: the P99, and the P999 beside it.
				var p99, p999 float64
				if m, ok := e.Find(o.op + "_latency_ns"); ok && m.P99 != nil && m.P999 != nil {
					p99, p999 = *m.P99, *m.P999
				}
				lat := pcApp + o.op + "_latency" + at
				out = append(out, remotecmd.Counter{Name: lat, Type: remotecmd.TypePercentile, Value: p99},
					remotecmd.Counter{Name: lat + ".p999", Type: remotecmd.TypePercentile, Value: p999})
			}
			for _, op := range byteOps {
				name := pcApp + op + "_bytes" + at
				counts[name], kinds[name] = e.ValueOf(op+"_bytes"), remotecmd.TypeRate
			}
			for _, c := range partitionVolatile {
				name := pcApp + c.legacy + at
				counts[name], kinds[name] = e.ValueOf(c.metric), remotecmd.TypeVolatileNumber
			}
			for _, g := range partitionGauges {
				number(pcApp+g.legacy+at, e.ValueOf(g.metric))
			}
		}
	}
	deltas, secs := d.Next(now, counts)
	rates := make(map[string]float64, len(counts))
	for name, typ := range kinds {
		v := deltas[name]
		if typ == remotecmd.TypeRate {
			v = remotecmd.Rate(v, secs)
			rates[name] = v
		}
		out = append(out, remotecmd.Counter{Name: name, Type: typ, Value: v})
	}
	for _, o := range legacyOps {
		if o.code == "" {
			continue
		}
		sum := 0.0
		for _, name := range perOp[o.op] {
			sum += rates[name]
		}
		out = append(out, remotecmd.Counter{Name: pcProfile + o.code + ".qps", Type: remotecmd.TypeRate, Value: sum})
	}
	return append(out, diskCounters(disks)...)
}

// diskCounters are the node's disk space counters (upstream's fs_manager
// figures): totals over the data disks, and the available ratio of the whole
// and of the fullest and emptiest disk, in percent. A disk in IO_ERROR is left
// out, as upstream stops measuring it.
func diskCounters(disks []metrics.EntitySnapshot) []remotecmd.Counter {
	var capMB, availMB float64
	minRatio, maxRatio := math.Inf(1), math.Inf(-1)
	for _, e := range disks {
		if e.ValueOf("disk_status") == diskStatusIOError {
			continue
		}
		c, a := e.ValueOf("disk_capacity_total_mb"), e.ValueOf("disk_capacity_avail_mb")
		capMB += c
		availMB += a
		r := availableRatio(c, a)
		minRatio, maxRatio = min(minRatio, r), max(maxRatio, r)
	}
	if math.IsInf(minRatio, 0) {
		minRatio, maxRatio = 0, 0
	}
	return []remotecmd.Counter{
		{Name: pcStub + "disk.capacity.total(MB)", Type: remotecmd.TypeNumber, Value: capMB},
		{Name: pcStub + "disk.available.total(MB)", Type: remotecmd.TypeNumber, Value: availMB},
		{Name: pcStub + "disk.available.total.ratio", Type: remotecmd.TypeNumber, Value: availableRatio(capMB, availMB)},
		{Name: pcStub + "disk.available.min.ratio", Type: remotecmd.TypeNumber, Value: minRatio},
		{Name: pcStub + "disk.available.max.ratio", Type: remotecmd.TypeNumber, Value: maxRatio},
	}
}

// diskStatusIOError is disk_status's IO_ERROR.
const diskStatusIOError = 2

// availableRatio is upstream's round(available * 100 / capacity), 0 without
// capacity.
func availableRatio(capMB, availMB float64) float64 {
	if capMB <= 0 {
		return 0
	}
	return math.Round(availMB * 100 / capMB)
}

// runPerfCounters takes the legacy counters' snapshot at start and then at every
// multiple of the interval in wall-clock time, so that the servers of a cluster
// snapshot together and tools that add up several servers' rates add rates over
// the same seconds.
func (s *Stub) runPerfCounters(ctx context.Context) {
	every := s.opts.PerfCounterInterval
	d := remotecmd.NewDeltas(s.opts.StartTime)
	take := func(now time.Time) {
		s.metrics.refresh()
		snap := s.metrics.reg.Snapshot(metrics.Filter{Types: []string{"server", "replica", "disk"}})
		s.cmds.SetSnapshot(remotecmd.Snapshot{Time: now, Counters: legacyCounters(snap, d, now)})
	}
	take(time.Now())
	for {
		t := time.NewTimer(time.Until(time.Now().Truncate(every).Add(every)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case now := <-t.C:
			take(now)
		}
	}
}

// readBytes counts the bytes a read returned (<op>_bytes of the replica entity).
// readSize is the operation of a read and its bytes, as upstream's capacity unit
// calculator counts them; "" for a read without such a counter.
func readSize(req, resp any) (op string, n int) {
	switch r := resp.(type) {
	case *rrdb.ReadResponse: // get: key and value
		op, n = "get", r.Value.Len()
		if k, ok := req.(*base.Blob); ok {
			n += k.Len()
		}
	case *rrdb.MultiGetResponse: // the hash key once, then each sort key and value
		op = "multi_get"
		if q, ok := req.(*rrdb.MultiGetRequest); ok {
			n = q.HashKey.Len()
		}
		for _, kv := range r.Kvs {
			n += kv.Key.Len() + kv.Value.Len()
		}
	case *rrdb.BatchGetResponse:
		op = "batch_get"
		for _, d := range r.Data {
			n += d.HashKey.Len() + d.SortKey.Len() + d.Value.Len()
		}
	case *rrdb.ScanResponse:
		op = "scan"
		for _, kv := range r.Kvs {
			n += kv.Key.Len() + kv.Value.Len()
		}
	}
	return op, n
}

// writeBytes counts the bytes a write carried (<op>_bytes of the replica entity).
func (m *serverMetrics) writeBytes(p *partition, o storage.Op) {
	if op, n := writeSize(o); op != "" {
		m.entity(p).Counter(op + "_bytes").Add(int64(n))
	}
}

// writeSize is the operation of a write and its bytes, as upstream's capacity
// unit calculator counts them; "" for removes and incr, which have no such
// counter.
func writeSize(o storage.Op) (op string, n int) {
	switch {
	case o.Put != nil:
		op, n = "put", o.Put.Key.Len()+o.Put.Value.Len()
	case o.MultiPut != nil:
		op, n = "multi_put", o.MultiPut.HashKey.Len()
		for _, kv := range o.MultiPut.Kvs {
			if kv != nil {
				n += kv.Key.Len() + kv.Value.Len()
			}
		}
	case o.CheckAndSet != nil:
		r := o.CheckAndSet
		op, n = "check_and_set", r.HashKey.Len()+r.CheckSortKey.Len()+r.SetSortKey.Len()+r.SetValue.Len()
	case o.CheckAndMutate != nil:
		r := o.CheckAndMutate
		op, n = "check_and_mutate", r.HashKey.Len()+r.CheckSortKey.Len()
		for _, mu := range r.MutateList {
			if mu != nil {
				n += mu.SortKey.Len() + mu.Value.Len()
			}
		}
	}
	return op, n
}
