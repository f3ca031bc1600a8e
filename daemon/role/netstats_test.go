package role

import (
	"net"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

func TestNetStatsHolder(t *testing.T) {
	var none *NetStats
	if got := none.Stats(); got != (rpc.ServerStats{}) {
		t.Fatalf("nil holder: %+v, want zero", got)
	}
	n := NewNetStats()
	if got := n.Stats(); got != (rpc.ServerStats{}) {
		t.Fatalf("before the server: %+v, want zero", got)
	}

	srv := rpc.NewServer(rpc.NewMux(), rpc.ServerOptions{})
	n.set(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-done
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg := metrics.NewRegistry("c", "replica", 1)
	e := reg.Entity("server", "server", nil)
	NetworkMetrics(e, n.Stats)
	sessions := func() float64 {
		snap := reg.Snapshot(metrics.Filter{})
		return snap.Entities[0].ValueOf("network_server_sessions")
	}
	waitfor.True(t, 5*time.Second, 5*time.Millisecond, "network_server_sessions = 1", func() bool { return sessions() == 1 })
	snap := reg.Snapshot(metrics.Filter{Detail: true})
	for _, name := range []string{
		"network_refused_connections_total_cap", "network_refused_connections_per_ip_cap",
		"network_first_request_timeouts", "network_frame_timeouts", "network_overloaded_frames",
		"network_bad_frames", "network_auth_failures", "network_denied_calls",
	} {
		m, ok := snap.Entities[0].Find(name)
		if !ok || m.Type != "Counter" || m.Value == nil || *m.Value != 0 {
			t.Errorf("%s: %+v (found %v), want a Counter at 0", name, m, ok)
		}
	}
	if m, _ := snap.Entities[0].Find("network_server_sessions"); m.Type != "Gauge" {
		t.Errorf("network_server_sessions type %q, want Gauge", m.Type)
	}
}
