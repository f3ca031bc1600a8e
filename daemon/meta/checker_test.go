package meta

import (
	"slices"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
)

// Node addresses used by the scheduling tests.
const (
	nA = "10.0.0.1:34801"
	nB = "10.0.0.2:34801"
	nC = "10.0.0.3:34801"
	nD = "10.0.0.4:34801"
	nE = "10.0.0.5:34801"
)

// pconf builds a configuration of partition 1.idx; primary "" means none.
func pconf(idx int32, maxReplicas int32, ballot int64, primary string, secs []string, drops []string) *layer2.PartitionConfiguration {
	pc := newPartition(1, idx, maxReplicas)
	pc.Ballot = ballot
	if primary != "" {
		pc.Primary = base.MustParseRPCAddress(primary)
	}
	pc.Secondaries = addrs(secs...)
	pc.LastDrops = addrs(drops...)
	return pc
}

func strs(as []*base.RPCAddress) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

// The guardian's decisions, one partition at a time, with time passed in.
func TestCure(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	const delay = 5 * time.Minute
	type want struct {
		ok     bool
		kind   admin.ConfigType
		target string
		node   string
	}
	for _, tc := range []struct {
		name      string
		pc        *layer2.PartitionConfiguration
		alive     []string
		prepared  map[string]int64 // config-sync reports: node -> last prepared decree
		droppedAt time.Duration    // how long ago the last drop left (for every drop)
		min2pc    int32
		primaries map[string]int // load over all tables
		replicas  map[string]int
		excluded  []string
		want      want
	}{
		{name: "healthy partition needs nothing",
			pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), alive: []string{nA, nB, nC, nD},
			want: want{ok: false}},
		{name: "dead secondary is removed by the primary",
			pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), alive: []string{nA, nB, nD},
			want: want{true, admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, nA, nC}},
		{name: "promote the secondary with the most prepared mutations",
			pc: pconf(0, 3, 5, "", []string{nB, nC}, []string{nA}), alive: []string{nB, nC},
			prepared: map[string]int64{nB: 10, nC: 12},
			want:     want{true, admin.ConfigType_CT_UPGRADE_TO_PRIMARY, nC, nC}},
		{name: "promotion never picks a dead secondary",
			pc: pconf(0, 3, 5, "", []string{nB, nC}, []string{nA}), alive: []string{nB},
			prepared: map[string]int64{nB: 10, nC: 12},
			want:     want{true, admin.ConfigType_CT_UPGRADE_TO_PRIMARY, nB, nB}},
		{name: "a secondary without report ranks below any reported one",
			pc: pconf(0, 3, 5, "", []string{nB, nC}, []string{nA}), alive: []string{nB, nC},
			prepared: map[string]int64{nC: 0},
			want:     want{true, admin.ConfigType_CT_UPGRADE_TO_PRIMARY, nC, nC}},
		{name: "promotion tie goes to the node with fewer primaries",
			pc: pconf(0, 3, 5, "", []string{nB, nC}, []string{nA}), alive: []string{nB, nC},
			prepared: map[string]int64{nB: 12, nC: 12}, primaries: map[string]int{nB: 3, nC: 1},
			want: want{true, admin.ConfigType_CT_UPGRADE_TO_PRIMARY, nC, nC}},
		{name: "promotion full tie goes to the lower address",
			pc: pconf(0, 3, 5, "", []string{nC, nB}, []string{nA}), alive: []string{nB, nC},
			prepared: map[string]int64{nB: 12, nC: 12},
			want:     want{true, admin.ConfigType_CT_UPGRADE_TO_PRIMARY, nB, nB}},
		{name: "no member left: the last dropped node, alive and reporting, becomes primary",
			pc: pconf(0, 3, 9, "", nil, []string{nB, nA}), alive: []string{nA, nB},
			prepared: map[string]int64{nA: 5, nB: 7},
			want:     want{true, admin.ConfigType_CT_ASSIGN_PRIMARY, nA, nA}},
		{name: "no member left: wait while the last dropped node does not report",
			pc: pconf(0, 3, 9, "", nil, []string{nB, nA}), alive: []string{nA, nB},
			prepared: map[string]int64{nB: 7},
			want:     want{ok: false}},
		{name: "no member left: wait for the last dropped node, not an earlier one",
			pc: pconf(0, 3, 9, "", nil, []string{nB, nA}), alive: []string{nB, nC},
			prepared: map[string]int64{nB: 7},
			want:     want{ok: false}},
		{name: "no primary, only dead secondaries: wait",
			pc: pconf(0, 3, 9, "", []string{nB}, []string{nA}), alive: []string{nA, nC},
			prepared: map[string]int64{nA: 7},
			want:     want{ok: false}},
		{name: "missing secondary: the node that left last comes back first",
			pc: pconf(0, 3, 5, nA, []string{nB}, []string{nC, nD}), alive: []string{nA, nB, nC, nD, nE},
			droppedAt: time.Second,
			want:      want{true, admin.ConfigType_CT_ADD_SECONDARY, nA, nD}},
		{name: "missing secondary: dropped nodes already members or excluded are skipped",
			pc: pconf(0, 3, 5, nA, []string{nB}, []string{nC, nD, nB}), alive: []string{nA, nB, nC, nD, nE},
			excluded: []string{nD}, droppedAt: time.Second,
			want: want{true, admin.ConfigType_CT_ADD_SECONDARY, nA, nC}},
		{name: "missing secondary, dropped node dead, within the assign delay: wait",
			pc: pconf(0, 3, 5, nA, []string{nB}, []string{nC}), alive: []string{nA, nB, nD, nE},
			droppedAt: delay - time.Second, min2pc: 2,
			want: want{ok: false}},
		{name: "missing secondary after the assign delay: the least loaded free node",
			pc: pconf(0, 3, 5, nA, []string{nB}, []string{nC}), alive: []string{nA, nB, nD, nE},
			droppedAt: delay, min2pc: 2, replicas: map[string]int{nD: 4, nE: 2},
			want: want{true, admin.ConfigType_CT_ADD_SECONDARY, nA, nE}},
		{name: "fewer members than min2pc: add at once",
			pc: pconf(0, 3, 5, nA, nil, []string{nC}), alive: []string{nA, nD, nE},
			droppedAt: time.Second, min2pc: 2, replicas: map[string]int{nD: 1, nE: 2},
			want: want{true, admin.ConfigType_CT_ADD_SECONDARY, nA, nD}},
		{name: "missing secondary with no drop history: add at once",
			pc: pconf(0, 3, 5, nA, []string{nB}, nil), alive: []string{nA, nB, nD},
			min2pc: 2,
			want:   want{true, admin.ConfigType_CT_ADD_SECONDARY, nA, nD}},
		{name: "excluded nodes are never added",
			pc: pconf(0, 3, 5, nA, []string{nB}, nil), alive: []string{nA, nB, nD, nE},
			min2pc: 2, excluded: []string{nD}, replicas: map[string]int{nE: 9},
			want: want{true, admin.ConfigType_CT_ADD_SECONDARY, nA, nE}},
		{name: "no free node: wait",
			pc: pconf(0, 3, 5, nA, []string{nB}, nil), alive: []string{nA, nB, nD},
			min2pc: 2, excluded: []string{nD},
			want: want{ok: false}},
		{name: "one member too many: drop the secondary on the busiest node",
			pc: pconf(0, 2, 5, nA, []string{nB, nC}, nil), alive: []string{nA, nB, nC},
			replicas: map[string]int{nA: 9, nB: 3, nC: 4},
			want:     want{true, admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, nA, nC}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLoad()
			for n, c := range tc.primaries {
				l.allPrimaries[n] = c
			}
			for n, c := range tc.replicas {
				l.allReplicas[n] = c
				l.appReplicas[n] = c
			}
			l.nodes = slices.Sorted(slices.Values(tc.alive))
			in := cureInput{
				now:   now,
				alive: func(n string) bool { return slices.Contains(tc.alive, n) },
				report: func(n string, g base.Gpid) *metadata.ReplicaInfo {
					if d, ok := tc.prepared[n]; ok {
						return &metadata.ReplicaInfo{Pid: base.NewGpid(g.Appid, g.PartitionIndex), LastPreparedDecree: d}
					}
					return nil
				},
				dropped:     func(base.Gpid, string) time.Time { return now.Add(-tc.droppedAt) },
				assignDelay: delay,
				min2pc:      tc.min2pc,
				load:        l,
				excluded:    func(n string) bool { return slices.Contains(tc.excluded, n) },
			}
			before := cloneConfig(tc.pc)
			st, ok := cure(tc.pc, in)
			if ok != tc.want.ok {
				t.Fatalf("cure ok=%v (%+v), want %v", ok, st, tc.want.ok)
			}
			if ok && (st.kind != tc.want.kind || st.target != tc.want.target || st.node != tc.want.node || st.next != nil) {
				t.Fatalf("cure = {%v target=%s node=%s next=%v}, want {%v target=%s node=%s}", st.kind, st.target, st.node, st.next, tc.want.kind, tc.want.target, tc.want.node)
			}
			if tc.pc.String() != before.String() {
				t.Fatalf("cure changed its input: %v, was %v", tc.pc, before)
			}
		})
	}
}

