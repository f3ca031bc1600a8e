package pacifica

import (
	"slices"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
)

// LearnType is how a learner catches up.
type LearnType int

// Learning modes.
const (
	LearnRetry   LearnType = iota // not now (e.g. the primary is behind the learner)
	LearnCache                    // committed mutations from memory, then prepares
	LearnApp                      // copy a checkpoint of the store first
	LearnRefused                  // not a learner of this primary any more
)

// LearnDecision answers a learner's request.
type LearnDecision struct {
	Type         LearnType
	Mutations    []*Mutation // LearnCache: the committed mutations after the learner's decree
	PrepareStart int64       // LearnCache: the first decree the learner gets through prepares
	Err          string      // LearnRetry/LearnRefused: why
}

// AddLearner starts bringing node up to date (the meta asked the primary to add a
// secondary). limit bounds members plus learners, so that a retried proposal does
// not add a node twice. The caller sends the returned LearnerStart to the node.
func (r *Replica) AddLearner(node string, limit int, now time.Time) Ready {
	if r.status != StatusPrimary || r.reconfig != nil || r.cfg.Has(node) {
		return Ready{}
	}
	if l, ok := r.learners[node]; ok {
		// Already learning: repeat the invitation (it may have been lost).
		return Ready{AddLearner: &LearnerStart{Node: node, Signature: l.signature, Config: r.cfg.Clone()}}
	}
	var rd Ready
	if len(r.cfg.Members())+len(r.learners) >= limit {
		// The meta server asks for another node than the learners in
		// progress: it adds one node at a time per partition, so it has given
		// up on them (declared dead, or a move abandoned). Keeping them would
		// refuse every replacement for good: a learner whose invitation was
		// lost is only dropped when a prepare to it fails, and none is sent
		// before it learns.
		if len(r.cfg.Members()) >= limit {
			return Ready{}
		}
		for _, old := range r.Learners() {
			rd.merge(r.dropLearner(old, now))
		}
	}
	r.nextSig++
	sig := r.cfg.Ballot<<32 | r.nextSig&0xffffffff
	r.learners[node] = &learner{signature: sig}
	rd.AddLearner = &LearnerStart{Node: node, Signature: sig, Config: r.cfg.Clone()}
	return rd
}

