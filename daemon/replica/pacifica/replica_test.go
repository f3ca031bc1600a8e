package pacifica

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
)

// testOpts returns the options with every default filled in (the sim needs the
// delays), after applying the overrides.
func testOpts(override func(*Options)) Options {
	var o Options
	if override != nil {
		override(&o)
	}
	o.setDefaults()
	return o
}

// threeReplicas is the usual partition: A primary, B and C secondaries, ballot 1.
func threeReplicas(t *testing.T, override func(*Options)) *sim {
	t.Helper()
	return newSim(t, testOpts(override), "A", "B", "C")
}

func wantCommits(t *testing.T, what string, rd Ready, want ...int64) {
	t.Helper()
	if got := decreesOf(rd.Commits); !slices.Equal(got, want) {
		t.Fatalf("%s: commits %v, want %v", what, got, want)
	}
}

func TestNewReplicaIsInactiveAndTransient(t *testing.T) {
	r := New("A", Options{})
	if r.Status() != StatusInactive || !r.Transient() || r.CanRead() || r.CanWrite() {
		t.Fatalf("new replica: status %v transient %v read %v write %v", r.Status(), r.Transient(), r.CanRead(), r.CanWrite())
	}
	if r.Ballot() != 0 || r.Committed() != 0 || r.MaxPrepared() != 0 {
		t.Fatalf("new replica: ballot %d committed %d prepared %d", r.Ballot(), r.Committed(), r.MaxPrepared())
	}
	o := r.opts
	if o.MaxInflight != 20 || o.PrepareListCap != 110 || o.Min2PC != 2 || o.MaxQueued != 4096 ||
		o.MaxBatchUpdates != 512 || o.MaxBatchBytes != 4<<20 || o.PrepareTimeout != 3*time.Second ||
		o.RetryDelay != 5*time.Millisecond || o.IdleDelay != 100*time.Millisecond {
		t.Fatalf("defaults: %+v", o)
	}
}

func TestInitialConfiguration(t *testing.T) {
	s := threeReplicas(t, nil)
	for id, want := range map[string]Status{"A": StatusPrimary, "B": StatusSecondary, "C": StatusSecondary} {
		n := s.node(id)
		if n.r.Status() != want || n.r.Transient() || n.r.Ballot() != 1 {
			t.Errorf("%s: status %v transient %v ballot %d", id, n.r.Status(), n.r.Transient(), n.r.Ballot())
		}
		if !n.readies[0].Persist || n.persisted.Ballot != 1 {
			t.Errorf("%s: the first configuration was not persisted", id)
		}
	}
	if !s.r("A").CanRead() || !s.r("A").CanWrite() || s.r("B").CanRead() || s.r("B").CanWrite() {
		t.Fatalf("only the primary serves")
	}
}

// The primary commits a mutation only once it is logged locally and acknowledged
// by every secondary, whatever the order of those three events.
func TestWritePathCommitNeedsLocalLogAndEveryAck(t *testing.T) {
	events := map[string]pred{"logA": loggedAt("A", 1), "ackB": ackFrom("B", 1), "ackC": ackFrom("C", 1)}
	orders := [][]string{
		{"logA", "ackB", "ackC"}, {"logA", "ackC", "ackB"}, {"ackB", "logA", "ackC"},
		{"ackB", "ackC", "logA"}, {"ackC", "logA", "ackB"}, {"ackC", "ackB", "logA"},
	}
	for _, order := range orders {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			s := threeReplicas(t, nil)
			w, rd := s.propose("A", "w1")
			if len(rd.Append) != 1 || len(rd.Commits) != 0 || len(rd.Rejects) != 0 || rd.Persist {
				t.Fatalf("propose: %+v", rd)
			}
			mu := rd.Append[0]
			if mu.Decree != 1 || mu.Ballot != 1 || mu.LastCommitted != 0 || !slices.Equal(updatesOf(mu), []string{"w1"}) || mu.TimestampUS != t0.UnixMicro() {
				t.Fatalf("mutation %s lc %d", fmtMutation(mu), mu.LastCommitted)
			}
			if len(rd.Prepares) != 2 {
				t.Fatalf("prepares: %+v", rd.Prepares)
			}
			for i, to := range []string{"B", "C"} {
				p := rd.Prepares[i]
				if p.To != to || p.Status != StatusSecondary || p.Mutation != mu || p.Config.Ballot != 1 || p.Config.Primary != "A" || !slices.Equal(p.Config.Secondaries, []string{"B", "C"}) {
					t.Fatalf("prepare %d: %+v", i, p)
				}
			}
			for _, sec := range []string{"B", "C"} {
				rd := s.deliverOne(prepareTo(sec, 1))
				if len(rd.Append) != 1 || len(rd.Acks) != 0 {
					t.Fatalf("%s on prepare: %+v (the ack waits for the log)", sec, rd)
				}
				rd = s.deliverOne(loggedAt(sec, 1))
				if len(rd.Acks) != 1 || rd.Acks[0] != (Ack{To: "A", Decree: 1, Ballot: 1, Err: base.ErrOK, LastCommitted: 0, LastPrepared: 1}) {
					t.Fatalf("%s on logged: acks %+v", sec, rd.Acks)
				}
			}
			for i, name := range order {
				rd := s.deliverOne(events[name])
				if i < len(order)-1 {
					wantCommits(t, name, rd)
					if _, ok := s.outcome[w]; ok {
						t.Fatalf("w1 answered before its commit")
					}
					continue
				}
				wantCommits(t, name, rd, 1)
				if got := writesOf(rd.Commits); !slices.Equal(got, []string{"w1"}) {
					t.Fatalf("the commit carries writes %v", got)
				}
			}
			if s.outcome[w] != base.ErrOK || s.r("A").Committed() != 1 {
				t.Fatalf("w1: %q, committed %d", s.outcome[w], s.r("A").Committed())
			}
			// The secondaries learn the commit point later (group check here).
			if s.r("B").Committed() != 0 {
				t.Fatalf("B committed before hearing the commit point")
			}
			s.settle()
			for _, id := range []string{"B", "C"} {
				if got := s.node(id).committedDecrees(); !slices.Equal(got, []int64{1}) {
					t.Fatalf("%s committed %v", id, got)
				}
			}
		})
	}
}

// Whatever order the events arrive in, the primary commits in decree order and
// each client is answered with its own mutation's commit.
func TestCommitsInDecreeOrderAndRepliesWithCommit(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			s := threeReplicas(t, nil)
			var ws []*Write
			for i := 1; i <= 6; i++ {
				w, _ := s.propose("A", fmt.Sprint("w", i))
				ws = append(ws, w)
			}
			for len(s.pool) > 0 {
				for _, e := range s.shuffled(rng, anyEvent) {
					s.deliver(e)
				}
			}
			a := s.node("A")
			if got := a.committedDecrees(); !slices.Equal(got, []int64{1, 2, 3, 4, 5, 6}) {
				t.Fatalf("A committed %v", got)
			}
			for i, mu := range a.applied {
				if !slices.Equal(updatesOf(mu), []string{string(ws[i].Update.Data)}) {
					t.Fatalf("d%d carries %v", mu.Decree, updatesOf(mu))
				}
			}
			if !slices.Equal(s.okOrder, ws) {
				t.Fatalf("writes answered out of order")
			}
			s.settle()
			s.checkPrefixOf("A")
			s.checkAckedWritesEverywhere("A", "B", "C")
		})
	}
}

// Acknowledgements of later decrees do not let anything commit past a decree that
// is not acknowledged yet; once it is, everything ready commits at once, in order.
func TestOutOfOrderAcks(t *testing.T) {
	cases := []struct {
		name  string
		order []int64   // the order B's acks reach the primary
		want  [][]int64 // commits after each
	}{
		{"in order", []int64{1, 2, 3}, [][]int64{{1}, {2}, {3}}},
		{"3 before 2", []int64{1, 3, 2}, [][]int64{{1}, nil, {2, 3}}},
		{"2 before 1", []int64{2, 1, 3}, [][]int64{nil, {1, 2}, {3}}},
		{"reversed", []int64{3, 2, 1}, [][]int64{nil, nil, {1, 2, 3}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := threeReplicas(t, nil)
			for i := 1; i <= 3; i++ {
				s.propose("A", fmt.Sprint("w", i))
			}
			// Everything but B's acks.
			rd := s.deliverWhile(not(acksFrom("B")))
			wantCommits(t, "before B acks", rd)
			for i, d := range tc.order {
				rd := s.deliverOne(ackFrom("B", d))
				wantCommits(t, fmt.Sprintf("B's ack of d%d", d), rd, tc.want[i]...)
				if got := writesOf(rd.Commits); len(got) != len(tc.want[i]) {
					t.Fatalf("the commits carry writes %v", got)
				}
			}
			if s.r("A").Committed() != 3 {
				t.Fatalf("committed %d", s.r("A").Committed())
			}
		})
	}
}

