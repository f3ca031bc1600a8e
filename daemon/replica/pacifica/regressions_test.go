package pacifica

// Regression tests of defects found while the other tests were written; each failed
// before its fix (described in its comment) and passes since.

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
)

// A primary demoted by a newer ballot (a prepare, a group check or a configuration
// from the meta naming another primary) keeps the client writes attached to its
// uncommitted mutations. When the new primary's prepare for that decree arrives
// under the new ballot, OnPrepare replaces the entry (`r.entries[d] = &entry{...}`)
// and the writes are dropped; a decree the new primary never re-prepares (above its
// max prepared) keeps its writes until some later mutation reuses the decree. Either
// way the client is neither answered by a commit nor rejected, and the I/O layer
// keeps its handle until the client times out.
//
// Cause: enter(status != StatusPrimary) only rejects r.queue; deactivate() also
// rejects e.writes of every entry, enter() does not.
// Fix: when leaving StatusPrimary in enter() (status != StatusPrimary and the
// replica was primary), reject the writes attached to entries with
// ERR_INVALID_STATE and clear them, as deactivate() does.
func TestRegressionDemotedPrimaryDropsWritesOfUncommittedMutations(t *testing.T) {
	for _, tc := range []struct {
		name     string
		newHasD1 bool // the new primary received d1 (re-prepared as is) or only d2 (d1 becomes an empty write)
		via      string
	}{
		{"re-prepared, demoted by the prepare", true, "prepare"},
		{"filled with an empty write, demoted by the prepare", false, "prepare"},
		{"re-prepared, demoted by the meta", true, "meta"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := threeReplicas(t, nil)
			w1, _ := s.propose("A", "w1")
			w2, _ := s.propose("A", "w2")
			s.deliverWhile(logsAt("A"))
			if tc.newHasD1 {
				s.deliverOne(prepareTo("B", 1))
				s.deliverOne(loggedAt("B", 1))
			} else {
				s.deliverOne(prepareTo("B", 2))
				s.deliverOne(loggedAt("B", 2))
			}
			s.drop(kindIs(evPrepare))
			s.drop(kindIs(evAck))
			// The meta makes B primary (A's lease expired at the meta, A still
			// thinks it is primary); A stays a member as a secondary.
			s.meta = Config{Ballot: 2, Primary: "B", Secondaries: []string{"C", "A"}}
			s.updateConfig("B", s.meta)
			if tc.via == "meta" {
				s.sendConfig("A")
			}
			s.settle()
			if s.r("A").Status() != StatusSecondary || s.r("B").Committed() == 0 {
				t.Fatalf("A %v, B committed %d", s.r("A").Status(), s.r("B").Committed())
			}
			for _, w := range []*Write{w1, w2} {
				if _, ok := s.outcome[w]; !ok {
					t.Errorf("%s was never answered (neither committed nor rejected): its client waits forever", w.Update.Data)
				}
			}
		})
	}
}

