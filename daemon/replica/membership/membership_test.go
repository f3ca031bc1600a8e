package membership

import (
	"reflect"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
)

const (
	self  = "10.0.0.1:34801"
	other = "10.0.0.2:34801"
	third = "10.0.0.3:34801"
	grace = 5 * time.Second
)

var (
	g  = base.Gpid{Appid: 1, PartitionIndex: 0}
	g2 = base.Gpid{Appid: 1, PartitionIndex: 1}
	t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// local is a hand-set view of the server's replicas.
type local struct {
	held      map[base.Gpid]int64 // open replicas and their ballots
	retired   map[base.Gpid]bool
	restoring map[base.Gpid]bool
}

func (l local) Held(g base.Gpid) (int64, bool) { b, ok := l.held[g]; return b, ok }
func (l local) Retired(g base.Gpid) bool       { return l.retired[g] }
func (l local) Restoring(g base.Gpid) bool     { return l.restoring[g] }
func (l local) Open() []base.Gpid {
	var out []base.Gpid
	for _, x := range []base.Gpid{g, g2} {
		if _, ok := l.held[x]; ok {
			out = append(out, x)
		}
	}
	return out
}

func none() local { return local{} }

func holding(ballots map[base.Gpid]int64) local { return local{held: ballots} }

func info() *layer2.AppInfo {
	return &layer2.AppInfo{AppType: "pegasus", AppName: "temp", AppID: 1, PartitionCount: 2, MaxReplicaCount: 3}
}

func addr(s string) *base.RPCAddress {
	if s == "" {
		return &base.RPCAddress{}
	}
	return base.MustParseRPCAddress(s)
}

func pconf(p base.Gpid, ballot int64, primary string, secondaries ...string) *layer2.PartitionConfiguration {
	pc := &layer2.PartitionConfiguration{Pid: base.NewGpid(p.Appid, p.PartitionIndex), Ballot: ballot, Primary: addr(primary)}
	for _, s := range secondaries {
		pc.Secondaries = append(pc.Secondaries, addr(s))
	}
	return pc
}

func listing(pcs ...*layer2.PartitionConfiguration) []*consensus.ConfigurationUpdateRequest {
	var out []*consensus.ConfigurationUpdateRequest
	for _, pc := range pcs {
		out = append(out, &consensus.ConfigurationUpdateRequest{Info: info(), Config: pc, Type: admin.ConfigType_CT_INVALID})
	}
	return out
}

func stored(ballots map[base.Gpid]int64) []*metadata.ReplicaInfo {
	var out []*metadata.ReplicaInfo
	for p, b := range ballots {
		out = append(out, &metadata.ReplicaInfo{Pid: base.NewGpid(p.Appid, p.PartitionIndex), Ballot: b})
	}
	return out
}

func proposal(typ admin.ConfigType, pc *layer2.PartitionConfiguration, node string) *consensus.ConfigurationUpdateRequest {
	return &consensus.ConfigurationUpdateRequest{Info: info(), Config: pc, Type: typ, Node: addr(node), HostNode: addr("")}
}

// confirmed is a machine past its first config sync.
func confirmed() *Machine {
	m := New(self, grace)
	m.ClusterConfirmed()
	return m
}

// kinds names the actions' types, for messages and comparisons.
func kinds(acts []Action) []string {
	var out []string
	for _, a := range acts {
		out = append(out, reflect.TypeOf(a).Name())
	}
	return out
}

func has[T Action](acts []Action) (T, bool) {
	for _, a := range acts {
		if x, ok := a.(T); ok {
			return x, true
		}
	}
	var zero T
	return zero, false
}

// A server listed as primary of a replica it does not hold hands the role back
// only when a config sync of a later round still lists it at the same ballot,
// and the unheld grace has passed since the first: a new table's configuration
// lists its members before the install proposals arrive.
func TestUnheldPrimaryGrace(t *testing.T) {
	type sync struct {
		after  time.Duration // since t0
		ballot int64
	}
	cases := []struct {
		name   string
		syncs  []sync
		disown bool // the last sync disowns
	}{
		{"first listing never disowns", []sync{{0, 5}}, false},
		{"second round within the grace", []sync{{0, 5}, {grace - time.Millisecond, 5}}, false},
		{"second round past the grace", []sync{{0, 5}, {grace, 5}}, true},
		{"a new ballot starts the grace again", []sync{{0, 5}, {grace, 6}}, false},
		{"past the grace since the new ballot", []sync{{0, 5}, {grace, 6}, {2 * grace, 6}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := confirmed()
			var acts []Action
			for _, s := range c.syncs {
				sent := m.SyncSent()
				acts = m.SyncAnswered(sent, nil, listing(pconf(g, s.ballot, self)), nil, none(), t0.Add(s.after))
			}
			d, ok := has[Disown](acts)
			if ok != c.disown {
				t.Fatalf("disown = %v, want %v (actions %v)", ok, c.disown, kinds(acts))
			}
			if ok && (d.Config.Ballot != c.syncs[len(c.syncs)-1].ballot || !d.Config.Pid.Equals(&g)) {
				t.Fatalf("disowned %v", d.Config)
			}
			if _, ok := has[Log](acts); !ok {
				t.Fatal("no warning about a listed replica this server does not hold")
			}
		})
	}
}

// A server listed as primary of a replica it is still restoring from a
// backup keeps the role past the unheld grace: it holds the replica once
// its download ends.
func TestRestoringPrimaryKeptPastGrace(t *testing.T) {
	m := confirmed()
	l := local{restoring: map[base.Gpid]bool{g: true}}
	var acts []Action
	for i := range 4 {
		sent := m.SyncSent()
		acts = append(acts, m.SyncAnswered(sent, nil, listing(pconf(g, 1, self)), nil, l, t0.Add(time.Duration(i)*grace))...)
	}
	if _, ok := has[Disown](acts); ok {
		t.Fatalf("a primary being restored handed back: %v", kinds(acts))
	}
	// The same listings without the restore hand it back.
	m = confirmed()
	acts = nil
	for i := range 4 {
		sent := m.SyncSent()
		acts = append(acts, m.SyncAnswered(sent, nil, listing(pconf(g, 1, self)), nil, none(), t0.Add(time.Duration(i)*grace))...)
	}
	if _, ok := has[Disown](acts); !ok {
		t.Fatalf("an unheld primary not handed back: %v", kinds(acts))
	}
}

// The second look within one round (a retired replica that did not reopen) is
// not a second round.
func TestUnheldPrimaryNeedsALaterRound(t *testing.T) {
	m := confirmed()
	l := local{retired: map[base.Gpid]bool{g: true}}
	sent := m.SyncSent()
	acts := m.SyncAnswered(sent, nil, listing(pconf(g, 5, self)), nil, l, t0)
	r, ok := has[Reopen](acts)
	if !ok {
		t.Fatalf("actions %v, want a reopen", kinds(acts))
	}
	for _, at := range []time.Time{t0, t0.Add(2 * grace)} {
		if acts := m.ReopenFailed(r, l, at); len(acts) != 1 {
			t.Fatalf("reopen failed in the first listing's round: %v, want a warning only", kinds(acts))
		}
	}
	sent = m.SyncSent()
	acts = m.SyncAnswered(sent, nil, listing(pconf(g, 5, self)), nil, l, t0.Add(3*grace))
	r, _ = has[Reopen](acts)
	if _, ok := has[Disown](m.ReopenFailed(r, l, t0.Add(3*grace))); !ok {
		t.Fatal("a retired replica that does not reopen in a later round past the grace is not handed back")
	}
}

// A config sync answer that does not list an open replica closes it only if the
// replica did not change since the request left, and was reported in it.
func TestChangeSequenceGuardsStaleAnswers(t *testing.T) {
	cases := []struct {
		name  string
		apply func(m *Machine, l local) // between the request and the answer
		check bool
	}{
		{"no change", func(*Machine, local) {}, true},
		{"a change answered", func(m *Machine, _ local) { m.Changed(g) }, false},
		{"reopened", func(m *Machine, _ local) { m.Opened(g) }, false},
		{"a proposal", func(m *Machine, l local) {
			m.Proposal(proposal(admin.ConfigType_CT_ASSIGN_PRIMARY, pconf(g, 2, ""), self), l, t0)
		}, false},
		{"another replica changed", func(m *Machine, _ local) { m.Changed(g2) }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := confirmed()
			l := holding(map[base.Gpid]int64{g: 1})
			m.Opened(g)
			sent := m.SyncSent()
			c.apply(m, l)
			acts := m.SyncAnswered(sent, stored(map[base.Gpid]int64{g: 1}), nil, nil, l, t0)
			cs, ok := has[CheckStale](acts)
			if ok != c.check {
				t.Fatalf("stale check = %v, want %v (actions %v)", ok, c.check, kinds(acts))
			}
			if ok && (cs.G != g || cs.Seq != sent.Seq || cs.Ballot != 1) {
				t.Fatalf("check %+v", cs)
			}
		})
	}
}

