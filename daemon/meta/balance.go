package meta

import (
	"slices"
	"sort"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// The scheduler's balancer: it plans moves, the operator controller
// (operator.go) carries them out.

// Kinds of balancing moves, as counted in cluster_info.
const (
	moveMovePrimary   = "move_pri"
	moveCopyPrimary   = "copy_pri"
	moveCopySecondary = "copy_sec"
	moveManual        = "manual"
)

// plan is a sequence of configuration changes that moves replicas of one partition
// without ever leaving fewer members than it started with (additions come before
// removals).
type plan struct {
	kind  string
	steps []step
}

func movePrimary(from, to string) []step {
	return []step{
		{kind: admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY, node: from},
		{kind: admin.ConfigType_CT_UPGRADE_TO_PRIMARY, node: to},
	}
}

func copyPrimary(from, to string) []step {
	return []step{
		{kind: admin.ConfigType_CT_ADD_SECONDARY_FOR_LB, node: to},
		{kind: admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY, node: from},
		{kind: admin.ConfigType_CT_UPGRADE_TO_PRIMARY, node: to},
		{kind: admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, node: from},
	}
}

func copySecondary(from, to string) []step {
	return []step{
		{kind: admin.ConfigType_CT_ADD_SECONDARY_FOR_LB, node: to},
		{kind: admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, node: from},
	}
}

// balanceInput is what the balancer looks at.
type balanceInput struct {
	apps     []*app
	alive    []string               // sorted
	excluded func(node string) bool // being taken out of service: drained, never a target
	busy     func(g base.Gpid) bool // partitions with a plan already
	maxMoves int
}

// balance plans moves for one pass, table by table: first it drains nodes being
// taken out of service, then it evens out primaries (moving the role to an existing
// secondary when it can, copying otherwise), then - for a table whose primaries are
// even - all replicas. Counts end within one of even per node. It is a pure function.
func balance(in balanceInput) map[base.Gpid]*plan {
	plans := map[base.Gpid]*plan{}
	var targets []string
	for _, n := range in.alive {
		if !in.excluded(n) {
			targets = append(targets, n)
		}
	}
	if len(targets) == 0 {
		return plans
	}
	room := func() bool { return len(plans) < in.maxMoves }
	for _, a := range in.apps {
		if a.info.Status != layer2.AppStatus_AS_AVAILABLE || !room() {
			continue
		}
		prim := map[string]int{}
		reps := map[string]int{}
		type part struct {
			g       base.Gpid
			primary string
			secs    []string
		}
		var parts []part
		for _, pc := range a.partitions {
			p := part{g: *pc.Pid}
			if pc.Primary.IsValid() {
				p.primary = pc.Primary.String()
				prim[p.primary]++
				reps[p.primary]++
			}
			for _, s := range pc.Secondaries {
				p.secs = append(p.secs, s.String())
				reps[s.String()]++
			}
			parts = append(parts, p)
		}
		member := func(p part, n string) bool { return p.primary == n || slices.Contains(p.secs, n) }
		free := func(p part) bool { return !in.busy(p.g) && plans[p.g] == nil && p.primary != "" }
		add := func(p part, kind string, steps []step) {
			plans[p.g] = &plan{kind: kind, steps: steps}
		}
		// argmin picks the target with the lowest count; ties go to the first in
		// targets, the lowest address in string order. Which of equal nodes is
		// chosen does not matter; that it is always the same one keeps the
		// balancer deterministic (and testable).
		argmin := func(count map[string]int, ok func(string) bool) string {
			best := ""
			for _, n := range targets {
				if ok(n) && (best == "" || count[n] < count[best]) {
					best = n
				}
			}
			return best
		}
		// Drain excluded nodes.
		for _, p := range parts {
			if !room() || !free(p) {
				continue
			}
			if in.excluded(p.primary) {
				to := ""
				for _, s := range p.secs {
					if !in.excluded(s) && (to == "" || prim[s] < prim[to]) {
						to = s
					}
				}
				if to != "" {
					add(p, moveMovePrimary, movePrimary(p.primary, to))
				} else if to = argmin(reps, func(n string) bool { return !member(p, n) }); to != "" {
					add(p, moveCopyPrimary, copyPrimary(p.primary, to))
					// The replica moves too: the next drains and the evening
					// out below see it where it will be.
					reps[p.primary]--
					reps[to]++
				} else {
					continue
				}
				prim[p.primary]--
				prim[to]++
				continue
			}
			for _, s := range p.secs {
				if in.excluded(s) {
					if to := argmin(reps, func(n string) bool { return !member(p, n) }); to != "" {
						add(p, moveCopySecondary, copySecondary(s, to))
						reps[s]--
						reps[to]++
					}
					break
				}
			}
		}
		// Even out primaries.
		primaryMoves := 0
		for room() {
			hi, lo := targets[0], targets[0]
			for _, n := range targets {
				if prim[n] > prim[hi] {
					hi = n
				}
				if prim[n] < prim[lo] {
					lo = n
				}
			}
			if prim[hi]-prim[lo] <= 1 {
				break
			}
			done := false
			for _, p := range parts {
				if free(p) && p.primary == hi && slices.Contains(p.secs, lo) {
					add(p, moveMovePrimary, movePrimary(hi, lo))
					done = true
					break
				}
			}
			if !done {
				for _, p := range parts {
					if free(p) && p.primary == hi && !member(p, lo) {
						add(p, moveCopyPrimary, copyPrimary(hi, lo))
						reps[lo]++
						reps[hi]--
						done = true
						break
					}
				}
			}
			if !done {
				break
			}
			prim[hi]--
			prim[lo]++
			primaryMoves++
		}
		if primaryMoves > 0 {
			continue // replicas next pass, once the primaries have moved
		}
		// Even out all replicas.
		for room() {
			hi, lo := targets[0], targets[0]
			for _, n := range targets {
				if reps[n] > reps[hi] {
					hi = n
				}
				if reps[n] < reps[lo] {
					lo = n
				}
			}
			if reps[hi]-reps[lo] <= 1 {
				break
			}
			done := false
			for _, p := range parts {
				if free(p) && slices.Contains(p.secs, hi) && !member(p, lo) {
					add(p, moveCopySecondary, copySecondary(hi, lo))
					done = true
					break
				}
			}
			if !done {
				break
			}
			reps[hi]--
			reps[lo]++
		}
	}
	return plans
}

// countMoves counts the plans in progress by kind.
func countMoves(plans map[base.Gpid]*plan) balanceCounts {
	var c balanceCounts
	for _, p := range plans {
		c.add(p.kind)
	}
	return c
}

func sortedGpids(m map[base.Gpid]*plan) []base.Gpid {
	out := make([]base.Gpid, 0, len(m))
	for g := range m {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Raw() < out[j].Raw() })
	return out
}
