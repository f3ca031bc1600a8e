package collector

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/shell"
)

// newOffline returns a collector that is never run: tests feed its state.
func newOffline(t *testing.T, clk *fakeClock) *Collector {
	t.Helper()
	c, err := New(Options{ClusterName: "unit", MetaServers: []string{"127.0.0.1:1"}, Now: clk.Now,
		DetectInterval: 3 * time.Second, HotMinRate: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// feed gives the collector an availability history and two collection rounds
// in which partition 1 of table "hot" takes all the reads.
func feed(c *Collector, clk *fakeClock) {
	c.book.setTable(1, 2)
	c.book.record(0, 2*time.Millisecond, "")
	c.book.record(1, time.Second, "write: ERR_TIMEOUT")
	clk.Advance(time.Minute)
	c.book.record(0, 2*time.Millisecond, "")
	tables := []tableInfo{{Name: "temp", AppID: 1, PartitionCount: 2}, {Name: "hot", AppID: 2, PartitionCount: 4}}
	ents := func(gets float64) []metrics.EntitySnapshot {
		return []metrics.EntitySnapshot{
			replicaEntity(1, 0, primary, 1, map[string]float64{"put": gets / 10, "get": gets / 10}, map[string]float64{"put": 2e6, "get": 1e6}),
			replicaEntity(1, 1, primary, 1, map[string]float64{"put": gets / 10, "get": gets / 10}, map[string]float64{"put": 2e6}),
			replicaEntity(2, 0, primary, 3, nil, nil),
			replicaEntity(2, 1, primary, 3, map[string]float64{"get": gets}, map[string]float64{"get": 5e5}),
			replicaEntity(2, 2, primary, 3, nil, nil),
			replicaEntity(2, 3, secondary, 3, nil, nil),
		}
	}
	t0 := clk.Now()
	c.apply(tables, []nodeScrape{{Addr: "127.0.0.1:34801", Snap: snap(t0, ents(0)...)}}, true)
	clk.Advance(10 * time.Second)
	c.apply(tables, []nodeScrape{{Addr: "127.0.0.1:34801", Snap: snap(clk.Now(), ents(50000)...)},
		{Addr: "127.0.0.1:34802", Err: io.ErrUnexpectedEOF}}, true)
}

func get(t *testing.T, h http.Handler, path string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.Bytes()
}

// TestAvailabilityContract checks /availability against the type the shell
// decodes: no field the shell does not know, none it knows missing, and the
// same values after a round trip through it.
func TestAvailabilityContract(t *testing.T) {
	clk := &fakeClock{t: at(12, 0, 1)}
	c := newOffline(t, clk)
	feed(c, clk)
	code, body := get(t, c.HTTPHandler(), "/availability")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	var theirs shell.AvailabilityReport
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&theirs); err != nil {
		t.Fatalf("the shell cannot decode /availability: %v\n%s", err, body)
	}
	var ours AvailabilityReport
	if err := json.Unmarshal(body, &ours); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(theirs)
	b, _ := json.Marshal(ours)
	if !bytes.Equal(a, b) {
		t.Errorf("round trip through the shell's type differs:\nshell: %s\nours:  %s", a, b)
	}
	// Both types have the same JSON field names, level by level.
	for _, pair := range [][2]reflect.Type{
		{reflect.TypeOf(ours), reflect.TypeOf(theirs)},
		{reflect.TypeOf(ours.Minute), reflect.TypeOf(theirs.Minute)},
		{reflect.TypeOf(PartitionProbe{}), reflect.TypeOf(shell.PartitionProbe{})},
	} {
		if x, y := jsonFields(pair[0]), jsonFields(pair[1]); !reflect.DeepEqual(x, y) {
			t.Errorf("%v fields %v, shell's %v fields %v", pair[0], x, pair[1], y)
		}
	}
	if ours.Minute.Period != "2024-07-01 12:00" || ours.Minute.Attempts != 2 || ours.Minute.PPM != 500000 ||
		len(ours.Partitions) != 2 || ours.Partitions[1].Result != "FAIL" || ours.DetectIntervalSeconds != 3 {
		t.Errorf("report = %s", body)
	}
}

func jsonFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		out = append(out, t.Field(i).Tag.Get("json")+" "+t.Field(i).Type.Kind().String())
	}
	return out
}

