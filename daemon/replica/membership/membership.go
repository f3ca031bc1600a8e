// Package membership decides the replica server's side of partition membership:
// reconciling what config syncs and proposals from the meta server say this server
// should serve with the replicas it holds. It is pure: events go in (a config sync
// sent or answered, a proposal, the cluster confirmed, a local replica opened,
// changed or closed) together with a read-only view of the local replicas and the
// time, and the effects come out as a list of Actions that the replica server
// carries out (disks, Pebble, RPCs). No locks, clocks or goroutines: the caller
// serialises the events.
package membership

import (
	"log/slog"
	"slices"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
)

// MaxEarly bounds the proposals kept while the first config sync is awaited.
const MaxEarly = 4096

// Local is the read-only view of this server's replicas the machine decides on.
type Local interface {
	// Held returns the ballot of the open replica of g; ok is false when this
	// server has no open replica of g.
	Held(g base.Gpid) (ballot int64, ok bool)
	// Open lists the open replicas.
	Open() []base.Gpid
	// Retired reports whether g was closed here as no longer a member (its data
	// is still on a disk and it is still reported to the meta server).
	Retired(g base.Gpid) bool
	// Restoring reports whether this server is making its replica of g from
	// a backup (a download in the background, from the install proposal).
	Restoring(g base.Gpid) bool
}

// Replica is the state of one open replica as its executor sees it.
type Replica struct {
	Status  pacifica.Status
	Ballot  int64
	Pending bool // a configuration change of its own is at the meta server
}

// Sync is a config sync on its way: what the machine knew when it was sent.
type Sync struct {
	// Seq is the change sequence when the request left: replicas changed after
	// it are newer than the answer.
	Seq uint64
}

// unheldMark is where a config sync first listed this server as primary of a
// replica it does not hold.
type unheldMark struct {
	ballot int64
	round  uint64
	since  time.Time
}

// Machine is the membership state of one replica server. It is not safe for
// concurrent use.
type Machine struct {
	self        string
	unheldGrace time.Duration

	// seq orders configuration activity against config syncs: each replica
	// records the value at its last change (changed), and a config sync answer
	// computed before that change must not close it.
	seq     uint64
	changed map[base.Gpid]uint64

	// unheld remembers, per partition, the ballot at which a config sync first
	// listed this server as primary of a replica it does not hold, and the sync
	// round it was in (round counts answered config syncs).
	unheld map[base.Gpid]unheldMark
	round  uint64

	// confirmed is set once a config sync showed that the meta servers serve
	// the cluster the data belongs to; early holds the proposals that came
	// before.
	confirmed bool
	early     []*consensus.ConfigurationUpdateRequest
}

// New returns the machine of the replica server self. unheldGrace is how long
// this server must have been listed as primary of a replica it does not hold
// before it hands the role back.
func New(self string, unheldGrace time.Duration) *Machine {
	return &Machine{self: self, unheldGrace: unheldGrace, changed: map[base.Gpid]uint64{}, unheld: map[base.Gpid]unheldMark{}}
}

// Opened records that a replica of g was opened (loaded, created or reopened):
// a config sync answer from before it does not know it.
func (m *Machine) Opened(g base.Gpid) { m.touch(g) }

// Changed records configuration activity on the replica of g: a change it asks
// for, or the meta server's answer to one. A config sync answer from before it is
// stale.
func (m *Machine) Changed(g base.Gpid) { m.touch(g) }

// Closed forgets the activity of a replica that was closed.
func (m *Machine) Closed(g base.Gpid) { delete(m.changed, g) }

func (m *Machine) touch(g base.Gpid) {
	m.seq++
	m.changed[g] = m.seq
}

// Confirmed reports whether a config sync has confirmed the cluster.
func (m *Machine) Confirmed() bool { return m.confirmed }

// EarlyCount is the number of proposals held until the cluster is confirmed.
func (m *Machine) EarlyCount() int { return len(m.early) }

