package meta

import (
	"slices"
	"testing"

	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// placeNew waits when there are fewer alive nodes than replicas (or no replicas).
func TestPlaceNewNotEnoughNodes(t *testing.T) {
	for _, tc := range []struct {
		replicas int32
		alive    []string
	}{
		{3, []string{nA, nB}},
		{1, nil},
		{0, []string{nA, nB}},
	} {
		pc := newPartition(1, 0, tc.replicas)
		if next := placeNew(pc, tc.alive, newLoad()); next != nil {
			t.Errorf("placeNew(replicas=%d, alive=%v) = %v, want nil", tc.replicas, tc.alive, next)
		}
	}
}

// Placing a whole table in one pass: ballot 1, distinct members, sorted
// secondaries, and the table's primaries and replicas within one of even.
func TestPlaceNewSpreadsTable(t *testing.T) {
	for _, tc := range []struct {
		replicas   int32
		partitions int
		alive      []string
	}{
		{3, 8, []string{nA, nB, nC, nD}},
		{3, 3, []string{nA, nB, nC}},
		{2, 7, []string{nA, nB, nC, nD, nE}},
		{1, 4, []string{nA, nB, nC}},
		{3, 16, []string{nA, nB, nC, nD, nE}},
	} {
		l := newLoad()
		prim, reps := map[string]int{}, map[string]int{}
		for i := 0; i < tc.partitions; i++ {
			pc := newPartition(2, int32(i), tc.replicas)
			next := placeNew(pc, tc.alive, l)
			if next == nil {
				t.Fatalf("%+v: partition %d not placed", tc, i)
			}
			if pc.Ballot != 0 || pc.Primary.IsValid() || len(pc.Secondaries) != 0 {
				t.Fatalf("placeNew changed its input: %v", pc)
			}
			m := members(next)
			secs := strs(next.Secondaries)
			if next.Ballot != 1 || !next.Primary.IsValid() || len(m) != int(tc.replicas) ||
				!slices.IsSorted(secs) || len(slices.Compact(slices.Sorted(slices.Values(m)))) != len(m) ||
				*next.Pid != *pc.Pid || next.MaxReplicaCount != tc.replicas {
				t.Fatalf("%+v: partition %d placed as %v", tc, i, next)
			}
			prim[next.Primary.String()]++
			for _, n := range m {
				if !slices.Contains(tc.alive, n) {
					t.Fatalf("placed on %s, not alive", n)
				}
				reps[n]++
			}
		}
		for name, c := range map[string]map[string]int{"primaries": prim, "replicas": reps} {
			lo, hi := c[tc.alive[0]], c[tc.alive[0]]
			for _, n := range tc.alive {
				lo, hi = min(lo, c[n]), max(hi, c[n])
			}
			if hi-lo > 1 {
				t.Errorf("%+v: %s per node %v, want within one", tc, name, c)
			}
		}
		// The load counted along the way is the table's.
		for _, n := range tc.alive {
			if l.appPrimaries[n] != prim[n] || l.appReplicas[n] != reps[n] || l.allPrimaries[n] != prim[n] || l.allReplicas[n] != reps[n] {
				t.Errorf("%+v: load of %s = %d/%d, %d/%d; placed %d primaries, %d replicas", tc, n,
					l.appPrimaries[n], l.appReplicas[n], l.allPrimaries[n], l.allReplicas[n], prim[n], reps[n])
			}
		}
	}
}

// A new table's first partitions go to the nodes that hold the least of the other
// tables (countLoad counts only available tables), the address breaking ties.
func TestPlaceNewUsesClusterLoad(t *testing.T) {
	st := &clusterState{apps: map[int32]*app{
		1: avail(1, 2, part{nA, nB}, part{nB, nA}, part{nC, nA}),
		2: testApp(2, layer2.AppStatus_AS_DROPPED, 1, part{nD}, part{nD}, part{nD}),
	}}
	l := countLoad(st, 3)
	if l.allReplicas[nA] != 3 || l.allPrimaries[nB] != 1 || l.allReplicas[nD] != 0 || len(l.appReplicas) != 0 {
		t.Fatalf("countLoad = %+v", l)
	}
	alive := []string{nA, nB, nC, nD}
	for i, want := range []part{
		{nD, nC}, // D holds nothing; C the fewest replicas overall
		{nB, nA}, // no primary of this table on A, B: B has fewer replicas; A: fewest of this table
		{nC, nD}, // A and C tie on this table and on primaries; C has fewer replicas
		{nA, nB}, // the only node without a primary of this table
	} {
		next := placeNew(newPartition(3, int32(i), 2), alive, l)
		got := append(part{next.Primary.String()}, strs(next.Secondaries)...)
		if !slices.Equal(got, want) {
			t.Errorf("partition %d placed on %v, want %v", i, got, want)
		}
	}
	if l2 := countLoad(st, 1); l2.appReplicas[nA] != 3 || l2.appPrimaries[nC] != 1 || l2.appReplicas[nD] != 0 {
		t.Errorf("countLoad for table 1 = %+v", l2)
	}
}

// isNewPartition: only a partition that never had a member may be placed freely.
func TestIsNewPartition(t *testing.T) {
	for _, tc := range []struct {
		pc   *layer2.PartitionConfiguration
		want bool
	}{
		{newPartition(1, 0, 3), true},
		{pconf(0, 3, 1, "", nil, nil), false},
		{pconf(0, 3, 0, nA, nil, nil), false},
		{pconf(0, 3, 0, "", []string{nA}, nil), false},
		{pconf(0, 3, 0, "", nil, []string{nA}), false},
	} {
		if got := isNewPartition(tc.pc); got != tc.want {
			t.Errorf("isNewPartition(%v) = %v, want %v", tc.pc, got, tc.want)
		}
	}
}

// The order of the keys pickPrimary and pickSecondary compare.
func TestLoadPick(t *testing.T) {
	type counts struct{ appP, appR, allP, allR int }
	for _, tc := range []struct {
		name      string
		load      map[string]counts
		primary   string
		secondary string
	}{
		{"table primaries before table replicas",
			map[string]counts{nA: {0, 2, 0, 2}, nB: {1, 1, 1, 1}}, nA, nB},
		{"table replicas before overall primaries",
			map[string]counts{nA: {0, 1, 0, 5}, nB: {0, 0, 3, 3}}, nB, nB},
		{"overall primaries before overall replicas",
			map[string]counts{nA: {0, 0, 1, 1}, nB: {0, 0, 0, 4}}, nB, nA},
		{"overall replicas",
			map[string]counts{nA: {0, 0, 0, 2}, nB: {0, 0, 0, 1}}, nB, nB},
		{"ties go to the lower address",
			map[string]counts{nC: {1, 1, 1, 1}, nB: {1, 1, 1, 1}}, nB, nB},
	} {
		l := newLoad()
		var cands []string
		for n, c := range tc.load {
			l.appPrimaries[n], l.appReplicas[n], l.allPrimaries[n], l.allReplicas[n] = c.appP, c.appR, c.allP, c.allR
			cands = append(cands, n)
		}
		slices.Sort(cands)
		slices.Reverse(cands) // the order of candidates must not matter
		if got := l.pickPrimary(cands); got != tc.primary {
			t.Errorf("%s: pickPrimary = %s, want %s", tc.name, got, tc.primary)
		}
		if got := l.pickSecondary(cands); got != tc.secondary {
			t.Errorf("%s: pickSecondary = %s, want %s", tc.name, got, tc.secondary)
		}
	}
}