// Learners lists the nodes being brought up to date (primary).
func (r *Replica) Learners() []string {
	out := make([]string, 0, len(r.learners))
	for n := range r.learners {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// OnLearn decides how a learner whose store holds everything up to committed
// catches up. With LearnCache the learner also starts receiving prepares, which the
// returned Ready sends, and commits wait for its acknowledgements from then on.
func (r *Replica) OnLearn(node string, signature, committed int64, now time.Time) (LearnDecision, Ready) {
	l, ok := r.learners[node]
	switch {
	case r.status != StatusPrimary:
		return LearnDecision{Type: LearnRefused, Err: base.ErrInvalidState}, Ready{}
	case !ok || l.signature != signature:
		return LearnDecision{Type: LearnRefused, Err: base.ErrObjectNotFound}, Ready{}
	case committed > r.committed:
		// The learner holds decrees this new primary has not committed yet (it is
		// still reconciling): ask again shortly.
		return LearnDecision{Type: LearnRetry, Err: base.ErrInconsistentState}, Ready{}
	}
	muts, cached := r.CommittedSince(committed + 1)
	if !cached {
		l.prepareStart = 0
		return LearnDecision{Type: LearnApp}, Ready{}
	}
	l.prepareStart = r.committed + 1
	var rd Ready
	for d := r.committed + 1; d <= r.maxPrepared; d++ {
		e := r.entries[d]
		if e == nil || e.acks == nil {
			continue
		}
		e.sent[node] = now
		rd.Prepares = append(rd.Prepares, Prepare{To: node, Config: r.cfg.Clone(), Status: StatusLearner, Mutation: e.mu, Signature: signature})
	}
	return LearnDecision{Type: LearnCache, Mutations: muts, PrepareStart: l.prepareStart}, rd
}

// OnLearnCompleted is the learner reporting that it is up to date: the primary asks
// the meta to make it a secondary.
func (r *Replica) OnLearnCompleted(node string, signature int64, now time.Time) Ready {
	l, ok := r.learners[node]
	if r.status != StatusPrimary || !ok || l.signature != signature || l.prepareStart == 0 {
		return Ready{}
	}
	next := r.cfg.Clone()
	next.Ballot++
	next.Secondaries = append(next.Secondaries, node)
	return r.RequestConfigChange(ChangeUpgradeToSecondary, node, next)
}

// onLearnerAck handles a learner's answer to a prepare: a failure drops the learner
// (it is not a member; nobody waits for it).
func (r *Replica) onLearnerAck(from string, decree int64, err string, e *entry, now time.Time) Ready {
	switch err {
	case base.ErrOK:
		e.acks[from] = true
		return r.commitPrimary(now)
	case base.ErrInactiveState, base.ErrTryAgain:
		if now.Sub(e.sent[from]) < r.opts.PrepareTimeout {
			return Ready{Resends: []Resend{{To: from, Decree: decree, Delay: r.opts.RetryDelay}}}
		}
	}
	return r.dropLearner(from, now)
}

func (r *Replica) dropLearner(node string, now time.Time) Ready {
	delete(r.learners, node)
	// Mutations that waited for its acknowledgement may commit now.
	return r.commitPrimary(now)
}

// BecomeLearner starts learning from the primary of cfg. Prepared but uncommitted
// mutations are dropped: the primary sends everything after the learned state.
func (r *Replica) BecomeLearner(cfg Config, signature int64, now time.Time) Ready {
	if cfg.Ballot < r.cfg.Ballot || r.status == StatusPrimary || r.status == StatusSecondary && cfg.Ballot == r.cfg.Ballot {
		return Ready{}
	}
	var rd Ready
	if cfg.Ballot > r.cfg.Ballot {
		r.cfg = cfg.Clone()
		rd.Persist = true
	}
	rd.merge(r.rejectQueue(base.ErrInvalidState))
	r.status, r.transient, r.restored = StatusLearner, false, false
	r.learnSig = signature
	for d := range r.entries {
		if d > r.committed {
			delete(r.entries, d)
		}
	}
	r.maxPrepared, r.known = r.committed, r.committed
	return rd
}

// LearnSignature is the signature of the learning in progress (learner).
func (r *Replica) LearnSignature() int64 { return r.learnSig }

// ResetTo installs a learned checkpoint: the store now holds everything up to
// decree, and nothing is prepared.
func (r *Replica) ResetTo(decree int64) {
	r.committed, r.known, r.maxPrepared = decree, decree, decree
	clear(r.entries)
}

// ApplyLearned commits the mutations learned from the primary's cache (they are
// committed there), then whatever prepares arrived meanwhile allow.
func (r *Replica) ApplyLearned(muts []*Mutation, prepareStart int64) Ready {
	var rd Ready
	if r.status != StatusLearner {
		return rd
	}
	for _, mu := range muts {
		if mu.Decree != r.committed+1 {
			continue
		}
		e := &entry{mu: mu, logged: true}
		r.entries[mu.Decree] = e
		r.maxPrepared = max(r.maxPrepared, mu.Decree)
		r.lastTS = max(r.lastTS, mu.TimestampUS)
		rd.Commits = append(rd.Commits, r.commit(e))
	}
	r.known = max(r.known, prepareStart-1)
	rd.merge(r.commitUpTo(r.known))
	return rd
}

// CaughtUp reports whether a learner holds every decree before prepareStart.
func (r *Replica) CaughtUp(prepareStart int64) bool {
	return r.status == StatusLearner && r.committed >= prepareStart-1
}
