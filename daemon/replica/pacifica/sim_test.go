package pacifica

// An in-memory "network" of replicas for deterministic tests of the state machine.
//
// A sim owns N Replicas, a fake clock and a pool of in-flight events: messages
// between replicas (prepares, acks, group checks), plog completions (a replica's
// Append finishing), Resend timers and configurations sent by a modelled meta
// server. Nothing happens unless the test delivers an event, so the test decides
// the order: deliver in order, reorder, drop, duplicate, delay.
//
// Every Ready a replica returns goes through sim.apply, which performs it the way
// the I/O layer would and checks the contract on the way:
//   - Persist is honoured before anything else, and nothing is appended or sent
//     under a ballot that is not persisted;
//   - each replica applies commits strictly in decree order, one decree at a time;
//   - no decree is ever committed with two different contents by any two replicas
//     (a global model of the committed history);
//   - every client write gets at most one answer, and a write answered by a commit
//     is in that commit's mutation.
//
// The last events are traced and printed if the test fails.

import (
	"bytes"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
)

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

type evKind int

const (
	evPrepare    evKind = iota // Prepare from -> to
	evAck                      // Ack from -> to
	evGroupCheck               // GroupCheck from -> to
	evLogged                   // the plog of `to` finished appending mu
	evResend                   // a Resend timer of `to` fires
	evConfig                   // a configuration from the meta server to `to`
)

func (k evKind) String() string {
	return [...]string{"prepare", "ack", "groupcheck", "logged", "resend", "config"}[k]
}

// event is one thing in flight.
type event struct {
	id       int
	kind     evKind
	from, to string
	due      time.Time // not deliverable before (Resend timers)

	prepare Prepare
	ack     Ack
	gc      GroupCheck
	mu      *Mutation // evLogged
	resend  Resend
	cfg     Config // evConfig
}

func (e *event) String() string {
	switch e.kind {
	case evPrepare:
		return fmt.Sprintf("#%d prepare %s->%s d%d b%d cfg.b%d lc%d", e.id, e.from, e.to,
			e.prepare.Mutation.Decree, e.prepare.Mutation.Ballot, e.prepare.Config.Ballot, e.prepare.Mutation.LastCommitted)
	case evAck:
		return fmt.Sprintf("#%d ack %s->%s d%d b%d %s", e.id, e.from, e.to, e.ack.Decree, e.ack.Ballot, e.ack.Err)
	case evGroupCheck:
		return fmt.Sprintf("#%d groupcheck %s->%s b%d committed %d", e.id, e.from, e.to, e.gc.Config.Ballot, e.gc.Committed)
	case evLogged:
		return fmt.Sprintf("#%d logged %s d%d b%d", e.id, e.to, e.mu.Decree, e.mu.Ballot)
	case evResend:
		return fmt.Sprintf("#%d resend %s->%s d%d due %v", e.id, e.to, e.resend.To, e.resend.Decree, e.due.Sub(t0))
	case evConfig:
		return fmt.Sprintf("#%d config ->%s %s", e.id, e.to, fmtConfig(e.cfg))
	}
	return "?"
}

func fmtConfig(c Config) string {
	return fmt.Sprintf("b%d p=%q s=%v", c.Ballot, c.Primary, c.Secondaries)
}

// simNode is one replica server hosting the partition.
type simNode struct {
	id        string
	r         *Replica
	dead      bool   // crashed: events to it are lost
	closed    bool   // the replica asked to be closed
	persisted Config // the configuration on disk (.init-info)

	appended []*Mutation // every Append asked for, in order
	log      []*Mutation // the plog: appends that completed, in completion order
	applied  []*Mutation // the storage engine: committed mutations, in order
	readies  []Ready     // every Ready returned, in order
}

func (n *simNode) committedDecrees() []int64 {
	var out []int64
	for _, mu := range n.applied {
		out = append(out, mu.Decree)
	}
	return out
}

