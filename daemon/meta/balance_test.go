package meta

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// part is a short form of a partition configuration: primary first, then secondaries.
type part []string

func testApp(id int32, status layer2.AppStatus, maxReplicas int32, parts ...part) *app {
	a := &app{info: &layer2.AppInfo{Status: status, AppID: id, AppName: fmt.Sprintf("t%d", id), PartitionCount: int32(len(parts)), MaxReplicaCount: maxReplicas}}
	for i, p := range parts {
		pc := newPartition(id, int32(i), maxReplicas)
		pc.Ballot = 3
		if len(p) > 0 && p[0] != "" {
			pc.Primary = base.MustParseRPCAddress(p[0])
		}
		if len(p) > 1 {
			pc.Secondaries = addrs(p[1:]...)
		}
		a.partitions = append(a.partitions, pc)
	}
	return a
}

func avail(id int32, maxReplicas int32, parts ...part) *app {
	return testApp(id, layer2.AppStatus_AS_AVAILABLE, maxReplicas, parts...)
}

type wantPlan struct {
	app, idx int32
	kind     string
	steps    []step
}

func TestBalance(t *testing.T) {
	none := []string{}
	for _, tc := range []struct {
		name     string
		apps     []*app
		alive    []string
		excluded []string
		busy     []base.Gpid
		maxMoves int
		want     []wantPlan
	}{
		{name: "balanced: no moves",
			apps:  []*app{avail(1, 3, part{nA, nB, nC}, part{nB, nC, nA}, part{nC, nA, nB})},
			alive: []string{nA, nB, nC}, want: nil},
		{name: "balanced within one: no moves",
			apps:  []*app{avail(1, 2, part{nA, nB}, part{nB, nC}, part{nC, nA}, part{nA, nB})},
			alive: []string{nA, nB, nC}, want: nil},
		{name: "primaries on one node move to existing secondaries",
			apps:  []*app{avail(1, 3, part{nA, nB, nC}, part{nA, nB, nC}, part{nA, nB, nC})},
			alive: []string{nA, nB, nC},
			want: []wantPlan{
				{1, 0, moveMovePrimary, movePrimary(nA, nB)},
				{1, 1, moveMovePrimary, movePrimary(nA, nC)},
			}},
		{name: "primary copied to a node that holds no replica",
			apps:  []*app{avail(1, 1, part{nA}, part{nA})},
			alive: []string{nA, nB},
			want:  []wantPlan{{1, 0, moveCopyPrimary, copyPrimary(nA, nB)}}},
		{name: "a new node gets secondaries once primaries are even",
			apps:  []*app{avail(1, 2, part{nA, nB}, part{nB, nC}, part{nC, nA}, part{nD, nA})},
			alive: []string{nA, nB, nC, nD},
			want:  []wantPlan{{1, 2, moveCopySecondary, copySecondary(nA, nD)}}},
		{name: "replicas wait for a pass without primary moves",
			apps:  []*app{avail(1, 2, part{nA, nB}, part{nA, nB}, part{nA, nB}, part{nA, nB})},
			alive: []string{nA, nB, nC},
			want: []wantPlan{
				{1, 0, moveMovePrimary, movePrimary(nA, nB)},
				{1, 1, moveCopyPrimary, copyPrimary(nA, nC)},
			}},
		{name: "maxMoves caps the plans",
			apps:  []*app{avail(1, 3, part{nA, nB, nC}, part{nA, nB, nC}, part{nA, nB, nC})},
			alive: []string{nA, nB, nC}, maxMoves: 1,
			want: []wantPlan{{1, 0, moveMovePrimary, movePrimary(nA, nB)}}},
		{name: "busy partitions are left alone",
			apps:  []*app{avail(1, 3, part{nA, nB, nC}, part{nA, nB, nC}, part{nA, nB, nC})},
			alive: []string{nA, nB, nC}, busy: []base.Gpid{{Appid: 1, PartitionIndex: 0}},
			want: []wantPlan{
				{1, 1, moveMovePrimary, movePrimary(nA, nB)},
				{1, 2, moveMovePrimary, movePrimary(nA, nC)},
			}},
		{name: "partitions without a primary are left alone",
			apps:  []*app{avail(1, 1, part{""}, part{nA}, part{nA}, part{nA})},
			alive: []string{nA, nB},
			want:  []wantPlan{{1, 1, moveCopyPrimary, copyPrimary(nA, nB)}}},
		{name: "tables that are not available are left alone",
			apps: []*app{
				testApp(1, layer2.AppStatus_AS_DROPPED, 1, part{nA}, part{nA}),
				testApp(2, layer2.AppStatus_AS_CREATING, 1, part{nA}, part{nA}),
				avail(3, 1, part{nA}, part{nB}),
			},
			alive: []string{nA, nB}, want: nil},
		{name: "each table is evened on its own; maxMoves counts across tables",
			apps: []*app{
				avail(1, 1, part{nA}, part{nA}),
				avail(2, 1, part{nB}, part{nB}),
				avail(3, 1, part{nB}, part{nB}),
			},
			alive: []string{nA, nB}, maxMoves: 2,
			want: []wantPlan{
				{1, 0, moveCopyPrimary, copyPrimary(nA, nB)},
				{2, 0, moveCopyPrimary, copyPrimary(nB, nA)},
			}},
		{name: "drain: an excluded primary moves to the secondary with fewest primaries; an excluded secondary is copied",
			apps:  []*app{avail(1, 3, part{nA, nB, nC}, part{nB, nA, nC})},
			alive: []string{nA, nB, nC, nD}, excluded: []string{nA},
			want: []wantPlan{
				{1, 0, moveMovePrimary, movePrimary(nA, nC)},
				{1, 1, moveCopySecondary, copySecondary(nA, nD)},
			}},
		{name: "drain: an excluded primary without a usable secondary is copied",
			apps:  []*app{avail(1, 2, part{nA, nB}, part{nB, nC})},
			alive: []string{nA, nB, nC, nD}, excluded: []string{nA, nB},
			want: []wantPlan{
				{1, 0, moveCopyPrimary, copyPrimary(nA, nD)}, // D holds fewer replicas than C
				{1, 1, moveMovePrimary, movePrimary(nB, nC)},
			}},
		{name: "drain: each copied primary counts where it goes, so copies spread",
			apps:  []*app{avail(1, 1, part{nA}, part{nA}, part{nB})},
			alive: []string{nA, nB, nC}, excluded: []string{nA},
			want: []wantPlan{
				{1, 0, moveCopyPrimary, copyPrimary(nA, nC)}, // C holds nothing
				{1, 1, moveCopyPrimary, copyPrimary(nA, nB)}, // B and C hold one each: the lower address
			}},
		{name: "excluded nodes are never targets of evening out",
			apps:  []*app{avail(1, 1, part{nA}, part{nA}, part{nA}, part{nA})},
			alive: []string{nA, nB, nC}, excluded: []string{nC},
			want: []wantPlan{
				{1, 0, moveCopyPrimary, copyPrimary(nA, nB)},
				{1, 1, moveCopyPrimary, copyPrimary(nA, nB)},
			}},
		{name: "every node excluded: nothing",
			apps:  []*app{avail(1, 1, part{nA}, part{nA})},
			alive: []string{nA, nB}, excluded: []string{nA, nB}, want: nil},
		{name: "dead nodes are not targets",
			apps:  []*app{avail(1, 1, part{nA}, part{nA})},
			alive: []string{nA}, excluded: none, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maxMoves := tc.maxMoves
			if maxMoves == 0 {
				maxMoves = 100
			}
			before := fmt.Sprint(tc.apps)
			got := balance(balanceInput{
				apps:     tc.apps,
				alive:    tc.alive,
				excluded: func(n string) bool { return slices.Contains(tc.excluded, n) },
				busy:     func(g base.Gpid) bool { return slices.Contains(tc.busy, g) },
				maxMoves: maxMoves,
			})
			want := map[base.Gpid]*plan{}
			for _, w := range tc.want {
				want[base.Gpid{Appid: w.app, PartitionIndex: w.idx}] = &plan{kind: w.kind, steps: w.steps}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("balance =\n%s\nwant\n%s", showPlans(got), showPlans(want))
			}
			if after := fmt.Sprint(tc.apps); after != before {
				t.Fatalf("balance changed its input")
			}
		})
	}
}

