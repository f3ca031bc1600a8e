package meta

import (
	"sort"
	"time"
)

// failureDetector is the master side of the beacon protocol. A replica server is
// alive from its first beacon until grace has passed without one. Replica servers
// stop serving when their own lease (shorter than grace, measured from the send time
// of their last acknowledged beacon) runs out, so by the time a node is declared dead
// it has already stopped acting as primary: the "perfect failure detector" PacificA
// relies on. All methods take the time explicitly.
type failureDetector struct {
	grace time.Duration
	// stableRun and maxUnstable drive the unstable-restart blacklist: a node that
	// restarts maxUnstable times in a row, each time within stableRun of the previous
	// start, is no longer answered.
	stableRun   time.Duration
	maxUnstable int
	nodes       map[string]*fdNode
}

type fdNode struct {
	alive       bool
	lastBeacon  time.Time
	startTime   int64 // the node's process start time (unix ms), from its beacons
	unstable    int   // successive unstable restarts
	blacklisted bool
}

func newFailureDetector(grace, stableRun time.Duration, maxUnstable int) *failureDetector {
	return &failureDetector{grace: grace, stableRun: stableRun, maxUnstable: maxUnstable, nodes: map[string]*fdNode{}}
}

// register marks a node alive as of now without a beacon: a new leader does this for
// every node named in a partition configuration, so that a node that died during the
// failover is still declared dead one grace period later.
func (f *failureDetector) register(node string, now time.Time) {
	if n, ok := f.nodes[node]; ok {
		n.alive, n.lastBeacon = true, now
		return
	}
	f.nodes[node] = &fdNode{alive: true, lastBeacon: now}
}

// beacon records a beacon received at now. It reports whether the beacon is
// accepted (a blacklisted node is ignored) and whether the node just became alive.
func (f *failureDetector) beacon(node string, startTime int64, now time.Time) (accepted, becameAlive bool) {
	n, ok := f.nodes[node]
	if !ok {
		n = &fdNode{}
		f.nodes[node] = n
	}
	// A start time older than the one known is a late beacon of an earlier run
	// (or a clock stepped back): it is no restart, and must not count as one.
	if startTime != 0 && startTime > n.startTime {
		if n.startTime != 0 && f.stableRun > 0 && time.Duration(startTime-n.startTime)*time.Millisecond < f.stableRun {
			n.unstable++
		} else {
			n.unstable = 0
		}
		n.startTime = startTime
		n.blacklisted = f.maxUnstable > 0 && n.unstable >= f.maxUnstable
	}
	if n.blacklisted {
		return false, false
	}
	n.lastBeacon = now
	if !n.alive {
		n.alive = true
		return true, true
	}
	return true, false
}

// check declares dead every alive node whose last beacon is older than grace, and
// returns them sorted.
func (f *failureDetector) check(now time.Time) []string {
	var dead []string
	for addr, n := range f.nodes {
		if n.alive && now.Sub(n.lastBeacon) > f.grace {
			n.alive = false
			dead = append(dead, addr)
		}
	}
	sort.Strings(dead)
	return dead
}

func (f *failureDetector) isAlive(node string) bool {
	n, ok := f.nodes[node]
	return ok && n.alive
}

// forget drops a dead node from the table (once no partition refers to it).
func (f *failureDetector) forget(node string) {
	if n, ok := f.nodes[node]; ok && !n.alive {
		delete(f.nodes, node)
	}
}

// snapshot returns every known node and whether it is alive, sorted by address.
func (f *failureDetector) snapshot() []nodeLiveness {
	out := make([]nodeLiveness, 0, len(f.nodes))
	for addr, n := range f.nodes {
		out = append(out, nodeLiveness{addr: addr, alive: n.alive})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].addr < out[j].addr })
	return out
}

type nodeLiveness struct {
	addr  string
	alive bool
}
