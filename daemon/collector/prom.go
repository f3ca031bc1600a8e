package collector

import (
	"strconv"

	"github.com/pegasusgo/pegasus/rpc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// The Prometheus series. Names and labels are a stable interface (dashboards
// and alerts are built on them): docs/collector.md lists them, and a change
// here is a change there. Every series also carries the constant label
// cluster.
var (
	descAvailRatio = prometheus.NewDesc("pegasus_availability_ratio",
		"Availability of the detect table over the last complete period: (probes - failures) / probes, 1 when there was no probe.",
		[]string{"table", "period"}, nil)
	descAvailPeriodProbes = prometheus.NewDesc("pegasus_availability_period_probes",
		"Probes of the detect table during the last complete period.",
		[]string{"table", "period"}, nil)
	descAvailPeriodFailures = prometheus.NewDesc("pegasus_availability_period_failures",
		"Failed probes of the detect table during the last complete period.",
		[]string{"table", "period"}, nil)
	descProbes = prometheus.NewDesc("pegasus_availability_probes_total",
		"Probes (write then read) of each partition of the detect table since the collector started.",
		[]string{"table", "partition"}, nil)
	descProbeFailures = prometheus.NewDesc("pegasus_availability_probe_failures_total",
		"Failed probes of each partition of the detect table since the collector started.",
		[]string{"table", "partition"}, nil)
	descPartitionUp = prometheus.NewDesc("pegasus_availability_partition_up",
		"1 when the latest probe of the partition succeeded, else 0.",
		[]string{"table", "partition"}, nil)
	descProbeLatency = prometheus.NewDesc("pegasus_availability_probe_latency_seconds",
		"Duration of the latest probe of the partition (write plus read).",
		[]string{"table", "partition"}, nil)
	descConsecutive = prometheus.NewDesc("pegasus_availability_consecutive_failures",
		"Failed probes in a row of the partition, up to the latest one.",
		[]string{"table", "partition"}, nil)

	descTableOPS = prometheus.NewDesc("pegasus_table_ops_per_second",
		"Requests per second served by the table during the last collection interval, by operation; kind is read or write.",
		[]string{"table", "op", "kind"}, nil)
	descTableLatency = prometheus.NewDesc("pegasus_table_latency_seconds",
		"Server-side request latency of the table: per percentile, the highest among its replicas that served the operation during the last interval.",
		[]string{"table", "op", "percentile"}, nil)
	descTableCU = prometheus.NewDesc("pegasus_table_capacity_units_per_second",
		"Capacity units per second charged to the table during the last collection interval; kind is read or write.",
		[]string{"table", "kind"}, nil)
	descTableStorage = prometheus.NewDesc("pegasus_table_storage_bytes",
		"SST size of the table's primary replicas (one copy of the data).",
		[]string{"table"}, nil)
	descTableReplicas = prometheus.NewDesc("pegasus_table_replicas",
		"Replicas of the table on the alive replica servers, by role (primary, secondary, other).",
		[]string{"table", "role"}, nil)
	descTablePartitions = prometheus.NewDesc("pegasus_table_partitions",
		"Partitions of the table.",
		[]string{"table"}, nil)
	descTableHot = prometheus.NewDesc("pegasus_table_hot_partitions",
		"Partitions of the table currently flagged hot, by kind (read or write).",
		[]string{"table", "kind"}, nil)

	descPartOPS = prometheus.NewDesc("pegasus_partition_ops_per_second",
		"Read or write requests per second served by the partition during the last interval.",
		[]string{"table", "partition", "kind"}, nil)
	descPartScore = prometheus.NewDesc("pegasus_partition_hotspot_score",
		"z-score of the partition's rate against the table's other partitions over the recent rounds.",
		[]string{"table", "partition", "kind"}, nil)
	descPartHot = prometheus.NewDesc("pegasus_partition_hot",
		"1 when the partition is flagged hot (score at or above the threshold and rate at or above the minimum), else 0.",
		[]string{"table", "partition", "kind"}, nil)

	descNodeUp = prometheus.NewDesc("pegasus_node_up",
		"1 when the alive replica server's /metrics could be read in the last round, else 0.",
		[]string{"node"}, nil)
	descNodeOPS = prometheus.NewDesc("pegasus_node_ops_per_second",
		"Requests per second served by the replica server during the last interval, by operation.",
		[]string{"node", "op", "kind"}, nil)
	descNodeLatency = prometheus.NewDesc("pegasus_node_latency_seconds",
		"Server-side request latency on the replica server: per percentile, the highest among its replicas that served the operation during the last interval.",
		[]string{"node", "op", "percentile"}, nil)
	descNodeStorage = prometheus.NewDesc("pegasus_node_storage_bytes",
		"SST size of every replica the replica server holds.",
		[]string{"node"}, nil)
	descNodeReplicas = prometheus.NewDesc("pegasus_node_replicas",
		"Replicas held by the replica server, by role (primary, secondary, other).",
		[]string{"node", "role"}, nil)

	descLastCollect = prometheus.NewDesc("pegasus_collector_last_collect_timestamp_seconds",
		"When the last collection with a node and table list from the meta ended (Unix time).",
		nil, nil)
	descScrapeFailures = prometheus.NewDesc("pegasus_collector_scrape_failures_total",
		"Reads of a replica server's /metrics that failed.",
		nil, nil)
	descMetaFailures = prometheus.NewDesc("pegasus_collector_meta_failures_total",
		"Collection rounds whose node or table list could not be read from the meta servers.",
		nil, nil)

	// The collector's own RPC server (upstream's network_server_sessions and
	// the counters of what the connection limits did; docs/operations.md).
	descNetSessions = prometheus.NewDesc("pegasus_network_server_sessions",
		"Connections open now on the collector's port (RPC and HTTP).", nil, nil)
	descNetCounters = netCounterDescs()
)

// netCounterDesc is the Prometheus series of one rpc.StatCounters entry.
type netCounterDesc struct {
	d *prometheus.Desc
	v func(rpc.ServerStats) int64
}

func netCounterDescs() []netCounterDesc {
	var out []netCounterDesc
	for _, c := range rpc.StatCounters() {
		out = append(out, netCounterDesc{netDesc(c.Name, c.Help), c.Value})
	}
	return out
}

func netDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("pegasus_network_"+name, help, nil, nil)
}

