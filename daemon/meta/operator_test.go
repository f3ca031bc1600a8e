package meta

import (
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// showOrder spells an order compactly: "idle", or its parts among "stale",
// "moving", "ended <how>", "send <kind> <target> <node>", "write <kind> <node>".
func showOrder(o order) string {
	var parts []string
	kind := func(k admin.ConfigType) string { return strings.TrimPrefix(k.String(), "CT_") }
	if o.stale {
		parts = append(parts, "stale")
	}
	if o.moving {
		parts = append(parts, "moving")
	}
	if e := o.ended; e != nil {
		switch e.how {
		case moveFinished:
			parts = append(parts, "ended finished")
		case moveTimedOut:
			parts = append(parts, "ended timed out at "+kind(e.stuckAt))
		case movePreempted:
			parts = append(parts, "ended preempted")
		}
	}
	if s := o.send; s != nil {
		parts = append(parts, "send "+kind(s.kind)+" "+s.target+" "+s.node)
	}
	if w := o.write; w != nil {
		parts = append(parts, "write "+kind(w.kind)+" "+w.node)
	}
	if len(parts) == 0 {
		return "idle"
	}
	return strings.Join(parts, ", ")
}

// The operator controller, driven call by call with the time passed in: each
// call may add a move, record an applied configuration, end the term, and then
// asks for the order of the partition's configuration with the checker's verdict.
func TestOperators(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	none := step{}
	addSec := func(target, node string) step {
		return step{kind: admin.ConfigType_CT_ADD_SECONDARY, target: target, node: node}
	}
	upgrade := func(node string) step {
		return step{kind: admin.ConfigType_CT_UPGRADE_TO_PRIMARY, target: node, node: node}
	}
	downgrade := func(target, node string) step {
		return step{kind: admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, target: target, node: node}
	}
	removePrimary := func(pc *layer2.PartitionConfiguration) step {
		next := cloneConfig(pc)
		next.Ballot++
		next.Primary = nil
		return step{kind: admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, node: pc.Primary.String(), next: next}
	}
	type call struct {
		at       time.Duration
		add      *plan // a move added before the call
		src      moveSource
		wantAdd  bool                           // whether add is accepted
		observe  *layer2.PartitionConfiguration // applied before the call
		stop     bool                           // the term ends before the call
		pc       *layer2.PartitionConfiguration
		verdict  step // the checker's verdict; need is verdict.kind != CT_INVALID
		want     string
		wantMove bool // a move is in flight after the call
	}
	for _, tc := range []struct {
		name  string
		calls []call
	}{
		{name: "a move advances through its steps and finishes", calls: []call{
			{add: &plan{kind: moveCopyPrimary, steps: copyPrimary(nA, nD)}, wantAdd: true,
				pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: none,
				want: "moving, send ADD_SECONDARY_FOR_LB " + nA + " " + nD, wantMove: true},
			// One member too many while the move is under way: the checker's
			// wish to drop one is not followed.
			{at: time.Second, pc: pconf(0, 3, 6, nA, []string{nB, nC, nD}, nil), verdict: downgrade(nA, nB),
				want: "moving, send DOWNGRADE_TO_SECONDARY " + nA + " " + nA, wantMove: true},
			{at: 2 * time.Second, pc: pconf(0, 3, 7, "", []string{nB, nC, nD, nA}, nil), verdict: upgrade(nB),
				want: "moving, send UPGRADE_TO_PRIMARY " + nD + " " + nD, wantMove: true},
			{at: 3 * time.Second, pc: pconf(0, 3, 8, nD, []string{nB, nC, nA}, nil), verdict: downgrade(nD, nB),
				want: "moving, send DOWNGRADE_TO_INACTIVE " + nD + " " + nA, wantMove: true},
			{at: 4 * time.Second, pc: pconf(0, 3, 9, nD, []string{nB, nC}, nil), verdict: none,
				want: "ended finished"},
		}},
		{name: "several finished steps are dropped at once", calls: []call{
			{add: &plan{kind: moveCopySecondary, steps: copySecondary(nB, nD)}, wantAdd: true,
				pc: pconf(0, 3, 9, nA, []string{nC, nD}, nil), verdict: none, want: "ended finished"},
		}},
		{name: "a step not finished is resent after resendAfter, and the move times out", calls: []call{
			{add: &plan{kind: moveCopySecondary, steps: copySecondary(nB, nD)}, wantAdd: true,
				pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: none,
				want: "moving, send ADD_SECONDARY_FOR_LB " + nA + " " + nD, wantMove: true},
			{at: resendAfter - time.Millisecond, pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: none,
				want: "moving", wantMove: true},
			{at: resendAfter, pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: none,
				want: "moving, send ADD_SECONDARY_FOR_LB " + nA + " " + nD, wantMove: true},
			{at: moveTimeout, pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: none,
				want: "moving, send ADD_SECONDARY_FOR_LB " + nA + " " + nD, wantMove: true},
			// Abandoned: the checker repairs whatever state the move left.
			{at: moveTimeout + time.Second, pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: none,
				want: "ended timed out at ADD_SECONDARY_FOR_LB"},
		}},
		{name: "a move whose step cannot be sent waits while the checker only wants a secondary removed", calls: []call{
			{add: &plan{kind: moveCopySecondary, steps: copySecondary(nB, nD)}, wantAdd: true,
				pc: pconf(0, 3, 6, "", []string{nA, nB, nC}, nil), verdict: downgrade(nA, nC),
				want: "moving", wantMove: true},
		}},
		{name: "a repair pre-empts a move whose step cannot be sent", calls: []call{
			{add: &plan{kind: moveMovePrimary, steps: movePrimary(nA, nB)}, wantAdd: true,
				pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: none,
				want: "moving, send DOWNGRADE_TO_SECONDARY " + nA + " " + nA, wantMove: true},
			// nA died and was removed: the move cannot go on, the partition
			// needs a primary.
			{at: time.Second, pc: pconf(0, 3, 6, "", []string{nB, nC}, []string{nA}), verdict: upgrade(nB),
				want: "ended preempted, send UPGRADE_TO_PRIMARY " + nB + " " + nB},
		}},
		{name: "the removal of a dead primary pre-empts a move whose step cannot be sent", calls: []call{
			{add: &plan{kind: moveCopySecondary, steps: copySecondary(nB, nA)}, wantAdd: true,
				pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: removePrimary(pconf(0, 3, 5, nA, []string{nB, nC}, nil)),
				want: "ended preempted, write DOWNGRADE_TO_INACTIVE " + nA},
		}},
		// A step that can be sent goes to the primary: a dead one would leave
		// the partition without a live primary until the move timed out.
		{name: "the removal of a dead primary pre-empts a move whose step can be sent", calls: []call{
			{add: &plan{kind: moveCopySecondary, steps: copySecondary(nB, nD)}, wantAdd: true,
				pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: removePrimary(pconf(0, 3, 5, nA, []string{nB, nC}, nil)),
				want: "ended preempted, write DOWNGRADE_TO_INACTIVE " + nA},
		}},
		{name: "a move whose step can be sent goes on while the checker wants another repair", calls: []call{
			{add: &plan{kind: moveCopySecondary, steps: copySecondary(nB, nD)}, wantAdd: true,
				pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: downgrade(nA, nC),
				want: "moving, send ADD_SECONDARY_FOR_LB " + nA + " " + nD, wantMove: true},
		}},
		{name: "the checker's proposals are sent once per ballot, node and kind until resendAfter", calls: []call{
			{pc: pconf(0, 3, 5, nA, []string{nB}, nil), verdict: addSec(nA, nC), want: "send ADD_SECONDARY " + nA + " " + nC},
			{at: time.Second, pc: pconf(0, 3, 5, nA, []string{nB}, nil), verdict: addSec(nA, nC), want: "idle"},
			{at: 2 * time.Second, pc: pconf(0, 3, 5, nA, []string{nB}, nil), verdict: addSec(nA, nD), want: "send ADD_SECONDARY " + nA + " " + nD},
			{at: 3 * time.Second, pc: pconf(0, 3, 6, nA, []string{nB}, nil), verdict: addSec(nA, nD), want: "send ADD_SECONDARY " + nA + " " + nD},
			{at: 3*time.Second + resendAfter, pc: pconf(0, 3, 6, nA, []string{nB}, nil), verdict: addSec(nA, nD), want: "send ADD_SECONDARY " + nA + " " + nD},
			{at: 4*time.Second + resendAfter, pc: pconf(0, 3, 6, nA, []string{nB, nD}, nil), verdict: none, want: "idle"},
		}},
		{name: "the removal of a dead primary is ordered at every pass: the Server checks the ballot before writing", calls: []call{
			{pc: pconf(0, 3, 5, nA, []string{nB}, nil), verdict: removePrimary(pconf(0, 3, 5, nA, []string{nB}, nil)), want: "write DOWNGRADE_TO_INACTIVE " + nA},
			{at: time.Second, pc: pconf(0, 3, 5, nA, []string{nB}, nil), verdict: removePrimary(pconf(0, 3, 5, nA, []string{nB}, nil)), want: "write DOWNGRADE_TO_INACTIVE " + nA},
		}},
		{name: "a balancer move is refused where a move is in flight; an admin's move replaces it", calls: []call{
			{add: &plan{kind: moveCopySecondary, steps: copySecondary(nB, nD)}, wantAdd: true,
				pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: none,
				want: "moving, send ADD_SECONDARY_FOR_LB " + nA + " " + nD, wantMove: true},
			{at: time.Second, add: &plan{kind: moveMovePrimary, steps: movePrimary(nA, nB)}, wantAdd: false,
				pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: none, want: "moving", wantMove: true},
			{at: 2 * time.Second, add: &plan{kind: moveManual, steps: movePrimary(nA, nC)}, src: fromAdmin, wantAdd: true,
				pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: none,
				want: "moving, send DOWNGRADE_TO_SECONDARY " + nA + " " + nA, wantMove: true},
			{at: 3 * time.Second, add: &plan{kind: moveCopySecondary, steps: copySecondary(nB, nD)}, wantAdd: false,
				pc: pconf(0, 3, 6, "", []string{nB, nC, nA}, nil), verdict: upgrade(nB),
				want: "moving, send UPGRADE_TO_PRIMARY " + nC + " " + nC, wantMove: true},
			{at: 4 * time.Second, add: &plan{kind: moveManual, steps: copySecondary(nB, nD)}, src: fromAdmin, wantAdd: true,
				pc: pconf(0, 3, 7, nC, []string{nB, nA}, nil), verdict: none,
				want: "moving, send ADD_SECONDARY_FOR_LB " + nC + " " + nD, wantMove: true},
		}},
		{name: "a configuration older than one seen is stale: the move neither advances nor goes back", calls: []call{
			{add: &plan{kind: moveCopySecondary, steps: copySecondary(nB, nD)}, wantAdd: true,
				pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: none,
				want: "moving, send ADD_SECONDARY_FOR_LB " + nA + " " + nD, wantMove: true},
			{at: time.Second, pc: pconf(0, 3, 6, nA, []string{nB, nC, nD}, nil), verdict: downgrade(nA, nB),
				want: "moving, send DOWNGRADE_TO_INACTIVE " + nA + " " + nB, wantMove: true},
			{at: 2 * time.Second, pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: none, want: "stale", wantMove: true},
			{at: 3 * time.Second, pc: pconf(0, 3, 6, nA, []string{nB, nC, nD}, nil), verdict: downgrade(nA, nB),
				want: "moving", wantMove: true},
			// A change applied by the leader (a replica's request) makes the
			// configuration a pass read before it stale.
			{at: 4 * time.Second, observe: pconf(0, 3, 7, nA, []string{nC, nD}, nil),
				pc: pconf(0, 3, 6, nA, []string{nB, nC, nD}, nil), verdict: downgrade(nA, nB), want: "stale", wantMove: true},
			{at: 5 * time.Second, pc: pconf(0, 3, 7, nA, []string{nC, nD}, nil), verdict: none, want: "ended finished"},
		}},
		{name: "when the term ends nothing more is ordered or accepted", calls: []call{
			{add: &plan{kind: moveCopySecondary, steps: copySecondary(nB, nD)}, wantAdd: true,
				pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: none,
				want: "moving, send ADD_SECONDARY_FOR_LB " + nA + " " + nD, wantMove: true},
			{at: resendAfter, stop: true, pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: addSec(nA, nE), want: "idle"},
			{at: 2 * resendAfter, add: &plan{kind: moveManual, steps: copySecondary(nB, nD)}, src: fromAdmin, wantAdd: false,
				pc: pconf(0, 3, 5, nA, []string{nB, nC}, nil), verdict: removePrimary(pconf(0, 3, 5, nA, []string{nB, nC}, nil)), want: "idle"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newOperators(resendAfter, moveTimeout)
			for i, cl := range tc.calls {
				now := t0.Add(cl.at)
				g := *cl.pc.Pid
				if cl.stop {
					c.stop()
				}
				if cl.add != nil {
					if got := c.add(g, cl.add, cl.src, now); got != cl.wantAdd {
						t.Fatalf("call %d: add accepted %v, want %v", i, got, cl.wantAdd)
					}
				}
				if cl.observe != nil {
					c.observe(cl.observe)
				}
				need := cl.verdict.kind != admin.ConfigType_CT_INVALID
				if got := showOrder(c.next(cl.pc, cl.verdict, need, now)); got != cl.want {
					t.Fatalf("call %d at %v: order %q, want %q", i, cl.at, got, cl.want)
				}
				if got := c.busy(g); got != cl.wantMove {
					t.Fatalf("call %d: move in flight %v, want %v", i, got, cl.wantMove)
				}
			}
		})
	}
}

// The moves in flight are counted by kind for cluster_info (manual moves are
// not), and leaving the lively level drops them.
func TestOperatorsCountAndClear(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	c := newOperators(resendAfter, moveTimeout)
	for i, kind := range []string{moveMovePrimary, moveCopyPrimary, moveCopySecondary, moveCopySecondary, moveManual} {
		src := fromBalancer
		if kind == moveManual {
			src = fromAdmin
		}
		if !c.add(*pconf(int32(i), 3, 5, nA, nil, nil).Pid, &plan{kind: kind}, src, t0) {
			t.Fatalf("move %d refused", i)
		}
	}
	if got, want := c.counts().String(), "move_pri=1,copy_pri=1,copy_sec=2,total=4"; got != want {
		t.Errorf("counts %q, want %q", got, want)
	}
	if c.moveCount() != 5 {
		t.Errorf("%d moves, want 5", c.moveCount())
	}
	c.clearMoves()
	if c.moveCount() != 0 || c.counts().String() != "move_pri=0,copy_pri=0,copy_sec=0,total=0" {
		t.Errorf("after clear: %d moves, counts %s", c.moveCount(), c.counts())
	}
}
