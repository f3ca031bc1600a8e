package pacifica

import (
	"slices"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
)

// Options tune a Replica. Zero values pick upstream's defaults.
type Options struct {
	MaxInflight     int           // staleness_for_commit: mutations in 2PC at once (20)
	PrepareListCap  int           // max_mutation_count_in_prepare_list (110)
	Min2PC          int           // members a write needs, the primary included (2)
	MaxQueued       int           // client writes waiting for a mutation (4096)
	MaxBatchUpdates int           // client writes batched into one mutation (512)
	MaxBatchBytes   int           // bytes batched into one mutation (4 MiB)
	PrepareTimeout  time.Duration // a secondary that does not acknowledge is removed (3 s)
	RetryDelay      time.Duration // resend to a secondary that said "not yet" (5 ms)
	IdleDelay       time.Duration // an idle primary tells its secondaries the commit point (100 ms)
	// LearnCache is how many committed mutations a primary keeps in memory for
	// learners that are close behind (2048); a learner further behind copies a
	// checkpoint first.
	LearnCache int
	// EmptyWriteInterval: an idle primary writes an empty mutation this often, which
	// re-sends a lost commit point and detects dead secondaries (upstream's group
	// check period). 0 disables it.
	EmptyWriteInterval time.Duration
}

func (o *Options) setDefaults() {
	if o.MaxInflight <= 0 {
		o.MaxInflight = 20
	}
	if o.PrepareListCap <= 0 {
		o.PrepareListCap = 110
	}
	if o.LearnCache <= 0 {
		o.LearnCache = 2048
	}
	if o.Min2PC <= 0 {
		o.Min2PC = 2
	}
	if o.MaxQueued <= 0 {
		o.MaxQueued = 4096
	}
	if o.MaxBatchUpdates <= 0 {
		o.MaxBatchUpdates = 512
	}
	if o.MaxBatchBytes <= 0 {
		o.MaxBatchBytes = 4 << 20
	}
	if o.PrepareTimeout <= 0 {
		o.PrepareTimeout = 3 * time.Second
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = 5 * time.Millisecond
	}
	if o.IdleDelay <= 0 {
		o.IdleDelay = 100 * time.Millisecond
	}
}

// Replica is the replication state of one partition replica. It is not safe for
// concurrent use: one goroutine (the replica's executor) owns it.
type Replica struct {
	self string
	opts Options

	status    Status
	transient bool // inactive, but may resume its role at the same ballot
	restored  bool // loaded from disk and not yet back in a role
	cfg       Config

	committed   int64 // last decree applied to the storage engine
	known       int64 // highest commit point heard from a primary (secondary)
	maxPrepared int64
	entries     map[int64]*entry // decrees above committed, plus recent committed ones
	lastTS      int64
	defaultTTL  int32 // stamped on new mutations

	// Learner only: the signature the primary gave this learning.
	learnSig int64

	// Primary only.
	learners     map[string]*learner
	nextSig      int64
	queue        []*Write
	readyAt      int64          // reads wait until committed reaches this (after takeover)
	reconfig     *ConfigRequest // a change at the meta: no new mutation meanwhile
	propagated   int64          // commit point last sent to the secondaries
	lastPrepared time.Time      // when a prepare was last sent
}

// learner is a node the primary is bringing up to date.
type learner struct {
	signature int64
	// prepareStart is the first decree the learner receives through prepares (and
	// must acknowledge before it commits); 0 while it learns without them.
	prepareStart int64
}

type entry struct {
	mu     *Mutation
	logged bool
	// Primary: who acknowledged this version (mu.Ballot), when each was first sent.
	acks   map[string]bool
	sent   map[string]time.Time
	writes []*Write
	// Secondary: the primary waiting for our acknowledgement once logged.
	ackTo string
}

// New returns an inactive replica of node self.
func New(self string, opts Options) *Replica {
	opts.setDefaults()
	return &Replica{self: self, opts: opts, status: StatusInactive, transient: true, entries: map[int64]*entry{}, learners: map[string]*learner{}}
}