// promCollector exports the collector's state at scrape time, so that series
// of dropped tables and dead nodes disappear with them.
type promCollector struct{ c *Collector }

func (p promCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descAvailRatio, descAvailPeriodProbes, descAvailPeriodFailures, descProbes, descProbeFailures,
		descPartitionUp, descProbeLatency, descConsecutive,
		descTableOPS, descTableLatency, descTableCU, descTableStorage, descTableReplicas, descTablePartitions, descTableHot,
		descPartOPS, descPartScore, descPartHot,
		descNodeUp, descNodeOPS, descNodeLatency, descNodeStorage, descNodeReplicas,
		descLastCollect, descScrapeFailures, descMetaFailures,
	} {
		ch <- d
	}
	ch <- descNetSessions
	for _, n := range descNetCounters {
		ch <- n.d
	}
}

func (p promCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	const mb = 1 << 20

	if f := p.c.opts.NetStats; f != nil {
		st := f()
		gauge(descNetSessions, float64(st.Connections))
		for _, n := range descNetCounters {
			counter(n.d, float64(n.v(st)))
		}
	}
	av := p.c.book.counters()
	for k := range numPeriods {
		per := av.Last[k]
		if per.Period == "" {
			// Nothing is published before the first boundary; a ratio
			// of 1 there would be made up.
			continue
		}
		gauge(descAvailRatio, per.Percent/100, av.Table, k.String())
		gauge(descAvailPeriodProbes, float64(per.Attempts), av.Table, k.String())
		gauge(descAvailPeriodFailures, float64(per.Failures), av.Table, k.String())
	}
	for pidx, ps := range av.Partitions {
		if !ps.probed {
			continue
		}
		part := strconv.Itoa(pidx)
		counter(descProbes, float64(ps.attempts), av.Table, part)
		counter(descProbeFailures, float64(ps.failures), av.Table, part)
		up := 0.0
		if ps.probe.Result == "OK" {
			up = 1
		}
		gauge(descPartitionUp, up, av.Table, part)
		gauge(descProbeLatency, ps.probe.LatencyMS/1000, av.Table, part)
		gauge(descConsecutive, float64(ps.probe.ConsecutiveFailures), av.Table, part)
	}

	st := p.c.snapshot(false)
	for _, t := range st.round.Tables {
		emitLoad(ch, descTableOPS, descTableLatency, t.Table, t.Load)
		gauge(descTableCU, t.ReadCU, t.Table, "read")
		gauge(descTableCU, t.WriteCU, t.Table, "write")
		gauge(descTableStorage, t.StorageMB*mb, t.Table)
		emitReplicas(ch, descTableReplicas, t.Table, t.Replicas)
		gauge(descTablePartitions, float64(t.PartitionCount), t.Table)
		scores := st.scores[t.AppID]
		for k := range numKinds {
			hot := 0
			for _, s := range scores[k] {
				part := strconv.Itoa(s.Partition)
				gauge(descPartOPS, s.Rate, t.Table, part, k.String())
				gauge(descPartScore, s.Score, t.Table, part, k.String())
				v := 0.0
				if s.Hot {
					v, hot = 1, hot+1
				}
				gauge(descPartHot, v, t.Table, part, k.String())
			}
			gauge(descTableHot, float64(hot), t.Table, k.String())
		}
	}
	for _, n := range st.round.Nodes {
		up := 0.0
		if n.Up {
			up = 1
		}
		gauge(descNodeUp, up, n.Node)
		if !n.Up {
			continue
		}
		emitLoad(ch, descNodeOPS, descNodeLatency, n.Node, n.Load)
		gauge(descNodeStorage, n.StorageMB*mb, n.Node)
		emitReplicas(ch, descNodeReplicas, n.Node, n.Replicas)
	}
	if !st.lastGood.IsZero() {
		gauge(descLastCollect, float64(st.lastGood.UnixNano())/1e9)
	}
	counter(descScrapeFailures, float64(p.c.scrapeFailures.Load()))
	counter(descMetaFailures, float64(p.c.metaFailures.Load()))
}

