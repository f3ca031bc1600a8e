package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/daemon/replica/membership"
	"github.com/pegasusgo/pegasus/daemon/replica/mlog"
	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage"
)

// mailbox is an unbounded event queue: posting never blocks, so callbacks from the
// plog writer and RPC completions cannot stall each other.
type mailbox struct {
	mu     sync.Mutex
	items  []any
	signal chan struct{}
}

func newMailbox() *mailbox { return &mailbox{signal: make(chan struct{}, 1)} }

func (m *mailbox) post(ev any) {
	m.mu.Lock()
	m.items = append(m.items, ev)
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

func (m *mailbox) take() []any {
	m.mu.Lock()
	defer m.mu.Unlock()
	items := m.items
	m.items = nil
	return items
}

// Events handled by a partition's executor.
type (
	writeEv   struct{ w *pacifica.Write }
	prepareEv struct {
		from   string
		peer   sender // who sent it (peercheck.go)
		cfg    pacifica.Config
		status pacifica.Status
		mu     *pacifica.Mutation
		reply  chan pacifica.Ack
	}
	loggedEv struct {
		decree, ballot int64
		err            error
	}
	ackEv struct {
		from           string
		decree, ballot int64
		err            string
	}
	// groupCheckReplyEv is a member's answer to a group check.
	groupCheckReplyEv struct {
		from   string
		ballot int64
		err    string
	}
	groupCheckEv struct {
		from      string
		peer      sender // who sent it (peercheck.go)
		cfg       pacifica.Config
		status    pacifica.Status
		committed int64
		verdict   chan string // gets ERR_OK, or the error the check is refused with
	}
	configEv struct {
		cfg  pacifica.Config
		info *layer2.AppInfo
	}
	// changeEv asks for a configuration change on a meta proposal.
	changeEv      struct{ change membership.Change }
	changeReplyEv struct {
		err string
		cfg *pacifica.Config
	}
	// resendChangeEv asks the meta server again for a change it did not answer.
	resendChangeEv struct{ req pacifica.ConfigRequest }
	resendEv       struct {
		to     string
		decree int64
	}
	// staleCheckEv: a config sync answer did not list the replica
	// (membership.Machine.StaleCheck decides whether it still applies).
	staleCheckEv struct{ check membership.CheckStale }
	// removeEv: a primary (or a meta server) says the replica was removed.
	removeEv struct {
		peer sender // who sent it (peercheck.go)
		cfg  pacifica.Config
	}
	deactivateEv struct{ transient bool }
	// configQueryEv asks the executor for the replica's configuration, which
	// it owns (the atomics outside give ballot and status, not the members).
	configQueryEv struct{ reply chan<- pacifica.Config }
)

// timer is an event the executor posts to itself at a given time.
type timer struct {
	at time.Time
	ev any
}

// pendingWrite is a client write waiting for its mutation to commit.
type pendingWrite struct {
	op   storage.Op
	done chan writeResult
}

type writeResult struct {
	res    storage.OpResult
	decree int64
	err    string // a frame-level error name when the write was not applied
}

type ackKey struct{ decree, ballot int64 }

// partition is one replica hosted by this server.
type partition struct {
	stub *Stub
	gpid base.Gpid
	dir  string
	disk *disk
	log  *slog.Logger

	// store is swapped when a learner installs a checkpoint; read it with st().
	store atomic.Pointer[storage.Store]
	plog  *mlog.Log

	// Owned by the executor goroutine.
	core        *pacifica.Replica
	pendingAcks map[ackKey][]chan pacifica.Ack
	enc         mutationEncoder // plog records
	state       persistedState
	timers      []timer // sorted by time: resends, change retries and learner ticks (at)
	ckptState
	learnerState

	// Read by other goroutines.
	info          atomic.Pointer[layer2.AppInfo]
	ctl           atomic.Pointer[tableControls]  // built from info's envs, see controls()
	compact       compactState                   // manual compaction (manualcompact.go)
	scenario      atomic.Value                   // string: the usage scenario the store was opened with
	metricsEntity atomic.Pointer[metrics.Entity] // see serverMetrics.entity
	canRead       atomic.Bool
	status        atomic.Int32
	ballot        atomic.Int64
	prepared      atomic.Int64 // highest decree prepared, for config sync reports
	closing       atomic.Bool
	running       atomic.Bool // the executor was started (a replay failure closes before)
	retired       atomic.Bool // closed as no longer a member: reported and reopenable
	inbox         *mailbox
	done          chan struct{}
	stopOnce      sync.Once
	stop          chan struct{}
}

func (p *partition) appInfo() *layer2.AppInfo { return p.info.Load() }

// st returns the replica's store.
func (p *partition) st() *storage.Store { return p.store.Load() }

func (p *partition) post(ev any) { p.inbox.post(ev) }

// run is the executor: it owns the replication state machine and performs the I/O it
// asks for.
func (p *partition) run() {
	defer close(p.done)
	tick := time.NewTicker(p.stub.opts.TickInterval)
	defer tick.Stop()
	// wake fires when the earliest timer is due; armed is the time it is set
	// for (zero: not set).
	wake := time.NewTimer(time.Hour)
	wake.Stop()
	defer wake.Stop()
	var armed time.Time
	for {
		armed = p.arm(wake, armed)
		select {
		case <-p.stop:
			p.shutdown()
			return
		case <-p.inbox.signal:
			p.handleAll(p.inbox.take())
		case <-tick.C:
			now := time.Now()
			p.process(p.core.Tick(now), now)
			p.sweepAcks()
		case <-wake.C:
			armed = time.Time{}
			p.handleAll(p.due(time.Now()))
		}
		p.publish()
	}
}

// at makes the executor handle ev at time t.
func (p *partition) at(t time.Time, ev any) {
	i, _ := slices.BinarySearchFunc(p.timers, t, func(x timer, t time.Time) int {
		if x.at.After(t) {
			return 1
		}
		return -1 // equal times keep their order
	})
	p.timers = slices.Insert(p.timers, i, timer{at: t, ev: ev})
}

// arm sets wake, now set for armed, to the earliest timer, or stops it when there
// is none, and returns the time it is set for. Most events leave the timers alone,
// and then so does arm.
func (p *partition) arm(wake *time.Timer, armed time.Time) time.Time {
	var next time.Time
	if len(p.timers) > 0 {
		next = p.timers[0].at
	}
	switch {
	case next.Equal(armed):
	case next.IsZero():
		wake.Stop()
	default:
		wake.Reset(time.Until(next))
	}
	return next
}

// due removes and returns the events of the timers due at now.
func (p *partition) due(now time.Time) []any {
	n := 0
	for n < len(p.timers) && !p.timers[n].at.After(now) {
		n++
	}
	evs := make([]any, n)
	for i := range n {
		evs[i] = p.timers[i].ev
	}
	p.timers = slices.Delete(p.timers, 0, n)
	return evs
}

// handleAll handles a batch of events; consecutive client writes are proposed
// together so that they can share mutations.
func (p *partition) handleAll(evs []any) {
	var writes []*pacifica.Write
	flush := func() {
		if len(writes) > 0 {
			now := time.Now()
			p.process(p.core.ProposeMany(writes, now), now)
			writes = nil
		}
	}
	for _, ev := range evs {
		if w, ok := ev.(writeEv); ok {
			writes = append(writes, w.w)
			continue
		}
		flush()
		p.handle(ev)
	}
	flush()
}

func (p *partition) handle(ev any) {
	now := time.Now()
	switch e := ev.(type) {
	case prepareEv:
		if !p.fromPrimary(e.peer, rpc.CodePrepare, e.cfg) {
			e.reply <- pacifica.Ack{To: e.from, Decree: e.mu.Decree, Ballot: e.mu.Ballot, Err: base.ErrACLDeny}
			return
		}
		k := ackKey{e.mu.Decree, e.mu.Ballot}
		p.pendingAcks[k] = append(p.pendingAcks[k], e.reply)
		p.process(p.core.OnPrepare(e.from, e.cfg, e.status, e.mu, now), now)
	case loggedEv:
		if e.err != nil {
			p.log.Error("plog append failed: replica goes to the error state", "err", e.err)
			p.disk.noteWriteError(e.err, p.log)
			p.process(p.core.Fail(), now)
			p.closeSelf("plog write failed")
			return
		}
		p.process(p.core.OnLogged(e.decree, e.ballot, now), now)
	case ackEv:
		p.process(p.core.OnPrepareAck(e.from, e.decree, e.ballot, e.err, now), now)
	case groupCheckEv:
		if !p.fromPrimary(e.peer, rpc.CodeGroupCheck, e.cfg) {
			e.verdict <- base.ErrACLDeny
			return
		}
		p.process(p.core.OnGroupCheck(e.from, e.cfg, e.status, e.committed, now), now)
		e.verdict <- base.ErrOK
	case groupCheckReplyEv:
		p.process(p.core.OnGroupCheckReply(e.from, e.ballot, e.err, now), now)
	case configEv:
		p.onConfig(e, now)
	case changeEv:
		cur := p.core.Config()
		if next, ok := e.change.Next(cur); ok {
			p.process(p.core.RequestConfigChange(e.change.Type, e.change.Node, next), now)
		}
	case changeReplyEv:
		p.onChangeReply(e, now)
	case resendChangeEv:
		p.stub.sendConfigChange(p, &e.req)
	case resendEv:
		p.process(p.core.Resend(e.to, e.decree, now), now)
	case staleCheckEv:
		st := membership.Replica{Status: p.core.Status(), Ballot: p.core.Ballot(), Pending: p.core.PendingChange() != nil}
		var acts []membership.Action
		p.stub.withMembers(func(m *membership.Machine) { acts = m.StaleCheck(e.check, st) })
		p.stub.carryOut(acts)
	case reopenEv:
		p.reopenStore(e.scenario)
	case removeEv:
		if p.mayRemove(e.peer, e.cfg) {
			p.onConfig(configEv{cfg: e.cfg}, now)
		}
	case deactivateEv:
		p.process(p.core.Deactivate(e.transient), now)
	case learnEvent:
		p.onLearnEvent(e, now)
	case configQueryEv:
		e.reply <- p.core.Config()
	}
}

// onConfig applies a configuration from the meta server (proposal or config sync).
func (p *partition) onConfig(e configEv, now time.Time) {
	if e.info != nil {
		p.setAppInfo(e.info)
	}
	// A restarted primary asks for a new ballot first (the state machine handles it).
	p.process(p.core.UpdateConfig(e.cfg, now), now)
}

// changeRetryDelay is how long a replica waits before asking the meta server again
// for a change it did not answer (unreachable or busy).
const changeRetryDelay = time.Second

func (p *partition) onChangeReply(e changeReplyEv, now time.Time) {
	p.touch() // the change is known now; a config sync answer from before it is stale
	pending := p.core.PendingChange()
	switch {
	case e.err == base.ErrOK && e.cfg != nil:
		p.process(p.core.UpdateConfig(*e.cfg, now), now)
		if pending != nil && pending.Type == pacifica.ChangeDowngradeToInact {
			p.stub.notifyRemoved(p, pending.Node, e.cfg.Ballot)
		}
	case e.cfg != nil && e.cfg.Ballot > p.core.Ballot():
		p.core.ChangeFailed()
		p.process(p.core.UpdateConfig(*e.cfg, now), now)
	case e.err == base.ErrInvalidVersion || e.err == base.ErrInvalidParameters || e.err == base.ErrObjectNotFound:
		p.log.Warn("configuration change refused by the meta server", "err", e.err)
		p.core.ChangeFailed()
		if e.cfg != nil {
			p.process(p.core.UpdateConfig(*e.cfg, now), now)
		}
	default:
		// The meta server is unreachable or busy: ask again a little later.
		if pending != nil {
			p.at(now.Add(changeRetryDelay), resendChangeEv{req: *pending})
		}
	}
}

// process performs what the state machine asked for, in the required order.
func (p *partition) process(rd pacifica.Ready, now time.Time) {
	if rd.Empty() {
		return
	}
	if rd.Persist {
		if err := p.persist(); err != nil {
			p.log.Error("persisting the ballot failed: replica goes to the error state", "err", err)
			p.disk.noteWriteError(err, p.log)
			p.finish(p.core.Fail())
			p.closeSelf("persist failed")
			return
		}
	}
	for _, mu := range rd.Append {
		p.appendLog(mu)
	}
	for _, pr := range rd.Prepares {
		p.stub.sendPrepare(p, pr)
	}
	for _, gc := range rd.GroupChecks {
		p.stub.sendGroupCheck(p, gc)
	}
	for _, a := range rd.Acks {
		p.deliverAck(a)
	}
	for _, rs := range rd.Resends {
		p.at(now.Add(rs.Delay), resendEv{rs.To, rs.Decree})
	}
	p.finish(rd)
	if rd.ConfigChange != nil {
		p.stub.sendConfigChange(p, rd.ConfigChange)
	}
	if rd.AddLearner != nil {
		p.stub.sendAddLearner(p, rd.AddLearner)
	}
	if rd.Closed {
		p.closeSelf("removed from the configuration")
	}
}

// finish applies the committed mutations and answers the clients.
func (p *partition) finish(rd pacifica.Ready) {
	for _, c := range rd.Commits {
		if err := p.apply(c); err != nil {
			p.log.Error("applying a committed mutation failed: replica goes to the error state", "decree", c.Mutation.Decree, "err", err)
			p.disk.noteWriteError(err, p.log)
			more := p.core.Fail()
			for _, w := range c.Writes {
				w.Tag.(*pendingWrite).done <- writeResult{err: base.ErrLocalAppFailure}
			}
			p.finish(pacifica.Ready{Rejects: more.Rejects})
			p.closeSelf("apply failed")
			return
		}
	}
	for _, r := range rd.Rejects {
		if pw, ok := r.Write.Tag.(*pendingWrite); ok {
			pw.done <- writeResult{err: r.Err}
		}
	}
}

func (p *partition) apply(c pacifica.Committed) error {
	mu := c.Mutation
	ops := make([]storage.Op, len(mu.Updates))
	for i, u := range mu.Updates {
		if i < len(c.Writes) {
			ops[i] = c.Writes[i].Tag.(*pendingWrite).op
		} else {
			op, err := decodeOp(u)
			if err != nil {
				return err
			}
			ops[i] = op
		}
		ops[i].DefaultTTL = mu.DefaultTTL
	}
	results, err := p.st().Apply(&storage.Mutation{Decree: mu.Decree, TimestampUS: mu.TimestampUS, Ops: ops})
	if err != nil {
		return fmt.Errorf("apply decree %d: %w", mu.Decree, err)
	}
	p.stub.metrics.commit(p, len(ops))
	for i, w := range c.Writes {
		w.Tag.(*pendingWrite).done <- writeResult{res: results[i], decree: mu.Decree}
	}
	return nil
}

func (p *partition) appendLog(mu *pacifica.Mutation) {
	data, err := p.enc.encode(p.gpid, mu)
	if err != nil {
		p.post(loggedEv{decree: mu.Decree, ballot: mu.Ballot, err: err})
		return
	}
	d, b := mu.Decree, mu.Ballot
	p.plog.Append(mlog.Record{Decree: d, Ballot: b, Data: data}, func(err error) {
		p.post(loggedEv{decree: d, ballot: b, err: err})
	})
}

func (p *partition) deliverAck(a pacifica.Ack) {
	k := ackKey{a.Decree, a.Ballot}
	for _, ch := range p.pendingAcks[k] {
		ch <- a
	}
	delete(p.pendingAcks, k)
}

// sweepAcks answers prepares that will not get an acknowledgement any more: their
// decree was committed here meanwhile, or a newer ballot replaced them.
func (p *partition) sweepAcks() {
	for k, chans := range p.pendingAcks {
		var err string
		switch {
		case k.decree <= p.core.Committed():
			err = base.ErrOK
		case k.ballot < p.core.Ballot():
			err = base.ErrVersionOutdated
		default:
			continue
		}
		for _, ch := range chans {
			ch <- pacifica.Ack{Decree: k.decree, Ballot: k.ballot, Err: err, LastCommitted: p.core.Committed(), LastPrepared: p.core.MaxPrepared()}
		}
		delete(p.pendingAcks, k)
	}
}

// publish exposes the state other goroutines read.
func (p *partition) publish() {
	p.canRead.Store(p.core.CanRead())
	p.status.Store(int32(p.core.Status()))
	p.ballot.Store(p.core.Ballot())
	p.prepared.Store(p.core.MaxPrepared())
}

func (p *partition) setAppInfo(info *layer2.AppInfo) {
	p.info.Store(info)
	p.core.SetDefaultTTL(defaultTTL(info))
}

// closeSelf ends the executor and drops the partition from the server; its data
// stays on disk.
func (p *partition) closeSelf(why string) {
	if p.closing.CompareAndSwap(false, true) {
		p.log.Info("closing replica", "reason", why)
		if !p.running.Load() {
			return // still opening: the opener sees closing and cleans up
		}
		go p.stub.closePartition(p)
	}
}

// retire closes a replica that is no longer a member; unlike a replica closed after
// a failure, it is still reported to the meta server and may be opened again.
func (p *partition) retire(why string) {
	p.retired.Store(true)
	p.closeSelf(why)
}

// shutdown runs on the executor when it stops: unblock everyone still waiting.
func (p *partition) shutdown() {
	p.endLearning()
	p.finish(p.core.Deactivate(false))
	for k, chans := range p.pendingAcks {
		for _, ch := range chans {
			ch <- pacifica.Ack{Decree: k.decree, Ballot: k.ballot, Err: base.ErrInvalidState}
		}
	}
	p.pendingAcks = map[ackKey][]chan pacifica.Ack{}
	p.canRead.Store(false)
	for _, ev := range p.inbox.take() {
		switch e := ev.(type) {
		case writeEv:
			e.w.Tag.(*pendingWrite).done <- writeResult{err: base.ErrObjectNotFound}
		case prepareEv:
			e.reply <- pacifica.Ack{Decree: e.mu.Decree, Ballot: e.mu.Ballot, Err: base.ErrObjectNotFound}
		}
	}
}

// stopExecutor stops the executor and waits for it.
func (p *partition) stopExecutor() {
	p.stopOnce.Do(func() { close(p.stop) })
	<-p.done
}

// write submits a client write and waits for its outcome.
func (p *partition) write(ctx context.Context, code string, raw []byte, op storage.Op) (writeResult, error) {
	pw := &pendingWrite{op: op, done: make(chan writeResult, 1)}
	p.post(writeEv{&pacifica.Write{Update: pacifica.Update{Code: code, Data: raw}, Tag: pw, Size: len(raw)}})
	select {
	case r := <-pw.done:
		return r, nil
	case <-ctx.Done():
		return writeResult{}, ctx.Err()
	case <-p.done:
		return writeResult{}, errors.New("replica closed")
	}
}
