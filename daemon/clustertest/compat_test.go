package clustertest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/daemon/collector"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/rpc/kv"
	"github.com/pegasusgo/pegasus/shell"
)

// TestHostPortFields checks [meta_server] send_host_port_fields against real
// servers: off (the default) the query-config and list-nodes replies carry no
// hp_* field, so the 2022 go-client of admin-cli and pegic can decode them;
// on, every address field has its host_port twin, equal to it. With the key
// on the replica servers get the fields in their config syncs too, and the
// cluster must still serve reads and writes.
func TestHostPortFields(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters")
	}
	for _, tc := range []struct {
		name  string
		extra string
		want  bool
	}{
		{"default", "", false},
		{"on", "[meta_server]\nsend_host_port_fields = true\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3, ExtraConfig: tc.extra})
			c.WaitHealthy(90 * time.Second)
			mc := metaClient(t, c)

			cfg := queryConfig(t, mc, "temp")
			if len(cfg.Partitions) != 8 {
				t.Fatalf("query config: %d partitions, want 8", len(cfg.Partitions))
			}
			for _, pc := range cfg.Partitions {
				pidx := pc.Pid.PartitionIndex
				if !tc.want {
					if pc.HpPrimary != nil || pc.HpSecondaries != nil || pc.HpLastDrops != nil {
						t.Errorf("partition %d carries hp_* fields: %v %v %v", pidx, pc.HpPrimary, pc.HpSecondaries, pc.HpLastDrops)
					}
					continue
				}
				if pc.HpPrimary == nil || pc.HpSecondaries == nil || pc.HpLastDrops == nil {
					t.Errorf("partition %d: hp_primary %v hp_secondaries %v hp_last_drops %v, want all set", pidx, pc.HpPrimary, pc.HpSecondaries, pc.HpLastDrops)
					continue
				}
				checkTwin(t, "hp_primary", pc.Primary, pc.HpPrimary)
				checkTwins(t, "hp_secondaries", pc.Secondaries, pc.HpSecondaries)
				checkTwins(t, "hp_last_drops", pc.LastDrops, pc.HpLastDrops)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			nodes, err := rpc.CallMeta[admin.ConfigurationListNodesResponse](ctx, mc, rpc.CodeListNodes,
				&admin.ConfigurationListNodesRequest{Status: admin.NodeStatus_NS_INVALID})
			if err != nil || !nodes.Err.OK() {
				t.Fatalf("list nodes: %v %v", err, nodes)
			}
			if len(nodes.Infos) != 3 {
				t.Fatalf("list nodes: %d nodes, want 3", len(nodes.Infos))
			}
			for _, n := range nodes.Infos {
				switch {
				case !tc.want && n.HpNode != nil:
					t.Errorf("node %v carries hp_node %v", n.Node, n.HpNode)
				case tc.want:
					checkTwin(t, "hp_node", n.Node, n.HpNode)
				}
			}

			// The replica servers decode their config syncs with the fields
			// present: data still flows.
			tb := c.OpenTable("temp")
			if err := tb.Set(ctx, []byte("hp"), []byte("sk"), []byte("v"), 0); err != nil {
				t.Fatalf("set: %v", err)
			}
			if got, err := tb.Get(ctx, []byte("hp"), []byte("sk")); err != nil || string(got) != "v" {
				t.Fatalf("get: %q %v", got, err)
			}
		})
	}
}

// checkTwin checks that a host_port names the same node as its rpc_address:
// the IP as host (no host name is known for nodes), the same port, type 1; an
// empty address has the empty host_port.
func checkTwin(t *testing.T, field string, addr *base.RPCAddress, hp *base.HostPort) {
	t.Helper()
	want := &base.HostPort{}
	if addr.IsValid() {
		want = &base.HostPort{Host: addr.Addr().String(), Port: addr.Port(), Type: 1}
	}
	if hp == nil || !hp.Equals(want) {
		t.Errorf("%s = %+v for %v, want %+v", field, hp, addr, want)
	}
}

func checkTwins(t *testing.T, field string, addrs []*base.RPCAddress, hps []*base.HostPort) {
	t.Helper()
	if len(addrs) != len(hps) {
		t.Errorf("%s has %d entries for %d addresses", field, len(hps), len(addrs))
		return
	}
	for i := range addrs {
		checkTwin(t, field, addrs[i], hps[i])
	}
}

