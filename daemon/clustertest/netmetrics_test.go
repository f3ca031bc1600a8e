//go:build linux

package clustertest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/internal/waitfor"
)

// serverMetric reads one metric of the server entity of a server's /metrics.
func serverMetric(addr, name string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics?types=server")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var snap metrics.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return 0, err
	}
	for _, e := range snap.Entities {
		if e.Type == "server" {
			if m, ok := e.Find(name); ok && m.Value != nil {
				return *m.Value, nil
			}
		}
	}
	return 0, fmt.Errorf("no %s in the server entity of %s", name, addr)
}

// TestNetworkMetrics checks that the RPC server's connection accounting is in
// /metrics: the open sessions, and the per-IP refusals once a client opens more
// connections than conn_threshold_per_ip (from 127.0.0.2, so the cluster's own
// traffic is not capped).
func TestNetworkMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	const perIP = 5
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 1, Collector: true,
		Tables:      []clustertest.Table{{Name: "temp", Partitions: 1, Replicas: 1}},
		ExtraConfig: fmt.Sprintf("[network]\nconn_threshold_per_ip = %d\n", perIP)})
	replica := c.ReplicaAddrs()[0]
	read := func(addr, name string) func() (bool, string) {
		return func() (bool, string) {
			v, err := serverMetric(addr, name)
			if err != nil {
				return false, err.Error()
			}
			return v > 0, fmt.Sprintf("%s = %v", name, v)
		}
	}
	waitfor.Until(t, 60*time.Second, 100*time.Millisecond, "the replica server's /metrics", func() (bool, string) {
		_, err := serverMetric(replica, "network_server_sessions")
		return err == nil, fmt.Sprint(err)
	})
	held := []net.Conn{dialFrom(t, replica, "127.0.0.2")}
	waitfor.Until(t, 60*time.Second, 100*time.Millisecond, "network_server_sessions > 0 on the replica server", read(replica, "network_server_sessions"))
	waitfor.Until(t, 60*time.Second, 100*time.Millisecond, "network_server_sessions > 0 on the meta server", read(c.MetaAddrs()[0], "network_server_sessions"))

	before, err := serverMetric(replica, "network_refused_connections_per_ip_cap")
	if err != nil {
		t.Fatal(err)
	}
	for range perIP + 3 {
		held = append(held, dialFrom(t, replica, "127.0.0.2"))
	}
	waitfor.Until(t, 10*time.Second, 50*time.Millisecond, "network_refused_connections_per_ip_cap to grow", func() (bool, string) {
		v, err := serverMetric(replica, "network_refused_connections_per_ip_cap")
		if err != nil {
			return false, err.Error()
		}
		return v >= before+3, fmt.Sprintf("%v (was %v)", v, before)
	})
	t.Logf("%d connections from 127.0.0.2 held open", len(held))

	waitfor.Until(t, 60*time.Second, 100*time.Millisecond, "pegasus_network_server_sessions on the collector", func() (bool, string) {
		resp, err := http.Get("http://" + c.CollectorAddr() + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "pegasus_network_refused_connections_per_ip_cap") &&
			strings.Contains(string(b), "pegasus_network_server_sessions{"), "series missing"
	})
}