// A secondary takes prepares in any order, appends each once, acknowledges each
// once it is logged, and commits in order once the commit point reaches it.
func TestOutOfOrderPreparesAtSecondary(t *testing.T) {
	cases := []struct {
		arrive, logged []int64
	}{
		{[]int64{1, 2, 3}, []int64{1, 2, 3}},
		{[]int64{3, 2, 1}, []int64{1, 2, 3}},
		{[]int64{2, 3, 1}, []int64{3, 1, 2}},
		{[]int64{3, 1, 2}, []int64{2, 3, 1}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("arrive%v/logged%v", tc.arrive, tc.logged), func(t *testing.T) {
			s := threeReplicas(t, nil)
			for i := 1; i <= 3; i++ {
				s.propose("A", fmt.Sprint("w", i))
			}
			for _, d := range tc.arrive {
				rd := s.deliverOne(prepareTo("B", d))
				if len(rd.Append) != 1 || rd.Append[0].Decree != d || len(rd.Acks) != 0 || len(rd.Commits) != 0 {
					t.Fatalf("B on prepare d%d: %+v", d, rd)
				}
			}
			if s.r("B").MaxPrepared() != 3 {
				t.Fatalf("B max prepared %d", s.r("B").MaxPrepared())
			}
			for _, d := range tc.logged {
				rd := s.deliverOne(loggedAt("B", d))
				if len(rd.Acks) != 1 || rd.Acks[0].Decree != d || rd.Acks[0].Err != base.ErrOK || rd.Acks[0].To != "A" {
					t.Fatalf("B on logged d%d: acks %+v", d, rd.Acks)
				}
			}
			s.deliverAll()
			if s.r("A").Committed() != 3 || s.r("B").Committed() != 0 {
				t.Fatalf("A committed %d, B committed %d", s.r("A").Committed(), s.r("B").Committed())
			}
			// The next prepare carries the commit point.
			s.propose("A", "w4")
			rd := s.deliverOne(prepareTo("B", 4))
			wantCommits(t, "B on prepare d4", rd, 1, 2, 3)
			if got := appendedDecrees(s.node("B").appended); len(got) != 4 {
				t.Fatalf("B appended %v", got)
			}
			s.settle()
			s.checkPrefixOf("A")
		})
	}
}

// A commit point a secondary hears before the decrees below it are logged is
// applied as soon as they are: the commit happens in OnLogged.
func TestSecondaryCommitWaitsForLowerDecreesLogged(t *testing.T) {
	cfg := Config{Ballot: 1, Primary: "A", Secondaries: []string{"B"}}
	b := New("B", Options{})
	b.UpdateConfig(cfg, t0)
	mu := func(d, lc int64) *Mutation {
		return &Mutation{Ballot: 1, Decree: d, LastCommitted: lc, Updates: []Update{{Code: "put", Data: []byte(fmt.Sprint("w", d))}}}
	}
	rd := b.OnPrepare("A", cfg, StatusSecondary, mu(2, 1), t0) // says d1 is committed; d1 unknown yet
	wantCommits(t, "prepare d2", rd)
	rd = b.OnPrepare("A", cfg, StatusSecondary, mu(1, 0), t0)
	wantCommits(t, "prepare d1 (not logged)", rd)
	rd = b.OnLogged(2, 1, t0)
	wantCommits(t, "d2 logged", rd)
	rd = b.OnLogged(1, 1, t0)
	wantCommits(t, "d1 logged", rd, 1)
	if len(rd.Acks) != 1 || rd.Acks[0].Decree != 1 {
		t.Fatalf("acks %+v", rd.Acks)
	}
	// A group check with a commit point beyond what is prepared commits what it can.
	rd = b.OnGroupCheck("A", cfg, StatusSecondary, 5, t0)
	wantCommits(t, "group check 5", rd, 2)
	rd = b.OnPrepare("A", cfg, StatusSecondary, mu(3, 2), t0)
	wantCommits(t, "prepare d3", rd)
	rd = b.OnLogged(3, 1, t0)
	wantCommits(t, "d3 logged (known 5)", rd, 3)
}

// Stale ballots: the secondary refuses prepares of an older ballot and ignores
// older group checks and configurations; the primary ignores acks of an older ballot.
func TestStaleBallotsAtSecondary(t *testing.T) {
	cfg1 := Config{Ballot: 1, Primary: "A", Secondaries: []string{"B", "C"}}
	cfg2 := Config{Ballot: 2, Primary: "A", Secondaries: []string{"B"}}
	mu := func(d, b int64) *Mutation { return &Mutation{Ballot: b, Decree: d} }
	cases := []struct {
		name string
		do   func(r *Replica) Ready
		ack  string // the expected ack error, "" for none
	}{
		{"prepare of ballot 1", func(r *Replica) Ready { return r.OnPrepare("A", cfg1, StatusSecondary, mu(1, 1), t0) }, base.ErrVersionOutdated},
		{"mutation of ballot 1 in config 2", func(r *Replica) Ready { return r.OnPrepare("A", cfg2, StatusSecondary, mu(1, 1), t0) }, base.ErrVersionOutdated},
		{"group check of ballot 1", func(r *Replica) Ready { return r.OnGroupCheck("A", cfg1, StatusSecondary, 9, t0) }, ""},
		{"config of ballot 1", func(r *Replica) Ready { return r.UpdateConfig(cfg1, t0) }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := New("B", Options{})
			b.UpdateConfig(cfg2, t0)
			rd := tc.do(b)
			if rd.Persist || len(rd.Append) > 0 || len(rd.Commits) > 0 || rd.Closed || rd.ConfigChange != nil {
				t.Fatalf("stale event had effects: %+v", rd)
			}
			if tc.ack == "" && len(rd.Acks) != 0 {
				t.Fatalf("acks %+v", rd.Acks)
			}
			if tc.ack != "" && (len(rd.Acks) != 1 || rd.Acks[0].Err != tc.ack || rd.Acks[0].To != "A") {
				t.Fatalf("acks %+v, want one %s", rd.Acks, tc.ack)
			}
			if b.Ballot() != 2 || b.Status() != StatusSecondary || b.MaxPrepared() != 0 || b.Committed() != 0 || len(b.Config().Secondaries) != 1 {
				t.Fatalf("state changed: ballot %d status %v prepared %d config %+v", b.Ballot(), b.Status(), b.MaxPrepared(), b.Config())
			}
		})
	}
}

func TestStaleAcksIgnoredByPrimary(t *testing.T) {
	s := threeReplicas(t, func(o *Options) { o.PrepareTimeout = time.Hour })
	s.metaManual = true
	s.propose("A", "w1")
	s.deliverWhile(or(prepareTo("B", 1), loggedAt("B", 1), loggedAt("A", 1))) // B's ack in flight
	s.drop(prepareTo("C", 1))
	rd := s.apply(s.node("A"), s.r("A").OnPrepareAck("C", 1, 1, base.ErrTimeout, s.now))
	if rd.ConfigChange == nil {
		t.Fatalf("no config change after C failed")
	}
	s.answerRequest(0)
	s.deliverOne(kindIs(evConfig)) // A moves to ballot 2 and re-prepares d1 for B
	a := s.r("A")
	if a.Ballot() != 2 || a.Committed() != 0 {
		t.Fatalf("A ballot %d committed %d", a.Ballot(), a.Committed())
	}
	// B's ack of the ballot-1 prepare arrives now: it does not count for ballot 2.
	rd = s.deliverOne(ackFrom("B", 1))
	wantCommits(t, "stale ack", rd)
	// Nor does a stale error ack start a reconfiguration.
	rd = s.apply(s.node("A"), a.OnPrepareAck("B", 1, 1, base.ErrTimeout, s.now))
	if !rd.Empty() {
		t.Fatalf("stale error ack: %+v", rd)
	}
	// Nor an ack from a node that is no longer a member.
	rd = s.apply(s.node("A"), a.OnPrepareAck("C", 1, 2, base.ErrOK, s.now))
	if !rd.Empty() {
		t.Fatalf("ack from a removed node: %+v", rd)
	}
	// The ballot-2 ack commits it.
	rd = s.deliverWhile(not(kindIs(evConfig)))
	wantCommits(t, "ballot-2 ack", rd, 1)
}