// sim is the simulated cluster of one partition.
type sim struct {
	t     testing.TB
	now   time.Time
	nodes map[string]*simNode
	names []string // creation order
	opts  Options

	pool   []*event
	nextID int

	meta        Config // the meta server's view
	metaManual  bool   // config requests wait in requests instead of being answered
	requests    []ConfigRequest
	requestFrom []string

	history map[int64]*Mutation // decree -> content committed (by anyone)
	outcome map[*Write]string   // client write -> its answer
	okOrder []*Write            // writes answered ERR_OK, in answer order
	writes  []*Write            // every write proposed, in order
	at      map[*Write]string   // where each write was proposed
	lost    map[*Write]bool     // unanswered when the process holding it crashed

	trace []string
}

// newSim builds a partition with a primary and secondaries at ballot 1, every
// replica having received the configuration from the meta.
func newSim(t testing.TB, opts Options, primary string, secondaries ...string) *sim {
	t.Helper()
	s := &sim{t: t, now: t0, nodes: map[string]*simNode{}, opts: opts,
		history: map[int64]*Mutation{}, outcome: map[*Write]string{},
		at: map[*Write]string{}, lost: map[*Write]bool{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last events:\n  %s", strings.Join(s.trace, "\n  "))
		}
	})
	s.meta = Config{Ballot: 1, Primary: primary, Secondaries: slices.Clone(secondaries)}
	for _, id := range s.meta.Members() {
		s.addNode(id)
	}
	for _, id := range s.meta.Members() {
		s.apply(s.nodes[id], s.nodes[id].r.UpdateConfig(s.meta, s.now))
	}
	return s
}

func (s *sim) addNode(id string) *simNode {
	n := &simNode{id: id, r: New(id, s.opts)}
	s.nodes[id] = n
	s.names = append(s.names, id)
	return n
}

func (s *sim) node(id string) *simNode {
	n := s.nodes[id]
	if n == nil {
		s.t.Fatalf("no node %q", id)
	}
	return n
}

func (s *sim) r(id string) *Replica { return s.node(id).r }

func (s *sim) logf(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("[%v] ", s.now.Sub(t0))+fmt.Sprintf(format, args...))
	if len(s.trace) > 300 {
		s.trace = s.trace[len(s.trace)-300:]
	}
}

func (s *sim) send(e *event) {
	s.nextID++
	e.id = s.nextID
	s.pool = append(s.pool, e)
}

// cloneMutation is what crossing the network or the disk does to a mutation.
func cloneMutation(mu *Mutation) *Mutation {
	c := *mu
	c.Updates = nil
	for _, u := range mu.Updates {
		c.Updates = append(c.Updates, Update{Code: u.Code, Data: bytes.Clone(u.Data)})
	}
	return &c
}

// sameContent reports whether two mutations carry the same writes.
func sameContent(a, b *Mutation) bool {
	if a.Decree != b.Decree || a.TimestampUS != b.TimestampUS || a.DefaultTTL != b.DefaultTTL || len(a.Updates) != len(b.Updates) {
		return false
	}
	for i := range a.Updates {
		if a.Updates[i].Code != b.Updates[i].Code || !bytes.Equal(a.Updates[i].Data, b.Updates[i].Data) {
			return false
		}
	}
	return true
}

func fmtMutation(mu *Mutation) string {
	var ws []string
	for _, u := range mu.Updates {
		ws = append(ws, string(u.Data))
	}
	return fmt.Sprintf("d%d b%d ts%d ttl%d %v", mu.Decree, mu.Ballot, mu.TimestampUS, mu.DefaultTTL, ws)
}

