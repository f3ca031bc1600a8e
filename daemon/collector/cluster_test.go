package collector_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/daemon/collector"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc/kv"
	"github.com/pegasusgo/pegasus/shell"
)

// TestCollectorOnCluster runs the collector role of pegasus_server against a
// real cluster: healthy availability, a hot partition, the Prometheus text,
// then a primary killed with SIGKILL and the minute availability dropping and
// recovering, the shell showing the collector's figures each time. The minute
// periods are wall-clock minutes, so the test takes two to four minutes.
func TestCollectorOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and waits for minute boundaries")
	}
	c := clustertest.Start(t, clustertest.Options{
		Metas: 1, Replicas: 3, Collector: true,
		// Failure detection short enough for the failover to end well within
		// the minute of the kill, but not so short that a loaded machine
		// misses beacons of healthy servers (a 2 s lease did, failing probes in
		// the minute that must be clean).
		LeaseSeconds: 4, GraceSeconds: 8,
		Tables: []clustertest.Table{
			{Name: "temp", Partitions: 8, Replicas: 3},
			{Name: "hot", Partitions: 4, Replicas: 3},
		},
		ExtraConfig: "[pegasus.collector]\napp_stat_interval_seconds = 1\n",
	})
	c.WaitHealthy(90 * time.Second)
	col := &collectorClient{t: t, base: "http://" + c.CollectorAddr()}

	// Healthy: every partition answers its probes.
	waitFor(t, 30*time.Second, "every temp partition probed OK", func() (bool, string) {
		r := col.availability()
		ok := r.PartitionCount == 8 && len(r.Partitions) == 8
		for _, p := range r.Partitions {
			ok = ok && p.Result == "OK"
		}
		return ok, fmt.Sprintf("%+v", r)
	})

	t.Run("hot partition", func(t *testing.T) { testHotPartition(t, c, col) })
	t.Run("prometheus", func(t *testing.T) { testPrometheus(t, col) })

	// The first complete minute of a healthy cluster is fully available. The
	// one during which the collector started may hold failures of the
	// cluster's own start, so this waits for a clean one.
	healthy := waitMinute(t, col, "", func(p collector.AvailabilityPeriod) bool { return p.Failures == 0 && p.Attempts > 0 })
	if healthy.Percent != 100 || healthy.PPM != 1_000_000 {
		t.Errorf("healthy minute = %+v", healthy)
	}
	compareWithShell(t, c, col)

	// Kill the replica server that is primary of the most temp partitions,
	// right after a boundary so that the failover ends within this minute.
	victim, pidxs := primaryOfMostTemp(t, c)
	t.Logf("killing replica%d, primary of temp partitions %v", victim, pidxs)
	c.Kill("replica", victim)
	killed := time.Now()
	failed := map[int]bool{}
	waitFor(t, 45*time.Second, "the killed primaries' partitions fail then recover", func() (bool, string) {
		r := col.availability()
		allOK := len(r.Partitions) == 8
		for _, p := range r.Partitions {
			if p.Result == "FAIL" {
				failed[p.Pidx] = true
			}
			allOK = allOK && p.Result == "OK"
		}
		for _, p := range pidxs {
			allOK = allOK && failed[p]
		}
		return allOK, fmt.Sprintf("failed so far %v, now %+v", failed, r.Partitions)
	})
	t.Logf("probes of %v failed; all partitions OK again %v after the kill", failed, time.Since(killed).Round(time.Millisecond))
	for _, p := range pidxs {
		if !failed[p] {
			t.Errorf("partition %d lost its primary but no probe failed", p)
		}
	}
	killMinute := periodName(killed)
	dropped := waitMinute(t, col, "", func(p collector.AvailabilityPeriod) bool { return p.Period >= killMinute })
	t.Logf("minute of the kill: %+v", dropped)
	if dropped.Period != killMinute || dropped.Failures == 0 || dropped.Percent >= 100 || dropped.PPM >= 1_000_000 {
		t.Errorf("minute of the kill %s = %+v, want failures and under 100 %%", killMinute, dropped)
	}
	compareWithShell(t, c, col)
	checkPromMinute(t, col)
	recovered := waitMinute(t, col, dropped.Period, func(p collector.AvailabilityPeriod) bool { return p.Period > dropped.Period })
	if recovered.Failures != 0 || recovered.Attempts == 0 || recovered.PPM != 1_000_000 {
		t.Errorf("minute after the failover = %+v, want every probe OK", recovered)
	}
}