// A prepare with a newer ballot is adopted first: the configuration is persisted
// (Persist in the same Ready as the Append), then the ack carries the new ballot.
func TestNewerBallotInPrepareAdoptedAndPersistedBeforeAck(t *testing.T) {
	for _, via := range []string{"prepare", "group check"} {
		t.Run(via, func(t *testing.T) {
			s := threeReplicas(t, nil)
			cfg3 := Config{Ballot: 3, Primary: "C", Secondaries: []string{"B"}}
			var rd Ready
			if via == "prepare" {
				mu := &Mutation{Ballot: 3, Decree: 1, Updates: []Update{{Code: "put", Data: []byte("x")}}}
				s.send(&event{kind: evPrepare, from: "C", to: "B", prepare: Prepare{To: "B", Config: cfg3, Status: StatusSecondary, Mutation: mu}})
				rd = s.deliverOne(prepareTo("B", 1))
				if len(rd.Append) != 1 || len(rd.Acks) != 0 {
					t.Fatalf("B: %+v", rd)
				}
			} else {
				s.send(&event{kind: evGroupCheck, from: "C", to: "B", gc: GroupCheck{To: "B", Config: cfg3, Status: StatusSecondary, Committed: 0}})
				rd = s.deliverOne(kindIs(evGroupCheck))
			}
			b := s.r("B")
			if !rd.Persist || s.node("B").persisted.Ballot != 3 || b.Ballot() != 3 || b.Config().Primary != "C" || b.Status() != StatusSecondary {
				t.Fatalf("B did not adopt ballot 3: persist %v ballot %d config %+v", rd.Persist, b.Ballot(), b.Config())
			}
			if via == "prepare" {
				rd = s.deliverOne(loggedAt("B", 1))
				if len(rd.Acks) != 1 || rd.Acks[0] != (Ack{To: "C", Decree: 1, Ballot: 3, Err: base.ErrOK, LastPrepared: 1}) {
					t.Fatalf("ack %+v", rd.Acks)
				}
			}
			// The old primary's prepares are now refused.
			s.propose("A", "old")
			rd = s.deliverOne(prepareTo("B", 1))
			if len(rd.Acks) != 1 || rd.Acks[0].Err != base.ErrVersionOutdated || len(rd.Append) != 0 {
				t.Fatalf("old primary's prepare: %+v", rd)
			}
			// ... and A, told by the refusal, asks the meta to remove B.
			rd = s.deliverOne(func(e *event) bool { return e.kind == evAck && e.from == "B" && e.to == "A" })
			if rd.ConfigChange == nil || rd.ConfigChange.Node != "B" {
				t.Fatalf("A on ERR_VERSION_OUTDATED: %+v", rd)
			}
		})
	}
}

// Duplicate prepares (same decree, same ballot) never append twice and are
// acknowledged correctly before, after being logged and after being committed.
func TestDuplicatePrepares(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, s *sim)
	}{
		{"before logged", func(t *testing.T, s *sim) {
			s.duplicate(prepareTo("B", 1))
			s.deliverOne(prepareTo("B", 1))
			rd := s.deliverOne(prepareTo("B", 1))
			if len(rd.Append) != 0 || len(rd.Acks) != 0 {
				t.Fatalf("duplicate before logged: %+v", rd)
			}
			rd = s.deliverOne(loggedAt("B", 1))
			if len(rd.Acks) != 1 || rd.Acks[0].Err != base.ErrOK {
				t.Fatalf("logged: acks %+v", rd.Acks)
			}
		}},
		{"after logged", func(t *testing.T, s *sim) {
			s.duplicate(prepareTo("B", 1))
			s.deliverOne(prepareTo("B", 1))
			s.deliverOne(loggedAt("B", 1))
			rd := s.deliverOne(prepareTo("B", 1))
			if len(rd.Append) != 0 || len(rd.Acks) != 1 || rd.Acks[0].Err != base.ErrOK || rd.Acks[0].Decree != 1 {
				t.Fatalf("duplicate after logged: %+v", rd)
			}
		}},
		{"after committed", func(t *testing.T, s *sim) {
			s.duplicate(prepareTo("B", 1))
			s.deliverWhile(not(prepareTo("B", 1)))
			s.deliverOne(prepareTo("B", 1))
			s.deliverWhile(not(prepareTo("B", 1)))
			s.propose("A", "w2") // carries the commit point 1
			rd := s.deliverOne(prepareTo("B", 2))
			wantCommits(t, "B learns d1 committed", rd, 1)
			rd = s.deliverOne(prepareTo("B", 1))
			if len(rd.Append) != 0 || len(rd.Commits) != 0 || len(rd.Acks) != 1 || rd.Acks[0].Err != base.ErrOK {
				t.Fatalf("duplicate after committed: %+v", rd)
			}
		}},
		{"duplicate acks", func(t *testing.T, s *sim) {
			s.deliverWhile(not(kindIs(evAck)))
			s.duplicate(kindIs(evAck))
			rd := s.deliverAll()
			wantCommits(t, "all acks twice", rd, 1)
		}},
		{"every event twice", func(t *testing.T, s *sim) {
			for i := 0; i < 4; i++ {
				s.duplicate(or(kindIs(evPrepare), kindIs(evAck)))
				s.deliverAll()
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := threeReplicas(t, nil)
			s.propose("A", "w1")
			tc.run(t, s)
			s.settle()
			for _, id := range []string{"A", "B", "C"} {
				n := s.node(id)
				if got := appendedDecrees(n.appended); countOf(got, 1) != 1 {
					t.Errorf("%s appended %v: d1 twice", id, got)
				}
				if n.r.Committed() != s.r("A").Committed() {
					t.Errorf("%s committed %d, A %d", id, n.r.Committed(), s.r("A").Committed())
				}
			}
			s.checkPrefixOf("A")
			s.checkAckedWritesEverywhere("A", "B", "C")
		})
	}
}

// Secondaries learn the commit point from the next prepare, or from the group check
// an idle primary sends after IdleDelay; no group check when there is nothing new.
func TestCommitPointPropagation(t *testing.T) {
	s := threeReplicas(t, nil)
	if rd := s.tickAll(); !rd.Empty() {
		t.Fatalf("tick of a fresh partition: %+v", rd)
	}
	s.advance(time.Second)
	if rd := s.tickAll(); !rd.Empty() {
		t.Fatalf("tick with nothing committed: %+v", rd)
	}
	s.propose("A", "w1")
	s.deliverAll()
	if s.r("A").Committed() != 1 || s.r("B").Committed() != 0 || s.r("C").Committed() != 0 {
		t.Fatalf("after w1: committed A%d B%d C%d", s.r("A").Committed(), s.r("B").Committed(), s.r("C").Committed())
	}
	// The next prepare carries last_committed = 1.
	_, rd := s.propose("A", "w2")
	if rd.Append[0].LastCommitted != 1 {
		t.Fatalf("d2 carries last committed %d", rd.Append[0].LastCommitted)
	}
	sent := s.now
	wantCommits(t, "B on prepare d2", s.deliverOne(prepareTo("B", 2)), 1)
	wantCommits(t, "C on prepare d2", s.deliverOne(prepareTo("C", 2)), 1)
	// While d2 is in flight no group check goes out.
	s.advance(time.Second)
	if rd := s.tick("A"); len(rd.GroupChecks) != 0 {
		t.Fatalf("group check while a mutation is in flight")
	}
	s.now = sent
	s.deliverAll()
	if s.r("A").Committed() != 2 || s.r("B").Committed() != 1 {
		t.Fatalf("after w2: A %d B %d", s.r("A").Committed(), s.r("B").Committed())
	}
	// Idle: a group check after IdleDelay since the last prepare, not before.
	s.now = sent.Add(s.opts.IdleDelay - time.Nanosecond)
	if rd := s.tick("A"); len(rd.GroupChecks) != 0 {
		t.Fatalf("group check before IdleDelay")
	}
	s.now = sent.Add(s.opts.IdleDelay)
	rd = s.tick("A")
	if len(rd.GroupChecks) != 2 {
		t.Fatalf("group checks %+v", rd.GroupChecks)
	}
	for i, to := range []string{"B", "C"} {
		g := rd.GroupChecks[i]
		if g.To != to || g.Committed != 2 || g.Status != StatusSecondary || g.Config.Ballot != 1 || g.Config.Primary != "A" {
			t.Fatalf("group check %+v", g)
		}
	}
	wantCommits(t, "B on group check", s.deliverOne(kindIs(evGroupCheck)), 2)
	wantCommits(t, "C on group check", s.deliverOne(kindIs(evGroupCheck)), 2)
	// Nothing new: no more group checks.
	s.advance(time.Hour)
	if rd := s.tickAll(); !rd.Empty() {
		t.Fatalf("tick with nothing new: %+v", rd)
	}
	// A group check from someone who is not the primary is ignored.
	s.propose("A", "w3")
	s.deliverAll()
	s.send(&event{kind: evGroupCheck, from: "C", to: "B", gc: GroupCheck{To: "B", Config: s.meta, Status: StatusSecondary, Committed: 3}})
	wantCommits(t, "group check from C", s.deliverOne(kindIs(evGroupCheck)))
	s.settle()
	s.checkPrefixOf("A")
	for _, id := range []string{"B", "C"} {
		if s.r(id).Committed() != 3 {
			t.Fatalf("%s committed %d", id, s.r(id).Committed())
		}
	}
}