// SetDefaultTTL sets the table's default TTL (seconds, 0 = none) that the primary
// stamps on the mutations it creates from now on.
func (r *Replica) SetDefaultTTL(seconds int32) { r.defaultTTL = seconds }

// Status returns the role.
func (r *Replica) Status() Status { return r.status }

// Config returns the configuration in force.
func (r *Replica) Config() Config { return r.cfg.Clone() }

// Ballot returns the ballot in force.
func (r *Replica) Ballot() int64 { return r.cfg.Ballot }

// Primary returns the primary of the configuration in force ("" if none).
func (r *Replica) Primary() string { return r.cfg.Primary }

// Committed returns the last decree applied to the storage engine.
func (r *Replica) Committed() int64 { return r.committed }

// MaxPrepared returns the highest decree prepared.
func (r *Replica) MaxPrepared() int64 { return r.maxPrepared }

// Transient reports whether an inactive replica may resume its role.
func (r *Replica) Transient() bool { return r.transient }

// CanRead reports whether the replica serves reads: a primary that has committed
// everything its predecessor might have acknowledged.
func (r *Replica) CanRead() bool {
	return r.status == StatusPrimary && r.committed >= r.readyAt
}

// CanWrite reports whether the replica accepts client writes.
func (r *Replica) CanWrite() bool { return r.status == StatusPrimary }

// Restore installs the state found on disk after a restart: the ballot and
// configuration last persisted, the decree the storage engine holds, and the
// mutations replayed from the plog (in any order; for a decree logged under several
// ballots the newest wins). Mutations up to the highest commit point the log proves
// are returned as commits; the rest stay prepared. The replica starts inactive and
// transient: the meta server's configuration decides its role.
func (r *Replica) Restore(cfg Config, applied int64, logged []*Mutation) Ready {
	r.cfg = cfg.Clone()
	r.committed, r.known, r.maxPrepared = applied, applied, applied
	r.status, r.transient, r.restored = StatusInactive, true, true
	var rd Ready
	for _, mu := range logged {
		if mu.Ballot > r.cfg.Ballot {
			// A ballot seen in the log was accepted before the crash even if the
			// persisted configuration did not make it to disk.
			r.cfg.Ballot = mu.Ballot
			rd.Persist = true
		}
		r.known = max(r.known, mu.LastCommitted)
		if mu.TimestampUS > r.lastTS {
			r.lastTS = mu.TimestampUS
		}
		if mu.Decree <= applied {
			continue
		}
		if e := r.entries[mu.Decree]; e != nil && e.mu.Ballot >= mu.Ballot {
			continue
		}
		r.entries[mu.Decree] = &entry{mu: mu, logged: true}
		r.maxPrepared = max(r.maxPrepared, mu.Decree)
	}
	rd.merge(r.commitUpTo(r.known))
	return rd
}

// Propose queues a client write on the primary.
func (r *Replica) Propose(w *Write, now time.Time) Ready {
	return r.ProposeMany([]*Write{w}, now)
}

// ProposeMany queues client writes that arrived together, so that they can share
// mutations.
func (r *Replica) ProposeMany(ws []*Write, now time.Time) Ready {
	var rd Ready
	for _, w := range ws {
		switch {
		case r.status != StatusPrimary:
			rd.Rejects = append(rd.Rejects, Rejected{w, base.ErrInvalidState})
		case len(r.cfg.Members()) < r.opts.Min2PC:
			rd.Rejects = append(rd.Rejects, Rejected{w, base.ErrNotEnoughMember})
		case len(r.queue) >= r.opts.MaxQueued:
			rd.Rejects = append(rd.Rejects, Rejected{w, base.ErrBusy})
		default:
			r.queue = append(r.queue, w)
		}
	}
	rd.merge(r.pump(now))
	return rd
}