// Listed replicas, and replicas the request did not report (opened after it
// left), are not checked.
func TestStaleCheckOnlyForReportedUnlisted(t *testing.T) {
	m := confirmed()
	l := holding(map[base.Gpid]int64{g: 1, g2: 1})
	sent := m.SyncSent()
	acts := m.SyncAnswered(sent, stored(map[base.Gpid]int64{g: 1, g2: 1}), listing(pconf(g2, 1, self)), nil, l, t0)
	want := []Action{ApplyConfig{G: g2, Info: info(), Config: ConfigOf(pconf(g2, 1, self))}, CheckStale{G: g, Seq: sent.Seq, Ballot: 1}}
	if !reflect.DeepEqual(acts, want) {
		t.Fatalf("actions %+v, want g2 applied and g checked", acts)
	}
	sent = m.SyncSent()
	acts = m.SyncAnswered(sent, stored(map[base.Gpid]int64{g2: 1}), nil, nil, holding(map[base.Gpid]int64{g: 1}), t0)
	if len(acts) != 0 {
		t.Fatalf("a replica the request did not report: %v", kinds(acts))
	}
}

// The executor's half: a learner, a replica changed since the request, one with
// a change at the meta server, or one past the reported ballot stays.
func TestStaleCheck(t *testing.T) {
	check := CheckStale{G: g, Seq: 10, Ballot: 3}
	cases := []struct {
		name    string
		r       Replica
		changed uint64
		retire  bool
	}{
		{"secondary at the reported ballot", Replica{Status: pacifica.StatusSecondary, Ballot: 3}, 10, true},
		{"inactive below the reported ballot", Replica{Status: pacifica.StatusInactive, Ballot: 2}, 4, true},
		{"learner", Replica{Status: pacifica.StatusLearner, Ballot: 3}, 10, false},
		{"changed after the request", Replica{Status: pacifica.StatusPrimary, Ballot: 3}, 11, false},
		{"a change of its own pending", Replica{Status: pacifica.StatusPrimary, Ballot: 3, Pending: true}, 10, false},
		{"ballot past the report", Replica{Status: pacifica.StatusPrimary, Ballot: 4}, 10, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := confirmed()
			m.changed[g] = c.changed
			acts := m.StaleCheck(check, c.r)
			r, ok := has[Retire](acts)
			if ok != c.retire {
				t.Fatalf("retire = %v, want %v", ok, c.retire)
			}
			if ok && r.G != g {
				t.Fatalf("retired %v", r.G)
			}
		})
	}
}

