package collector

import (
	"sort"
	"strconv"
	"time"

	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
)

// operation is one request type a replica server counts (<name>_requests) and
// times (<name>_latency_ns).
type operation struct {
	name string
	kind rateKind
}

// operations are the request types of the replica servers, reads then writes.
var operations = [...]operation{
	{"get", readKind}, {"multi_get", readKind}, {"batch_get", readKind},
	{"sortkey_count", readKind}, {"ttl", readKind}, {"scan", readKind},
	{"put", writeKind}, {"multi_put", writeKind}, {"remove", writeKind},
	{"multi_remove", writeKind}, {"incr", writeKind}, {"check_and_set", writeKind},
	{"check_and_mutate", writeKind},
}

// Percentiles are latencies in nanoseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
}

func (p Percentiles) values() [5]float64 { return [5]float64{p.P50, p.P90, p.P95, p.P99, p.P999} }

// percentileNames label the values of Percentiles, in order.
var percentileNames = [5]string{"p50", "p90", "p95", "p99", "p999"}

// worst keeps, percentile by percentile, the higher of p and q.
func (p Percentiles) worst(q Percentiles) Percentiles {
	return Percentiles{max(p.P50, q.P50), max(p.P90, q.P90), max(p.P95, q.P95), max(p.P99, q.P99), max(p.P999, q.P999)}
}

// ReplicaCounts counts replicas by role.
type ReplicaCounts struct {
	Primary   int `json:"primary"`
	Secondary int `json:"secondary"`
	// Other counts learners and inactive or erroneous replicas.
	Other int `json:"other"`
	Total int `json:"total"`
}

func (r *ReplicaCounts) add(status float64) {
	r.Total++
	switch metadata.PartitionStatus(status) {
	case metadata.PartitionStatus_PS_PRIMARY:
		r.Primary++
	case metadata.PartitionStatus_PS_SECONDARY:
		r.Secondary++
	default:
		r.Other++
	}
}

// Load is what a table or a node served during the last interval.
type Load struct {
	ReadOPS  float64 `json:"read_ops_per_second"`
	WriteOPS float64 `json:"write_ops_per_second"`
	// OPS has every operation, idle ones included, so that the keys are stable.
	OPS map[string]float64 `json:"ops_per_second"`
	// Latency has the operations served during the interval: per percentile,
	// the highest value among the replicas that served them.
	Latency map[string]Percentiles `json:"latency_ns"`
	// ReadCU and WriteCU are the capacity units charged per second (the
	// replicas' read_capacity_units and write_capacity_units): what upstream
	// bills a table by.
	ReadCU  float64 `json:"read_capacity_units_per_second"`
	WriteCU float64 `json:"write_capacity_units_per_second"`
}

func newLoad() Load {
	l := Load{OPS: map[string]float64{}, Latency: map[string]Percentiles{}}
	for _, op := range operations {
		l.OPS[op.name] = 0
	}
	return l
}

func (l *Load) add(op operation, rate float64, lat Percentiles, hasLat bool) {
	l.OPS[op.name] += rate
	if op.kind == readKind {
		l.ReadOPS += rate
	} else {
		l.WriteOPS += rate
	}
	if rate > 0 && hasLat {
		l.Latency[op.name] = l.Latency[op.name].worst(lat)
	}
}

func (l *Load) addCU(k rateKind, rate float64) {
	if k == readKind {
		l.ReadCU += rate
	} else {
		l.WriteCU += rate
	}
}

// TableStats aggregates a table over the replica servers.
type TableStats struct {
	Table          string `json:"table"`
	AppID          int32  `json:"app_id"`
	PartitionCount int    `json:"partition_count"`
	Load
	// StorageMB is the SST size of the primaries: one copy of the data.
	StorageMB float64       `json:"storage_mb"`
	Replicas  ReplicaCounts `json:"replicas"`
	// PartitionRates[kind][pidx] is each partition's read or write rate.
	PartitionRates [numKinds][]float64 `json:"-"`
	// Primaries[pidx] is the node that reported partition pidx as primary.
	Primaries []string `json:"-"`
}

// primaryOf returns the primary of partition pidx, "" when unknown.
func (t *TableStats) primaryOf(pidx int) string {
	if pidx < 0 || pidx >= len(t.Primaries) {
		return ""
	}
	return t.Primaries[pidx]
}

// NodeStats aggregates one replica server.
type NodeStats struct {
	Node  string `json:"node"`
	Up    bool   `json:"up"`
	Error string `json:"error,omitempty"`
	Load
	// StorageMB is the SST size of every replica the node holds.
	StorageMB float64       `json:"storage_mb"`
	Replicas  ReplicaCounts `json:"replicas"`
}

// Round is the outcome of one collection.
type Round struct {
	Time   time.Time
	Tables []TableStats
	Nodes  []NodeStats
}

// HistoryPoint is one round of a table's history.
type HistoryPoint struct {
	Time      string  `json:"time"`
	ReadOPS   float64 `json:"read_ops_per_second"`
	WriteOPS  float64 `json:"write_ops_per_second"`
	StorageMB float64 `json:"storage_mb"`
}

// tableInfo is a table as the meta lists it.
type tableInfo struct {
	Name           string
	AppID          int32
	PartitionCount int
}

// nodeScrape is one node's /metrics, or why it could not be read.
type nodeScrape struct {
	Addr string
	Snap *metrics.Snapshot
	Err  error
}

// counterSample is the last reading of one counter.
type counterSample struct {
	value float64
	at    time.Time
}

// aggregator turns successive /metrics readings into rates and aggregates them.
// It does no I/O and is not safe for concurrent use.
type aggregator struct {
	historySize int
	counters    map[string]counterSample
	history     map[int32][]HistoryPoint
}