// Writes proposed while the in-flight window is full are batched into few
// mutations, the window bound is respected at every step, and the writes commit in
// the order they were proposed.
func TestBatchingAndInflightWindow(t *testing.T) {
	cases := []struct {
		name          string
		inflight      int
		batch         int
		bytes         int
		writes        int
		size          int // payload size of each write ("" padding)
		wantMutations int // 0: only check the bounds
	}{
		{"window 2", 2, 0, 0, 10, 0, 3},
		{"window 1", 1, 0, 0, 10, 0, 2},
		{"window 2, 3 updates per mutation", 2, 3, 0, 10, 0, 0},
		{"window 1, 16 bytes per mutation", 1, 0, 16, 12, 8, 0},
		{"oversized writes go alone", 1, 0, 4, 5, 8, 5},
		{"window 20", 20, 0, 0, 50, 0, 21},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := threeReplicas(t, func(o *Options) {
				o.MaxInflight, o.MaxBatchUpdates, o.MaxBatchBytes = tc.inflight, tc.batch, tc.bytes
			})
			var names []string
			for i := 0; i < tc.writes; i++ {
				name := fmt.Sprintf("w%02d", i)
				if tc.size > 0 {
					name = fmt.Sprintf("%-*s", tc.size, name)
				}
				names = append(names, name)
				_, rd := s.propose("A", name)
				if len(rd.Rejects) > 0 {
					t.Fatalf("rejected: %+v", rd.Rejects)
				}
				s.checkWindow("A")
			}
			for steps := 0; len(s.pool) > 0; steps++ {
				s.deliver(s.pool[0])
				s.checkWindow("A")
			}
			a := s.node("A")
			var committed []string
			for _, mu := range a.applied {
				committed = append(committed, updatesOf(mu)...)
				if tc.batch > 0 && len(mu.Updates) > tc.batch {
					t.Errorf("d%d has %d updates", mu.Decree, len(mu.Updates))
				}
				if tc.bytes > 0 && len(mu.Updates) > 1 && len(mu.Updates)*tc.size > tc.bytes {
					t.Errorf("d%d has %d bytes", mu.Decree, len(mu.Updates)*tc.size)
				}
			}
			if !slices.Equal(committed, names) {
				t.Fatalf("committed %v, want %v", committed, names)
			}
			if len(s.okOrder) != tc.writes {
				t.Fatalf("%d writes answered", len(s.okOrder))
			}
			if tc.wantMutations > 0 && len(a.applied) != tc.wantMutations {
				t.Fatalf("%d mutations, want %d", len(a.applied), tc.wantMutations)
			}
			if len(a.applied) >= tc.writes && tc.writes > tc.inflight && tc.size == 0 {
				t.Fatalf("no batching: %d mutations for %d writes", len(a.applied), tc.writes)
			}
		})
	}
}

func TestBackPressure(t *testing.T) {
	cases := []struct {
		name    string
		members []string // primary first
		opts    func(*Options)
		at      string
		writes  int
		want    []string // the answer of each write once settled
	}{
		{"at a secondary", []string{"A", "B"}, nil, "B", 1, []string{base.ErrInvalidState}},
		{"at a replica of no partition", []string{"A", "B"}, nil, "X", 1, []string{base.ErrInvalidState}},
		{"primary alone, 2PC needs 2", []string{"A"}, nil, "A", 1, []string{base.ErrNotEnoughMember}},
		{"two members, 2PC needs 3", []string{"A", "B"}, func(o *Options) { o.Min2PC = 3 }, "A", 1, []string{base.ErrNotEnoughMember}},
		{"primary alone, 2PC needs 1", []string{"A"}, func(o *Options) { o.Min2PC = 1 }, "A", 2, []string{base.ErrOK, base.ErrOK}},
		{"queue full", []string{"A", "B"}, func(o *Options) { o.MaxInflight, o.MaxQueued = 1, 2 }, "A", 5,
			[]string{base.ErrOK, base.ErrOK, base.ErrOK, base.ErrBusy, base.ErrBusy}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, testOpts(tc.opts), tc.members[0], tc.members[1:]...)
			if tc.at == "X" {
				s.addNode("X")
			}
			var ws []*Write
			for i := 0; i < tc.writes; i++ {
				w, _ := s.propose(tc.at, fmt.Sprint("w", i))
				ws = append(ws, w)
			}
			s.settle()
			for i, w := range ws {
				if got := s.outcome[w]; got != tc.want[i] {
					t.Errorf("write %d: %q, want %q", i, got, tc.want[i])
				}
			}
			s.checkAckedWritesEverywhere(tc.members...)
			// A refused write is never committed.
			for _, mu := range s.node(tc.members[0]).applied {
				for _, u := range mu.Updates {
					for i, w := range ws {
						if string(u.Data) == string(w.Update.Data) && tc.want[i] != base.ErrOK {
							t.Errorf("refused write %d committed", i)
						}
					}
				}
			}
		})
	}
}

// A secondary that fails (an error ack, or no ack within PrepareTimeout) is removed
// through one configuration change; nothing new is prepared until the meta answers;
// then the uncommitted mutations are re-prepared under the new ballot and commit
// with the remaining secondary.
func TestRemoteFailureRemovesSecondary(t *testing.T) {
	cases := []struct {
		name    string
		trigger func(t *testing.T, s *sim) Ready
		again   func(t *testing.T, s *sim) Ready // the same failure reported again
	}{
		{"error ack", func(t *testing.T, s *sim) Ready {
			return s.apply(s.node("A"), s.r("A").OnPrepareAck("C", 1, 1, base.ErrTimeout, s.now))
		}, func(t *testing.T, s *sim) Ready {
			return s.apply(s.node("A"), s.r("A").OnPrepareAck("C", 1, 1, base.ErrCapacityExceeded, s.now))
		}},
		{"prepare timeout", func(t *testing.T, s *sim) Ready {
			s.advance(s.opts.PrepareTimeout)
			if rd := s.tick("A"); rd.ConfigChange != nil {
				t.Fatalf("removed at exactly PrepareTimeout")
			}
			s.advance(time.Nanosecond)
			return s.tick("A")
		}, func(t *testing.T, s *sim) Ready {
			s.advance(time.Second)
			return s.tick("A")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := threeReplicas(t, nil)
			s.metaManual = true
			w1, _ := s.propose("A", "w1")
			s.drop(prepareTo("C", 1)) // C never answers
			s.deliverAll()
			if s.r("A").Committed() != 0 {
				t.Fatalf("committed without C")
			}
			rd := tc.trigger(t, s)
			want := ConfigRequest{Type: ChangeDowngradeToInact, Node: "C", Config: Config{Ballot: 2, Primary: "A", Secondaries: []string{"B"}}}
			if rd.ConfigChange == nil || rd.ConfigChange.Type != want.Type || rd.ConfigChange.Node != want.Node ||
				rd.ConfigChange.Config.Ballot != 2 || rd.ConfigChange.Config.Primary != "A" || !slices.Equal(rd.ConfigChange.Config.Secondaries, []string{"B"}) {
				t.Fatalf("config change %+v, want %+v", rd.ConfigChange, want)
			}
			if p := s.r("A").PendingChange(); p == nil || p.Node != "C" {
				t.Fatalf("pending change %+v", p)
			}
			if s.r("A").Ballot() != 1 || s.r("A").Status() != StatusPrimary {
				t.Fatalf("A moved before the meta answered")
			}
			if rd := tc.again(t, s); rd.ConfigChange != nil {
				t.Fatalf("a second config change: %+v", rd.ConfigChange)
			}
			// Writes wait while the meta decides.
			w2, rd := s.propose("A", "w2")
			if len(rd.Append) != 0 || len(rd.Prepares) != 0 || len(rd.Rejects) != 0 {
				t.Fatalf("propose during reconfiguration: %+v", rd)
			}
			if rd := s.apply(s.node("A"), s.r("A").EmptyWrite(s.now)); !rd.Empty() {
				t.Fatalf("empty write during reconfiguration: %+v", rd)
			}
			if len(s.requests) != 1 {
				t.Fatalf("%d requests", len(s.requests))
			}
			s.answerRequest(0)
			rd = s.deliverOne(func(e *event) bool { return e.kind == evConfig && e.to == "A" })
			if !rd.Persist || s.r("A").Ballot() != 2 || s.r("A").PendingChange() != nil {
				t.Fatalf("A on the new config: %+v", rd)
			}
			if got := appendedDecrees(rd.Append); !slices.Equal(got, []int64{1, 2}) {
				t.Fatalf("A appends %v, want d1 re-prepared and d2", got)
			}
			for _, mu := range rd.Append {
				if mu.Ballot != 2 {
					t.Fatalf("d%d under ballot %d", mu.Decree, mu.Ballot)
				}
			}
			if !slices.Equal(updatesOf(rd.Append[0]), []string{"w1"}) || !slices.Equal(updatesOf(rd.Append[1]), []string{"w2"}) {
				t.Fatalf("contents %v %v", updatesOf(rd.Append[0]), updatesOf(rd.Append[1]))
			}
			for _, p := range rd.Prepares {
				if p.To != "B" || p.Config.Ballot != 2 {
					t.Fatalf("prepare %+v", p)
				}
			}
			if len(rd.Prepares) != 2 {
				t.Fatalf("%d prepares", len(rd.Prepares))
			}
			s.settle()
			if s.outcome[w1] != base.ErrOK || s.outcome[w2] != base.ErrOK {
				t.Fatalf("w1 %q w2 %q", s.outcome[w1], s.outcome[w2])
			}
			if !s.node("C").closed || s.r("C").Status() != StatusInactive || s.r("C").Transient() {
				t.Fatalf("C not closed: %v", s.r("C").Status())
			}
			if s.r("B").Ballot() != 2 || s.r("B").Committed() != 2 {
				t.Fatalf("B ballot %d committed %d", s.r("B").Ballot(), s.r("B").Committed())
			}
			if !s.r("A").CanRead() {
				t.Fatalf("A cannot read after committing everything")
			}
			s.checkPrefixOf("A")
			s.checkAckedWritesEverywhere("A", "B")
			if len(s.requests) != 1 {
				t.Fatalf("%d requests", len(s.requests))
			}
		})
	}
}