// A dead primary is removed by the leader itself: the next configuration has a new
// ballot, no primary, the same secondaries, and the primary pushed on LastDrops.
func TestCureDeadPrimary(t *testing.T) {
	for _, tc := range []struct {
		name      string
		drops     []string
		wantDrops []string
	}{
		{"no history", nil, []string{nA}},
		{"appended last", []string{nD, nE}, []string{nD, nE, nA}},
		{"moved to the end when already there", []string{nA, nD}, []string{nD, nA}},
		{"kept to max(3, replicas)", []string{nB, nC, nD}, []string{nC, nD, nA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc := pconf(3, 3, 7, nA, []string{nB, nC}, tc.drops)
			before := cloneConfig(pc)
			in := cureInput{alive: func(n string) bool { return n != nA }, load: newLoad(),
				excluded: func(string) bool { return false }}
			st, ok := cure(pc, in)
			if !ok || st.kind != admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE || st.node != nA || st.target != "" || st.next == nil {
				t.Fatalf("cure = %+v ok=%v, want a leader-driven removal of %s", st, ok, nA)
			}
			n := st.next
			if n.Ballot != 8 || n.Primary.IsValid() || !slices.Equal(strs(n.Secondaries), []string{nB, nC}) ||
				!slices.Equal(strs(n.LastDrops), tc.wantDrops) || *n.Pid != *pc.Pid || n.MaxReplicaCount != 3 {
				t.Fatalf("next = %v, want ballot 8, no primary, secondaries [%s %s], drops %v", n, nB, nC, tc.wantDrops)
			}
			if pc.String() != before.String() {
				t.Fatalf("cure changed its input: %v, was %v", pc, before)
			}
		})
	}
}