// Writes queued while the primary still had a secondary are prepared and committed
// after the configuration shrinks below Min2PC (mutation_2pc_min_replica_count),
// i.e. acknowledged to the client with a single copy.
//
// Spec §3.2: "After any change to PRIMARY, queued client writes are started. If the
// member count is below mutation_2pc_min_replica_count, the queued writes fail with
// ERR_NOT_ENOUGH_MEMBER." Upstream checks this in init_prepare for every
// non-reconciliation mutation.
//
// Cause: Min2PC is only checked in Propose; pump() (called from reconcile() after
// the configuration change, and after commits) turns queued writes into mutations
// whatever the membership.
// Fix: in pump(), when len(r.cfg.Members()) < r.opts.Min2PC, reject the queue with
// ERR_NOT_ENOUGH_MEMBER instead of preparing it (the re-prepared mutations of
// reconcile() still commit: they are reconciliation).
func TestRegressionQueuedWritesCommitBelowMin2PC(t *testing.T) {
	s := newSim(t, testOpts(func(o *Options) { o.MaxInflight = 1 }), "A", "B")
	w1, _ := s.propose("A", "w1")
	w2, _ := s.propose("A", "w2") // queued behind the window
	s.drop(preparesTo("B"))
	rd := s.apply(s.node("A"), s.r("A").OnPrepareAck("B", 1, 1, base.ErrTimeout, s.now))
	if rd.ConfigChange == nil {
		t.Fatalf("B not removed")
	}
	s.settle() // the meta removes B: A is alone at ballot 2
	if got := s.r("A").Config(); got.Ballot != 2 || len(got.Secondaries) != 0 {
		t.Fatalf("config %+v", got)
	}
	// A new write is refused...
	w3, _ := s.propose("A", "w3")
	if s.outcome[w3] != base.ErrNotEnoughMember {
		t.Fatalf("w3: %q", s.outcome[w3])
	}
	// ... w1 was prepared before: reconciliation commits it, fine ...
	if s.outcome[w1] != base.ErrOK {
		t.Fatalf("w1: %q", s.outcome[w1])
	}
	// ... but w2 was only queued: it must not be committed with a single copy.
	if got := s.outcome[w2]; got != base.ErrNotEnoughMember {
		t.Errorf("w2 answered %q with the primary alone (Min2PC %d), want %s", got, s.opts.Min2PC, base.ErrNotEnoughMember)
	}
}

// A primary restarted faster than the meta's grace period resumes as primary at the
// same ballot (Restore, then UpdateConfig with the same ballot listing it as
// primary). Its plog may lack the tail it had sent to the secondaries: appends are
// asynchronous, the prepares go out before the local append completes, and there is
// no fsync. It then gives those decrees to new writes under the same ballot; a
// secondary holding the old (decree, ballot) takes the new prepare for a duplicate
// and acknowledges it without replacing its content. The replicas diverge.
//
// Spec §3.7 (on_config_sync) and §3.11 step 5: a freshly restarted replica that the
// meta still lists as primary sends PRIMARY_FORCE_UPDATE_BALLOT (ballot + 1, same
// membership) and only serves under the new ballot, which makes the secondaries
// replace whatever they hold for the re-used decrees.
//
// Cause: UpdateConfig's same-ballot branch calls enter(role) for any transient
// inactive replica, including one that comes from Restore ("after a restart: same
// ballot, same role").
// Fix: have Restore mark the replica as initializing; in UpdateConfig, when such a
// replica is listed as primary at the same ballot, stay inactive and return
// ConfigChange{Type: ChangeForceUpdateBallot, Node: self, Config: cfg with
// Ballot+1} (setting r.reconfig); the meta's answer at ballot+1 then goes through
// adopt() and reconcile() as usual. Resuming as a secondary at the same ballot is
// fine. (If the I/O layer is meant to call RequestConfigChange itself, UpdateConfig
// must still refuse to make a restored replica primary at its old ballot.)
func TestRegressionRestartedPrimaryResumesAtSameBallot(t *testing.T) {
	s := threeReplicas(t, nil)
	w1, _ := s.propose("A", "w1")
	// B and C log and acknowledge d1; A's own append never reaches its plog.
	s.deliverWhile(not(logsAt("A")))
	if s.count(loggedAt("A", 1)) != 1 || s.r("A").Committed() != 0 {
		t.Fatalf("setup")
	}
	s.crash("A")
	s.restart("A", 0)
	// The meta still lists A as primary at ballot 1: config sync.
	s.sendConfig("A")
	s.settle()
	if s.r("A").Status() != StatusPrimary {
		t.Fatalf("A did not get its role back: %v", s.r("A").Status())
	}
	for i := 2; i <= 4; i++ {
		s.propose("A", fmt.Sprint("w", i))
	}
	s.settle() // the sim reports DIVERGENCE if a decree is committed with two contents
	if _, ok := s.outcome[w1]; ok {
		t.Fatalf("w1 answered")
	}
	for _, id := range []string{"B", "C"} {
		if got, want := s.node(id).committedDecrees(), s.node("A").committedDecrees(); !slices.Equal(got, want) {
			t.Errorf("%s committed %v, A %v", id, got, want)
		}
	}
	s.checkPrefixOf("A")
	s.checkAckedWritesEverywhere("A", "B", "C")
}