func periodName(t time.Time) string { return t.Format("2006-01-02 15:04") }

type collectorClient struct {
	t    *testing.T
	base string
}

func (c *collectorClient) get(path string) []byte {
	c.t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(c.base + path)
	if err != nil {
		c.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, body)
	}
	return body
}

func (c *collectorClient) availability() collector.AvailabilityReport {
	c.t.Helper()
	var r collector.AvailabilityReport
	if err := json.Unmarshal(c.get("/availability"), &r); err != nil {
		c.t.Fatalf("/availability: %v", err)
	}
	return r
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	waitfor.Until(t, d, 300*time.Millisecond, what, cond)
}

// waitMinute waits for a published minute other than after that satisfies
// want, giving up after two more boundaries.
func waitMinute(t *testing.T, col *collectorClient, after string, want func(collector.AvailabilityPeriod) bool) collector.AvailabilityPeriod {
	t.Helper()
	var m collector.AvailabilityPeriod
	waitFor(t, 150*time.Second, "a complete minute", func() (bool, string) {
		m = col.availability().Minute
		return m.Period != "" && m.Period != after && want(m), fmt.Sprintf("%+v", m)
	})
	return m
}

// primaryOfMostTemp returns the replica server that is primary of the most
// temp partitions, and those partitions.
func primaryOfMostTemp(t *testing.T, c *clustertest.Cluster) (int, []int) {
	t.Helper()
	best, bestP := 0, []int(nil)
	for i := range c.ReplicaAddrs() {
		rows, err := c.ReplicaInfo(i + 1)
		if err != nil {
			t.Fatal(err)
		}
		var ps []int
		for _, r := range rows {
			if r.Table == "temp" && r.Status == "PS_PRIMARY" {
				_, p, _ := strings.Cut(r.Gpid, ".")
				n, _ := strconv.Atoi(p)
				ps = append(ps, n)
			}
		}
		if len(ps) > len(bestP) {
			best, bestP = i+1, ps
		}
	}
	if best == 0 {
		t.Fatal("no replica server is primary of a temp partition")
	}
	return best, bestP
}

// compareWithShell runs the shell's availability command against the
// collector and checks that it shows the figures of /availability. The
// document is read before and after, and the comparison retried if a
// boundary fell in between.
func compareWithShell(t *testing.T, c *clustertest.Cluster, col *collectorClient) {
	t.Helper()
	for try := 0; ; try++ {
		before := col.availability()
		out := runShell(t, c, "availability -c "+c.CollectorAddr())
		after := col.availability()
		if before.Minute != after.Minute || before.Hour != after.Hour || before.Day != after.Day {
			if try < 3 {
				continue
			}
			t.Fatal("the periods keep changing under the comparison")
		}
		rows := shellPeriods(t, out)
		for name, p := range map[string]collector.AvailabilityPeriod{"minute": after.Minute, "hour": after.Hour, "day": after.Day} {
			period := p.Period
			if period == "" {
				period = "-"
			}
			want := []string{period, strconv.FormatInt(p.Attempts, 10), strconv.FormatInt(p.Failures, 10),
				strconv.FormatFloat(p.Percent, 'f', 3, 64), strconv.FormatInt(p.PPM, 10)}
			if got := rows[name]; strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("shell %s row = %q, /availability says %q\n%s", name, got, want, out)
			}
		}
		for _, want := range []string{"table                    : temp", "partition_count          : 8", "app_id                   : " + strconv.Itoa(int(after.AppID))} {
			if !strings.Contains(out, want) {
				t.Errorf("shell output lacks %q:\n%s", want, out)
			}
		}
		t.Logf("shell availability agrees with /availability: minute %+v", after.Minute)
		return
	}
}