// A meta refusal clears the pending change; the failure is then reported again.
func TestConfigChangeRefused(t *testing.T) {
	s := threeReplicas(t, func(o *Options) { o.PrepareTimeout = 10 * time.Millisecond })
	s.metaManual = true
	s.propose("A", "w1")
	s.drop(prepareTo("C", 1))
	s.deliverAll()
	s.advance(11 * time.Millisecond)
	if rd := s.tick("A"); rd.ConfigChange == nil {
		t.Fatalf("no config change")
	}
	s.r("A").ChangeFailed()
	if s.r("A").PendingChange() != nil {
		t.Fatalf("still pending")
	}
	rd := s.tick("A")
	if rd.ConfigChange == nil || rd.ConfigChange.Node != "C" {
		t.Fatalf("failure not reported again: %+v", rd)
	}
	if rd := s.r("A").RequestConfigChange(ChangeRemove, "B", Config{Ballot: 2, Primary: "A"}); !rd.Empty() {
		t.Fatalf("second request while one is pending: %+v", rd)
	}
}

// A secondary that says "not yet" (ERR_INACTIVE_STATE, ERR_TRY_AGAIN) is retried
// every RetryDelay until PrepareTimeout, then removed; if it becomes ready in time,
// the retry succeeds.
func TestNotReadyAcksAreResent(t *testing.T) {
	for _, errName := range []string{base.ErrInactiveState, base.ErrTryAgain} {
		for _, recovers := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/recovers=%v", errName, recovers), func(t *testing.T) {
				s := threeReplicas(t, func(o *Options) {
					o.PrepareTimeout, o.RetryDelay = 50*time.Millisecond, 5*time.Millisecond
				})
				s.metaManual = true
				if errName == base.ErrInactiveState {
					s.deactivate("C", true) // lost its lease: answers ERR_INACTIVE_STATE
				}
				w, _ := s.propose("A", "w1")
				start := s.now
				resends := 0
				notReady := true
				for s.now.Sub(start) < time.Second {
					if errName == base.ErrTryAgain && notReady {
						// C's RPC layer answers "try again".
						s.drop(preparesTo("C"))
						s.send(&event{kind: evAck, from: "C", to: "A", ack: Ack{To: "A", Decree: 1, Ballot: 1, Err: base.ErrTryAgain}})
					}
					rd := s.deliverWhile(not(kindIs(evResend)))
					if len(rd.Resends) > 0 {
						if len(rd.Resends) != 1 || rd.Resends[0] != (Resend{To: "C", Decree: 1, Delay: 5 * time.Millisecond}) {
							t.Fatalf("resends %+v", rd.Resends)
						}
						if s.now.Sub(start) >= s.opts.PrepareTimeout {
							t.Fatalf("resend after PrepareTimeout")
						}
						resends++
					}
					if rd.ConfigChange != nil {
						if recovers {
							t.Fatalf("C removed although it recovered")
						}
						if s.now.Sub(start) < s.opts.PrepareTimeout || rd.ConfigChange.Node != "C" {
							t.Fatalf("config change at %v: %+v", s.now.Sub(start), rd.ConfigChange)
						}
						break
					}
					if s.outcome[w] == base.ErrOK {
						break
					}
					if recovers && resends == 3 && notReady {
						notReady = false
						if errName == base.ErrInactiveState {
							s.updateConfig("C", s.meta) // lease back, same ballot
						} // else the RPC layer stops saying "try again"
					}
					if s.count(kindIs(evResend)) != 1 {
						t.Fatalf("%d resends pending", s.count(kindIs(evResend)))
					}
					s.advance(5 * time.Millisecond)
					rd = s.deliverOne(kindIs(evResend))
					if len(rd.Prepares) != 1 || rd.Prepares[0].To != "C" || rd.Prepares[0].Mutation.Decree != 1 {
						t.Fatalf("resend: %+v", rd)
					}
				}
				if recovers {
					if s.outcome[w] != base.ErrOK || len(s.requests) != 0 {
						t.Fatalf("w1 %q, %d requests", s.outcome[w], len(s.requests))
					}
				} else {
					if len(s.requests) != 1 || s.outcome[w] != "" {
						t.Fatalf("%d requests, w1 %q", len(s.requests), s.outcome[w])
					}
					if resends < 8 || resends > 10 {
						t.Fatalf("%d resends in %v every %v", resends, s.opts.PrepareTimeout, s.opts.RetryDelay)
					}
				}
			})
		}
	}
}

// Resend does nothing once it is no longer needed.
func TestResendWhenNoLongerNeeded(t *testing.T) {
	s := threeReplicas(t, nil)
	s.propose("A", "w1")
	s.deliverWhile(not(ackFrom("C", 1)))
	a := s.r("A")
	if rd := a.Resend("C", 1, s.now); len(rd.Prepares) != 1 {
		t.Fatalf("C has not acked: %+v", rd)
	}
	cases := map[string]func() Ready{
		"already acked":  func() Ready { return a.Resend("B", 1, s.now) },
		"not a member":   func() Ready { return a.Resend("X", 1, s.now) },
		"unknown decree": func() Ready { return a.Resend("C", 7, s.now) },
	}
	for name, f := range cases {
		if rd := f(); !rd.Empty() {
			t.Errorf("%s: %+v", name, rd)
		}
	}
	s.deliverAll()
	if rd := a.Resend("C", 1, s.now); !rd.Empty() {
		t.Errorf("committed: %+v", rd)
	}
	if rd := s.r("B").Resend("C", 1, s.now); !rd.Empty() {
		t.Errorf("at a secondary: %+v", rd)
	}
}

// The primary dies with mutations prepared at some secondaries only; the meta makes
// a secondary primary at ballot+1. The new primary re-prepares everything above its
// commit point, fills the decrees it lacks with empty writes, serves reads only once
// they are committed, and nothing any replica committed is lost or changed.
func TestFailoverReconciliation(t *testing.T) {
	s := threeReplicas(t, nil)
	var ws []*Write
	for i := 1; i <= 6; i++ {
		w, _ := s.propose("A", fmt.Sprint("w", i))
		ws = append(ws, w)
	}
	// d1..d3 reach everyone; d4 only C; d5 only B; d6 nobody.
	s.deliverWhile(or(kindIs(evLogged), prepareTo("B", 1), prepareTo("C", 1), prepareTo("B", 2), prepareTo("C", 2),
		prepareTo("B", 3), prepareTo("C", 3), prepareTo("C", 4), prepareTo("B", 5), ackFrom("B", 1), ackFrom("C", 1),
		ackFrom("B", 2), ackFrom("C", 2)))
	// A committed d1, d2 (answered w1, w2). No prepare sent after those commits
	// reached B or C: they have committed nothing yet.
	if got := s.node("A").committedDecrees(); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("A committed %v", got)
	}
	if s.r("B").Committed() != 0 || s.r("C").Committed() != 0 {
		t.Fatalf("B %d C %d", s.r("B").Committed(), s.r("C").Committed())
	}
	s.crash("A")
	if s.outcome[ws[0]] != base.ErrOK || s.outcome[ws[1]] != base.ErrOK {
		t.Fatalf("w1 %q w2 %q", s.outcome[ws[0]], s.outcome[ws[1]])
	}
	// The meta promotes B.
	s.meta = Config{Ballot: 2, Primary: "B", Secondaries: []string{"C"}}
	rd := s.updateConfig("B", s.meta)
	b := s.r("B")
	if !rd.Persist || b.Status() != StatusPrimary || b.Ballot() != 2 {
		t.Fatalf("B: %v ballot %d", b.Status(), b.Ballot())
	}
	if got := appendedDecrees(rd.Append); !slices.Equal(got, []int64{1, 2, 3, 4, 5}) {
		t.Fatalf("B re-prepares %v, want 1..5", got)
	}
	for _, mu := range rd.Append {
		if mu.Ballot != 2 || mu.LastCommitted != 0 {
			t.Fatalf("re-prepared %s lc %d", fmtMutation(mu), mu.LastCommitted)
		}
	}
	if len(rd.Append[3].Updates) != 0 {
		t.Fatalf("d4 (B never had it) is %s, want an empty write", fmtMutation(rd.Append[3]))
	}
	if !slices.Equal(updatesOf(rd.Append[4]), []string{"w5"}) {
		t.Fatalf("d5 is %s", fmtMutation(rd.Append[4]))
	}
	if b.CanRead() || !b.CanWrite() {
		t.Fatalf("B read %v write %v before reconciliation", b.CanRead(), b.CanWrite())
	}
	// New writes queue behind the reconciliation.
	w7, _ := s.propose("B", "w7")
	s.deliverWhile(not(or(loggedAt("B", 5), loggedAt("B", 6))))
	if b.CanRead() {
		t.Fatalf("B reads before committing d5")
	}
	s.deliverAll()
	if !b.CanRead() || b.Committed() < 5 {
		t.Fatalf("B read %v committed %d", b.CanRead(), b.Committed())
	}
	s.settle()
	if s.outcome[w7] != base.ErrOK {
		t.Fatalf("w7 %q", s.outcome[w7])
	}
	s.checkPrefixOf("B")
	s.checkAckedWritesEverywhere("B", "C")
	if got := s.node("C").committedDecrees(); !slices.Equal(got, s.node("B").committedDecrees()) {
		t.Fatalf("C %v, B %v", got, s.node("B").committedDecrees())
	}
	// C's d4 (w4) was replaced by the empty write: w4 was never answered.
	if _, ok := s.outcome[ws[3]]; ok {
		t.Fatalf("w4 answered")
	}
	for _, mu := range s.node("C").applied {
		if mu.Decree == 4 && len(mu.Updates) != 0 {
			t.Fatalf("C committed %s", fmtMutation(mu))
		}
	}
}

