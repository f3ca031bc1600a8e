package rpc

// StatCounter is one counter of ServerStats under the name the roles export
// it by (upstream's network_* names, with "network_" left out) and a one-line
// description. The replica and meta /metrics and the collector's Prometheus
// export both take their names from here, so the two cannot drift apart.
type StatCounter struct {
	Name  string
	Help  string
	Value func(ServerStats) int64
}

// StatCounters lists the counters of what the server's limits and access
// checks did. Connections (a gauge) is not among them.
func StatCounters() []StatCounter {
	return []StatCounter{
		{"refused_connections_total_cap", "Connections closed at accept: [network] max_connections reached.", func(s ServerStats) int64 { return s.RefusedTotalCap }},
		{"refused_connections_per_ip_cap", "Connections closed at accept: [network] conn_threshold_per_ip reached.", func(s ServerStats) int64 { return s.RefusedPerIPCap }},
		{"first_request_timeouts", "Connections closed: no complete first request in time.", func(s ServerStats) int64 { return s.FirstRequestTimeout }},
		{"frame_timeouts", "Connections closed: a request frame did not complete in time.", func(s ServerStats) int64 { return s.FrameTimeouts }},
		{"overloaded_frames", "Connections closed: the pending-frame budget stayed spent.", func(s ServerStats) int64 { return s.Overloaded }},
		{"bad_frames", "Connections closed: malformed or oversized frame.", func(s ServerStats) int64 { return s.BadFrames }},
		{"auth_failures", "Failed cluster authentication handshakes.", func(s ServerStats) int64 { return s.AuthFailed }},
		{"denied_calls", "Calls refused: cluster RPC unauthenticated, or admin RPC from a non-administrator.", func(s ServerStats) int64 { return s.Denied }},
	}
}