// apply performs a Ready on behalf of node n, checking the contract.
func (s *sim) apply(n *simNode, rd Ready) Ready {
	s.t.Helper()
	n.readies = append(n.readies, rd)
	if rd.Persist {
		n.persisted = n.r.Config()
		s.logf("%s persist %s", n.id, fmtConfig(n.persisted))
	}
	for _, mu := range rd.Append {
		if mu.Ballot > n.persisted.Ballot {
			s.t.Errorf("%s appends d%d under ballot %d, persisted ballot is %d", n.id, mu.Decree, mu.Ballot, n.persisted.Ballot)
		}
		c := cloneMutation(mu)
		n.appended = append(n.appended, c)
		s.send(&event{kind: evLogged, from: n.id, to: n.id, mu: c})
	}
	for _, p := range rd.Prepares {
		if p.Config.Ballot > n.persisted.Ballot || p.Mutation.Ballot > n.persisted.Ballot {
			s.t.Errorf("%s sends a prepare under ballot %d/%d, persisted ballot is %d", n.id, p.Config.Ballot, p.Mutation.Ballot, n.persisted.Ballot)
		}
		p.Config = p.Config.Clone()
		p.Mutation = cloneMutation(p.Mutation)
		s.send(&event{kind: evPrepare, from: n.id, to: p.To, prepare: p})
	}
	for _, a := range rd.Acks {
		if a.Err == base.ErrOK && a.Ballot > n.persisted.Ballot {
			s.t.Errorf("%s acks d%d under ballot %d, persisted ballot is %d", n.id, a.Decree, a.Ballot, n.persisted.Ballot)
		}
		s.send(&event{kind: evAck, from: n.id, to: a.To, ack: a})
	}
	for _, g := range rd.GroupChecks {
		g.Config = g.Config.Clone()
		s.send(&event{kind: evGroupCheck, from: n.id, to: g.To, gc: g})
	}
	for _, rs := range rd.Resends {
		s.send(&event{kind: evResend, from: n.id, to: n.id, resend: rs, due: s.now.Add(rs.Delay)})
	}
	for _, c := range rd.Commits {
		s.commit(n, c)
	}
	for _, rj := range rd.Rejects {
		s.answer(rj.Write, rj.Err, n.id)
	}
	if rd.ConfigChange != nil {
		s.logf("%s asks the meta: type %d node %s %s", n.id, rd.ConfigChange.Type, rd.ConfigChange.Node, fmtConfig(rd.ConfigChange.Config))
		s.requests = append(s.requests, *rd.ConfigChange)
		s.requestFrom = append(s.requestFrom, n.id)
		if !s.metaManual {
			s.answerRequest(len(s.requests) - 1)
		}
	}
	if rd.Closed {
		s.logf("%s closed", n.id)
		n.closed = true
	}
	return rd
}

func (s *sim) commit(n *simNode, c Committed) {
	s.t.Helper()
	mu := c.Mutation
	want := int64(1)
	if len(n.applied) > 0 {
		want = n.applied[len(n.applied)-1].Decree + 1
	}
	if mu.Decree != want {
		s.t.Errorf("%s commits d%d, expected d%d next (applied %v)", n.id, mu.Decree, want, n.committedDecrees())
	}
	if prev := s.history[mu.Decree]; prev == nil {
		s.history[mu.Decree] = cloneMutation(mu)
	} else if !sameContent(prev, mu) {
		s.t.Errorf("DIVERGENCE: %s commits %s, decree already committed elsewhere as %s", n.id, fmtMutation(mu), fmtMutation(prev))
	}
	n.applied = append(n.applied, cloneMutation(mu))
	s.logf("%s commit %s", n.id, fmtMutation(mu))
	for _, w := range c.Writes {
		if !slices.ContainsFunc(mu.Updates, func(u Update) bool { return bytes.Equal(u.Data, w.Update.Data) }) {
			s.t.Errorf("%s answers write %s with d%d that does not carry it", n.id, w.Update.Data, mu.Decree)
		}
		s.answer(w, base.ErrOK, n.id)
	}
}

func (s *sim) answer(w *Write, err, by string) {
	s.t.Helper()
	if prev, ok := s.outcome[w]; ok {
		s.t.Errorf("write %s answered twice: %s then %s (by %s)", w.Update.Data, prev, err, by)
		return
	}
	s.outcome[w] = err
	if err == base.ErrOK {
		s.okOrder = append(s.okOrder, w)
	}
	s.logf("%s answers %s: %s", by, w.Update.Data, err)
}