// parseProm parses Prometheus text as a scraper does.
func parseProm(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus text does not parse: %v\n%s", err, text)
	}
	return fams
}

// promValue returns the value of the series of family name whose labels
// include want, and whether there is one.
func promValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	fam := fams[name]
	if fam == nil {
		return 0, false
	}
next:
	for _, m := range fam.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func TestPrometheusSeries(t *testing.T) {
	clk := &fakeClock{t: at(12, 0, 1)}
	c := newOffline(t, clk)
	feed(c, clk)
	code, body := get(t, c.HTTPHandler(), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	fams := parseProm(t, body)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pegasus_availability_ratio", map[string]string{"cluster": "unit", "table": "temp", "period": "minute"}, 0.5},
		{"pegasus_availability_period_probes", map[string]string{"table": "temp", "period": "minute"}, 2},
		{"pegasus_availability_period_failures", map[string]string{"table": "temp", "period": "minute"}, 1},
		{"pegasus_availability_probes_total", map[string]string{"table": "temp", "partition": "0"}, 2},
		{"pegasus_availability_probe_failures_total", map[string]string{"table": "temp", "partition": "1"}, 1},
		{"pegasus_availability_partition_up", map[string]string{"table": "temp", "partition": "1"}, 0},
		{"pegasus_availability_partition_up", map[string]string{"table": "temp", "partition": "0"}, 1},
		{"pegasus_availability_probe_latency_seconds", map[string]string{"table": "temp", "partition": "1"}, 1},
		{"pegasus_availability_consecutive_failures", map[string]string{"table": "temp", "partition": "1"}, 1},
		{"pegasus_table_ops_per_second", map[string]string{"table": "hot", "op": "get", "kind": "read"}, 5000},
		{"pegasus_table_ops_per_second", map[string]string{"table": "temp", "op": "put", "kind": "write"}, 1000},
		{"pegasus_table_ops_per_second", map[string]string{"table": "temp", "op": "scan", "kind": "read"}, 0},
		{"pegasus_table_latency_seconds", map[string]string{"table": "temp", "op": "put", "percentile": "p99"}, 0.002},
		{"pegasus_table_latency_seconds", map[string]string{"table": "hot", "op": "get", "percentile": "p50"}, 0.000125},
		{"pegasus_table_storage_bytes", map[string]string{"table": "hot"}, 9 << 20},
		{"pegasus_table_replicas", map[string]string{"table": "hot", "role": "secondary"}, 1},
		{"pegasus_table_partitions", map[string]string{"table": "hot"}, 4},
		{"pegasus_table_hot_partitions", map[string]string{"table": "hot", "kind": "read"}, 1},
		{"pegasus_table_hot_partitions", map[string]string{"table": "hot", "kind": "write"}, 0},
		{"pegasus_partition_hot", map[string]string{"table": "hot", "partition": "1", "kind": "read"}, 1},
		{"pegasus_partition_hot", map[string]string{"table": "hot", "partition": "0", "kind": "read"}, 0},
		{"pegasus_partition_ops_per_second", map[string]string{"table": "hot", "partition": "1", "kind": "read"}, 5000},
		{"pegasus_node_up", map[string]string{"node": "127.0.0.1:34801"}, 1},
		{"pegasus_node_up", map[string]string{"node": "127.0.0.1:34802"}, 0},
		{"pegasus_node_ops_per_second", map[string]string{"node": "127.0.0.1:34801", "op": "get", "kind": "read"}, 6000},
		{"pegasus_node_replicas", map[string]string{"node": "127.0.0.1:34801", "role": "primary"}, 5},
		{"pegasus_collector_last_collect_timestamp_seconds", nil, float64(clk.Now().Unix())},
	} {
		got, ok := promValue(fams, c.name, c.labels)
		if !ok {
			t.Errorf("no series %s%v", c.name, c.labels)
			continue
		}
		if !near(got, c.want) && !(c.want != 0 && near(got/c.want, 1)) {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if score, _ := promValue(fams, "pegasus_partition_hotspot_score", map[string]string{"table": "hot", "partition": "1", "kind": "read"}); score < 3 {
		t.Errorf("hot partition score = %v", score)
	}
	// A period not closed yet has no series rather than a made-up ratio.
	if _, ok := promValue(fams, "pegasus_availability_ratio", map[string]string{"period": "day"}); ok {
		t.Error("availability ratio of a day that has not ended")
	}
	// Idle operations have no latency series rather than a misleading 0.
	if _, ok := promValue(fams, "pegasus_table_latency_seconds", map[string]string{"table": "temp", "op": "scan"}); ok {
		t.Error("latency series for an idle operation")
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Error("runtime and process series missing")
	}
	if fams["pegasus_availability_probes_total"].GetType() != dto.MetricType_COUNTER {
		t.Error("probes_total is not a counter")
	}
}

func TestJSONEndpoints(t *testing.T) {
	clk := &fakeClock{t: at(12, 0, 1)}
	c := newOffline(t, clk)
	h := c.HTTPHandler()
	// Before any collection the documents are well-formed and empty.
	var apps AppsReport
	if code, body := get(t, h, "/apps"); code != 200 || json.Unmarshal(body, &apps) != nil || apps.UpdatedAt != "" || apps.Tables == nil {
		t.Fatalf("/apps before a collection: %d %s", code, body)
	}
	feed(c, clk)
	code, body := get(t, h, "/apps?history")
	if code != 200 {
		t.Fatalf("/apps: %d", code)
	}
	if err := json.Unmarshal(body, &apps); err != nil {
		t.Fatal(err)
	}
	if apps.Cluster != "unit" || len(apps.Tables) != 2 || apps.Tables[0].Table != "hot" || apps.Tables[0].HotPartitions != 1 ||
		len(apps.Tables[0].History) != 2 || apps.Tables[1].OPS["put"] != 1000 || len(apps.Nodes) != 2 {
		t.Errorf("/apps = %s", body)
	}
	if _, body := get(t, h, "/apps"); strings.Contains(string(body), `"history"`) {
		t.Error("history without ?history")
	}
	var hs HotspotsReport
	_, body = get(t, h, "/hotspots")
	if err := json.Unmarshal(body, &hs); err != nil {
		t.Fatal(err)
	}
	if len(hs.Hot) != 1 || hs.Hot[0].Table != "hot" || hs.Hot[0].Partition != 1 || hs.Hot[0].Kind != "read" ||
		hs.Hot[0].Primary != "127.0.0.1:34801" || len(hs.Tables) != 2 || len(hs.Tables[0].Read) != 4 || hs.Threshold != 3 {
		t.Errorf("/hotspots = %s", body)
	}
	var v map[string]string
	if _, body := get(t, h, "/version"); json.Unmarshal(body, &v) != nil || v["Version"] == "" {
		t.Errorf("/version = %s", body)
	}
	if code, body := get(t, h, "/nosuch"); code != 404 || !strings.Contains(string(body), `service not found for "/nosuch"`) {
		t.Errorf("/nosuch: %d %s", code, body)
	}
	// The remote commands answer the same documents.
	var fromCmd AvailabilityReport
	if err := json.Unmarshal([]byte(c.cmds.Run(t.Context(), "availability", nil)), &fromCmd); err != nil || fromCmd.Table != "temp" {
		t.Errorf("availability command: %v %+v", err, fromCmd)
	}
	var stat AppsReport
	if err := json.Unmarshal([]byte(c.cmds.Run(t.Context(), "app-stat", []string{"hot"})), &stat); err != nil || len(stat.Tables) != 1 {
		t.Errorf("app-stat hot: %v %+v", err, stat)
	}
}