// checkPromMinute checks that the Prometheus availability series of the
// minute carry the figures of /availability.
func checkPromMinute(t *testing.T, col *collectorClient) {
	t.Helper()
	for try := 0; try < 3; try++ {
		before := col.availability().Minute
		fams := collector.ParseProm(t, col.get("/metrics"))
		if col.availability().Minute != before {
			continue
		}
		labels := map[string]string{"cluster": "test", "table": "temp", "period": "minute"}
		ratio, _ := collector.PromValue(fams, "pegasus_availability_ratio", labels)
		probes, _ := collector.PromValue(fams, "pegasus_availability_period_probes", labels)
		failures, _ := collector.PromValue(fams, "pegasus_availability_period_failures", labels)
		if math.Abs(ratio-before.Percent/100) > 1e-9 || probes != float64(before.Attempts) || failures != float64(before.Failures) {
			t.Errorf("Prometheus minute: ratio %v probes %v failures %v; /availability %+v", ratio, probes, failures, before)
		}
		return
	}
	t.Fatal("the minute keeps changing under the comparison")
}

func runShell(t *testing.T, c *clustertest.Cluster, script string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	sh, err := shell.New(shell.Options{MetaServers: c.MetaAddrs(), ClusterName: "test", Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sh.RunScript(ctx, bufio.NewReader(strings.NewReader(script+"\n"))); err != nil {
		t.Fatal(err)
	}
	if errOut.Len() > 0 {
		t.Fatalf("shell %q: %s", script, errOut.String())
	}
	return out.String()
}

// shellPeriods parses the [availability] section of the shell's output into
// period -> {time, attempts, failures, percent, ppm}.
func shellPeriods(t *testing.T, out string) map[string][]string {
	t.Helper()
	rows := map[string][]string{}
	in := false
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "["):
			in = line == "[availability]"
			continue
		case !in:
			continue
		}
		f := strings.Fields(line)
		if len(f) < 6 || (f[0] != "minute" && f[0] != "hour" && f[0] != "day") {
			continue
		}
		n := len(f)
		rows[f[0]] = append([]string{strings.Join(f[1:n-4], " ")}, f[n-4:]...)
	}
	if len(rows) != 3 {
		t.Fatalf("no availability rows in the shell output:\n%s", out)
	}
	return rows
}