// TestClusterInfoMetadataLocation checks that cluster_info, over
// RPC_CM_CLUSTER_INFO and in the shell, says where the metadata lives: in the
// embedded store's directory, or in ZooKeeper under the cluster root, with
// upstream's keys first and in upstream's order.
func TestClusterInfoMetadataLocation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters")
	}
	upstreamKeys := []string{"meta_servers", "primary_meta_server", "zookeeper_hosts", "zookeeper_root", "meta_function_level",
		"balance_operation_count", "primary_replica_count_stddev", "total_replica_count_stddev", "cluster_name"}
	for _, tc := range []struct {
		name  string
		useZK bool
		// want gives the expected location keys from the running cluster.
		want func(c *clustertest.Cluster) map[string]string
	}{
		{"embedded", false, func(c *clustertest.Cluster) map[string]string {
			return map[string]string{
				"zookeeper_hosts":    "-",
				"zookeeper_root":     "/pegasus/test",
				"meta_state_service": "embedded " + filepath.Join(c.Dir(), "meta_state"),
			}
		}},
		{"zookeeper", true, func(c *clustertest.Cluster) map[string]string {
			return map[string]string{
				"zookeeper_hosts":    c.ZooKeeper().Addr(),
				"zookeeper_root":     "/pegasus/test",
				"meta_state_service": "zookeeper " + c.ZooKeeper().Addr() + "/pegasus/test",
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3, UseZK: tc.useZK})
			want := tc.want(c)
			mc := metaClient(t, c)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := rpc.CallMeta[admin.ConfigurationClusterInfoResponse](ctx, mc, rpc.CodeClusterInfo, &admin.ConfigurationClusterInfoRequest{})
			if err != nil || !r.Err.OK() || len(r.Keys) != len(r.Values) {
				t.Fatalf("cluster info: %v %+v", err, r)
			}
			if len(r.Keys) != len(upstreamKeys)+1 || strings.Join(r.Keys[:len(upstreamKeys)], ",") != strings.Join(upstreamKeys, ",") ||
				r.Keys[len(upstreamKeys)] != "meta_state_service" {
				t.Errorf("keys %v, want upstream's %v then meta_state_service", r.Keys, upstreamKeys)
			}
			got := map[string]string{}
			for i, k := range r.Keys {
				got[k] = r.Values[i]
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("RPC %s = %q, want %q", k, got[k], v)
				}
			}

			out := runShellScript(t, c, "cluster_info")
			for k, v := range want {
				if !hasKVLine(out, k, v) {
					t.Errorf("shell cluster_info: no line %q : %q in\n%s", k, v, out)
				}
			}
		})
	}
}

// hasKVLine reports whether a key/value table printed by the shell has the
// line "key<pad>: value<pad>".
func hasKVLine(out, key, value string) bool {
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == key && strings.TrimSpace(v) == value {
			return true
		}
	}
	return false
}