// Losing the lease: the replica goes inactive (transient), refuses work, and
// resumes its role at the same ballot when the meta says so.
func TestTransientDeactivationAndResume(t *testing.T) {
	t.Run("primary", func(t *testing.T) {
		s := threeReplicas(t, func(o *Options) { o.MaxInflight = 1 })
		w1, _ := s.propose("A", "w1")
		w2, _ := s.propose("A", "w2") // queued behind the window
		s.deliverWhile(not(kindIs(evAck)))
		rd := s.deactivate("A", true)
		a := s.r("A")
		if a.Status() != StatusInactive || !a.Transient() || a.CanRead() || a.CanWrite() {
			t.Fatalf("A: %v transient %v", a.Status(), a.Transient())
		}
		if len(rd.Rejects) != 2 || s.outcome[w1] != base.ErrInvalidState || s.outcome[w2] != base.ErrInvalidState {
			t.Fatalf("rejects %+v", rd.Rejects)
		}
		if _, rd := s.propose("A", "w3"); len(rd.Rejects) != 1 || rd.Rejects[0].Err != base.ErrInvalidState {
			t.Fatalf("propose while inactive: %+v", rd)
		}
		if rd := s.deliverAll(); len(rd.Commits) != 0 {
			t.Fatalf("inactive primary committed on acks: %+v", rd.Commits)
		}
		if rd := s.tick("A"); !rd.Empty() {
			t.Fatalf("inactive tick: %+v", rd)
		}
		rd = s.updateConfig("A", s.meta) // same ballot
		if rd.Persist || a.Status() != StatusPrimary || a.Ballot() != 1 {
			t.Fatalf("resume: persist %v status %v ballot %d", rd.Persist, a.Status(), a.Ballot())
		}
		if got := appendedDecrees(rd.Append); !slices.Equal(got, []int64{1}) || rd.Append[0].Ballot != 1 {
			t.Fatalf("resume re-prepares %v", got)
		}
		if a.CanRead() {
			t.Fatalf("reads before the re-prepared mutation commits")
		}
		bAppends := len(s.node("B").appended)
		s.settle()
		if len(s.node("B").appended) != bAppends {
			t.Fatalf("B appended the same-ballot re-prepare again")
		}
		if !a.CanRead() || a.Committed() != 1 {
			t.Fatalf("A read %v committed %d", a.CanRead(), a.Committed())
		}
		s.checkPrefixOf("A")
		w4, _ := s.propose("A", "w4")
		s.settle()
		if s.outcome[w4] != base.ErrOK {
			t.Fatalf("w4 %q", s.outcome[w4])
		}
	})
	t.Run("secondary", func(t *testing.T) {
		s := threeReplicas(t, nil)
		s.deactivate("B", true)
		b := s.r("B")
		if b.Status() != StatusInactive || !b.Transient() {
			t.Fatalf("B: %v", b.Status())
		}
		w1, _ := s.propose("A", "w1")
		rd := s.deliverOne(prepareTo("B", 1))
		if len(rd.Acks) != 1 || rd.Acks[0].Err != base.ErrInactiveState || len(rd.Append) != 0 {
			t.Fatalf("inactive B on prepare: %+v", rd)
		}
		rd = s.deliverWhile(not(kindIs(evResend)))
		if len(rd.Resends) != 1 {
			t.Fatalf("A: %+v", rd)
		}
		// A group check at the same ballot does not revive it.
		s.send(&event{kind: evGroupCheck, from: "A", to: "B", gc: GroupCheck{To: "B", Config: s.meta, Status: StatusSecondary}})
		s.deliverOne(kindIs(evGroupCheck))
		if b.Status() != StatusInactive {
			t.Fatalf("group check revived B")
		}
		rd = s.updateConfig("B", s.meta)
		if rd.Persist || b.Status() != StatusSecondary || b.Transient() {
			t.Fatalf("B resume: %+v %v", rd, b.Status())
		}
		s.settle()
		if s.outcome[w1] != base.ErrOK || len(s.requests) != 0 {
			t.Fatalf("w1 %q, requests %d", s.outcome[w1], len(s.requests))
		}
		s.checkAckedWritesEverywhere("A", "B", "C")
	})
	t.Run("not transient", func(t *testing.T) {
		s := threeReplicas(t, nil)
		s.deactivate("B", false)
		if rd := s.updateConfig("B", s.meta); !rd.Empty() || s.r("B").Status() != StatusInactive {
			t.Fatalf("a closed replica resumed: %+v", rd)
		}
		s.propose("A", "w1")
		rd := s.deliverOne(prepareTo("B", 1))
		if len(rd.Acks) != 1 || rd.Acks[0].Err != base.ErrInvalidState {
			t.Fatalf("closed replica on prepare: %+v", rd)
		}
	})
}

// A replica dropped from the configuration (a newer ballot without it) is closed.
func TestRemovedFromConfigurationCloses(t *testing.T) {
	for _, who := range []string{"B", "A"} {
		t.Run(who, func(t *testing.T) {
			s := threeReplicas(t, nil)
			w1, _ := s.propose("A", "w1")
			s.deliverAll()
			w2, _ := s.propose("A", "w2")
			cfg := Config{Ballot: 2, Primary: "A", Secondaries: []string{"C"}}
			if who == "A" {
				cfg = Config{Ballot: 2, Primary: "B", Secondaries: []string{"C"}}
			}
			rd := s.updateConfig(who, cfg)
			r := s.r(who)
			if !rd.Persist || !rd.Closed || r.Status() != StatusInactive || r.Transient() || r.Ballot() != 2 {
				t.Fatalf("%s: %+v status %v", who, rd, r.Status())
			}
			if who == "A" && (s.outcome[w2] != base.ErrInvalidState || s.outcome[w1] != base.ErrOK) {
				t.Fatalf("w1 %q w2 %q", s.outcome[w1], s.outcome[w2])
			}
			if rd := s.updateConfig(who, cfg); !rd.Empty() {
				t.Fatalf("closed replica on the same config: %+v", rd)
			}
			if _, rd := s.propose(who, "w3"); len(rd.Rejects) != 1 || rd.Rejects[0].Err != base.ErrInvalidState {
				t.Fatalf("propose: %+v", rd)
			}
		})
	}
}

