package collector

import (
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/metrics"
)

func f(v float64) *float64 { return &v }

// replicaEntity builds a replica entity as a replica server publishes it.
func replicaEntity(app, pidx int, status float64, sstMB float64, counters map[string]float64, p99 map[string]float64) metrics.EntitySnapshot {
	e := metrics.EntitySnapshot{
		Type: "replica",
		ID:   strconv.Itoa(app) + "." + strconv.Itoa(pidx),
		Attributes: map[string]string{
			"table_id": strconv.Itoa(app), "partition_id": strconv.Itoa(pidx), "table_name": "t" + strconv.Itoa(app),
		},
	}
	e.Metrics = append(e.Metrics,
		metrics.MetricSnapshot{Name: "status", Value: f(status)},
		metrics.MetricSnapshot{Name: "rdb_total_sst_size_mb", Value: f(sstMB)})
	for name, v := range counters {
		e.Metrics = append(e.Metrics, metrics.MetricSnapshot{Name: name + "_requests", Value: f(v)})
	}
	for name, v := range p99 {
		e.Metrics = append(e.Metrics, metrics.MetricSnapshot{Name: name + "_latency_ns",
			P50: f(v / 4), P90: f(v / 2), P95: f(v / 2), P99: f(v), P999: f(2 * v)})
	}
	return e
}

const (
	primary   = 3
	secondary = 4
)