// answerRequest has the meta server handle config request i: accepted when it
// proposes the next ballot, then the new configuration is sent to the members of
// the old and of the new one; refused otherwise: the replica is told so
// (ChangeFailed) and gets the meta's current configuration in the reply.
func (s *sim) answerRequest(i int) {
	req, from := s.requests[i], s.requestFrom[i]
	if req.Config.Ballot != s.meta.Ballot+1 {
		s.logf("meta refuses %s's request for ballot %d (at %d)", from, req.Config.Ballot, s.meta.Ballot)
		s.node(from).r.ChangeFailed()
		s.sendConfig(from)
		return
	}
	old := s.meta
	s.meta = req.Config.Clone()
	s.logf("meta moves to %s", fmtConfig(s.meta))
	var to []string
	for _, id := range append(old.Members(), s.meta.Members()...) {
		if !slices.Contains(to, id) {
			to = append(to, id)
		}
	}
	for _, id := range to {
		s.send(&event{kind: evConfig, from: "meta", to: id, cfg: s.meta.Clone()})
	}
}

// sendConfig queues the meta's current configuration to node id (a config sync).
func (s *sim) sendConfig(id string) {
	s.send(&event{kind: evConfig, from: "meta", to: id, cfg: s.meta.Clone()})
}

// --- delivering events -------------------------------------------------------------

type pred func(*event) bool

func anyEvent(*event) bool { return true }

func kindIs(k evKind) pred { return func(e *event) bool { return e.kind == k } }

func prepareTo(to string, decree int64) pred {
	return func(e *event) bool { return e.kind == evPrepare && e.to == to && e.prepare.Mutation.Decree == decree }
}

func preparesTo(to string) pred {
	return func(e *event) bool { return e.kind == evPrepare && e.to == to }
}

func ackFrom(from string, decree int64) pred {
	return func(e *event) bool { return e.kind == evAck && e.from == from && e.ack.Decree == decree }
}

func acksFrom(from string) pred {
	return func(e *event) bool { return e.kind == evAck && e.from == from }
}

func loggedAt(node string, decree int64) pred {
	return func(e *event) bool { return e.kind == evLogged && e.to == node && e.mu.Decree == decree }
}

func logsAt(node string) pred {
	return func(e *event) bool { return e.kind == evLogged && e.to == node }
}

func involves(node string) pred {
	return func(e *event) bool { return e.to == node || e.from == node }
}

func not(p pred) pred { return func(e *event) bool { return !p(e) } }

func or(ps ...pred) pred {
	return func(e *event) bool {
		for _, p := range ps {
			if p(e) {
				return true
			}
		}
		return false
	}
}

func (s *sim) due(e *event) bool { return !e.due.After(s.now) }

// find returns the events in flight matching p, oldest first.
func (s *sim) find(p pred) []*event {
	var out []*event
	for _, e := range s.pool {
		if p(e) {
			out = append(out, e)
		}
	}
	return out
}

func (s *sim) count(p pred) int { return len(s.find(p)) }

// deliver delivers one event (it must be in flight) and returns the Ready of the
// replica that received it. Events to a crashed or closed replica are lost.
func (s *sim) deliver(e *event) Ready {
	s.t.Helper()
	i := slices.Index(s.pool, e)
	if i < 0 {
		s.t.Fatalf("event %v is not in flight", e)
	}
	s.pool = slices.Delete(s.pool, i, i+1)
	n := s.nodes[e.to]
	if n == nil || n.dead || n.closed {
		s.logf("lost %v", e)
		return Ready{}
	}
	s.logf("deliver %v", e)
	var rd Ready
	switch e.kind {
	case evPrepare:
		p := e.prepare
		rd = n.r.OnPrepare(e.from, p.Config.Clone(), p.Status, cloneMutation(p.Mutation), s.now)
	case evAck:
		rd = n.r.OnPrepareAck(e.from, e.ack.Decree, e.ack.Ballot, e.ack.Err, s.now)
	case evGroupCheck:
		rd = n.r.OnGroupCheck(e.from, e.gc.Config.Clone(), e.gc.Status, e.gc.Committed, s.now)
	case evLogged:
		n.log = append(n.log, e.mu)
		rd = n.r.OnLogged(e.mu.Decree, e.mu.Ballot, s.now)
	case evResend:
		rd = n.r.Resend(e.resend.To, e.resend.Decree, s.now)
	case evConfig:
		rd = n.r.UpdateConfig(e.cfg.Clone(), s.now)
	}
	return s.apply(n, rd)
}