// Proposals before the first config sync are held (bounded), released in order
// when the cluster is confirmed, and handled at once afterwards.
func TestEarlyProposalsHeldUntilConfirmed(t *testing.T) {
	m := New(self, grace)
	first := proposal(admin.ConfigType_CT_ASSIGN_PRIMARY, pconf(g, 1, self), self)
	second := proposal(admin.ConfigType_CT_ASSIGN_PRIMARY, pconf(g2, 1, self), self)
	for _, req := range []*consensus.ConfigurationUpdateRequest{first, second} {
		if acts := m.Proposal(req, none(), t0); len(acts) != 0 {
			t.Fatalf("a proposal before the cluster is confirmed acted: %v", kinds(acts))
		}
	}
	if m.EarlyCount() != 2 || m.Confirmed() {
		t.Fatalf("held %d, confirmed %v", m.EarlyCount(), m.Confirmed())
	}
	acts := m.ClusterConfirmed()
	want := []Action{SignalConfirmed{}, Release{Req: first}, Release{Req: second}}
	if !reflect.DeepEqual(acts, want) {
		t.Fatalf("confirmation: %v", kinds(acts))
	}
	if m.EarlyCount() != 0 || !m.Confirmed() {
		t.Fatal("still holding after the confirmation")
	}
	if acts := m.ClusterConfirmed(); len(acts) != 0 {
		t.Fatalf("a second confirmation acted: %v", kinds(acts))
	}
	if _, ok := has[Create](m.Proposal(first, none(), t0)); !ok {
		t.Fatal("an install after the confirmation does not create the replica")
	}

	bounded := New(self, grace)
	for range MaxEarly + 10 {
		bounded.Proposal(first, none(), t0)
	}
	if bounded.EarlyCount() != MaxEarly {
		t.Fatalf("held %d, want at most %d", bounded.EarlyCount(), MaxEarly)
	}
}