// Restore rebuilds the state from a replayed plog.
func TestRestore(t *testing.T) {
	m := func(d, b, lc int64, data ...string) *Mutation {
		mu := &Mutation{Ballot: b, Decree: d, LastCommitted: lc, TimestampUS: 1000 * d}
		for _, x := range data {
			mu.Updates = append(mu.Updates, Update{Code: "put", Data: []byte(x)})
		}
		return mu
	}
	cfg := Config{Ballot: 3, Primary: "A", Secondaries: []string{"B"}}
	cases := []struct {
		name         string
		applied      int64
		log          []*Mutation
		wantCommits  []int64
		wantContent  map[int64]string // decree -> its single update
		wantPrepared int64
		wantBallot   int64
		wantPersist  bool
	}{
		{"empty", 0, nil, nil, nil, 0, 3, false},
		{"in order", 0, []*Mutation{m(1, 3, 0, "a"), m(2, 3, 1, "b"), m(3, 3, 2, "c")}, []int64{1, 2}, map[int64]string{1: "a", 2: "b"}, 3, 3, false},
		{"any order", 0, []*Mutation{m(3, 3, 2, "c"), m(1, 3, 0, "a"), m(2, 3, 1, "b")}, []int64{1, 2}, nil, 3, 3, false},
		{"newest ballot wins", 0, []*Mutation{m(1, 2, 0, "old"), m(1, 3, 0, "new"), m(1, 1, 0, "older"), m(2, 3, 1, "b")}, []int64{1}, map[int64]string{1: "new"}, 2, 3, false},
		{"ballot raised from the log", 0, []*Mutation{m(1, 3, 0, "a"), m(2, 5, 1, "b")}, []int64{1}, nil, 2, 5, true},
		{"highest last committed wins", 0, []*Mutation{m(4, 3, 3, "d"), m(1, 3, 0, "a"), m(2, 3, 0, "b"), m(3, 3, 0, "c"), m(5, 3, 1, "e")}, []int64{1, 2, 3}, nil, 5, 3, false},
		{"applied skipped", 2, []*Mutation{m(1, 3, 0, "a"), m(2, 3, 1, "b"), m(3, 3, 2, "c"), m(4, 3, 3, "d")}, []int64{3}, map[int64]string{3: "c"}, 4, 3, false},
		{"gap stops the commit", 0, []*Mutation{m(1, 3, 0, "a"), m(3, 3, 2, "c"), m(4, 3, 3, "d")}, []int64{1}, nil, 4, 3, false},
		{"commit point below applied", 5, []*Mutation{m(6, 3, 4, "f")}, nil, nil, 6, 3, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := New("B", Options{})
			rd := r.Restore(cfg, tc.applied, tc.log)
			if got := decreesOf(rd.Commits); !slices.Equal(got, tc.wantCommits) {
				t.Fatalf("commits %v, want %v", got, tc.wantCommits)
			}
			for _, c := range rd.Commits {
				if want, ok := tc.wantContent[c.Mutation.Decree]; ok && !slices.Equal(updatesOf(c.Mutation), []string{want}) {
					t.Fatalf("d%d is %v, want %s", c.Mutation.Decree, updatesOf(c.Mutation), want)
				}
				if len(c.Writes) != 0 {
					t.Fatalf("replayed commits carry writes")
				}
			}
			wantCommitted := tc.applied + int64(len(tc.wantCommits))
			if r.Committed() != wantCommitted || r.MaxPrepared() != tc.wantPrepared || r.Ballot() != tc.wantBallot || rd.Persist != tc.wantPersist {
				t.Fatalf("committed %d prepared %d ballot %d persist %v; want %d %d %d %v",
					r.Committed(), r.MaxPrepared(), r.Ballot(), rd.Persist, wantCommitted, tc.wantPrepared, tc.wantBallot, tc.wantPersist)
			}
			if r.Status() != StatusInactive || !r.Transient() || len(rd.Append) > 0 || len(rd.Acks) > 0 || len(rd.Prepares) > 0 {
				t.Fatalf("status %v transient %v ready %+v", r.Status(), r.Transient(), rd)
			}
			if got := r.Config(); got.Primary != "A" || !slices.Equal(got.Secondaries, []string{"B"}) {
				t.Fatalf("config %+v", got)
			}
			// The restored secondary resumes at the meta's ballot and takes the
			// primary's re-prepares of what it holds without appending again.
			mcfg := cfg.Clone()
			mcfg.Ballot = r.Ballot()
			rd = r.UpdateConfig(mcfg, t0)
			if r.Status() != StatusSecondary || rd.Persist {
				t.Fatalf("resume: %v %+v", r.Status(), rd)
			}
			for d := r.Committed() + 1; d <= r.MaxPrepared(); d++ {
				var newest *Mutation
				for _, mu := range tc.log {
					if mu.Decree == d && (newest == nil || mu.Ballot > newest.Ballot) {
						newest = mu
					}
				}
				if newest == nil {
					continue
				}
				rd := r.OnPrepare("A", mcfg, StatusSecondary, newest, t0)
				if len(rd.Append) != 0 || len(rd.Acks) != 1 || rd.Acks[0].Err != base.ErrOK {
					t.Fatalf("re-prepare of restored d%d: %+v", d, rd)
				}
			}
		})
	}
}

// A secondary refuses a prepare too far beyond its commit point; the primary keeps
// a window of committed mutations for learners.
func TestCapacityAndCommittedWindow(t *testing.T) {
	s := newSim(t, testOpts(func(o *Options) { o.PrepareListCap, o.LearnCache = 3, 3 }), "A", "B")
	for i := 1; i <= 10; i++ {
		s.propose("A", fmt.Sprint("w", i))
		s.deliverAll()
	}
	a := s.r("A")
	if a.Committed() != 10 {
		t.Fatalf("committed %d", a.Committed())
	}
	muts, ok := a.CommittedSince(8)
	if !ok || len(muts) != 3 || muts[0].Decree != 8 || muts[2].Decree != 10 {
		t.Fatalf("CommittedSince(8): %v %v", appendedDecrees(muts), ok)
	}
	if _, ok := a.CommittedSince(7); ok {
		t.Fatalf("CommittedSince(7) should be out of the window")
	}
	if muts, ok := a.CommittedSince(11); !ok || len(muts) != 0 {
		t.Fatalf("CommittedSince(11): %v %v", muts, ok)
	}
	// B knows the commit point 9 (from d10's header): 9 + 3 = 12 is the limit.
	b := s.r("B")
	cfg := s.meta
	if rd := b.OnPrepare("A", cfg, StatusSecondary, &Mutation{Ballot: 1, Decree: 12, LastCommitted: 9}, s.now); len(rd.Append) != 1 {
		t.Fatalf("d12: %+v", rd)
	}
	rd := b.OnPrepare("A", cfg, StatusSecondary, &Mutation{Ballot: 1, Decree: 13, LastCommitted: 9}, s.now)
	if len(rd.Append) != 0 || len(rd.Acks) != 1 || rd.Acks[0].Err != base.ErrCapacityExceeded {
		t.Fatalf("d13: %+v", rd)
	}
}

func TestEmptyWrite(t *testing.T) {
	s := threeReplicas(t, nil)
	if rd := s.r("B").EmptyWrite(s.now); !rd.Empty() {
		t.Fatalf("empty write at a secondary: %+v", rd)
	}
	rd := s.apply(s.node("A"), s.r("A").EmptyWrite(s.now))
	if len(rd.Append) != 1 || len(rd.Append[0].Updates) != 0 || len(rd.Prepares) != 2 {
		t.Fatalf("empty write: %+v", rd)
	}
	s.settle()
	for _, id := range []string{"A", "B", "C"} {
		if s.r(id).Committed() != 1 {
			t.Fatalf("%s committed %d", id, s.r(id).Committed())
		}
	}
}

func TestLocalFailure(t *testing.T) {
	s := threeReplicas(t, func(o *Options) { o.MaxInflight = 1 })
	s.propose("A", "w1")
	s.propose("A", "w2")
	rd := s.apply(s.node("A"), s.r("A").Fail())
	if s.r("A").Status() != StatusError || len(rd.Rejects) != 2 {
		t.Fatalf("fail: %v %+v", s.r("A").Status(), rd)
	}
	if rd := s.deliverAll(); len(rd.Commits) != 0 {
		t.Fatalf("failed primary committed")
	}
	if rd := s.updateConfig("A", s.meta); !rd.Empty() || s.r("A").Status() != StatusError {
		t.Fatalf("a failed replica resumed: %+v", rd)
	}
}

// Timestamps are strictly increasing on a primary even when the clock is not.
func TestTimestampsStrictlyIncreasing(t *testing.T) {
	s := threeReplicas(t, nil)
	var last int64
	for i := 0; i < 5; i++ {
		if i == 3 {
			s.advance(-time.Second) // the clock goes back
		}
		_, rd := s.propose("A", fmt.Sprint("w", i))
		ts := rd.Append[0].TimestampUS
		if ts <= last {
			t.Fatalf("timestamp %d after %d", ts, last)
		}
		last = ts
	}
}

func countOf(xs []int64, x int64) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}