func showPlans(m map[base.Gpid]*plan) string {
	s := ""
	for _, g := range sortedGpids(m) {
		s += fmt.Sprintf("  %d.%d %s %v\n", g.Appid, g.PartitionIndex, m[g].kind, m[g].steps)
	}
	return s
}

// applyPlan carries out a plan's steps on a configuration as the replicas would.
func applyPlan(t *testing.T, pc *layer2.PartitionConfiguration, p *plan) {
	t.Helper()
	for _, st := range p.steps {
		if _, ok := applicable(pc, st); !ok {
			t.Fatalf("step %v %s not applicable to %v", st.kind, st.node, pc)
		}
		n := base.MustParseRPCAddress(st.node)
		switch st.kind {
		case admin.ConfigType_CT_ADD_SECONDARY_FOR_LB:
			pc.Secondaries = append(pc.Secondaries, n)
		case admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY:
			pc.Secondaries = append(pc.Secondaries, pc.Primary)
			pc.Primary = &base.RPCAddress{}
		case admin.ConfigType_CT_UPGRADE_TO_PRIMARY:
			pc.Primary = n
			pc.Secondaries = slices.DeleteFunc(pc.Secondaries, func(a *base.RPCAddress) bool { return a.Equals(n) })
		case admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE:
			pc.Secondaries = slices.DeleteFunc(pc.Secondaries, func(a *base.RPCAddress) bool { return a.Equals(n) })
		default:
			t.Fatalf("unexpected step kind %v", st.kind)
		}
		pc.Ballot++
		if !satisfied(pc, st) {
			t.Fatalf("step %v %s not satisfied after applying it: %v", st.kind, st.node, pc)
		}
	}
}

