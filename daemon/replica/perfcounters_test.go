package replica

import (
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/daemon/remotecmd"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/storage"
)

// legacyFixture is a replica server's /metrics: two replicas of table 2, two
// disks (one in IO_ERROR) and the server entity.
type legacyFixture struct {
	reg        *metrics.Registry
	p0, p1     *metrics.Entity
	start, now time.Time
}

func newLegacyFixture() *legacyFixture {
	reg := metrics.NewRegistry("c", "replica", 34801)
	f := &legacyFixture{
		reg:   reg,
		p0:    reg.Entity("replica", "2.0", map[string]string{"table_id": "2", "partition_id": "0"}),
		p1:    reg.Entity("replica", "2.1", map[string]string{"table_id": "2", "partition_id": "1"}),
		start: time.Unix(1700000000, 0),
	}
	srv := reg.Entity("server", "server", nil)
	srv.Gauge("resident_mem_usage_mb").Set(123)
	srv.Gauge("virtual_mem_usage_mb").Set(456)
	srv.Gauge("rdb_block_cache_mem_usage_bytes").Set(1 << 20)
	srv.Gauge("total_replicas").Set(2)
	srv.Gauge("learning_replicas").Set(0)
	for _, d := range []struct {
		tag            string
		capMB, availMB float64
		status         float64
	}{{"ssd1", 1000, 333, 0}, {"ssd2", 3000, 2500, 0}, {"bad", 500, 500, diskStatusIOError}} {
		e := reg.Entity("disk", d.tag, map[string]string{"tag": d.tag})
		e.Gauge("disk_capacity_total_mb").Set(d.capMB)
		e.Gauge("disk_capacity_avail_mb").Set(d.availMB)
		e.Gauge("disk_status").Set(d.status)
	}
	f.p0.Gauge("rdb_total_sst_size_mb").Set(1.5)
	f.p0.Gauge("rdb_total_sst_files").Set(3)
	f.p0.Gauge("rdb_estimated_keys").Set(1000)
	f.p0.Gauge("rdb_memtable_mem_usage_bytes").Set(4096)
	f.p0.Gauge("rdb_index_and_filter_blocks_mem_usage_bytes").Set(2048)
	f.p0.Gauge("rdb_block_cache_hit_count").Set(7)
	f.p0.Gauge("rdb_block_cache_total_count").Set(9)
	for _, v := range []float64{100, 200, 300} {
		f.p0.Percentile("get_latency_ns").Observe(v)
	}
	return f
}

// counters takes a legacy snapshot after the given time since the start.
func (f *legacyFixture) counters(d *remotecmd.Deltas, after time.Duration) map[string]remotecmd.Counter {
	out := map[string]remotecmd.Counter{}
	for _, c := range legacyCounters(f.reg.Snapshot(metrics.Filter{}), d, f.start.Add(after)) {
		out[c.Name] = c
	}
	return out
}