// ClusterConfirmed records that a config sync succeeded without an identity
// mismatch: from now on the meta servers' proposals are for this data's cluster.
// The first time, it signals so and releases the proposals held until then.
func (m *Machine) ClusterConfirmed() []Action {
	if m.confirmed {
		return nil
	}
	m.confirmed = true
	out := []Action{SignalConfirmed{}}
	for _, req := range m.early {
		out = append(out, Release{Req: req})
	}
	m.early = nil
	return out
}

// SyncSent records that a config sync request is about to leave. Take it before
// listing the stored replicas for the request.
func (m *Machine) SyncSent() Sync { return Sync{Seq: m.seq} }

// SyncAnswered applies the meta server's answer to a config sync: what this
// server should serve (partitions) and the replicas it may delete (gc). stored is
// what the request reported.
func (m *Machine) SyncAnswered(sent Sync, stored []*metadata.ReplicaInfo, partitions []*consensus.ConfigurationUpdateRequest, gc []*metadata.ReplicaInfo, local Local, now time.Time) []Action {
	m.round++
	var out []Action
	listed := map[base.Gpid]bool{}
	for _, u := range partitions {
		if u == nil || u.Config == nil || u.Config.Pid == nil || u.Info == nil {
			continue
		}
		g := *u.Config.Pid
		listed[g] = true
		out = append(out, m.applyConfig(g, u.Info, u.Config, admin.ConfigType_CT_INVALID, local, now)...)
	}
	// Replicas the meta server does not list are no longer members (a dropped
	// table, or removed while this server was away): close them, keep their data.
	// Not one that changed since the request left: the meta server may have made
	// it a member since (an assign-primary proposal answered meanwhile), and
	// closing it would leave the partition with a primary that does not serve.
	// A change still at the meta server, or a ballot moved past what the request
	// reported, also means the answer may predate the replica's membership; the
	// replica's executor checks those (CheckStale).
	reported := map[base.Gpid]int64{}
	for _, r := range stored {
		if r != nil && r.Pid != nil {
			reported[*r.Pid] = r.Ballot
		}
	}
	for _, g := range local.Open() {
		ballot, ok := reported[g]
		if listed[g] || !ok || m.changed[g] > sent.Seq {
			continue
		}
		out = append(out, CheckStale{G: g, Seq: sent.Seq, Ballot: ballot})
	}
	for _, r := range gc {
		if r == nil || r.Pid == nil {
			continue
		}
		if _, open := local.Held(*r.Pid); open {
			continue // still open: the next config sync closes it first
		}
		out = append(out, GarbageCollect{G: *r.Pid})
	}
	return out
}

// StaleCheck is the second half of closing a replica a config sync did not list,
// run by the replica's executor with its current state: the replica retires
// unless it learns, changed after the request left, has a change of its own at
// the meta server, or moved past the ballot the request reported.
func (m *Machine) StaleCheck(c CheckStale, r Replica) []Action {
	if r.Status != pacifica.StatusLearner && m.changed[c.G] <= c.Seq && !r.Pending && r.Ballot <= c.Ballot {
		return []Action{Retire{G: c.G, Reason: "not a member according to the meta server"}}
	}
	return nil
}

// applyConfig applies a configuration sent by the meta server (in a proposal or
// a config sync, typ CT_INVALID) to the local replica, creating it when this is
// the partition's first configuration.
func (m *Machine) applyConfig(g base.Gpid, info *layer2.AppInfo, pc *layer2.PartitionConfiguration, typ admin.ConfigType, local Local, now time.Time) []Action {
	cfg := ConfigOf(pc)
	if _, held := local.Held(g); held {
		return []Action{ApplyConfig{G: g, Info: info, Config: cfg}}
	}
	if cfg.Primary == m.self && typ == admin.ConfigType_CT_INVALID && local.Retired(g) {
		// Listed as primary of a replica this server closed as no longer a member
		// (its data is still on a disk): serve it again rather than leave the
		// partition without one. A replica closed after a failure is handed back.
		return []Action{Reopen{G: g, For: ReopenListedPrimary, Info: info, Config: pc,
			Then: []Action{ApplyConfig{G: g, Info: info, Config: cfg}}}}
	}
	return m.notHeld(g, info, pc, typ, local, now)
}