// A proposal with a newer ballot that lists this server is adopted before it is
// handled: it may overtake the answer to the replica's own last change.
func TestProposalOvertakesTheChangeAnswer(t *testing.T) {
	cases := []struct {
		name   string
		typ    admin.ConfigType
		pc     *layer2.PartitionConfiguration
		node   string
		adopt  bool
		follow string // the action after the adoption
	}{
		{"add secondary at a newer ballot", admin.ConfigType_CT_ADD_SECONDARY, pconf(g, 3, self), other, true, "AddLearner"},
		{"balancing add", admin.ConfigType_CT_ADD_SECONDARY_FOR_LB, pconf(g, 3, self, third), other, true, "AddLearner"},
		{"remove at a newer ballot", admin.ConfigType_CT_REMOVE, pconf(g, 3, self, other), other, true, "RequestChange"},
		{"same ballot", admin.ConfigType_CT_ADD_SECONDARY, pconf(g, 2, self), other, false, "AddLearner"},
		{"not listing this server", admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, pconf(g, 3, other), self, false, "RequestChange"},
		{"assign primary applies as its own", admin.ConfigType_CT_ASSIGN_PRIMARY, pconf(g, 3, self), self, false, "ApplyConfig"},
		{"upgrade to secondary applies as its own", admin.ConfigType_CT_UPGRADE_TO_SECONDARY, pconf(g, 3, other, self), self, false, "ApplyConfig"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := confirmed()
			acts := m.Proposal(proposal(c.typ, c.pc, c.node), holding(map[base.Gpid]int64{g: 2}), t0)
			k := kinds(acts)
			want := []string{c.follow}
			if c.adopt {
				want = []string{"ApplyConfig", c.follow}
			}
			if !reflect.DeepEqual(k, want) {
				t.Fatalf("actions %v, want %v", k, want)
			}
			if a, ok := acts[0].(ApplyConfig); ok && a.Config.Ballot != c.pc.Ballot {
				t.Fatalf("adopted ballot %d", a.Config.Ballot)
			}
		})
	}
}

// Assigned primary of a partition whose replica it no longer lists as a member,
// the server reopens a closed replica first, then asks for the role.
func TestAssignPrimaryReopensAClosedReplica(t *testing.T) {
	pc := pconf(g, 4, "", other)
	req := proposal(admin.ConfigType_CT_ASSIGN_PRIMARY, pc, self)
	wantChange := RequestChange{G: g, Change: Change{Type: pacifica.ChangeAssignPrimary, Node: self, At: ConfigOf(pc)}}

	acts := confirmed().Proposal(req, none(), t0)
	if len(acts) != 1 {
		t.Fatalf("actions %v, want one reopen", kinds(acts))
	}
	r, ok := acts[0].(Reopen)
	if !ok || r.For != ReopenAssignPrimary || r.G != g || !reflect.DeepEqual(r.Then, []Action{wantChange}) {
		t.Fatalf("got %+v", acts[0])
	}

	acts = confirmed().Proposal(req, holding(map[base.Gpid]int64{g: 4}), t0)
	if !reflect.DeepEqual(acts, []Action{wantChange}) {
		t.Fatalf("an open replica: %v, want the change only", kinds(acts))
	}

	// Another node's assignment is not this server's business.
	if acts := confirmed().Proposal(proposal(admin.ConfigType_CT_ASSIGN_PRIMARY, pc, third), none(), t0); len(acts) != 0 {
		t.Fatalf("another node's assignment: %v", kinds(acts))
	}
}