func TestLegacyCounters(t *testing.T) {
	f := newLegacyFixture()
	d := remotecmd.NewDeltas(f.start)
	f.p0.Counter("get_requests").Add(50)
	f.p1.Counter("get_requests").Add(30)
	f.p0.Counter("put_requests").Add(20)
	f.p0.Counter("get_bytes").Add(1000)
	f.p0.Counter("read_expired_values").Add(4)
	f.p1.Counter("read_filtered_values").Add(6)
	first := f.counters(d, 10*time.Second)

	f.p0.Counter("get_requests").Add(30) // 80 in all
	f.p0.Counter("read_expired_values").Add(2)
	second := f.counters(d, 20*time.Second)

	const app, stub = "replica*app.pegasus*", "replica*eon.replica_stub*"
	cases := []struct {
		name  string
		snap  map[string]remotecmd.Counter
		typ   string
		value float64
	}{
		// Rates: the increase over the snapshot interval, per second.
		{app + "get_qps@2.0", first, "RATE", 5},
		{app + "get_qps@2.1", first, "RATE", 3},
		{app + "put_qps@2.0", first, "RATE", 2},
		{app + "get_qps@2.0", second, "RATE", 3},
		{app + "get_qps@2.1", second, "RATE", 0},
		{app + "put_qps@2.0", second, "RATE", 0},
		{app + "check_and_mutate_qps@2.1", first, "RATE", 0}, // served before any request
		{app + "get_bytes@2.0", first, "RATE", 100},
		{app + "check_and_mutate_bytes@2.0", first, "RATE", 0},
		// Node level: the sum over the node's partitions.
		{"zion*profiler*RPC_RRDB_RRDB_GET.qps", first, "RATE", 8},
		{"zion*profiler*RPC_RRDB_RRDB_GET.qps", second, "RATE", 3},
		{"zion*profiler*RPC_RRDB_RRDB_PUT.qps", first, "RATE", 2},
		// Volatile numbers: the count since the previous snapshot.
		{app + "recent.expire.count@2.0", first, "VOLATILE_NUMBER", 4},
		{app + "recent.expire.count@2.0", second, "VOLATILE_NUMBER", 2},
		{app + "recent.filter.count@2.1", first, "VOLATILE_NUMBER", 6},
		{app + "recent.filter.count@2.1", second, "VOLATILE_NUMBER", 0},
		// Percentiles: P99 and P999 of the same samples as /metrics.
		{app + "get_latency@2.0", first, "PERCENTILE", 300},
		{app + "get_latency@2.0.p999", first, "PERCENTILE", 300},
		{app + "put_latency@2.0", first, "PERCENTILE", 0},
		// Numbers: the gauges as they are.
		{app + "disk.storage.sst(MB)@2.0", first, "NUMBER", 1.5},
		{app + "disk.storage.sst.count@2.0", first, "NUMBER", 3},
		{app + "rdb.estimate_num_keys@2.0", first, "NUMBER", 1000},
		{app + "rdb.memtable.memory_usage@2.0", first, "NUMBER", 4096},
		{app + "rdb.index_and_filter_blocks.memory_usage@2.0", first, "NUMBER", 2048},
		{app + "rdb.block_cache.hit_count@2.0", first, "NUMBER", 7},
		{app + "rdb.block_cache.total_count@2.0", first, "NUMBER", 9},
		{app + "disk.storage.sst(MB)@2.1", first, "NUMBER", 0},
		{app + "rdb.block_cache.memory_usage", first, "NUMBER", 1 << 20},
		{"replica*server*memused.res(MB)", first, "NUMBER", 123},
		{"replica*server*memused.virt(MB)", first, "NUMBER", 456},
		{stub + "replica(Count)", first, "NUMBER", 2},
		{stub + "replicas.learning.count", first, "NUMBER", 0},
		// Disks: the IO_ERROR one is left out; ratios rounded as upstream's.
		{stub + "disk.capacity.total(MB)", first, "NUMBER", 4000},
		{stub + "disk.available.total(MB)", first, "NUMBER", 2833},
		{stub + "disk.available.total.ratio", first, "NUMBER", 71},
		{stub + "disk.available.min.ratio", first, "NUMBER", 33},
		{stub + "disk.available.max.ratio", first, "NUMBER", 83},
	}
	for _, tc := range cases {
		c, ok := tc.snap[tc.name]
		if !ok {
			t.Errorf("%s: not served", tc.name)
			continue
		}
		if c.Type != tc.typ || math.Abs(c.Value-tc.value) > 1e-9 {
			t.Errorf("%s = %s %v, want %s %v", tc.name, c.Type, c.Value, tc.typ, tc.value)
		}
	}
	// Every per-partition counter ends with @<app_id>.<pidx> (admin-cli's decoder
	// needs it), and no node-level one has an "@" or a per-partition head that
	// node-stat would add to its partitions' sum.
	heads := map[string]bool{}
	for name := range first {
		if head, _, ok := strings.Cut(name, "@"); ok {
			heads[head] = true
		}
	}
	for name := range first {
		head, at, ok := strings.Cut(name, "@")
		switch {
		case !ok && heads[head]:
			t.Errorf("node-level %s has the head of per-partition counters", name)
		case ok && at != "2.0" && at != "2.1" && at != "2.0.p999" && at != "2.1.p999":
			t.Errorf("%s: suffix %q", name, at)
		}
	}
	var perPartition []string
	for name := range first {
		if strings.HasSuffix(name, "@2.0") {
			perPartition = append(perPartition, strings.TrimSuffix(strings.TrimPrefix(name, app), "@2.0"))
		}
	}
	sort.Strings(perPartition)
	// 11 qps, 11 latencies, 8 bytes, 2 volatile, 7 gauges.
	if len(perPartition) != 39 {
		t.Errorf("%d counters per partition: %v", len(perPartition), perPartition)
	}
}