// Mutation timestamps must be strictly increasing in a partition (spec §3.3), also
// across a change of primary. A secondary never raises its timestamp floor from
// the prepares it receives, so once promoted it stamps new mutations (and the empty
// writes filling gaps in reconcile) from its own clock, below the timestamps the
// previous primary already used if that clock is behind.
//
// Cause: OnPrepare does not update r.lastTS (Restore does, from the replayed log).
// Upstream calls _uniq_timestamp_us.try_update(mu->data.header.timestamp) in
// on_prepare.
// Fix: in OnPrepare (and in OnGroupCheck, if it ever carries timestamps), do
// `r.lastTS = max(r.lastTS, mu.TimestampUS)` for every accepted mutation.
func TestRegressionPromotedSecondaryTimestampsGoBack(t *testing.T) {
	s := threeReplicas(t, nil)
	s.advance(time.Hour) // A's clock is ahead
	s.propose("A", "w1")
	s.deliverAll()
	s.crash("A")
	s.now = t0 // B's clock
	s.meta = Config{Ballot: 2, Primary: "B", Secondaries: []string{"C"}}
	s.updateConfig("B", s.meta)
	_, rd := s.propose("B", "w2")
	if len(rd.Append) != 1 {
		t.Fatalf("w2 not prepared: %+v", rd)
	}
	s.settle()
	b := s.node("B")
	if len(b.applied) != 2 {
		t.Fatalf("B committed %v", b.committedDecrees())
	}
	if d1, d2 := b.applied[0].TimestampUS, b.applied[1].TimestampUS; d2 <= d1 {
		t.Errorf("d2's timestamp %d is not after d1's %d", d2, d1)
	}
}

// A primary that (re)enters its role with nothing above its commit point never
// tells its secondaries the last commit point: reconcile() sets
// r.propagated = r.committed although it sent nothing, so Tick's idle group check
// (committed > propagated) is suppressed. The secondaries stay one or more decrees
// behind on an idle partition until the next client write. It happens when the
// primary resumes after losing its lease, and after every configuration change
// (removing a secondary, a ballot bump) made while idle.
//
// Cause: `r.propagated = r.committed` in reconcile().
// Fix: only count the commit point as propagated when prepares carrying it were
// sent; e.g. in reconcile() set r.propagated = r.committed only if
// r.maxPrepared > r.committed and there are secondaries, and otherwise leave it
// (or reset it to 0, so that the next idle Tick sends one group check).
func TestRegressionReconcileSuppressesIdleGroupCheck(t *testing.T) {
	for _, how := range []string{"lease lost and regained", "secondary removed"} {
		t.Run(how, func(t *testing.T) {
			s := threeReplicas(t, nil)
			s.propose("A", "w1")
			s.deliverAll() // A committed d1; B and C have not heard yet
			if s.r("A").Committed() != 1 || s.r("B").Committed() != 0 {
				t.Fatalf("setup")
			}
			switch how {
			case "lease lost and regained":
				s.deactivate("A", true)
				s.updateConfig("A", s.meta)
			case "secondary removed":
				next := Config{Ballot: 2, Primary: "A", Secondaries: []string{"B"}}
				s.apply(s.node("A"), s.r("A").RequestConfigChange(ChangeRemove, "C", next))
				s.deliverAll()
			}
			if s.r("A").Status() != StatusPrimary || !s.r("A").CanRead() {
				t.Fatalf("A %v", s.r("A").Status())
			}
			s.advance(s.opts.IdleDelay)
			rd := s.tick("A")
			if len(rd.GroupChecks) == 0 {
				t.Errorf("idle primary with commit point 1 sends no group check; B is at %d", s.r("B").Committed())
			}
			s.settle()
			if s.r("B").Committed() != 1 {
				t.Errorf("B committed %d once idle, A %d", s.r("B").Committed(), s.r("A").Committed())
			}
		})
	}
}