// The primary stamps the table's default TTL on the mutations it creates; it is
// part of the mutation's content, so a mutation re-prepared by a new primary keeps
// the TTL it was created with, whatever the new primary's current setting.
func TestDefaultTTLStampedAndKeptAcrossFailover(t *testing.T) {
	s := threeReplicas(t, nil)
	_, rd := s.propose("A", "w1")
	if rd.Append[0].DefaultTTL != 0 {
		t.Fatalf("ttl %d before SetDefaultTTL", rd.Append[0].DefaultTTL)
	}
	s.r("A").SetDefaultTTL(3600)
	_, rd = s.propose("A", "w2")
	if rd.Append[0].DefaultTTL != 3600 || rd.Prepares[0].Mutation.DefaultTTL != 3600 {
		t.Fatalf("ttl %d", rd.Append[0].DefaultTTL)
	}
	s.deliverWhile(or(kindIs(evLogged), preparesTo("B"), preparesTo("C")))
	s.crash("A")
	s.r("B").SetDefaultTTL(60)
	s.meta = Config{Ballot: 2, Primary: "B", Secondaries: []string{"C"}}
	rd = s.updateConfig("B", s.meta)
	if len(rd.Append) != 2 || rd.Append[0].DefaultTTL != 0 || rd.Append[1].DefaultTTL != 3600 {
		t.Fatalf("re-prepared: %v", rd.Append)
	}
	_, rd = s.propose("B", "w3")
	if rd.Append[0].DefaultTTL != 60 {
		t.Fatalf("new mutation ttl %d", rd.Append[0].DefaultTTL)
	}
	s.settle()
	for _, id := range []string{"B", "C"} {
		var ttls []int32
		for _, mu := range s.node(id).applied {
			ttls = append(ttls, mu.DefaultTTL)
		}
		if !slices.Equal(ttls, []int32{0, 3600, 60}) {
			t.Fatalf("%s committed ttls %v", id, ttls)
		}
	}
}

// A change the primary drives itself (RequestConfigChange): pending until the meta
// answers, writes wait meanwhile, and the answer re-prepares under the new ballot.
func TestRequestConfigChange(t *testing.T) {
	s := threeReplicas(t, nil)
	s.metaManual = true
	w1, _ := s.propose("A", "w1")
	next := Config{Ballot: 2, Primary: "A", Secondaries: []string{"B"}}
	rd := s.apply(s.node("A"), s.r("A").RequestConfigChange(ChangeRemove, "C", next))
	if rd.ConfigChange == nil || rd.ConfigChange.Type != ChangeRemove || rd.ConfigChange.Node != "C" || rd.ConfigChange.Config.Ballot != 2 {
		t.Fatalf("request: %+v", rd.ConfigChange)
	}
	next.Secondaries[0] = "X" // the request holds its own copy
	if p := s.r("A").PendingChange(); p == nil || p.Config.Secondaries[0] != "B" {
		t.Fatalf("pending %+v", p)
	}
	w2, rd := s.propose("A", "w2")
	if len(rd.Append) != 0 {
		t.Fatalf("w2 prepared during the change")
	}
	// The remote failure of C while the change is pending asks nothing more.
	if rd := s.r("A").OnPrepareAck("C", 1, 1, base.ErrTimeout, s.now); rd.ConfigChange != nil {
		t.Fatalf("second request: %+v", rd.ConfigChange)
	}
	s.answerRequest(0)
	s.settle()
	if s.outcome[w1] != base.ErrOK || s.outcome[w2] != base.ErrOK || s.r("A").Ballot() != 2 || !s.node("C").closed {
		t.Fatalf("w1 %q w2 %q ballot %d", s.outcome[w1], s.outcome[w2], s.r("A").Ballot())
	}
	s.checkAckedWritesEverywhere("A", "B")
}

// A primary demoted to secondary by a newer configuration rejects its queued
// (not yet prepared) writes at once.
func TestDemotedPrimaryRejectsQueuedWrites(t *testing.T) {
	s := threeReplicas(t, func(o *Options) { o.MaxInflight = 1 })
	s.propose("A", "w1")
	w2, _ := s.propose("A", "w2")
	w3, _ := s.propose("A", "w3")
	rd := s.updateConfig("A", Config{Ballot: 2, Primary: "B", Secondaries: []string{"A", "C"}})
	if !rd.Persist || s.r("A").Status() != StatusSecondary || rd.Closed {
		t.Fatalf("A: %v %+v", s.r("A").Status(), rd)
	}
	if s.outcome[w2] != base.ErrInvalidState || s.outcome[w3] != base.ErrInvalidState {
		t.Fatalf("w2 %q w3 %q", s.outcome[w2], s.outcome[w3])
	}
	if _, rd := s.propose("A", "w4"); len(rd.Rejects) != 1 || rd.Rejects[0].Err != base.ErrInvalidState {
		t.Fatalf("propose at the demoted primary: %+v", rd)
	}
}

func TestConfigHelpers(t *testing.T) {
	c := Config{Ballot: 3, Primary: "A", Secondaries: []string{"B", "C"}}
	if got := c.Members(); !slices.Equal(got, []string{"A", "B", "C"}) {
		t.Fatalf("members %v", got)
	}
	if got := (Config{Secondaries: []string{"B"}}).Members(); !slices.Equal(got, []string{"B"}) {
		t.Fatalf("members without primary %v", got)
	}
	for node, want := range map[string]bool{"A": true, "B": true, "C": true, "D": false, "": false} {
		if c.Has(node) != want {
			t.Errorf("Has(%q) = %v", node, !want)
		}
	}
	d := c.Clone()
	d.Secondaries[0] = "X"
	if c.Secondaries[0] != "B" {
		t.Fatalf("Clone shares the secondaries")
	}
	r := New("A", Options{})
	r.UpdateConfig(c, t0)
	got := r.Config()
	got.Secondaries[0] = "X"
	if r.Config().Secondaries[0] != "B" {
		t.Fatalf("Config() exposes the replica's slice")
	}
	var rd Ready
	if !rd.Empty() {
		t.Fatalf("zero Ready not empty")
	}
	for _, nonEmpty := range []Ready{{Persist: true}, {Closed: true}, {ConfigChange: &ConfigRequest{}}, {Resends: []Resend{{}}}} {
		if nonEmpty.Empty() {
			t.Fatalf("%+v reported empty", nonEmpty)
		}
	}
}

// A secondary that answers a group check with ERR_OBJECT_NOT_FOUND holds no
// replica any more; the primary takes it out of the configuration. Other
// answers, or answers about an older configuration, change nothing.
func TestGroupCheckReplyOfAMissingSecondary(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    string
		stale  bool
		remove bool
	}{
		{"object not found", base.ErrObjectNotFound, false, true},
		{"ok", base.ErrOK, false, false},
		{"timeout", base.ErrTimeout, false, false},
		{"older ballot", base.ErrObjectNotFound, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := threeReplicas(t, nil)
			ballot := s.r("A").Config().Ballot
			if tc.stale {
				ballot--
			}
			rd := s.r("A").OnGroupCheckReply("C", ballot, tc.err, s.now)
			if !tc.remove {
				if rd.ConfigChange != nil {
					t.Fatalf("unexpected change %+v", rd.ConfigChange)
				}
				return
			}
			c := rd.ConfigChange
			if c == nil || c.Type != ChangeDowngradeToInact || c.Node != "C" || c.Config.Ballot != ballot+1 ||
				c.Config.Primary != "A" || !slices.Equal(c.Config.Secondaries, []string{"B"}) {
				t.Fatalf("change %+v", c)
			}
		})
	}
}

// The meta server asking for another node while a learner is in progress
// replaces that learner: it adds one node at a time, so it has given up on
// the first (whose invitation may have been lost, leaving nothing to drop it).
// Asking again for the learner in progress repeats its invitation.
func TestAddLearnerReplacesAbandonedLearner(t *testing.T) {
	s := newSim(t, testOpts(nil), "A", "B")
	a := s.r("A")
	rd := a.AddLearner("C", 3, s.now)
	if rd.AddLearner == nil || rd.AddLearner.Node != "C" {
		t.Fatalf("first learner: %+v", rd)
	}
	sigC := rd.AddLearner.Signature
	if rd := a.AddLearner("C", 3, s.now); rd.AddLearner == nil || rd.AddLearner.Signature != sigC {
		t.Fatalf("C asked again: %+v, want its invitation repeated", rd)
	}
	rd = a.AddLearner("D", 3, s.now)
	if rd.AddLearner == nil || rd.AddLearner.Node != "D" {
		t.Fatalf("D asked while C learns: %+v", rd)
	}
	if got := a.Learners(); len(got) != 1 || got[0] != "D" {
		t.Fatalf("learners %v, want [D]", got)
	}
	// C's late learn request is refused: its round is over.
	if d, _ := a.OnLearn("C", sigC, 0, s.now); d.Type != LearnRefused {
		t.Fatalf("the dropped learner's request: %+v", d)
	}
	// Members at the limit: nobody is added, the learner stays.
	full := newSim(t, testOpts(nil), "A", "B", "C")
	if rd := full.r("A").AddLearner("D", 3, full.now); rd.AddLearner != nil {
		t.Fatalf("added past the replica count: %+v", rd)
	}
}