// pump turns queued writes into mutations while the in-flight window allows.
func (r *Replica) pump(now time.Time) Ready {
	var rd Ready
	if r.status == StatusPrimary && len(r.queue) > 0 && len(r.cfg.Members()) < r.opts.Min2PC {
		// The group shrank while these writes waited: a write needs Min2PC copies.
		return r.rejectQueue(base.ErrNotEnoughMember)
	}
	for r.status == StatusPrimary && r.reconfig == nil && len(r.queue) > 0 &&
		r.maxPrepared-r.committed < int64(r.opts.MaxInflight) {
		n, bytes := 0, 0
		for n < len(r.queue) && n < r.opts.MaxBatchUpdates && (n == 0 || bytes+r.queue[n].Size <= r.opts.MaxBatchBytes) {
			bytes += r.queue[n].Size
			n++
		}
		writes := slices.Clone(r.queue[:n])
		r.queue = r.queue[n:]
		mu := &Mutation{
			Ballot:        r.cfg.Ballot,
			Decree:        r.maxPrepared + 1,
			LastCommitted: r.committed,
			TimestampUS:   r.nextTimestamp(now),
			DefaultTTL:    r.defaultTTL,
		}
		for _, w := range writes {
			mu.Updates = append(mu.Updates, w.Update)
		}
		e := &entry{mu: mu, writes: writes}
		r.entries[mu.Decree] = e
		r.maxPrepared = mu.Decree
		rd.Append = append(rd.Append, mu)
		rd.Prepares = append(rd.Prepares, r.sendPrepares(e, now)...)
	}
	if len(r.queue) == 0 {
		r.queue = nil // let the backing array go
	}
	return rd
}

// EmptyWrite starts a mutation without client writes (the primary uses one to
// advance the commit point and to probe its secondaries).
func (r *Replica) EmptyWrite(now time.Time) Ready {
	if r.status != StatusPrimary || r.reconfig != nil {
		return Ready{}
	}
	mu := &Mutation{Ballot: r.cfg.Ballot, Decree: r.maxPrepared + 1, LastCommitted: r.committed, TimestampUS: r.nextTimestamp(now)}
	e := &entry{mu: mu}
	r.entries[mu.Decree] = e
	r.maxPrepared = mu.Decree
	return Ready{Append: []*Mutation{mu}, Prepares: r.sendPrepares(e, now)}
}

func (r *Replica) nextTimestamp(now time.Time) int64 {
	ts := now.UnixMicro()
	if ts <= r.lastTS {
		ts = r.lastTS + 1
	}
	r.lastTS = ts
	return ts
}

func (r *Replica) sendPrepares(e *entry, now time.Time) []Prepare {
	var out []Prepare
	e.acks = map[string]bool{}
	e.sent = map[string]time.Time{}
	for _, s := range r.cfg.Secondaries {
		e.sent[s] = now
		out = append(out, Prepare{To: s, Config: r.cfg.Clone(), Status: StatusSecondary, Mutation: e.mu})
	}
	for _, node := range r.prepareLearners(e.mu.Decree) {
		e.sent[node] = now
		out = append(out, Prepare{To: node, Config: r.cfg.Clone(), Status: StatusLearner, Mutation: e.mu, Signature: r.learners[node].signature})
	}
	if len(out) > 0 {
		r.lastPrepared = now
	}
	return out
}