func newAggregator(historySize int) *aggregator {
	return &aggregator{historySize: max(historySize, 1), counters: map[string]counterSample{}, history: map[int32][]HistoryPoint{}}
}

// rate returns the per-second increase of a counter since its last reading, and
// whether there was one to compare with. A counter that went down belongs to a
// restarted server: everything it counted is new.
func (a *aggregator) rate(key string, v float64, at time.Time, seen map[string]bool) float64 {
	seen[key] = true
	prev, ok := a.counters[key]
	a.counters[key] = counterSample{value: v, at: at}
	if !ok {
		return 0
	}
	dt := at.Sub(prev.at).Seconds()
	if dt <= 0 {
		return 0
	}
	if v < prev.value {
		return v / dt
	}
	return (v - prev.value) / dt
}

// update aggregates one round. tables are the tables the meta lists; replicas
// of other tables count for their node only.
func (a *aggregator) update(at time.Time, tables []tableInfo, scrapes []nodeScrape) Round {
	r := Round{Time: at}
	byID := map[int32]*TableStats{}
	ts := make([]TableStats, len(tables))
	for i, t := range tables {
		ts[i] = TableStats{Table: t.Name, AppID: t.AppID, PartitionCount: t.PartitionCount, Load: newLoad()}
		for k := range numKinds {
			ts[i].PartitionRates[k] = make([]float64, t.PartitionCount)
		}
		ts[i].Primaries = make([]string, t.PartitionCount)
		byID[t.AppID] = &ts[i]
	}
	seen := map[string]bool{}
	for _, sc := range scrapes {
		ns := NodeStats{Node: sc.Addr, Up: sc.Err == nil && sc.Snap != nil, Load: newLoad()}
		if sc.Err != nil {
			ns.Error = sc.Err.Error()
		}
		if ns.Up {
			a.addNode(&ns, sc, at, byID, seen)
		}
		r.Nodes = append(r.Nodes, ns)
	}
	for k := range a.counters {
		if !seen[k] {
			delete(a.counters, k)
		}
	}
	sort.Slice(r.Nodes, func(i, j int) bool { return r.Nodes[i].Node < r.Nodes[j].Node })
	sort.Slice(ts, func(i, j int) bool { return ts[i].Table < ts[j].Table })
	r.Tables = ts
	live := map[int32]bool{}
	for _, t := range ts {
		live[t.AppID] = true
		h := append(a.history[t.AppID], HistoryPoint{Time: at.Format(timeLayout), ReadOPS: t.ReadOPS, WriteOPS: t.WriteOPS, StorageMB: t.StorageMB})
		if len(h) > a.historySize {
			h = h[len(h)-a.historySize:]
		}
		a.history[t.AppID] = h
	}
	for id := range a.history {
		if !live[id] {
			delete(a.history, id)
		}
	}
	return r
}

// addNode folds one node's replica entities into the node and its tables.
func (a *aggregator) addNode(ns *NodeStats, sc nodeScrape, at time.Time, byID map[int32]*TableStats, seen map[string]bool) {
	when := at
	if sc.Snap.TimestampNS > 0 {
		// The server's own clock times its counters best: the scrape's
		// round trip does not blur the interval.
		when = time.Unix(0, sc.Snap.TimestampNS)
	}
	for i := range sc.Snap.Entities {
		e := &sc.Snap.Entities[i]
		if e.Type != "replica" {
			continue
		}
		appID, err1 := strconv.Atoi(e.Attributes["table_id"])
		pidx, err2 := strconv.Atoi(e.Attributes["partition_id"])
		if err1 != nil || err2 != nil {
			continue
		}
		t := byID[int32(appID)]
		if t != nil && (pidx < 0 || pidx >= t.PartitionCount) {
			t = nil
		}
		status := e.ValueOf("status")
		size := e.ValueOf("rdb_total_sst_size_mb")
		ns.Replicas.add(status)
		ns.StorageMB += size
		if t != nil {
			t.Replicas.add(status)
			if metadata.PartitionStatus(status) == metadata.PartitionStatus_PS_PRIMARY {
				t.StorageMB += size
				t.Primaries[pidx] = sc.Addr
			}
		}
		for _, cu := range [...]struct {
			metric string
			kind   rateKind
		}{{"read_capacity_units", readKind}, {"write_capacity_units", writeKind}} {
			m, ok := e.Find(cu.metric)
			if !ok || m.Value == nil {
				continue
			}
			rate := a.rate(sc.Addr+"|"+e.ID+"|"+m.Name, *m.Value, when, seen)
			ns.addCU(cu.kind, rate)
			if t != nil {
				t.addCU(cu.kind, rate)
			}
		}
		for _, op := range operations {
			m, ok := e.Find(op.name + "_requests")
			if !ok || m.Value == nil {
				continue
			}
			rate := a.rate(sc.Addr+"|"+e.ID+"|"+m.Name, *m.Value, when, seen)
			lat, hasLat := latencyOf(e, op.name+"_latency_ns")
			ns.add(op, rate, lat, hasLat)
			if t != nil {
				t.add(op, rate, lat, hasLat)
				t.PartitionRates[op.kind][pidx] += rate
			}
		}
	}
}

func latencyOf(e *metrics.EntitySnapshot, name string) (Percentiles, bool) {
	m, ok := e.Find(name)
	if !ok || m.P50 == nil {
		return Percentiles{}, false
	}
	v := func(p *float64) float64 {
		if p == nil {
			return 0
		}
		return *p
	}
	return Percentiles{v(m.P50), v(m.P90), v(m.P95), v(m.P99), v(m.P999)}, true
}

// historyOf returns a copy of a table's history, oldest first.
func (a *aggregator) historyOf(appID int32) []HistoryPoint {
	return append([]HistoryPoint(nil), a.history[appID]...)
}