// runShellScript runs shell commands against the cluster and returns their
// standard output; anything on standard error fails the test.
func runShellScript(t *testing.T, c *clustertest.Cluster, script string, tweak ...func(*shell.Options)) string {
	t.Helper()
	var out, errOut bytes.Buffer
	o := shell.Options{MetaServers: c.MetaAddrs(), ClusterName: "test", Stdout: &out, Stderr: &errOut}
	for _, f := range tweak {
		f(&o)
	}
	sh, err := shell.New(o)
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

// TestTempTableEmpty checks the temp table of a cluster whose collector probes
// it, as the default onebox does: scans over several probe intervals find no
// row but a probe's own in its instant (a row written less than one probe
// interval ago), the availability history lands in stat, and the collector's
// /availability and the shell's availability command read it from there.
func TestTempTableEmpty(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and waits for a minute boundary")
	}
	c := clustertest.Start(t, clustertest.Options{
		Metas: 1, Replicas: 3, Collector: true,
		Tables: []clustertest.Table{{Name: "temp", Partitions: 8, Replicas: 3}, {Name: "stat", Partitions: 4, Replicas: 3}},
	})
	c.WaitHealthy(90 * time.Second)
	// The harness probes every second ([pegasus.collector]
	// available_detect_interval_seconds = 1).
	const interval = time.Second
	temp, stat := c.OpenTable("temp"), c.OpenTable("stat")
	report := func() collector.AvailabilityReport {
		var r collector.AvailabilityReport
		resp, err := http.Get("http://" + c.CollectorAddr() + "/availability")
		if err != nil {
			return r
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&r)
		return r
	}
	waitUntil(t, 60*time.Second, "every temp partition probed OK", func() (bool, string) {
		r := report()
		ok := len(r.Partitions) == 8
		for _, p := range r.Partitions {
			ok = ok && p.Result == "OK"
		}
		return ok, fmt.Sprintf("%+v", r.Partitions)
	})

	// checkTemp scans temp several times over four probe intervals.
	checkTemp := func(when string) {
		t.Helper()
		inFlight := 0
		deadline := time.Now().Add(4 * interval)
		for scans := 0; scans < 8 || time.Now().Before(deadline); scans++ {
			for _, row := range scanTable(t, temp) {
				if !freshProbeRow(row, interval) {
					t.Errorf("%s: temp holds %q", when, row)
				} else {
					inFlight++
				}
			}
			// Pacing only: the scans are meant to fall at various points of
			// the probe cycle.
			time.Sleep(interval / 3)
		}
		t.Logf("%s: %d probe rows seen in flight", when, inFlight)
	}
	checkTemp("while probing")

	// The first minute boundary writes the history, into stat.
	var minute string
	waitUntil(t, 90*time.Second, "a minute row in stat", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rows, _, err := stat.MultiGet(ctx, []byte("detect_available_minute"), nil, kv.MultiGetOptions{})
		if err != nil || len(rows) == 0 {
			return false, fmt.Sprint(rows, err)
		}
		minute = string(rows[len(rows)-1].SortKey)
		return true, ""
	})
	checkTemp("after a minute boundary")

	// /availability reads the history back from stat: a row written there
	// behind the collector's back shows up.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stat.Set(ctx, []byte("detect_available_minute"), []byte("2999-12-31 23:59"), []byte("7,6,857142"), time.Hour); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the history in /availability", func() (bool, string) {
		r := report()
		found := map[string]bool{}
		for _, h := range r.History {
			found[h.Kind+" "+h.Period] = true
		}
		return r.HistoryTable == "stat" && r.HistoryError == "" && found["minute "+minute] && found["minute 2999-12-31 23:59"],
			fmt.Sprintf("%+v", r)
	})
	out := runShellScript(t, c, "availability", func(o *shell.Options) { o.Collector = c.CollectorAddr() })
	for _, want := range []string{"history_table            : stat", "[history]"} {
		if !strings.Contains(out, want) {
			t.Errorf("shell availability: no %q in\n%s", want, out)
		}
	}
	if !hasFields(out, "2999-12-31", "23:59", "minute", "7", "1", "85.714", "857142") || !hasFields(out, strings.Fields(minute)[0], strings.Fields(minute)[1], "minute") {
		t.Errorf("shell availability: the history rows of stat are missing:\n%s", out)
	}
}

// freshProbeRow reports whether a scanned row is a probe's own written less
// than one probe interval ago (plus a second: the value holds whole seconds).
func freshProbeRow(row [3]string, interval time.Duration) bool {
	ts, ok := strings.CutPrefix(row[2], "detect_value_")
	if !strings.HasPrefix(row[0], "detect_available_p") || row[1] != "" || !ok {
		return false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	return err == nil && time.Since(time.Unix(sec, 0)) < interval+time.Second
}

// scanTable returns every row of a table: hash key, sort key, value.
func scanTable(t *testing.T, tb *kv.Table) [][3]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scanners, err := tb.GetUnorderedScanners(ctx, 1, kv.ScannerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rows [][3]string
	for _, s := range scanners {
		for {
			hk, sk, v, ok, err := s.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			rows = append(rows, [3]string{string(hk), string(sk), string(v)})
		}
		s.Close(ctx)
	}
	return rows
}

// hasFields reports whether a line of out starts with these
// whitespace-separated fields.
func hasFields(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= len(fields) && slices.Equal(f[:len(fields)], fields) {
			return true
		}
	}
	return false
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	waitfor.Until(t, d, 200*time.Millisecond, what, cond)
}