// testHotPartition loads one hash key of table "hot" and waits for its
// partition to be flagged, in /hotspots and in the Prometheus series.
func testHotPartition(t *testing.T, c *clustertest.Cluster, col *collectorClient) {
	cl, err := kv.NewClient(kv.Config{MetaServers: c.MetaAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tb, err := cl.OpenTable(ctx, "hot")
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("the-hot-key")
	pidx := tb.PartitionOf(key)
	if err := tb.Set(ctx, key, nil, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				_, _ = tb.Get(loadCtx, key, nil)
			}
		}()
	}
	defer func() {
		stopLoad()
		wg.Wait()
	}()
	var hot collector.HotPartition
	waitFor(t, 30*time.Second, "the loaded partition flagged hot", func() (bool, string) {
		var r collector.HotspotsReport
		if err := json.Unmarshal(col.get("/hotspots"), &r); err != nil {
			t.Fatal(err)
		}
		for _, h := range r.Hot {
			if h.Table == "hot" && h.Kind == "read" && h.Partition == pidx {
				hot = h
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", r.Hot)
	})
	t.Logf("hot: %+v", hot)
	if hot.Primary != tb.Primary(pidx) || hot.Rate < collector.DefaultHotMinRate || hot.Score < 3 {
		t.Errorf("hot partition = %+v, primary %s", hot, tb.Primary(pidx))
	}
	fams := collector.ParseProm(t, col.get("/metrics"))
	if v, ok := collector.PromValue(fams, "pegasus_partition_hot", map[string]string{"table": "hot", "partition": strconv.Itoa(pidx), "kind": "read"}); !ok || v != 1 {
		t.Errorf("pegasus_partition_hot of the loaded partition = %v (present %v)", v, ok)
	}
	if v, _ := collector.PromValue(fams, "pegasus_table_hot_partitions", map[string]string{"table": "hot", "kind": "read"}); v < 1 {
		t.Errorf("pegasus_table_hot_partitions{hot,read} = %v", v)
	}
	if v, _ := collector.PromValue(fams, "pegasus_table_ops_per_second", map[string]string{"table": "hot", "op": "get"}); v < collector.DefaultHotMinRate {
		t.Errorf("pegasus_table_ops_per_second{hot,get} = %v under load", v)
	}
	// Nothing else of the table is hot.
	var r collector.HotspotsReport
	if err := json.Unmarshal(col.get("/hotspots"), &r); err != nil {
		t.Fatal(err)
	}
	for _, h := range r.Hot {
		if h.Table == "hot" && h.Partition != pidx {
			t.Errorf("an unloaded partition is hot: %+v", h)
		}
	}
}

// testPrometheus checks the collector's Prometheus text: it parses, and the
// per-table QPS, latency and availability series are there with their labels.
func testPrometheus(t *testing.T, col *collectorClient) {
	var fams map[string]*dto.MetricFamily
	// The probes write and read temp once a second per partition.
	waitFor(t, 20*time.Second, "temp traffic in the Prometheus series", func() (bool, string) {
		fams = collector.ParseProm(t, col.get("/metrics"))
		put, _ := collector.PromValue(fams, "pegasus_table_ops_per_second", map[string]string{"table": "temp", "op": "put", "kind": "write"})
		get, _ := collector.PromValue(fams, "pegasus_table_ops_per_second", map[string]string{"table": "temp", "op": "get", "kind": "read"})
		_, lat := collector.PromValue(fams, "pegasus_table_latency_seconds", map[string]string{"table": "temp", "op": "put", "percentile": "p99"})
		return put > 0 && get > 0 && lat, fmt.Sprintf("put %v get %v latency %v", put, get, lat)
	})
	for _, s := range []struct {
		name   string
		labels map[string]string
	}{
		{"pegasus_availability_probes_total", map[string]string{"table": "temp", "partition": "7"}},
		{"pegasus_availability_partition_up", map[string]string{"table": "temp", "partition": "0"}},
		{"pegasus_table_ops_per_second", map[string]string{"cluster": "test", "table": "hot", "op": "scan", "kind": "read"}},
		{"pegasus_table_latency_seconds", map[string]string{"table": "temp", "op": "get", "percentile": "p50"}},
		{"pegasus_table_storage_bytes", map[string]string{"table": "temp"}},
		{"pegasus_table_replicas", map[string]string{"table": "temp", "role": "primary"}},
		{"pegasus_partition_ops_per_second", map[string]string{"table": "temp", "partition": "3", "kind": "write"}},
		{"pegasus_node_up", nil},
		{"pegasus_node_ops_per_second", map[string]string{"op": "put", "kind": "write"}},
	} {
		if _, ok := collector.PromValue(fams, s.name, s.labels); !ok {
			t.Errorf("no series %s%v", s.name, s.labels)
		}
	}
	if v, _ := collector.PromValue(fams, "pegasus_table_replicas", map[string]string{"table": "temp", "role": "primary"}); v != 8 {
		t.Errorf("temp primaries = %v, want 8", v)
	}
	if v, _ := collector.PromValue(fams, "pegasus_availability_partition_up", map[string]string{"table": "temp", "partition": "0"}); v != 1 {
		t.Errorf("partition_up{temp,0} = %v", v)
	}
}