// Running the balancer pass after pass, carrying out every plan, ends with each
// table's primaries and replicas within one of even on every target node, never
// on an excluded one, and every partition keeping its replica count.
func TestBalanceConverges(t *testing.T) {
	for _, tc := range []struct {
		name     string
		alive    []string
		excluded []string
		apps     []*app
	}{
		{"two new nodes",
			[]string{nA, nB, nC, nD, nE}, nil,
			[]*app{placedApp(1, 3, 16, nA, nB, nC), placedApp(2, 2, 7, nA, nB)}},
		{"drain one node",
			[]string{nA, nB, nC, nD}, []string{nB},
			[]*app{placedApp(1, 3, 12, nA, nB, nC), placedApp(2, 1, 5, nB)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := balanceInput{
				apps:     tc.apps,
				alive:    tc.alive,
				excluded: func(n string) bool { return slices.Contains(tc.excluded, n) },
				busy:     func(base.Gpid) bool { return false },
				maxMoves: 3,
			}
			passes := 0
			for ; passes < 100; passes++ {
				plans := balance(in)
				if len(plans) == 0 {
					break
				}
				if len(plans) > in.maxMoves {
					t.Fatalf("pass %d: %d plans, max %d", passes, len(plans), in.maxMoves)
				}
				for _, a := range tc.apps {
					for _, pc := range a.partitions {
						if p := plans[*pc.Pid]; p != nil {
							applyPlan(t, pc, p)
						}
					}
				}
			}
			if passes == 100 {
				t.Fatal("balancer did not settle in 100 passes")
			}
			for _, a := range tc.apps {
				prim, reps := map[string]int{}, map[string]int{}
				for _, pc := range a.partitions {
					if got := len(members(pc)); got != int(pc.MaxReplicaCount) {
						t.Fatalf("table %d partition %d has %d members, want %d", a.info.AppID, pc.Pid.PartitionIndex, got, pc.MaxReplicaCount)
					}
					prim[pc.Primary.String()]++
					for _, m := range members(pc) {
						reps[m]++
					}
				}
				var targets []string
				for _, n := range tc.alive {
					if slices.Contains(tc.excluded, n) {
						if prim[n] != 0 || reps[n] != 0 {
							t.Fatalf("table %d: excluded %s still holds %d primaries, %d replicas", a.info.AppID, n, prim[n], reps[n])
						}
						continue
					}
					targets = append(targets, n)
				}
				spread := func(c map[string]int) int {
					lo, hi := c[targets[0]], c[targets[0]]
					for _, n := range targets {
						lo, hi = min(lo, c[n]), max(hi, c[n])
					}
					return hi - lo
				}
				if spread(prim) > 1 || spread(reps) > 1 {
					t.Fatalf("table %d after %d passes: primaries %v replicas %v, want within one", a.info.AppID, passes, prim, reps)
				}
			}
		})
	}
}

// placedApp lays out n partitions round-robin over nodes.
func placedApp(id, replicas int32, n int, nodes ...string) *app {
	var parts []part
	for i := 0; i < n; i++ {
		var p part
		for r := 0; r < int(replicas); r++ {
			p = append(p, nodes[(i+r)%len(nodes)])
		}
		parts = append(parts, p)
	}
	return avail(id, replicas, parts...)
}