// Only the meta's install proposal creates a replica: a config sync listing this
// server at ballot 1 may mean the data is gone (a replaced disk).
func TestCreateOnlyFromTheInstallProposal(t *testing.T) {
	cases := []struct {
		name   string
		acts   func(m *Machine) []Action
		create bool
	}{
		{"config sync at ballot 1", func(m *Machine) []Action {
			return m.SyncAnswered(m.SyncSent(), nil, listing(pconf(g, 1, self)), nil, none(), t0)
		}, false},
		{"config sync as secondary at ballot 1", func(m *Machine) []Action {
			return m.SyncAnswered(m.SyncSent(), nil, listing(pconf(g, 1, other, self)), nil, none(), t0)
		}, false},
		{"install proposal as primary", func(m *Machine) []Action {
			return m.Proposal(proposal(admin.ConfigType_CT_ASSIGN_PRIMARY, pconf(g, 1, self), self), none(), t0)
		}, true},
		{"install proposal as secondary", func(m *Machine) []Action {
			return m.Proposal(proposal(admin.ConfigType_CT_UPGRADE_TO_SECONDARY, pconf(g, 1, other, self), self), none(), t0)
		}, true},
		{"assignment at a later ballot", func(m *Machine) []Action {
			return m.Proposal(proposal(admin.ConfigType_CT_ASSIGN_PRIMARY, pconf(g, 2, self), self), none(), t0)
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			acts := c.acts(confirmed())
			cr, ok := has[Create](acts)
			if ok != c.create {
				t.Fatalf("create = %v, want %v (actions %v)", ok, c.create, kinds(acts))
			}
			if ok && (cr.G != g || cr.Config.Ballot != 1) {
				t.Fatalf("created %+v", cr)
			}
			if _, ok := has[Disown](acts); ok {
				t.Fatal("a first listing disowned")
			}
		})
	}
}

// Listed as primary of a replica it retired, the server reopens it and applies
// the configuration; a retired replica listed as secondary stays closed, and a
// replica closed after a failure (not retired) is not reopened.
func TestListedPrimaryReopensARetiredReplica(t *testing.T) {
	retired := local{retired: map[base.Gpid]bool{g: true}}
	pc := pconf(g, 3, self)
	acts := confirmed().SyncAnswered(Sync{}, nil, listing(pc), nil, retired, t0)
	want := []Action{Reopen{G: g, For: ReopenListedPrimary, Info: info(), Config: pc, Then: []Action{ApplyConfig{G: g, Info: info(), Config: ConfigOf(pc)}}}}
	if !reflect.DeepEqual(acts, want) {
		t.Fatalf("actions %v, want the reopen", kinds(acts))
	}
	if _, ok := has[Reopen](confirmed().SyncAnswered(Sync{}, nil, listing(pconf(g, 3, other, self)), nil, retired, t0)); ok {
		t.Fatal("reopened a retired replica listed as secondary")
	}
	if _, ok := has[Reopen](confirmed().SyncAnswered(Sync{}, nil, listing(pc), nil, none(), t0)); ok {
		t.Fatal("reopened a replica that was not retired")
	}
	// A proposal's configuration is applied as such, not through a reopen.
	if _, ok := has[Reopen](confirmed().Proposal(proposal(admin.ConfigType_CT_ASSIGN_PRIMARY, pc, self), retired, t0)); ok {
		t.Fatal("reopened on a proposal listing this server")
	}
}

// An open replica listed by a config sync gets the configuration.
func TestConfigSyncAppliesToOpenReplicas(t *testing.T) {
	pc := pconf(g, 3, other, self)
	acts := confirmed().SyncAnswered(Sync{}, nil, listing(pc), nil, holding(map[base.Gpid]int64{g: 2}), t0)
	if want := []Action{ApplyConfig{G: g, Info: info(), Config: ConfigOf(pc)}}; !reflect.DeepEqual(acts, want) {
		t.Fatalf("actions %v", kinds(acts))
	}
}

// A replica the meta server says may be deleted is collected only when closed.
func TestGarbageCollectOnlyClosed(t *testing.T) {
	gc := stored(map[base.Gpid]int64{g: 1, g2: 1})
	acts := confirmed().SyncAnswered(Sync{}, nil, nil, gc, holding(map[base.Gpid]int64{g2: 1}), t0)
	if want := []Action{GarbageCollect{G: g}}; !reflect.DeepEqual(acts, want) {
		t.Fatalf("actions %v, want g collected only", acts)
	}
}

