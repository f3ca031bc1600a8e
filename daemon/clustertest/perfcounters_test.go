package clustertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/idl/gen/cmd"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/rpc/kv"
)

// perfInfo is the perf-counters reply (upstream's perf_counter_info).
type perfInfo struct {
	Result    string `json:"result"`
	Timestamp int64  `json:"timestamp"`
	Counters  []struct {
		Name  string  `json:"name"`
		Type  string  `json:"type"`
		Value float64 `json:"value"`
	} `json:"counters"`
}

func (p perfInfo) byName() map[string]float64 {
	out := map[string]float64{}
	for _, c := range p.Counters {
		out[c.Name] = c.Value
	}
	return out
}

func perfCounters(t *testing.T, addr string, command string, args ...string) perfInfo {
	t.Helper()
	cl := rpc.NewClient(addr, rpc.ClientOptions{DialTimeout: time.Second})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out rpc.String
	if err := cl.Call(ctx, rpc.Request{Code: rpc.CodeRemoteCommand, Args: &cmd.Command{Cmd: command, Arguments: args}}, &out); err != nil {
		t.Fatalf("%s %s on %s: %v", command, args, addr, err)
	}
	var info perfInfo
	if err := json.Unmarshal([]byte(out.V), &info); err != nil {
		t.Fatalf("%s on %s: %v\n%s", command, addr, err, out.V)
	}
	if info.Result != "OK" {
		t.Fatalf("%s on %s: result %q", command, addr, info.Result)
	}
	return info
}

// replicaMetrics reads a replica server's /metrics replica entities, by gpid.
func replicaMetrics(t *testing.T, addr string) map[string]metrics.EntitySnapshot {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics?types=replica,disk")
	if err != nil {
		t.Fatalf("/metrics of %s: %v", addr, err)
	}
	defer resp.Body.Close()
	var snap metrics.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatalf("/metrics of %s: %v", addr, err)
	}
	out := map[string]metrics.EntitySnapshot{}
	for _, e := range snap.Entities {
		if e.Type == "replica" {
			out[e.Attributes["table_id"]+"."+e.Attributes["partition_id"]] = e
		} else {
			out["disk@"+e.ID] = e
		}
	}
	return out
}