// satisfied and applicable decide whether a plan step is done and whom to send it to.
func TestStepSatisfiedApplicable(t *testing.T) {
	pc := pconf(0, 3, 5, nA, []string{nB}, nil)
	noPrimary := pconf(0, 3, 5, "", []string{nB}, nil)
	for _, tc := range []struct {
		pc        *layer2.PartitionConfiguration
		kind      admin.ConfigType
		node      string
		satisfied bool
		to        string
		ok        bool
	}{
		{pc, admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY, nA, false, nA, true},
		{noPrimary, admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY, nB, true, nB, false},
		{noPrimary, admin.ConfigType_CT_UPGRADE_TO_PRIMARY, nB, false, nB, true},
		{pc, admin.ConfigType_CT_UPGRADE_TO_PRIMARY, nB, false, nB, false},
		{pc, admin.ConfigType_CT_UPGRADE_TO_PRIMARY, nA, true, nA, false},
		{pc, admin.ConfigType_CT_ASSIGN_PRIMARY, nA, true, "", false},
		{pc, admin.ConfigType_CT_ADD_SECONDARY, nC, false, nA, true},
		{pc, admin.ConfigType_CT_ADD_SECONDARY_FOR_LB, nB, true, nA, false},
		{pc, admin.ConfigType_CT_ADD_SECONDARY, nA, false, nA, false},
		{noPrimary, admin.ConfigType_CT_ADD_SECONDARY, nC, false, "", false},
		{pc, admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, nB, false, nA, true},
		{pc, admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, nC, true, nA, false},
		{pc, admin.ConfigType_CT_REMOVE, nA, false, nA, false},
	} {
		st := step{kind: tc.kind, node: tc.node}
		if got := satisfied(tc.pc, st); got != tc.satisfied {
			t.Errorf("satisfied(%v, %v %s) = %v, want %v", tc.pc, tc.kind, tc.node, got, tc.satisfied)
		}
		if to, ok := applicable(tc.pc, st); to != tc.to || ok != tc.ok {
			t.Errorf("applicable(%v, %v %s) = %q,%v, want %q,%v", tc.pc, tc.kind, tc.node, to, ok, tc.to, tc.ok)
		}
	}
}