// Proposals asking the replica for a change name the change, its member and the
// proposal's configuration; they need an open replica.
func TestProposalChanges(t *testing.T) {
	pc := pconf(g, 4, other, self)
	cases := []struct {
		typ  admin.ConfigType
		node string
		want Change
	}{
		{admin.ConfigType_CT_UPGRADE_TO_PRIMARY, self, Change{Type: pacifica.ChangeUpgradeToPrimary, Node: self}},
		{admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, third, Change{Type: pacifica.ChangeDowngradeToInact, Node: third}},
		{admin.ConfigType_CT_REMOVE, third, Change{Type: pacifica.ChangeDowngradeToInact, Node: third}},
		{admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY, self, Change{Type: pacifica.ChangeDowngradeToSecond, Node: self}},
	}
	for _, c := range cases {
		t.Run(c.typ.String(), func(t *testing.T) {
			c.want.At = ConfigOf(pc)
			acts := confirmed().Proposal(proposal(c.typ, pc, c.node), holding(map[base.Gpid]int64{g: 4}), t0)
			if want := []Action{RequestChange{G: g, Change: c.want}}; !reflect.DeepEqual(acts, want) {
				t.Fatalf("actions %+v, want %+v", acts, want)
			}
			if acts := confirmed().Proposal(proposal(c.typ, pc, c.node), none(), t0); len(acts) != 0 {
				t.Fatalf("without the replica: %v", kinds(acts))
			}
		})
	}
	if acts := confirmed().Proposal(proposal(admin.ConfigType_CT_ADD_SECONDARY, pc, self), holding(map[base.Gpid]int64{g: 4}), t0); len(acts) != 0 {
		t.Fatalf("adding itself as a learner: %v", kinds(acts))
	}
}

// Change.Next: a replica taking the primary role may start from the meta's newer
// configuration; any other change needs the proposal's ballot.
func TestChangeNext(t *testing.T) {
	at := pacifica.Config{Ballot: 5, Primary: other, Secondaries: []string{self, third}}
	cases := []struct {
		name string
		c    Change
		cur  pacifica.Config
		want pacifica.Config
		ok   bool
	}{
		{"upgrade at the ballot", Change{Type: pacifica.ChangeUpgradeToPrimary, Node: self, At: at}, at,
			pacifica.Config{Ballot: 6, Primary: self, Secondaries: []string{third}}, true},
		{"assign from an older ballot uses the meta's", Change{Type: pacifica.ChangeAssignPrimary, Node: self, At: at},
			pacifica.Config{Ballot: 2, Primary: third},
			pacifica.Config{Ballot: 6, Primary: self, Secondaries: []string{third}}, true},
		{"downgrade from an older ballot does not apply", Change{Type: pacifica.ChangeDowngradeToInact, Node: third, At: at},
			pacifica.Config{Ballot: 4}, pacifica.Config{}, false},
		{"primary from a newer ballot does not apply", Change{Type: pacifica.ChangeUpgradeToPrimary, Node: self, At: at},
			pacifica.Config{Ballot: 6}, pacifica.Config{}, false},
		{"remove a secondary", Change{Type: pacifica.ChangeDowngradeToInact, Node: third, At: at}, at,
			pacifica.Config{Ballot: 6, Primary: other, Secondaries: []string{self}}, true},
		{"remove the primary", Change{Type: pacifica.ChangeDowngradeToInact, Node: other, At: at}, at,
			pacifica.Config{Ballot: 6, Secondaries: []string{self, third}}, true},
		{"downgrade to secondary", Change{Type: pacifica.ChangeDowngradeToSecond, Node: self,
			At: pacifica.Config{Ballot: 5, Primary: self, Secondaries: []string{third}}},
			pacifica.Config{Ballot: 5, Primary: self, Secondaries: []string{third}},
			pacifica.Config{Ballot: 6, Secondaries: []string{third, self}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := c.cur.Clone()
			got, ok := c.c.Next(c.cur)
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			if ok && !reflect.DeepEqual(got, c.want) {
				t.Fatalf("next = %+v, want %+v", got, c.want)
			}
			if !reflect.DeepEqual(c.cur, before) {
				t.Fatalf("the current configuration was modified: %+v", c.cur)
			}
		})
	}
}

// A closed replica's activity is forgotten: reopened later, it is stamped anew.
func TestClosedForgetsActivity(t *testing.T) {
	m := confirmed()
	m.Changed(g)
	m.Closed(g)
	if _, ok := m.changed[g]; ok {
		t.Fatal("a closed replica's change mark is kept")
	}
	sent := m.SyncSent()
	m.Opened(g)
	acts := m.SyncAnswered(sent, stored(map[base.Gpid]int64{g: 1}), nil, nil, holding(map[base.Gpid]int64{g: 1}), t0)
	if _, ok := has[CheckStale](acts); ok {
		t.Fatal("a replica opened after the request is checked against its answer")
	}
}