// ReopenFailed goes on with a configuration listing this server as primary of a
// retired replica that did not open again (Reopen with ReopenListedPrimary).
func (m *Machine) ReopenFailed(r Reopen, local Local, now time.Time) []Action {
	return m.notHeld(r.G, r.Info, r.Config, admin.ConfigType_CT_INVALID, local, now)
}

// notHeld handles a configuration naming a replica this server does not hold.
func (m *Machine) notHeld(g base.Gpid, info *layer2.AppInfo, pc *layer2.PartitionConfiguration, typ admin.ConfigType, local Local, now time.Time) []Action {
	cfg := ConfigOf(pc)
	// Only the meta's install proposal creates a replica. A config sync
	// listing this server at ballot 1 may also mean the replica existed and
	// its data is gone (a disk replaced while the server was down): creating
	// it empty there would serve a primary without the data the others hold.
	if cfg.Ballot == 1 && cfg.Has(m.self) && typ != admin.ConfigType_CT_INVALID {
		return []Action{Create{G: g, Info: info, Config: cfg}}
	}
	if local.Restoring(g) {
		// Held soon: the download of its data is under way. Handing the
		// primary back now would move the role to a member that may well be
		// downloading too.
		return nil
	}
	var out []Action
	if cfg.Has(m.self) {
		out = append(out, Log{Level: slog.LevelWarn, Msg: "the meta server lists a replica this server does not hold", Args: []any{"gpid", g.String(), "ballot", cfg.Ballot}})
	}
	if cfg.Primary == m.self && typ == admin.ConfigType_CT_INVALID && m.unheldAgain(g, cfg.Ballot, now) {
		out = append(out, Disown{Info: info, Config: pc})
	}
	return out
}

// unheldAgain reports whether config syncs have listed this server as primary of g
// at this ballot, without it holding the replica, in an earlier round and for at
// least the unheld grace. A new table's configuration lists its members before the
// proposals that create the replicas arrive, and a config sync answered in between
// must not give the role away; a replica still missing after that really is gone
// (the meta server does not resend installs, see its sendProposal).
func (m *Machine) unheldAgain(g base.Gpid, ballot int64, now time.Time) bool {
	u, ok := m.unheld[g]
	if !ok || u.ballot != ballot {
		m.unheld[g] = unheldMark{ballot: ballot, round: m.round, since: now}
		return false
	}
	return u.round < m.round && now.Sub(u.since) >= m.unheldGrace
}

