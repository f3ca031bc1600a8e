package meta

import (
	"slices"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
)

// step is one configuration change the leader wants: either a proposal to send
// (to target, about node), or a change the leader writes itself (next).
type step struct {
	kind   admin.ConfigType
	target string
	node   string
	next   *layer2.PartitionConfiguration // leader-driven change; nil for a proposal
}

// The checker looks at one partition and says what it needs: the repairs of
// upstream's partition guardian. It is pure; the operator controller
// (operator.go) decides whether its verdict is carried out, and the Server's
// pass (cure_loop.go) feeds both.

// cureInput is what the checker knows besides the configuration.
type cureInput struct {
	now         time.Time
	alive       func(node string) bool
	report      func(node string, g base.Gpid) *metadata.ReplicaInfo // last config sync
	dropped     func(g base.Gpid, node string) time.Time             // when node left g
	assignDelay time.Duration
	min2pc      int32
	load        *load
	excluded    func(node string) bool // nodes being taken out of service
}

// cure decides what a partition needs next, or reports ok=false when it needs
// nothing (or must wait). It is a pure function of its inputs.
//
// The order follows PacificA: a dead primary is removed first (by the leader), then
// a primary is chosen among the current secondaries only (each holds every committed
// mutation), then missing secondaries are added. A partition that lost every member
// waits for the last one to return: only it is sure to hold everything.
func cure(pc *layer2.PartitionConfiguration, in cureInput) (step, bool) {
	g := *pc.Pid
	primary := ""
	if pc.Primary.IsValid() {
		primary = pc.Primary.String()
	}
	var secs []string
	for _, s := range pc.Secondaries {
		secs = append(secs, s.String())
	}
	if primary != "" && !in.alive(primary) {
		next := cloneConfig(pc)
		next.Ballot++
		next.Primary = &base.RPCAddress{}
		next.LastDrops = pushDrop(next.LastDrops, pc.Primary, int(pc.MaxReplicaCount))
		return step{kind: admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, node: primary, next: next}, true
	}
	if primary == "" {
		var candidates []string
		for _, s := range secs {
			if in.alive(s) {
				candidates = append(candidates, s)
			}
		}
		if len(candidates) > 0 {
			// The secondary with the most mutations loses the fewest unacknowledged
			// writes; ties go to the node with the fewest primaries.
			best := pickMin(candidates, func(n string) []int {
				prepared := -1
				if r := in.report(n, g); r != nil {
					prepared = int(r.LastPreparedDecree)
				}
				return []int{-prepared, in.load.allPrimaries[n], in.load.allReplicas[n]}
			})
			return step{kind: admin.ConfigType_CT_UPGRADE_TO_PRIMARY, target: best, node: best}, true
		}
		if len(secs) == 0 && len(pc.LastDrops) > 0 {
			last := pc.LastDrops[len(pc.LastDrops)-1].String()
			if in.alive(last) && in.report(last, g) != nil {
				return step{kind: admin.ConfigType_CT_ASSIGN_PRIMARY, target: last, node: last}, true
			}
		}
		return step{}, false
	}
	for _, s := range secs {
		if !in.alive(s) {
			return step{kind: admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, target: primary, node: s}, true
		}
	}
	members := append([]string{primary}, secs...)
	want := int(pc.MaxReplicaCount)
	switch {
	case len(members) < want:
		// The node that left last may come back with its data: prefer it.
		for i := len(pc.LastDrops) - 1; i >= 0; i-- {
			d := pc.LastDrops[i].String()
			if in.alive(d) && !slices.Contains(members, d) && !in.excluded(d) {
				return step{kind: admin.ConfigType_CT_ADD_SECONDARY, target: primary, node: d}, true
			}
		}
		emergency := int32(len(members)) < in.min2pc || len(pc.LastDrops) == 0
		if !emergency {
			last := pc.LastDrops[len(pc.LastDrops)-1].String()
			emergency = in.now.Sub(in.dropped(g, last)) >= in.assignDelay
		}
		if !emergency {
			return step{}, false
		}
		var free []string
		for _, n := range in.load.nodes {
			if in.alive(n) && !slices.Contains(members, n) && !in.excluded(n) {
				free = append(free, n)
			}
		}
		if len(free) == 0 {
			return step{}, false
		}
		return step{kind: admin.ConfigType_CT_ADD_SECONDARY, target: primary, node: in.load.pickSecondary(free)}, true
	case len(members) > want:
		// One too many (a balancing move that lost its plan): drop the secondary on
		// the busiest node.
		victim := pickMin(secs, func(n string) []int { return []int{-in.load.allReplicas[n]} })
		return step{kind: admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, target: primary, node: victim}, true
	}
	return step{}, false
}

// satisfied reports whether the configuration already shows the step done.
func satisfied(pc *layer2.PartitionConfiguration, st step) bool {
	isPrimary := pc.Primary.IsValid() && pc.Primary.String() == st.node
	isSecondary := slices.ContainsFunc(pc.Secondaries, func(a *base.RPCAddress) bool { return a.String() == st.node })
	switch st.kind {
	case admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY:
		return !isPrimary && isSecondary
	case admin.ConfigType_CT_UPGRADE_TO_PRIMARY, admin.ConfigType_CT_ASSIGN_PRIMARY:
		return isPrimary
	case admin.ConfigType_CT_ADD_SECONDARY, admin.ConfigType_CT_ADD_SECONDARY_FOR_LB:
		return isSecondary
	case admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, admin.ConfigType_CT_REMOVE:
		return !isPrimary && !isSecondary
	}
	return false
}

// applicable reports whether a plan step can be sent now, and to whom.
func applicable(pc *layer2.PartitionConfiguration, st step) (string, bool) {
	primary := ""
	if pc.Primary.IsValid() {
		primary = pc.Primary.String()
	}
	isSecondary := slices.ContainsFunc(pc.Secondaries, func(a *base.RPCAddress) bool { return a.String() == st.node })
	switch st.kind {
	case admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY:
		return st.node, primary == st.node
	case admin.ConfigType_CT_UPGRADE_TO_PRIMARY:
		return st.node, primary == "" && isSecondary
	case admin.ConfigType_CT_ADD_SECONDARY, admin.ConfigType_CT_ADD_SECONDARY_FOR_LB:
		return primary, primary != "" && primary != st.node && !isSecondary
	case admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, admin.ConfigType_CT_REMOVE:
		return primary, primary != "" && primary != st.node && isSecondary
	}
	return "", false
}