// prepareLearners lists, sorted, the learners that take the prepare of decree.
func (r *Replica) prepareLearners(decree int64) []string {
	var out []string
	for node, l := range r.learners {
		if l.prepareStart > 0 && decree >= l.prepareStart {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return out
}

// ackers lists every node whose acknowledgement a decree needs.
func (r *Replica) ackers(decree int64) []string {
	return append(slices.Clone(r.cfg.Secondaries), r.prepareLearners(decree)...)
}

// OnLogged reports that the plog holds a mutation.
func (r *Replica) OnLogged(decree, ballot int64, now time.Time) Ready {
	e := r.entries[decree]
	if e == nil || e.mu.Ballot != ballot || e.logged {
		return Ready{}
	}
	e.logged = true
	var rd Ready
	switch r.status {
	case StatusPrimary:
		rd.merge(r.commitPrimary(now))
	case StatusSecondary, StatusLearner:
		if e.ackTo != "" {
			rd.Acks = append(rd.Acks, r.ack(e.ackTo, decree, ballot, base.ErrOK))
			e.ackTo = ""
		}
		rd.merge(r.commitUpTo(r.known))
	}
	return rd
}

func (r *Replica) ack(to string, decree, ballot int64, err string) Ack {
	return Ack{To: to, Decree: decree, Ballot: ballot, Err: err, LastCommitted: r.committed, LastPrepared: r.maxPrepared}
}

// commitPrimary commits, in order, every mutation logged here and acknowledged by
// every secondary, then starts queued writes.
func (r *Replica) commitPrimary(now time.Time) Ready {
	var rd Ready
	for {
		e := r.entries[r.committed+1]
		if e == nil || !e.logged {
			break
		}
		for _, s := range r.ackers(e.mu.Decree) {
			if !e.acks[s] {
				return r.finishCommits(rd, now)
			}
		}
		rd.Commits = append(rd.Commits, r.commit(e))
	}
	return r.finishCommits(rd, now)
}

func (r *Replica) finishCommits(rd Ready, now time.Time) Ready {
	rd.merge(r.pump(now))
	return rd
}

// commitUpTo commits, in order, the logged mutations up to limit (a secondary, or a
// replica replaying its log).
func (r *Replica) commitUpTo(limit int64) Ready {
	var rd Ready
	for r.committed < limit {
		e := r.entries[r.committed+1]
		if e == nil || !e.logged {
			break
		}
		rd.Commits = append(rd.Commits, r.commit(e))
	}
	return rd
}

func (r *Replica) commit(e *entry) Committed {
	r.committed = e.mu.Decree
	c := Committed{Mutation: e.mu, Writes: e.writes}
	e.writes = nil
	// Keep a window of committed mutations for learners; drop older ones.
	delete(r.entries, r.committed-int64(max(r.opts.PrepareListCap, r.opts.LearnCache)))
	return c
}

// OnPrepare handles a prepare received from the primary. The acknowledgement is
// returned at once for a mutation already logged or committed, otherwise once it is
// logged (see OnLogged).
func (r *Replica) OnPrepare(from string, cfg Config, status Status, mu *Mutation, now time.Time) Ready {
	var rd Ready
	if mu.Ballot < r.cfg.Ballot || cfg.Ballot < r.cfg.Ballot {
		return Ready{Acks: []Ack{r.ack(from, mu.Decree, mu.Ballot, base.ErrVersionOutdated)}}
	}
	if cfg.Ballot > r.cfg.Ballot {
		rd.merge(r.adopt(cfg, status, now))
	}
	switch {
	case r.status == StatusInactive && r.transient:
		rd.Acks = append(rd.Acks, r.ack(from, mu.Decree, mu.Ballot, base.ErrInactiveState))
		return rd
	case r.status != StatusSecondary && r.status != StatusLearner, from != r.cfg.Primary:
		rd.Acks = append(rd.Acks, r.ack(from, mu.Decree, mu.Ballot, base.ErrInvalidState))
		return rd
	}
	r.known = max(r.known, mu.LastCommitted)
	if mu.Decree <= r.committed {
		rd.Acks = append(rd.Acks, r.ack(from, mu.Decree, mu.Ballot, base.ErrOK))
		rd.merge(r.commitUpTo(r.known))
		return rd
	}
	if e := r.entries[mu.Decree]; e != nil && e.mu.Ballot >= mu.Ballot {
		if e.mu.Ballot > mu.Ballot {
			rd.Acks = append(rd.Acks, r.ack(from, mu.Decree, mu.Ballot, base.ErrVersionOutdated))
		} else if e.logged {
			rd.Acks = append(rd.Acks, r.ack(from, mu.Decree, mu.Ballot, base.ErrOK))
		} else {
			e.ackTo = from // a duplicate of a prepare still being logged
		}
		rd.merge(r.commitUpTo(r.known))
		return rd
	}
	if r.status != StatusLearner && mu.Decree > r.committed+int64(r.opts.PrepareListCap) {
		// Too far ahead: this replica missed too much and must learn.
		rd.Acks = append(rd.Acks, r.ack(from, mu.Decree, mu.Ballot, base.ErrCapacityExceeded))
		return rd
	}
	r.entries[mu.Decree] = &entry{mu: mu, ackTo: from}
	r.maxPrepared = max(r.maxPrepared, mu.Decree)
	// Timestamps stay increasing across a change of primary.
	r.lastTS = max(r.lastTS, mu.TimestampUS)
	rd.Append = append(rd.Append, mu)
	rd.merge(r.commitUpTo(r.known))
	return rd
}

// OnGroupCheck handles the primary's periodic check: the configuration, and the
// commit point of an idle partition.
func (r *Replica) OnGroupCheck(from string, cfg Config, status Status, committed int64, now time.Time) Ready {
	var rd Ready
	if cfg.Ballot < r.cfg.Ballot {
		return rd
	}
	if cfg.Ballot > r.cfg.Ballot {
		rd.merge(r.adopt(cfg, status, now))
	}
	if (r.status == StatusSecondary || r.status == StatusLearner) && from == r.cfg.Primary {
		r.known = max(r.known, committed)
		rd.merge(r.commitUpTo(r.known))
	}
	return rd
}

// OnGroupCheckReply handles a member's answer to a group check. A secondary
// that no longer holds the replica (its disk was taken out while it restarted)
// answers ERR_OBJECT_NOT_FOUND; with no writes, no prepare would ever find out,
// and the partition would count a member that cannot serve.
func (r *Replica) OnGroupCheckReply(from string, ballot int64, err string, now time.Time) Ready {
	if r.status != StatusPrimary || ballot != r.cfg.Ballot || err != base.ErrObjectNotFound {
		return Ready{}
	}
	return r.remoteFailure(from, now)
}

// OnPrepareAck handles a secondary's answer to a prepare (or the RPC failing, with
// err naming why, e.g. ERR_TIMEOUT).
func (r *Replica) OnPrepareAck(from string, decree, ballot int64, err string, now time.Time) Ready {
	e := r.entries[decree]
	if r.status != StatusPrimary || e == nil || e.mu.Ballot != ballot || e.acks == nil || !slices.Contains(r.ackers(decree), from) {
		return Ready{}
	}
	if _, isLearner := r.learners[from]; isLearner && !slices.Contains(r.cfg.Secondaries, from) {
		return r.onLearnerAck(from, decree, err, e, now)
	}
	switch err {
	case base.ErrOK:
		e.acks[from] = true
		return r.commitPrimary(now)
	case base.ErrInactiveState, base.ErrTryAgain:
		// The secondary is not ready yet (restarting, or installing the replica):
		// retry while the prepare timeout allows.
		if now.Sub(e.sent[from]) < r.opts.PrepareTimeout {
			return Ready{Resends: []Resend{{To: from, Decree: decree, Delay: r.opts.RetryDelay}}}
		}
	}
	return r.remoteFailure(from, now)
}

// Resend re-sends a prepare after a Resend delay, if still needed.
func (r *Replica) Resend(to string, decree int64, now time.Time) Ready {
	e := r.entries[decree]
	if r.status != StatusPrimary || e == nil || e.acks == nil || e.acks[to] || decree <= r.committed || !slices.Contains(r.ackers(decree), to) {
		return Ready{}
	}
	p := Prepare{To: to, Config: r.cfg.Clone(), Status: StatusSecondary, Mutation: e.mu}
	if l, ok := r.learners[to]; ok && !slices.Contains(r.cfg.Secondaries, to) {
		p.Status, p.Signature = StatusLearner, l.signature
	}
	return Ready{Prepares: []Prepare{p}}
}

// remoteFailure removes a secondary that failed from the configuration, through the
// meta server. New mutations wait until the meta answers.
func (r *Replica) remoteFailure(node string, now time.Time) Ready {
	if r.reconfig != nil || !slices.Contains(r.cfg.Secondaries, node) {
		return Ready{}
	}
	next := r.cfg.Clone()
	next.Ballot++
	next.Secondaries = slices.DeleteFunc(next.Secondaries, func(s string) bool { return s == node })
	r.reconfig = &ConfigRequest{Type: ChangeDowngradeToInact, Node: node, Config: next}
	return Ready{ConfigChange: r.reconfig}
}

// RequestConfigChange asks the meta server for a change this primary drives
// (e.g. removing a secondary on the meta's proposal, or regaining its role after a
// restart with a ballot bump). It returns nothing when a change is already pending.
func (r *Replica) RequestConfigChange(typ ChangeType, node string, next Config) Ready {
	if r.reconfig != nil {
		return Ready{}
	}
	r.reconfig = &ConfigRequest{Type: typ, Node: node, Config: next.Clone()}
	return Ready{ConfigChange: r.reconfig}
}

// PendingChange returns the configuration change at the meta, if any.
func (r *Replica) PendingChange() *ConfigRequest { return r.reconfig }

// ChangeFailed clears a pending configuration change the meta refused, so that a
// new one may be asked for.
func (r *Replica) ChangeFailed() { r.reconfig = nil }

// UpdateConfig applies a configuration from the meta server (a proposal, a config
// sync, or the answer to a change request). An older ballot is ignored.
func (r *Replica) UpdateConfig(cfg Config, now time.Time) Ready {
	switch {
	case cfg.Ballot < r.cfg.Ballot:
		return Ready{}
	case cfg.Ballot == r.cfg.Ballot:
		role := roleOf(cfg, r.self)
		if r.status == StatusInactive && r.transient && role == StatusPrimary && r.restored {
			// A restarted primary may have lost the tail of its log (without fsync a
			// machine crash loses it): it resumes under a new ballot, so that what it
			// prepares again can never be taken for an older mutation of the same
			// ballot by its secondaries.
			next := cfg.Clone()
			next.Ballot++
			return r.RequestConfigChange(ChangeForceUpdateBallot, r.self, next)
		}
		if r.status == StatusInactive && r.transient && role != StatusInactive {
			// Back after losing the meta, or after a restart: same ballot, same role.
			r.restored = false
			return r.enter(role, now)
		}
		if r.reconfig != nil && r.reconfig.Config.Ballot <= cfg.Ballot {
			r.reconfig = nil
			return r.pump(now)
		}
		return Ready{}
	default:
		return r.adopt(cfg, roleOf(cfg, r.self), now)
	}
}

// roleOf is the role a configuration gives self.
func roleOf(cfg Config, self string) Status {
	switch {
	case cfg.Primary == self:
		return StatusPrimary
	case slices.Contains(cfg.Secondaries, self):
		return StatusSecondary
	default:
		return StatusInactive
	}
}

// adopt installs a newer configuration; the ballot must be persisted before the
// caller acts on anything else in the Ready.
func (r *Replica) adopt(cfg Config, status Status, now time.Time) Ready {
	r.cfg = cfg.Clone()
	r.reconfig = nil
	r.restored = false
	for node := range r.learners {
		if r.cfg.Has(node) {
			delete(r.learners, node) // promoted: now a member
		}
	}
	rd := Ready{Persist: true}
	if status == StatusInactive {
		rd.merge(r.deactivate(false))
		rd.Closed = true
		return rd
	}
	rd.merge(r.enter(status, now))
	return rd
}

// enter switches to a role under the configuration in force.
func (r *Replica) enter(status Status, now time.Time) Ready {
	var rd Ready
	if status != StatusPrimary {
		clear(r.learners)
		if len(r.queue) > 0 {
			rd.merge(r.rejectQueue(base.ErrInvalidState))
		}
		// Writes attached to mutations this replica prepared as primary will be
		// committed (or replaced) by the new primary, which cannot answer them:
		// tell their clients to retry there.
		for _, e := range r.entries {
			for _, w := range e.writes {
				rd.Rejects = append(rd.Rejects, Rejected{w, base.ErrInvalidState})
			}
			e.writes = nil
		}
	}
	r.status, r.transient = status, false
	if status == StatusPrimary {
		// The empty-write timer starts with the role.
		r.lastPrepared = now
		rd.merge(r.reconcile(now))
	}
	return rd
}

// reconcile re-prepares, under the new ballot, everything above the commit point. A
// missing decree cannot have been committed (this replica would have acknowledged
// it), so it becomes an empty write. Reads wait until all of it is committed.
func (r *Replica) reconcile(now time.Time) Ready {
	var rd Ready
	for d := r.committed + 1; d <= r.maxPrepared; d++ {
		old := r.entries[d]
		mu := &Mutation{Decree: d}
		var writes []*Write
		if old != nil {
			c := *old.mu
			mu = &c
			writes = old.writes
		} else {
			mu.TimestampUS = r.nextTimestamp(now)
		}
		mu.Ballot = r.cfg.Ballot
		mu.LastCommitted = r.committed
		e := &entry{mu: mu, writes: writes}
		r.entries[d] = e
		rd.Append = append(rd.Append, mu)
		rd.Prepares = append(rd.Prepares, r.sendPrepares(e, now)...)
	}
	r.readyAt = r.maxPrepared
	if len(rd.Prepares) > 0 {
		// The prepares carry the commit point.
		r.propagated = r.committed
	} else {
		// Nothing to re-prepare: the next idle tick tells the secondaries.
		r.propagated = 0
	}
	rd.merge(r.pump(now))
	return rd
}

func (r *Replica) rejectQueue(err string) Ready {
	var rd Ready
	for _, w := range r.queue {
		rd.Rejects = append(rd.Rejects, Rejected{w, err})
	}
	r.queue = nil
	return rd
}

// Deactivate stops serving: the lease from the meta server expired (transient: the
// role may resume at the same ballot), or the replica is being closed.
func (r *Replica) Deactivate(transient bool) Ready {
	return r.deactivate(transient)
}

func (r *Replica) deactivate(transient bool) Ready {
	rd := r.rejectQueue(base.ErrInvalidState)
	// Writes attached to prepared mutations stay unanswered by commit: tell their
	// clients to retry elsewhere. The mutations themselves stay prepared.
	for _, e := range r.entries {
		for _, w := range e.writes {
			rd.Rejects = append(rd.Rejects, Rejected{w, base.ErrInvalidState})
		}
		e.writes = nil
	}
	r.status, r.transient = StatusInactive, transient
	r.reconfig = nil
	clear(r.learners)
	return rd
}

// Tick runs the time-driven duties: on an idle primary, tell the secondaries the
// commit point; detect secondaries that never acknowledged.
func (r *Replica) Tick(now time.Time) Ready {
	if r.status != StatusPrimary {
		return Ready{}
	}
	var rd Ready
	for d := r.committed + 1; d <= r.maxPrepared; d++ {
		e := r.entries[d]
		if e == nil || e.acks == nil {
			continue
		}
		for _, s := range r.ackers(d) {
			if !e.acks[s] && now.Sub(e.sent[s]) > r.opts.PrepareTimeout {
				if _, isLearner := r.learners[s]; isLearner && !slices.Contains(r.cfg.Secondaries, s) {
					rd.merge(r.dropLearner(s, now))
				} else {
					rd.merge(r.remoteFailure(s, now))
				}
			}
		}
	}
	if r.opts.EmptyWriteInterval > 0 && r.reconfig == nil && r.maxPrepared == r.committed && len(r.cfg.Secondaries) > 0 && now.Sub(r.lastPrepared) >= r.opts.EmptyWriteInterval {
		rd.merge(r.EmptyWrite(now))
		return rd
	}
	if r.maxPrepared == r.committed && r.committed > r.propagated && now.Sub(r.lastPrepared) >= r.opts.IdleDelay {
		for _, s := range r.cfg.Secondaries {
			rd.GroupChecks = append(rd.GroupChecks, GroupCheck{To: s, Config: r.cfg.Clone(), Status: StatusSecondary, Committed: r.committed})
		}
		r.propagated = r.committed
	}
	return rd
}

// Fail puts the replica in the error state (a local failure: plog or engine write
// error); it is closed by the caller.
func (r *Replica) Fail() Ready {
	rd := r.deactivate(false)
	r.status = StatusError
	return rd
}

// Committed mutations still in the window, for a learner (decrees from..committed).
func (r *Replica) CommittedSince(from int64) ([]*Mutation, bool) {
	var out []*Mutation
	for d := from; d <= r.committed; d++ {
		e := r.entries[d]
		if e == nil {
			return nil, false
		}
		out = append(out, e.mu)
	}
	return out, true
}