// deliverOne delivers the oldest event matching p; the test fails if there is none.
func (s *sim) deliverOne(p pred) Ready {
	s.t.Helper()
	for _, e := range s.pool {
		if p(e) && s.due(e) {
			return s.deliver(e)
		}
	}
	s.t.Fatalf("no deliverable event matches; in flight: %v", s.pool)
	return Ready{}
}

// deliverWhile delivers, oldest first, every due event matching p, including the
// ones the deliveries produce, until none is left. It returns the merged Ready.
func (s *sim) deliverWhile(p pred) Ready {
	s.t.Helper()
	var all Ready
	for steps := 0; ; steps++ {
		if steps > 100000 {
			s.t.Fatalf("deliverWhile does not converge")
		}
		var next *event
		for _, e := range s.pool {
			if p(e) && s.due(e) {
				next = e
				break
			}
		}
		if next == nil {
			return all
		}
		all.merge(s.deliver(next))
	}
}

// deliverAll delivers everything that is due, in order.
func (s *sim) deliverAll() Ready { return s.deliverWhile(anyEvent) }

// drop loses the events matching p; it returns how many.
func (s *sim) drop(p pred) int {
	n := 0
	s.pool = slices.DeleteFunc(s.pool, func(e *event) bool {
		if p(e) {
			s.logf("drop %v", e)
			n++
			return true
		}
		return false
	})
	return n
}

// duplicate puts a second copy of every event matching p in flight.
func (s *sim) duplicate(p pred) int {
	var dups []*event
	for _, e := range s.pool {
		if p(e) {
			c := *e
			dups = append(dups, &c)
		}
	}
	for _, c := range dups {
		s.send(c)
		s.logf("duplicate as %v", c)
	}
	return len(dups)
}

// settle runs the partition until nothing is left to do: it delivers everything,
// fires timers, and lets enough time pass for idle group checks and prepare
// timeouts, ticking every replica, until a tick has nothing to say.
func (s *sim) settle() {
	s.t.Helper()
	for round := 0; round < 10000; round++ {
		s.deliverAll()
		if len(s.pool) > 0 {
			// Only timers that are not due yet are left.
			next := s.pool[0].due
			for _, e := range s.pool {
				if e.due.Before(next) {
					next = e.due
				}
			}
			s.now = next
			continue
		}
		s.advance(max(s.opts.IdleDelay, s.opts.PrepareTimeout) + time.Millisecond)
		if rd := s.tickAll(); rd.Empty() && len(s.pool) == 0 {
			return
		}
	}
	s.t.Fatalf("the partition does not settle; in flight: %v", s.pool)
}

// --- driving replicas --------------------------------------------------------------

func (s *sim) advance(d time.Duration) { s.now = s.now.Add(d) }

func (s *sim) tick(id string) Ready {
	n := s.node(id)
	if n.dead || n.closed {
		return Ready{}
	}
	return s.apply(n, n.r.Tick(s.now))
}

func (s *sim) tickAll() Ready {
	var all Ready
	for _, id := range s.names {
		all.merge(s.tick(id))
	}
	return all
}

// newWrite makes a client write whose payload is its name (names must be unique).
func (s *sim) newWrite(name string) *Write {
	w := &Write{Update: Update{Code: "RPC_RRDB_RRDB_PUT", Data: []byte(name)}, Tag: name, Size: len(name)}
	s.writes = append(s.writes, w)
	return w
}

// propose submits a new client write named name to node id.
func (s *sim) propose(id, name string) (*Write, Ready) {
	s.t.Helper()
	w := s.newWrite(name)
	s.at[w] = id
	s.logf("propose %s at %s", name, id)
	return w, s.apply(s.node(id), s.node(id).r.Propose(w, s.now))
}

func (s *sim) deactivate(id string, transient bool) Ready {
	s.logf("%s deactivate(transient=%v)", id, transient)
	return s.apply(s.node(id), s.node(id).r.Deactivate(transient))
}

func (s *sim) updateConfig(id string, cfg Config) Ready {
	s.logf("%s update config %s", id, fmtConfig(cfg))
	return s.apply(s.node(id), s.node(id).r.UpdateConfig(cfg, s.now))
}