// The legacy perf counters that admin-cli's node-stat, table-stat and
// partition-stat read, against real replica servers: over a snapshot interval
// in which the test wrote and read every partition, the per-partition get/put
// rates are the /metrics request counts of that interval divided by its length
// (non-zero exactly where the traffic went), the node-level rates are the sums of
// the partitions', and the other figures are /metrics' own.
func TestLegacyPerfCounters(t *testing.T) {
	const interval = 2 // seconds between snapshots
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3,
		ExtraConfig: fmt.Sprintf("[pegasus.server]\nperf_counter_update_interval_seconds = %d\n", interval)})
	c.WaitHealthy(60 * time.Second)
	tb := c.OpenTable("temp")
	addrs := c.ReplicaAddrs()

	// stamps returns every server's snapshot time, and whether they agree (the
	// servers snapshot at the same wall-clock multiples of the interval).
	stamps := func() (int64, bool) {
		var first int64
		for i, a := range addrs {
			ts := perfCounters(t, a, "perf-counters-by-prefix", "no counter has this prefix").Timestamp
			if i == 0 {
				first = ts
			} else if ts != first {
				return 0, false
			}
		}
		return first, true
	}
	// nextSnapshot waits until every server has taken its first snapshot after
	// since, and returns its time.
	nextSnapshot := func(since int64) int64 {
		var ts int64
		waitfor.Until(t, 5*interval*time.Second, 20*time.Millisecond, fmt.Sprintf("a common snapshot after %d", since), func() (bool, string) {
			var ok bool
			ts, ok = stamps()
			return ok && ts > since, fmt.Sprintf("snapshot %d, common %v", ts, ok)
		})
		return ts
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	traffic := func(round int) {
		for pidx := 0; pidx < tb.PartitionCount(); pidx++ {
			for i := 0; i < 3; i++ {
				hk := tb.HashKeyForPartition(pidx, fmt.Sprintf("pc%d-%d-", round, i))
				if err := tb.Set(ctx, hk, []byte("s"), []byte("value"), 0); err != nil {
					t.Fatalf("set: %v", err)
				}
				if _, err := tb.Get(ctx, hk, []byte("s")); err != nil {
					t.Fatalf("get: %v", err)
				}
			}
			hk := tb.HashKeyForPartition(pidx, fmt.Sprintf("pc%d-m-", round))
			if err := tb.MultiSet(ctx, hk, []kv.KV{{SortKey: []byte("a"), Value: []byte("1")}, {SortKey: []byte("b"), Value: []byte("22")}}, 0); err != nil {
				t.Fatalf("multi_set: %v", err)
			}
		}
	}

	// A round: right after a common snapshot T1, read /metrics, send the traffic,
	// read /metrics again; if no server took a snapshot meanwhile, the next
	// snapshot T2 covers exactly that traffic. Rounds that straddle a snapshot
	// are tried again.
	var before, after, later []map[string]metrics.EntitySnapshot
	var snaps []perfInfo
	for round := 0; ; round++ {
		if round == 5 {
			t.Fatal("no round of traffic fitted within one snapshot interval")
		}
		t1 := nextSnapshot(nextSnapshot(0)) // just after a snapshot
		before, after = nil, nil
		for _, a := range addrs {
			before = append(before, replicaMetrics(t, a))
		}
		traffic(round)
		for _, a := range addrs {
			after = append(after, replicaMetrics(t, a))
		}
		if ts, ok := stamps(); !ok || ts != t1 {
			t.Logf("round %d: a snapshot was taken during the traffic; again", round)
			continue
		}
		t2 := nextSnapshot(t1)
		snaps, later = nil, nil
		for _, a := range addrs {
			snaps = append(snaps, perfCounters(t, a, "perf-counters"))
			later = append(later, replicaMetrics(t, a))
		}
		stale := false
		for _, s := range snaps {
			stale = stale || s.Timestamp != t2
		}
		if t2-t1 > interval+1 || stale {
			t.Logf("round %d: snapshots %d then %d; again", round, t1, t2)
			continue
		}
		break
	}

	const app = "replica*app.pegasus*"
	appID := strconv.Itoa(int(tb.AppID()))
	served := map[string]bool{} // partitions whose get and put rates were not zero
	for i, a := range addrs {
		got := snaps[i].byName()
		sums := map[string]float64{}
		for gpid, e := range after[i] {
			if strings.HasPrefix(gpid, "disk@") {
				continue
			}
			b := before[i][gpid]
			for _, m := range []struct{ legacy, metric string }{
				{"get_qps", "get_requests"}, {"put_qps", "put_requests"}, {"multi_put_qps", "multi_put_requests"},
				{"get_bytes", "get_bytes"}, {"put_bytes", "put_bytes"}, {"multi_put_bytes", "multi_put_bytes"},
			} {
				name := app + m.legacy + "@" + gpid
				rate, ok := got[name]
				if !ok {
					t.Errorf("%s: %s not served", a, name)
					continue
				}
				delta := e.ValueOf(m.metric) - b.ValueOf(m.metric)
				// Over the snapshot interval; the timers fire a little late, so
				// allow for a tenth.
				if delta == 0 && rate != 0 || math.Abs(rate*interval-delta) > 0.1*delta {
					t.Errorf("%s: %s = %v/s, but /metrics %s grew by %v in the %ds interval", a, name, rate, m.metric, delta, interval)
				}
				sums[m.legacy] += rate
			}
			if got[app+"get_qps@"+gpid] > 0 && got[app+"put_qps@"+gpid] > 0 {
				served[gpid] = true
			}
			// Figures that are not rates are /metrics' own (read just before
			// or just after the snapshot).
			for _, m := range []struct{ legacy, metric string }{
				{"disk.storage.sst(MB)", "rdb_total_sst_size_mb"}, {"rdb.estimate_num_keys", "rdb_estimated_keys"},
				{"rdb.memtable.memory_usage", "rdb_memtable_mem_usage_bytes"},
			} {
				v, l := got[app+m.legacy+"@"+gpid], later[i][gpid]
				if v != e.ValueOf(m.metric) && v != l.ValueOf(m.metric) {
					t.Errorf("%s: %s@%s = %v, /metrics %s %v then %v", a, m.legacy, gpid, v, m.metric, e.ValueOf(m.metric), l.ValueOf(m.metric))
				}
			}
			if lm, ok := e.Find("get_latency_ns"); ok && lm.P99 != nil {
				if v := got[app+"get_latency@"+gpid]; v != *lm.P99 {
					t.Errorf("%s: get_latency@%s = %v, /metrics p99 %v", a, gpid, v, *lm.P99)
				}
			}
		}
		// Node level: the sums over the node's partitions, in the same snapshot.
		for _, n := range []struct{ name, op string }{
			{"zion*profiler*RPC_RRDB_RRDB_GET.qps", "get_qps"},
			{"zion*profiler*RPC_RRDB_RRDB_PUT.qps", "put_qps"},
			{"zion*profiler*RPC_RRDB_RRDB_MULTI_PUT.qps", "multi_put_qps"},
		} {
			if v := got[n.name]; math.Abs(v-sums[n.op]) > 1e-9*math.Max(1, v) {
				t.Errorf("%s: %s = %v, the partitions' %s add up to %v", a, n.name, v, n.op, sums[n.op])
			}
		}
		t.Logf("%s: get %.1f/s, put %.1f/s, multi_put %.1f/s over its partitions", a, sums["get_qps"], sums["put_qps"], sums["multi_put_qps"])
		var capMB float64
		for k, e := range after[i] {
			if strings.HasPrefix(k, "disk@") {
				capMB += e.ValueOf("disk_capacity_total_mb")
			}
		}
		if v := got["replica*eon.replica_stub*disk.capacity.total(MB)"]; v != capMB || v <= 0 {
			t.Errorf("%s: disk.capacity.total(MB) = %v, /metrics disks %v", a, v, capMB)
		}
		if v := got["replica*server*memused.res(MB)"]; v <= 0 {
			t.Errorf("%s: memused.res(MB) = %v", a, v)
		}
	}
	for pidx := 0; pidx < tb.PartitionCount(); pidx++ {
		if gpid := appID + "." + strconv.Itoa(pidx); !served[gpid] {
			t.Errorf("partition %s: no server reports get and put rates for it", gpid)
		}
	}
}
