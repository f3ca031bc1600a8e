package role

import (
	"sync/atomic"

	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/rpc"
)

// NetStats gives the role's metrics the connection accounting of its RPC
// server, which Serve creates after the role has built its HTTP handler. Serve
// sets it; before that (and on a nil holder) the figures are zero.
type NetStats struct {
	srv atomic.Pointer[rpc.Server]
}

// NewNetStats returns an empty holder.
func NewNetStats() *NetStats { return &NetStats{} }

func (n *NetStats) set(s *rpc.Server) {
	if n != nil {
		n.srv.Store(s)
	}
}

// Stats returns the server's accounting, zero before Serve starts it.
func (n *NetStats) Stats() rpc.ServerStats {
	if n == nil {
		return rpc.ServerStats{}
	}
	if s := n.srv.Load(); s != nil {
		return s.Stats()
	}
	return rpc.ServerStats{}
}

// NetworkMetrics adds upstream's network_server_sessions gauge and the
// counters of what the server's limits did to e (the server entity), read from
// stats (nil: nothing is added).
func NetworkMetrics(e *metrics.Entity, stats func() rpc.ServerStats) {
	if stats == nil {
		return
	}
	e.GaugeFunc("network_server_sessions", func() float64 { return float64(stats().Connections) })
	for _, c := range rpc.StatCounters() {
		e.CounterFunc("network_"+c.Name, func() int64 { return c.Value(stats()) })
	}
}
