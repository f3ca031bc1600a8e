package meta

import (
	"sort"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// load counts the replicas each node holds, for one table and over all tables, so
// that placement can even them out.
type load struct {
	appPrimaries, appReplicas map[string]int
	allPrimaries, allReplicas map[string]int
	nodes                     []string // alive nodes, sorted; set by the caller
}

func newLoad() *load {
	return &load{
		appPrimaries: map[string]int{}, appReplicas: map[string]int{},
		allPrimaries: map[string]int{}, allReplicas: map[string]int{},
	}
}

// countLoad counts every configuration of the available tables; the per-table
// counters are for appID.
func countLoad(st *clusterState, appID int32) *load {
	l := newLoad()
	for id, a := range st.apps {
		if a.info.Status != layer2.AppStatus_AS_AVAILABLE {
			continue
		}
		for _, pc := range a.partitions {
			l.add(pc, id == appID)
		}
	}
	return l
}

func (l *load) add(pc *layer2.PartitionConfiguration, sameApp bool) {
	if pc.Primary.IsValid() {
		p := pc.Primary.String()
		l.allPrimaries[p]++
		l.allReplicas[p]++
		if sameApp {
			l.appPrimaries[p]++
			l.appReplicas[p]++
		}
	}
	for _, s := range pc.Secondaries {
		a := s.String()
		l.allReplicas[a]++
		if sameApp {
			l.appReplicas[a]++
		}
	}
}

// pickPrimary chooses, among candidates, the node with the fewest primaries of the
// table, then the fewest replicas of the table, then the fewest primaries and replicas
// overall; the address breaks the remaining ties so that placement is deterministic.
func (l *load) pickPrimary(candidates []string) string {
	return pickMin(candidates, func(n string) []int {
		return []int{l.appPrimaries[n], l.appReplicas[n], l.allPrimaries[n], l.allReplicas[n]}
	})
}

// pickSecondary chooses the node with the fewest replicas of the table, then the
// fewest replicas overall.
func (l *load) pickSecondary(candidates []string) string {
	return pickMin(candidates, func(n string) []int {
		return []int{l.appReplicas[n], l.allReplicas[n]}
	})
}

// pickMin returns the candidate with the smallest key. Ties go to the lowest
// address in string order ("10.0.0.10:1" before "10.0.0.9:1"): any choice
// among equals would do, a fixed one keeps placement deterministic.
func pickMin(candidates []string, key func(string) []int) string {
	best := ""
	var bestKey []int
	for _, c := range candidates {
		k := key(c)
		if best == "" || lessKey(k, bestKey) || (equalKey(k, bestKey) && c < best) {
			best, bestKey = c, k
		}
	}
	return best
}

func lessKey(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

func equalKey(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func without(nodes []string, exclude ...string) []string {
	out := make([]string, 0, len(nodes))
outer:
	for _, n := range nodes {
		for _, x := range exclude {
			if n == x {
				continue outer
			}
		}
		out = append(out, n)
	}
	return out
}

// isNewPartition reports whether a partition has never had a member: its first
// configuration can then be chosen freely, every replica starting empty.
func isNewPartition(pc *layer2.PartitionConfiguration) bool {
	return pc.Ballot == 0 && !pc.Primary.IsValid() && len(pc.Secondaries) == 0 && len(pc.LastDrops) == 0
}

// placeNew gives a new partition its first configuration: a primary and
// replicas-1 secondaries on distinct alive nodes, at ballot 1. It returns nil when
// there are fewer alive nodes than replicas (the partition waits). The load is
// updated so that placing a whole table in one pass spreads it evenly.
func placeNew(pc *layer2.PartitionConfiguration, alive []string, l *load) *layer2.PartitionConfiguration {
	replicas := int(pc.MaxReplicaCount)
	if replicas < 1 || len(alive) < replicas {
		return nil
	}
	primary := l.pickPrimary(alive)
	chosen := []string{primary}
	for len(chosen) < replicas {
		chosen = append(chosen, l.pickSecondary(without(alive, chosen...)))
	}
	next := cloneConfig(pc)
	next.Ballot = 1
	next.Primary = base.MustParseRPCAddress(primary)
	next.Secondaries = next.Secondaries[:0]
	secs := append([]string(nil), chosen[1:]...)
	sort.Strings(secs)
	for _, s := range secs {
		next.Secondaries = append(next.Secondaries, base.MustParseRPCAddress(s))
	}
	l.add(next, true)
	return next
}