// crash kills node id: everything in flight to or from it (including its pending
// plog appends) is lost.
func (s *sim) crash(id string) {
	s.logf("%s crashes", id)
	n := s.node(id)
	n.dead = true
	s.drop(involves(id))
	for _, w := range s.writes {
		if _, answered := s.outcome[w]; !answered && s.at[w] == id {
			s.lost[w] = true // its client times out
		}
	}
}

// restart brings a crashed node back from its disk: the persisted configuration,
// the storage engine holding decrees up to applied, and its plog. It returns the
// Ready of Restore.
func (s *sim) restart(id string, applied int64) Ready {
	s.t.Helper()
	n := s.node(id)
	if !n.dead {
		s.t.Fatalf("restart %s: not crashed", id)
	}
	var keep []*Mutation
	for _, mu := range n.applied {
		if mu.Decree <= applied {
			keep = append(keep, mu)
		}
	}
	if int64(len(keep)) != applied {
		s.t.Fatalf("restart %s: the engine does not hold decrees 1..%d", id, applied)
	}
	n.applied = keep
	n.dead, n.closed = false, false
	n.r = New(id, s.opts)
	var logged []*Mutation
	for _, mu := range n.log {
		logged = append(logged, cloneMutation(mu))
	}
	s.logf("%s restarts: applied %d, %d mutations in the plog", id, applied, len(logged))
	return s.apply(n, n.r.Restore(n.persisted, applied, logged))
}

// --- checks ------------------------------------------------------------------------

// checkPrefixOf checks that every live replica's committed sequence is a prefix of
// the primary's (the history model already checks contents decree by decree).
func (s *sim) checkPrefixOf(primary string) {
	s.t.Helper()
	p := s.node(primary)
	for _, id := range s.names {
		n := s.nodes[id]
		if len(n.applied) > len(p.applied) {
			s.t.Errorf("%s committed %v, beyond the primary %s's %v", id, n.committedDecrees(), primary, p.committedDecrees())
			continue
		}
		for i, mu := range n.applied {
			if !sameContent(mu, p.applied[i]) {
				s.t.Errorf("%s committed %s, the primary %s committed %s", id, fmtMutation(mu), primary, fmtMutation(p.applied[i]))
			}
		}
	}
}

// checkAckedWritesEverywhere checks that every write answered ERR_OK appears exactly
// once in the committed sequence of every replica listed.
func (s *sim) checkAckedWritesEverywhere(ids ...string) {
	s.t.Helper()
	for _, id := range ids {
		seen := map[string]int{}
		for _, mu := range s.node(id).applied {
			for _, u := range mu.Updates {
				seen[string(u.Data)]++
			}
		}
		for _, w := range s.okOrder {
			if c := seen[string(w.Update.Data)]; c != 1 {
				s.t.Errorf("write %s was acknowledged but appears %d times in %s's committed sequence", w.Update.Data, c, id)
			}
		}
	}
}

// checkWindow checks the primary's in-flight bound.
func (s *sim) checkWindow(id string) {
	s.t.Helper()
	r := s.r(id)
	if r.Status() == StatusPrimary && r.MaxPrepared()-r.Committed() > int64(s.opts.MaxInflight) {
		s.t.Errorf("%s has %d mutations in flight, MaxInflight is %d", id, r.MaxPrepared()-r.Committed(), s.opts.MaxInflight)
	}
}

// --- small helpers for tests -------------------------------------------------------

func decreesOf(cs []Committed) []int64 {
	var out []int64
	for _, c := range cs {
		out = append(out, c.Mutation.Decree)
	}
	return out
}

func writesOf(cs []Committed) []string {
	var out []string
	for _, c := range cs {
		for _, w := range c.Writes {
			out = append(out, string(w.Update.Data))
		}
	}
	return out
}

func updatesOf(mu *Mutation) []string {
	var out []string
	for _, u := range mu.Updates {
		out = append(out, string(u.Data))
	}
	return out
}

func appendedDecrees(muts []*Mutation) []int64 {
	var out []int64
	for _, mu := range muts {
		out = append(out, mu.Decree)
	}
	return out
}

// shuffled returns the events matching p in a random order from rng.
func (s *sim) shuffled(rng *rand.Rand, p pred) []*event {
	evs := s.find(p)
	rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	return evs
}