// A replica that goes away and comes back (a reopened store) counts from 0
// rather than producing a negative or inflated rate.
func TestLegacyCountersRecreated(t *testing.T) {
	f := newLegacyFixture()
	d := remotecmd.NewDeltas(f.start)
	f.p0.Counter("get_requests").Add(100)
	f.counters(d, 10*time.Second)
	f.reg.Remove("replica", "2.0")
	if _, ok := f.counters(d, 20*time.Second)["replica*app.pegasus*get_qps@2.0"]; ok {
		t.Fatal("counters of a removed replica still served")
	}
	p0 := f.reg.Entity("replica", "2.0", map[string]string{"table_id": "2", "partition_id": "0"})
	p0.Counter("get_requests").Add(40)
	got := f.counters(d, 30*time.Second)
	if c := got["replica*app.pegasus*get_qps@2.0"]; c.Value != 4 {
		t.Errorf("recreated replica: get_qps %v, want 4", c.Value)
	}
	if c := got["zion*profiler*RPC_RRDB_RRDB_GET.qps"]; c.Value != 4 {
		t.Errorf("recreated replica: node get qps %v, want 4", c.Value)
	}
}

func TestRequestSizes(t *testing.T) {
	b := func(s string) *base.Blob { return &base.Blob{Data: []byte(s)} }
	kv := func(k, v string) *rrdb.KeyValue { return &rrdb.KeyValue{Key: b(k), Value: b(v)} }
	reads := []struct {
		name      string
		req, resp any
		op        string
		n         int
	}{
		{"get", b("key45"), &rrdb.ReadResponse{Value: b("value")}, "get", 10},
		{"get not found", b("key45"), &rrdb.ReadResponse{Value: b("")}, "get", 5},
		{"multi_get", &rrdb.MultiGetRequest{HashKey: b("hash")}, &rrdb.MultiGetResponse{Kvs: []*rrdb.KeyValue{kv("s1", "v1"), kv("s2", "v22")}}, "multi_get", 4 + 4 + 5},
		{"batch_get", &rrdb.BatchGetRequest{}, &rrdb.BatchGetResponse{Data: []*rrdb.FullData{{HashKey: b("h"), SortKey: b("s"), Value: b("vv")}}}, "batch_get", 4},
		{"get_scanner", &rrdb.GetScannerRequest{}, &rrdb.ScanResponse{Kvs: []*rrdb.KeyValue{kv("key", "value")}}, "scan", 8},
		{"scan", &rrdb.ScanRequest{}, &rrdb.ScanResponse{Kvs: []*rrdb.KeyValue{}}, "scan", 0},
		{"sortkey_count", b("h"), &rrdb.CountResponse{}, "", 0},
	}
	for _, tc := range reads {
		if op, n := readSize(tc.req, tc.resp); op != tc.op || n != tc.n {
			t.Errorf("%s: %q %d bytes, want %q %d", tc.name, op, n, tc.op, tc.n)
		}
	}
	writes := []struct {
		name string
		o    storage.Op
		op   string
		n    int
	}{
		{"put", storage.Op{Put: &rrdb.UpdateRequest{Key: b("key"), Value: b("value")}}, "put", 8},
		{"multi_put", storage.Op{MultiPut: &rrdb.MultiPutRequest{HashKey: b("hash"), Kvs: []*rrdb.KeyValue{kv("a", "bb"), kv("c", "")}}}, "multi_put", 4 + 3 + 1},
		{"check_and_set", storage.Op{CheckAndSet: &rrdb.CheckAndSetRequest{HashKey: b("h"), CheckSortKey: b("cs"), SetSortKey: b("ss"), SetValue: b("vvv")}}, "check_and_set", 8},
		{"check_and_mutate", storage.Op{CheckAndMutate: &rrdb.CheckAndMutateRequest{HashKey: b("h"), CheckSortKey: b("cs"),
			MutateList: []*rrdb.Mutate{{SortKey: b("s1"), Value: b("v1")}, {SortKey: b("s2")}}}}, "check_and_mutate", 3 + 4 + 2},
		{"remove", storage.Op{Remove: b("key")}, "", 0},
		{"incr", storage.Op{Incr: &rrdb.IncrRequest{Key: b("key")}}, "", 0},
	}
	for _, tc := range writes {
		if op, n := writeSize(tc.o); op != tc.op || n != tc.n {
			t.Errorf("%s: %q %d bytes, want %q %d", tc.name, op, n, tc.op, tc.n)
		}
	}
}