func snap(at time.Time, es ...metrics.EntitySnapshot) *metrics.Snapshot {
	s := &metrics.Snapshot{Role: "replica", TimestampNS: at.UnixNano(), Entities: es}
	s.Entities = append(s.Entities, metrics.EntitySnapshot{Type: "server", ID: "server",
		Metrics: []metrics.MetricSnapshot{{Name: "total_replicas", Value: f(float64(len(es)))}}})
	return s
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestAggregatorRatesAndTables(t *testing.T) {
	a := newAggregator(3)
	tables := []tableInfo{{Name: "t1", AppID: 1, PartitionCount: 2}, {Name: "t2", AppID: 2, PartitionCount: 1}}
	t0 := time.Unix(1000, 0)
	round := func(now time.Time, n1, n2 []metrics.EntitySnapshot, down error) Round {
		scrapes := []nodeScrape{{Addr: "10.0.0.1:34801", Snap: snap(now, n1...)}, {Addr: "10.0.0.2:34801", Snap: snap(now, n2...)}}
		if down != nil {
			scrapes = append(scrapes, nodeScrape{Addr: "10.0.0.3:34801", Err: down})
		}
		return a.update(now, tables, scrapes)
	}
	// First reading: rates are unknown, so 0; the structure is there.
	r := round(t0,
		[]metrics.EntitySnapshot{
			replicaEntity(1, 0, primary, 10, map[string]float64{"get": 100, "put": 50}, nil),
			replicaEntity(1, 1, secondary, 11, nil, nil),
			replicaEntity(9, 0, primary, 7, map[string]float64{"get": 5}, nil), // a table the meta does not list
		},
		[]metrics.EntitySnapshot{
			replicaEntity(1, 0, secondary, 10, nil, nil),
			replicaEntity(1, 1, primary, 12, map[string]float64{"get": 10}, nil),
			replicaEntity(2, 0, primary, 1, nil, nil),
		}, nil)
	if len(r.Tables) != 2 || r.Tables[0].Table != "t1" || r.Tables[0].ReadOPS != 0 || r.Tables[0].OPS["get"] != 0 {
		t.Fatalf("first round tables = %+v", r.Tables)
	}
	if len(r.Tables[0].OPS) != len(operations) {
		t.Errorf("ops keys = %v, want every operation", r.Tables[0].OPS)
	}

	// Ten seconds later.
	t1 := t0.Add(10 * time.Second)
	r = round(t1,
		[]metrics.EntitySnapshot{
			replicaEntity(1, 0, primary, 10, map[string]float64{"get": 600, "put": 150}, map[string]float64{"get": 1000, "put": 5000}),
			replicaEntity(1, 1, secondary, 11, nil, nil),
			replicaEntity(9, 0, primary, 7, map[string]float64{"get": 25}, map[string]float64{"get": 99999}),
		},
		[]metrics.EntitySnapshot{
			replicaEntity(1, 0, secondary, 10, nil, nil),
			replicaEntity(1, 1, primary, 12, map[string]float64{"get": 30}, map[string]float64{"get": 3000}),
			replicaEntity(2, 0, primary, 1, nil, nil),
		}, errors.New("connection refused"))
	t1s := r.Tables[0]
	if !near(t1s.OPS["get"], 52) || !near(t1s.OPS["put"], 10) || !near(t1s.ReadOPS, 52) || !near(t1s.WriteOPS, 10) {
		t.Errorf("t1 rates: ops %v read %v write %v", t1s.OPS, t1s.ReadOPS, t1s.WriteOPS)
	}
	if !near(t1s.PartitionRates[readKind][0], 50) || !near(t1s.PartitionRates[readKind][1], 2) || !near(t1s.PartitionRates[writeKind][0], 10) {
		t.Errorf("t1 partition rates = %v", t1s.PartitionRates)
	}
	// Latency: per percentile, the worst replica that served the operation.
	if got := t1s.Latency["get"]; got.P99 != 3000 || got.P50 != 750 || got.P999 != 6000 {
		t.Errorf("t1 get latency = %+v", got)
	}
	if _, ok := t1s.Latency["scan"]; ok {
		t.Error("latency reported for an operation nobody served")
	}
	// Storage counts primaries only (one copy); replicas by role.
	if t1s.StorageMB != 22 || t1s.Replicas != (ReplicaCounts{Primary: 2, Secondary: 2, Total: 4}) {
		t.Errorf("t1 storage %v replicas %+v", t1s.StorageMB, t1s.Replicas)
	}
	if t1s.primaryOf(0) != "10.0.0.1:34801" || t1s.primaryOf(1) != "10.0.0.2:34801" || t1s.primaryOf(5) != "" {
		t.Errorf("primaries = %v", t1s.Primaries)
	}
	// Nodes: every replica they hold counts, listed tables or not.
	if len(r.Nodes) != 3 {
		t.Fatalf("nodes = %+v", r.Nodes)
	}
	n1 := r.Nodes[0]
	if n1.Node != "10.0.0.1:34801" || !n1.Up || !near(n1.ReadOPS, 52) || !near(n1.WriteOPS, 10) || n1.StorageMB != 28 ||
		n1.Replicas.Total != 3 || n1.Latency["get"].P99 != 99999 {
		t.Errorf("node 1 = %+v", n1)
	}
	if n3 := r.Nodes[2]; n3.Up || n3.Error != "connection refused" {
		t.Errorf("node 3 = %+v", n3)
	}

	// The primary of t1.0 restarted: its counter went down, everything it
	// counted is new.
	t2 := t1.Add(5 * time.Second)
	r = round(t2,
		[]metrics.EntitySnapshot{replicaEntity(1, 0, primary, 10, map[string]float64{"get": 20}, nil)},
		[]metrics.EntitySnapshot{replicaEntity(1, 1, primary, 12, map[string]float64{"get": 30}, nil)}, nil)
	if got := r.Tables[0].PartitionRates[readKind]; !near(got[0], 4) || got[1] != 0 {
		t.Errorf("after a restart partition rates = %v", got)
	}
	// Counters of entities that disappeared are forgotten.
	if _, ok := a.counters["10.0.0.1:34801|9.0|get_requests"]; ok {
		t.Error("counter of a vanished entity kept")
	}

	// History is capped and dropped with the table.
	r = round(t2.Add(time.Second), nil, nil, nil)
	if h := a.historyOf(1); len(h) != 3 || h[2].Time != t2.Add(time.Second).Format(timeLayout) {
		t.Errorf("history = %+v", h)
	}
	tables = tables[:1]
	round(t2.Add(2*time.Second), nil, nil, nil)
	if len(a.historyOf(2)) != 0 {
		t.Error("history of a dropped table kept")
	}
}

func TestAggregatorIgnoresForeignEntities(t *testing.T) {
	a := newAggregator(1)
	bad := replicaEntity(1, 5, primary, 1, map[string]float64{"get": 1}, nil) // partition out of range
	noID := metrics.EntitySnapshot{Type: "replica", ID: "x", Attributes: map[string]string{}}
	disk := metrics.EntitySnapshot{Type: "disk", ID: "default", Metrics: []metrics.MetricSnapshot{{Name: "get_requests", Value: f(1)}}}
	r := a.update(time.Unix(1, 0), []tableInfo{{Name: "t1", AppID: 1, PartitionCount: 2}},
		[]nodeScrape{{Addr: "n", Snap: snap(time.Unix(1, 0), bad, noID, disk)}})
	if r.Tables[0].Replicas.Total != 0 || r.Nodes[0].Replicas.Total != 1 {
		t.Errorf("tables %+v nodes %+v", r.Tables[0].Replicas, r.Nodes[0].Replicas)
	}
}

// Capacity units are rates of the replicas' read_capacity_units and
// write_capacity_units, per table and per node.
func TestAggregatorCapacityUnits(t *testing.T) {
	a := newAggregator(3)
	tables := []tableInfo{{Name: "t1", AppID: 1, PartitionCount: 2}}
	cu := func(pidx int, status, rcu, wcu float64) metrics.EntitySnapshot {
		e := replicaEntity(1, pidx, status, 1, nil, nil)
		e.Metrics = append(e.Metrics,
			metrics.MetricSnapshot{Name: "read_capacity_units", Value: f(rcu)},
			metrics.MetricSnapshot{Name: "write_capacity_units", Value: f(wcu)})
		return e
	}
	t0 := time.Unix(1000, 0)
	round := func(now time.Time, es ...metrics.EntitySnapshot) Round {
		return a.update(now, tables, []nodeScrape{{Addr: "10.0.0.1:34801", Snap: snap(now, es...)}})
	}
	round(t0, cu(0, primary, 100, 10), cu(1, primary, 0, 0))
	r := round(t0.Add(10*time.Second), cu(0, primary, 150, 30), cu(1, primary, 50, 0))
	tb, n := r.Tables[0], r.Nodes[0]
	if !near(tb.ReadCU, 10) || !near(tb.WriteCU, 2) || !near(n.ReadCU, 10) || !near(n.WriteCU, 2) {
		t.Errorf("capacity units per second: table read %v write %v, node read %v write %v; want 10 and 2",
			tb.ReadCU, tb.WriteCU, n.ReadCU, n.WriteCU)
	}
}