// emitLoad exports a table's or node's rates (every operation) and latencies
// (the operations served during the interval).
func emitLoad(ch chan<- prometheus.Metric, ops, latency *prometheus.Desc, who string, l Load) {
	for _, op := range operations {
		ch <- prometheus.MustNewConstMetric(ops, prometheus.GaugeValue, l.OPS[op.name], who, op.name, op.kind.String())
		lat, ok := l.Latency[op.name]
		if !ok {
			continue
		}
		for i, v := range lat.values() {
			ch <- prometheus.MustNewConstMetric(latency, prometheus.GaugeValue, v/1e9, who, op.name, percentileNames[i])
		}
	}
}

func emitReplicas(ch chan<- prometheus.Metric, d *prometheus.Desc, who string, r ReplicaCounts) {
	for _, x := range []struct {
		role string
		n    int
	}{{"primary", r.Primary}, {"secondary", r.Secondary}, {"other", r.Other}} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(x.n), who, x.role)
	}
}

// newPromRegistry returns the collector's own registry (never the global one):
// its series, labelled with the cluster, plus the Go runtime and process ones.
func newPromRegistry(c *Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	prometheus.WrapRegistererWith(prometheus.Labels{"cluster": c.opts.ClusterName}, reg).MustRegister(promCollector{c})
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
