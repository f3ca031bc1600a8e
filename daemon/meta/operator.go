package meta

import (
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// The operator controller owns what a leader term has in flight: the moves (a
// plan of steps for one partition, from the balancer or an admin) and the last
// proposal sent for each partition, the checker's repairs included. It decides,
// for each partition at each pass, whether the move's current step is finished
// (the configuration shows it), whether it can be sent, whether the move timed
// out or must give way to a repair, and whether a proposal is due again. It is
// pure: no locks, no clock (time is passed in), no I/O. The Server guards it with
// Server.mu, feeds it each partition's configuration with the checker's verdict,
// and carries out the order it answers (a proposal to send, a change to write,
// an ended move to log).

const (
	// resendAfter is how long a proposal is given before it is sent again.
	resendAfter = 5 * time.Second
	// moveTimeout bounds a move; a stuck move is abandoned and the checker
	// repairs whatever state it left.
	moveTimeout = 3 * time.Minute
)

// moveSource says who asked for a move, which decides what may replace it.
type moveSource int

const (
	// fromBalancer: a move planned by the balancer. Refused on a partition that
	// has a move already (the balancer skips those anyway).
	fromBalancer moveSource = iota
	// fromAdmin: a manual move (propose_balancer). It replaces any move in flight
	// on its partition: the admin's latest word wins.
	fromAdmin
)

// move is a plan being carried out.
type move struct {
	plan
	source  moveSource
	started time.Time
}

// sentProposal is the last proposal sent for a partition: it is in flight until
// the partition's ballot moves on or resendAfter passes.
type sentProposal struct {
	ballot int64
	kind   admin.ConfigType
	node   string
	at     time.Time
}

// moveEnd says how a move ended, for the log.
type moveEnd int

const (
	moveFinished  moveEnd = iota + 1 // every step shows in the configuration
	moveTimedOut                     // not finished within moveTimeout
	movePreempted                    // gave way to a repair
)

// endedMove is a move that ended during a call of next.
type endedMove struct {
	how     moveEnd
	kind    string           // the move's kind (moveMovePrimary, ...)
	stuckAt admin.ConfigType // the step it did not get past (timed out)
}

// order is what the controller asks the Server to do for one partition.
type order struct {
	// stale: the configuration is older than one already seen; nothing is
	// decided on it (the next pass looks again).
	stale bool
	// moving: a move carries on, so the checker's verdict was not used.
	moving bool
	// send is a proposal to send now (target and node set); nil for none.
	send *step
	// write is a change the leader writes itself (the checker's removal of a
	// dead primary); nil for none.
	write *step
	// ended is a move that ended in this call; nil for none.
	ended *endedMove
}

// operators is the operator controller of one leader term.
type operators struct {
	resendAfter time.Duration
	timeout     time.Duration
	moves       map[base.Gpid]*move
	sent        map[base.Gpid]sentProposal
	ballots     map[base.Gpid]int64 // the newest ballot seen per partition
	stopped     bool                // the term ended
}

func newOperators(resendAfter, timeout time.Duration) *operators {
	return &operators{
		resendAfter: resendAfter,
		timeout:     timeout,
		moves:       map[base.Gpid]*move{},
		sent:        map[base.Gpid]sentProposal{},
		ballots:     map[base.Gpid]int64{},
	}
}

// observe records a configuration the leader applied, so that an older one
// still held by a pass is recognised as stale.
func (c *operators) observe(pc *layer2.PartitionConfiguration) {
	if g := *pc.Pid; pc.Ballot > c.ballots[g] {
		c.ballots[g] = pc.Ballot
	}
}

// add starts a move of partition g at now. A balancer move is refused where a
// move is in flight; an admin's move replaces it. Nothing is accepted once the
// term ended.
func (c *operators) add(g base.Gpid, p *plan, src moveSource, now time.Time) bool {
	if c.stopped {
		return false
	}
	if c.moves[g] != nil && src != fromAdmin {
		return false
	}
	c.moves[g] = &move{plan: plan{kind: p.kind, steps: append([]step(nil), p.steps...)}, source: src, started: now}
	return true
}

// busy reports whether partition g has a move in flight.
func (c *operators) busy(g base.Gpid) bool { return c.moves[g] != nil }

// moveCount is the number of moves in flight.
func (c *operators) moveCount() int { return len(c.moves) }

// counts counts the moves in flight by kind, for cluster_info.
func (c *operators) counts() balanceCounts {
	var b balanceCounts
	for _, m := range c.moves {
		b.add(m.kind)
	}
	return b
}

// clearMoves drops every move (the function level no longer allows balancing).
// The proposals in flight stay throttled.
func (c *operators) clearMoves() { clear(c.moves) }

// stop ends the controller with its term: everything in flight is forgotten and
// nothing more is ordered.
func (c *operators) stop() {
	c.stopped = true
	clear(c.moves)
	clear(c.sent)
}

// next decides what partition pc needs at now. verdict and need are the
// checker's (cure's) answer for it. A move in flight goes first: its finished
// steps are dropped and its next one is sent; a move whose next step cannot be
// sent waits, unless the checker needs a repair other than removing a surplus or
// dead secondary (the move would fight that one), in which case the move gives
// way. The removal of a dead primary pre-empts any move. Without a move the
// checker's verdict is carried out.
func (c *operators) next(pc *layer2.PartitionConfiguration, verdict step, need bool, now time.Time) order {
	var o order
	if c.stopped {
		return o
	}
	g := *pc.Pid
	if pc.Ballot < c.ballots[g] {
		o.stale = true
		return o
	}
	c.ballots[g] = pc.Ballot
	if m := c.moves[g]; m != nil {
		for len(m.steps) > 0 && satisfied(pc, m.steps[0]) {
			m.steps = m.steps[1:]
		}
		switch {
		case len(m.steps) == 0:
			delete(c.moves, g)
			o.ended = &endedMove{how: moveFinished, kind: m.kind}
		case now.Sub(m.started) > c.timeout:
			delete(c.moves, g)
			o.ended = &endedMove{how: moveTimedOut, kind: m.kind, stuckAt: m.steps[0].kind}
		case need && verdict.next != nil:
			// The primary is dead (the checker removes it by a write): every
			// step of a move goes through the primary, so the move can only
			// wait for its timeout while the partition has no live primary.
			delete(c.moves, g)
			o.ended = &endedMove{how: movePreempted, kind: m.kind}
		default:
			head := m.steps[0]
			target, ok := applicable(pc, head)
			if ok {
				head.target = target
				o.moving = true
				o.send = c.throttle(pc, head, now)
				return o
			}
			if !need || verdict.next == nil && verdict.kind == admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE {
				o.moving = true
				return o
			}
			delete(c.moves, g)
			o.ended = &endedMove{how: movePreempted, kind: m.kind}
		}
	}
	if !need {
		return o
	}
	if verdict.next != nil {
		o.write = &verdict
		return o
	}
	o.send = c.throttle(pc, verdict, now)
	return o
}

// throttle returns st when it is due: not sent yet at this ballot, or sent
// resendAfter ago or more. A due proposal is recorded as sent at now.
func (c *operators) throttle(pc *layer2.PartitionConfiguration, st step, now time.Time) *step {
	g := *pc.Pid
	last, seen := c.sent[g]
	if seen && last.ballot == pc.Ballot && last.kind == st.kind && last.node == st.node && now.Sub(last.at) < c.resendAfter {
		return nil
	}
	c.sent[g] = sentProposal{ballot: pc.Ballot, kind: st.kind, node: st.node, at: now}
	return &st
}