// Proposal handles RPC_CONFIG_PROPOSAL from the meta leader. The caller has
// checked the request's fields and that this server holds a lease.
func (m *Machine) Proposal(req *consensus.ConfigurationUpdateRequest, local Local, now time.Time) []Action {
	if !m.confirmed {
		// Until a config sync tells whose meta servers these are, a proposal
		// may come from another cluster's and would put the data on these
		// disks into that cluster: it waits for that sync. Dropping it would
		// lose, for good, the install of a new partition: the meta server does
		// not resend those (a member that reports nothing may be one that lost
		// its data), and a config sync never creates a replica.
		if len(m.early) < MaxEarly {
			m.early = append(m.early, req)
		}
		return nil
	}
	g := *req.Config.Pid
	ballot, held := local.Held(g)
	if held {
		m.touch(g)
	}
	cfg := ConfigOf(req.Config)
	node := ""
	if req.Node.IsValid() {
		node = req.Node.String()
	}
	var out []Action
	// A proposal carries the meta's stored configuration, and may overtake the
	// answer to this replica's own last change (the meta proposes the next step,
	// e.g. adding a secondary to a just-promoted primary, as soon as it stored
	// it). Adopt the newer configuration first, as that answer would; otherwise
	// the proposal finds no primary and waits for the meta to send it again.
	if held && cfg.Has(m.self) && cfg.Ballot > ballot &&
		req.Type != admin.ConfigType_CT_ASSIGN_PRIMARY && req.Type != admin.ConfigType_CT_UPGRADE_TO_SECONDARY {
		out = append(out, ApplyConfig{G: g, Info: req.Info, Config: cfg})
	}
	change := func(typ pacifica.ChangeType, node string) []Action {
		if !held {
			return nil
		}
		return []Action{RequestChange{G: g, Change: Change{Type: typ, Node: node, At: cfg}}}
	}
	switch req.Type {
	case admin.ConfigType_CT_ASSIGN_PRIMARY, admin.ConfigType_CT_UPGRADE_TO_SECONDARY:
		if cfg.Has(m.self) {
			return append(out, m.applyConfig(g, req.Info, req.Config, req.Type, local, now)...)
		}
		if req.Type == admin.ConfigType_CT_ASSIGN_PRIMARY && node == m.self {
			// All replicas of the partition were lost and this server held the last
			// one: open it again if it was closed, then take the role.
			rc := RequestChange{G: g, Change: Change{Type: pacifica.ChangeAssignPrimary, Node: m.self, At: cfg}}
			if !held {
				return append(out, Reopen{G: g, For: ReopenAssignPrimary, Info: req.Info, Config: req.Config, Then: []Action{rc}})
			}
			return append(out, rc)
		}
	case admin.ConfigType_CT_UPGRADE_TO_PRIMARY:
		out = append(out, change(pacifica.ChangeUpgradeToPrimary, m.self)...)
	case admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, admin.ConfigType_CT_REMOVE:
		out = append(out, change(pacifica.ChangeDowngradeToInact, node)...)
	case admin.ConfigType_CT_ADD_SECONDARY, admin.ConfigType_CT_ADD_SECONDARY_FOR_LB:
		if node != "" && node != m.self {
			out = append(out, AddLearner{G: g, Node: node, ForLB: req.Type == admin.ConfigType_CT_ADD_SECONDARY_FOR_LB})
		}
	case admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY:
		out = append(out, change(pacifica.ChangeDowngradeToSecond, m.self)...)
	default:
		out = append(out, Log{Level: slog.LevelDebug, Msg: "ignoring a proposal this server does not handle", Args: []any{"type", req.Type.String(), "gpid", g.String()}})
	}
	return out
}

// Change is a configuration change a replica asks the meta server for on a
// proposal, computed from the proposal's configuration At.
type Change struct {
	Type pacifica.ChangeType
	Node string // the member the change is about (this server, except for removals)
	At   pacifica.Config
}

// Next computes the configuration to ask for from the replica's current one. A
// replica taking the primary role bases the change on the meta's configuration
// (it may have been away for several ballots); any other change needs the
// replica to be at the proposal's ballot. ok is false when the change does not
// apply.
func (c Change) Next(cur pacifica.Config) (next pacifica.Config, ok bool) {
	from := cur
	takesPrimary := c.Type == pacifica.ChangeAssignPrimary || c.Type == pacifica.ChangeUpgradeToPrimary
	switch {
	case cur.Ballot == c.At.Ballot:
	case takesPrimary && cur.Ballot < c.At.Ballot:
		from = c.At
	default:
		return cur, false
	}
	next = from.Clone()
	without := func(node string) []string {
		return slices.DeleteFunc(next.Secondaries, func(x string) bool { return x == node })
	}
	switch c.Type {
	case pacifica.ChangeAssignPrimary, pacifica.ChangeUpgradeToPrimary:
		next.Primary = c.Node
		next.Secondaries = without(c.Node)
	case pacifica.ChangeDowngradeToInact:
		if next.Primary == c.Node {
			next.Primary = ""
		}
		next.Secondaries = without(c.Node)
	case pacifica.ChangeDowngradeToSecond:
		next.Primary = ""
		next.Secondaries = append(next.Secondaries, c.Node)
	}
	next.Ballot = c.At.Ballot + 1
	return next, true
}

// ConfigOf converts a meta partition configuration.
func ConfigOf(pc *layer2.PartitionConfiguration) pacifica.Config {
	cfg := pacifica.Config{Ballot: pc.Ballot}
	if pc.Primary.IsValid() {
		cfg.Primary = pc.Primary.String()
	}
	for _, s := range pc.Secondaries {
		if s.IsValid() {
			cfg.Secondaries = append(cfg.Secondaries, s.String())
		}
	}
	return cfg
}
