package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
)

// metaLink is the replica server's side of the failure detector and of config sync.
// The lease: a replica server serves only while its last acknowledged beacon was
// sent less than Lease ago; the meta server declares it dead only after a longer
// grace period, so by then it has stopped serving.
type metaLink struct {
	s       *Stub
	clients []*rpc.Client
	start   int64

	mu         sync.Mutex
	target     int       // index of the meta server beaconed
	leaseStart time.Time // send time of the last acknowledged beacon
	connected  bool
	syncing    bool
	sawLeader  string
}

func newMetaLink(s *Stub) *metaLink {
	m := &metaLink{s: s, start: s.opts.StartTime.UnixMilli()}
	for _, a := range s.opts.MetaServers {
		m.clients = append(m.clients, rpc.NewClient(a, rpc.ClientOptions{Logger: s.log, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Auth: s.opts.ClientAuth, Dial: s.opts.Dial}))
	}
	return m
}

func (m *metaLink) close() {
	for _, c := range m.clients {
		c.Close()
	}
}

// Connected reports whether the lease is valid.
func (m *metaLink) Connected() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.connected
}

func (m *metaLink) leader() *rpc.Client {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clients[m.target]
}

func (m *metaLink) run(ctx context.Context) {
	if len(m.clients) == 0 {
		m.s.log.Error("no meta server configured: the replica server cannot join a cluster")
		<-ctx.Done()
		return
	}
	beacon := time.NewTimer(0)
	defer beacon.Stop()
	check := time.NewTicker(m.s.opts.LeaseCheckInterval)
	defer check.Stop()
	sync := time.NewTicker(m.s.opts.ConfigSyncInterval)
	defer sync.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beacon.C:
			next := m.beacon(ctx)
			beacon.Reset(next)
		case <-check.C:
			m.checkLease()
		case <-sync.C:
			if m.Connected() {
				go m.configSync(ctx)
			}
		}
	}
}

// beacon pings the meta server believed to be the leader and returns when to send
// the next one.
func (m *metaLink) beacon(ctx context.Context) time.Duration {
	interval := m.s.opts.BeaconInterval
	sent := m.s.opts.Now()
	msg := &consensus.BeaconMsg{
		Time:      sent.UnixMilli(),
		FromNode:  base.MustParseRPCAddress(m.s.self),
		ToNode:    &base.RPCAddress{},
		StartTime: &m.start,
	}
	c := m.leader()
	cctx, cancel := context.WithTimeout(ctx, min(interval, m.s.opts.RPCTimeout))
	defer cancel()
	var ack consensus.BeaconAck
	err := c.Call(cctx, rpc.Request{Code: rpc.CodeBeacon, Args: msg}, &ack)
	if err != nil {
		m.s.metrics.beaconFailed.Inc()
		m.rotate("")
		return min(interval, time.Second)
	}
	if !ack.Allowed {
		m.s.log.Error("the meta server refuses this replica server (white list)")
		return interval
	}
	if !ack.IsMaster {
		hint := ""
		if ack.PrimaryNode.IsValid() {
			hint = ack.PrimaryNode.String()
		}
		m.rotate(hint)
		return 0
	}
	m.mu.Lock()
	wasConnected := m.connected
	if now := m.s.opts.Now(); now.Sub(sent) < m.s.opts.Lease {
		m.leaseStart = sent
		m.connected = true
	}
	becameConnected := !wasConnected && m.connected
	m.mu.Unlock()
	if becameConnected {
		m.s.log.Info("connected to the meta server", "meta", c.Addr())
		go m.configSync(ctx)
	}
	return interval
}

// rotate switches to the meta server named by a hint, or to the next in the list.
func (m *metaLink) rotate(hint string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if hint != "" {
		for i, c := range m.clients {
			if c.Addr() == hint {
				m.target = i
				return
			}
		}
		m.clients = append(m.clients, rpc.NewClient(hint, rpc.ClientOptions{Logger: m.s.log, Auth: m.s.opts.ClientAuth, Dial: m.s.opts.Dial}))
		m.target = len(m.clients) - 1
		return
	}
	m.target = (m.target + 1) % len(m.clients)
}

// checkLease stops every replica when the lease has expired.
func (m *metaLink) checkLease() {
	m.mu.Lock()
	expired := m.connected && m.s.opts.Now().Sub(m.leaseStart)+m.s.opts.LeaseCheckInterval > m.s.opts.Lease
	if expired {
		m.connected = false
	}
	m.mu.Unlock()
	if !expired {
		return
	}
	m.s.log.Warn("lost the meta server: lease expired, replicas stop serving until it is back", "lease", m.s.opts.Lease)
	for _, p := range m.s.all() {
		p.post(deactivateEv{transient: true})
	}
}

// configSync reports the stored replicas and applies what the meta server says this
// node should serve.
func (m *metaLink) configSync(ctx context.Context) {
	m.mu.Lock()
	if m.syncing {
		m.mu.Unlock()
		return
	}
	m.syncing = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.syncing = false
		m.mu.Unlock()
	}()
	// Replicas whose configuration moves after this point (a proposal, a change
	// this server asked for) are newer than the answer and keep their state.
	seq := m.s.changeSeq.Load()
	stored := m.s.storedReplicas()
	req := &consensus.ConfigurationQueryByNodeRequest{
		Node:           base.MustParseRPCAddress(m.s.self),
		StoredReplicas: stored,
	}
	var resp consensus.ConfigurationQueryByNodeResponse
	cctx, cancel := context.WithTimeout(ctx, m.s.opts.RPCTimeout)
	err := m.leader().Call(cctx, rpc.Request{Code: rpc.CodeConfigSync, Args: req}, &resp)
	cancel()
	if err != nil || !resp.Err.OK() {
		code := resp.Err.Name()
		if err != nil {
			code = rpc.ErrorCode(err)
		}
		m.s.log.Warn("config sync failed", "err", code)
		return
	}
	if id := resp.GetClusterID(); id != "" {
		m.s.checkCluster(id)
		if m.s.identityMismatch(id) {
			return
		}
	}
	m.s.confirmCluster()
	m.s.syncRound.Add(1)
	listed := map[base.Gpid]bool{}
	for _, u := range resp.Partitions {
		if u == nil || u.Config == nil || u.Config.Pid == nil || u.Info == nil {
			continue
		}
		g := *u.Config.Pid
		listed[g] = true
		m.s.applyMetaConfig(g, u.Info, u.Config, admin.ConfigType_CT_INVALID)
	}
	// Replicas the meta server does not list are no longer members (a dropped
	// table, or removed while this server was away): close them, keep their data.
	// Not one that changed since the request left: the meta server may have made
	// it a member since (an assign-primary proposal answered meanwhile), and
	// closing it would leave the partition with a primary that does not serve.
	// A change still at the meta server, or a ballot moved past what the request
	// reported, also means the answer may predate the replica's membership.
	reported := map[base.Gpid]int64{}
	for _, r := range stored {
		reported[*r.Pid] = r.Ballot
	}
	for _, p := range m.s.all() {
		ballot, ok := reported[p.gpid]
		if listed[p.gpid] || !ok || p.changed.Load() > seq {
			continue
		}
		p.post(funcEv(func(p *partition) {
			if p.core.Status() != pacifica.StatusLearner && p.changed.Load() <= seq &&
				p.core.PendingChange() == nil && p.core.Ballot() <= ballot {
				p.retire("not a member according to the meta server")
			}
		}))
	}
	for _, r := range resp.GcReplicas {
		if r != nil && r.Pid != nil {
			m.s.garbageCollect(*r.Pid)
		}
	}
}

// updateConfig sends a configuration change to the meta leader.
func (m *metaLink) updateConfig(ctx context.Context, req *consensus.ConfigurationUpdateRequest) (*consensus.ConfigurationUpdateResponse, error) {
	var lastErr error
	for attempt := 0; attempt < len(m.clients)+1; attempt++ {
		c := m.leader()
		cctx, cancel := context.WithTimeout(ctx, m.s.opts.RPCTimeout)
		var resp consensus.ConfigurationUpdateResponse
		err := c.Call(cctx, rpc.Request{Code: rpc.CodeUpdatePartitionConfig, Args: req}, &resp)
		cancel()
		if err != nil {
			lastErr = err
			m.rotate("")
			continue
		}
		if resp.Err.Name() == base.ErrForwardToOthers {
			lastErr = errors.New("not the meta leader")
			m.rotate("")
			continue
		}
		return &resp, nil
	}
	return nil, fmt.Errorf("update partition configuration: %w", lastErr)
}

// applyMetaConfig applies a configuration sent by the meta server (in a proposal or
// a config sync) to the local replica, creating it when this is the partition's
// first configuration.
func (s *Stub) applyMetaConfig(g base.Gpid, info *layer2.AppInfo, pc *layer2.PartitionConfiguration, typ admin.ConfigType) {
	cfg := configOf(pc)
	p := s.get(g)
	if p == nil && cfg.Primary == s.self && typ == admin.ConfigType_CT_INVALID && s.wasRetired(g) {
		// Listed as primary of a replica this server closed as no longer a member
		// (its data is still on a disk): serve it again rather than leave the
		// partition without one. A replica closed after a failure is handed back.
		reopened, err := s.reopen(g)
		if err != nil {
			s.log.Warn("reopening a replica listed as primary failed", "gpid", g.String(), "err", err)
		}
		p = reopened
	}
	if p == nil {
		// Only the meta's install proposal creates a replica. A config sync
		// listing this server at ballot 1 may also mean the replica existed and
		// its data is gone (a disk replaced while the server was down): creating
		// it empty there would serve a primary without the data the others hold.
		if cfg.Ballot != 1 || !cfg.Has(s.self) || typ == admin.ConfigType_CT_INVALID {
			if cfg.Has(s.self) {
				s.log.Warn("the meta server lists a replica this server does not hold", "gpid", g.String(), "ballot", cfg.Ballot)
			}
			if cfg.Primary == s.self && typ == admin.ConfigType_CT_INVALID && s.unheldAgain(g, cfg.Ballot) {
				s.disownPrimary(info, pc)
			}
			return
		}
		var err error
		if p, err = s.create(g, info); err != nil {
			s.log.Warn("creating replica failed", "gpid", g.String(), "err", err)
			return
		}
	}
	p.post(configEv{cfg: cfg, info: info})
}

// unheldMark is where a config sync first listed this server as primary of a
// replica it does not hold.
type unheldMark struct {
	ballot int64
	round  uint64
	since  time.Time
}

// unheldAgain reports whether config syncs have listed this server as primary of g
// at this ballot, without it holding the replica, in an earlier round and for at
// least UnheldGrace. A new table's configuration lists its members before the
// proposals that create the replicas arrive, and a config sync answered in between
// must not give the role away; a replica still missing after that really is gone
// (the meta server does not resend installs, see its sendProposal).
func (s *Stub) unheldAgain(g base.Gpid, ballot int64) bool {
	round, now := s.syncRound.Load(), time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.unheld[g]
	if !ok || m.ballot != ballot {
		s.unheld[g] = unheldMark{ballot: ballot, round: round, since: now}
		return false
	}
	return m.round < round && now.Sub(m.since) >= s.opts.UnheldGrace
}

// disownPrimary asks the meta server to take this server out as a partition's
// primary when it holds no replica of it (its disk left the data_dirs, or the
// replica failed to open). The server looks alive to the failure detector, so
// without this the partition would wait for a primary that can never serve.
// Secondaries need nothing: the primary's group check drops them.
func (s *Stub) disownPrimary(info *layer2.AppInfo, pc *layer2.PartitionConfiguration) {
	next := &layer2.PartitionConfiguration{
		Pid:                 base.NewGpid(pc.Pid.Appid, pc.Pid.PartitionIndex),
		Ballot:              pc.Ballot + 1,
		MaxReplicaCount:     pc.MaxReplicaCount,
		Primary:             &base.RPCAddress{},
		Secondaries:         pc.Secondaries,
		LastDrops:           []*base.RPCAddress{},
		LastCommittedDecree: pc.LastCommittedDecree,
	}
	req := &consensus.ConfigurationUpdateRequest{
		Info:     info,
		Config:   next,
		Type:     admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE,
		Node:     addrOrEmpty(s.self),
		HostNode: addrOrEmpty(s.self),
	}
	s.log.Warn("listed as primary of a replica this server does not hold: asking the meta server to replace it", "gpid", pc.Pid.String(), "ballot", pc.Ballot)
	go func() {
		resp, err := s.meta.updateConfig(s.ctx, req)
		if err != nil {
			s.log.Warn("giving up a missing primary failed", "gpid", pc.Pid.String(), "err", err)
			return
		}
		if !resp.Err.OK() {
			// Another change won the ballot; the next config sync retries if needed.
			s.log.Info("giving up a missing primary refused", "gpid", pc.Pid.String(), "err", resp.Err.Name())
		}
	}()
}

// waitConnected waits a little for the lease. The meta server counts this server
// alive once it has its beacon, and may send proposals (a new table's installs)
// before the acknowledgement of that beacon has reached this server.
func (s *Stub) waitConnected() bool {
	deadline := time.Now().Add(s.opts.RPCTimeout)
	for !s.meta.Connected() {
		if time.Now().After(deadline) || s.ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// onProposal handles RPC_CONFIG_PROPOSAL from the meta leader.
func (s *Stub) onProposal(req *consensus.ConfigurationUpdateRequest) {
	if req.Config == nil || req.Config.Pid == nil || req.Info == nil {
		return
	}
	if !s.waitConnected() {
		// Without a lease this server must not take on a role.
		return
	}
	if !s.waitClusterConfirmed() {
		// Until a config sync tells whose meta servers these are, a proposal
		// may come from another cluster's and would put the data on these
		// disks into that cluster: it waits for that sync.
		s.keepEarly(req)
		return
	}
	g := *req.Config.Pid
	if p := s.get(g); p != nil {
		p.touch()
	}
	cfg := configOf(req.Config)
	node := ""
	if req.Node.IsValid() {
		node = req.Node.String()
	}
	// A proposal carries the meta's stored configuration, and may overtake the
	// answer to this replica's own last change (the meta proposes the next step,
	// e.g. adding a secondary to a just-promoted primary, as soon as it stored
	// it). Adopt the newer configuration first, as that answer would; otherwise
	// the proposal finds no primary and waits for the meta to send it again.
	if p := s.get(g); p != nil && cfg.Has(s.self) && cfg.Ballot > p.ballot.Load() &&
		req.Type != admin.ConfigType_CT_ASSIGN_PRIMARY && req.Type != admin.ConfigType_CT_UPGRADE_TO_SECONDARY {
		p.post(configEv{cfg: cfg, info: req.Info})
	}
	switch req.Type {
	case admin.ConfigType_CT_ASSIGN_PRIMARY, admin.ConfigType_CT_UPGRADE_TO_SECONDARY:
		if cfg.Has(s.self) {
			s.applyMetaConfig(g, req.Info, req.Config, req.Type)
			return
		}
		if req.Type == admin.ConfigType_CT_ASSIGN_PRIMARY && node == s.self {
			// All replicas of the partition were lost and this server held the last
			// one: open it again if it was closed, then take the role.
			if s.get(g) == nil {
				if _, err := s.reopen(g); err != nil {
					s.log.Warn("reopening a replica to assign it primary failed", "gpid", g.String(), "err", err)
					return
				}
			}
			s.requestChange(g, cfg, pacifica.ChangeAssignPrimary, s.self, func(c pacifica.Config) pacifica.Config {
				c.Primary = s.self
				c.Secondaries = slices.DeleteFunc(c.Secondaries, func(x string) bool { return x == s.self })
				return c
			})
		}
	case admin.ConfigType_CT_UPGRADE_TO_PRIMARY:
		s.requestChange(g, cfg, pacifica.ChangeUpgradeToPrimary, s.self, func(c pacifica.Config) pacifica.Config {
			c.Primary = s.self
			c.Secondaries = slices.DeleteFunc(c.Secondaries, func(x string) bool { return x == s.self })
			return c
		})
	case admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, admin.ConfigType_CT_REMOVE:
		s.requestChange(g, cfg, pacifica.ChangeDowngradeToInact, node, func(c pacifica.Config) pacifica.Config {
			if c.Primary == node {
				c.Primary = ""
			}
			c.Secondaries = slices.DeleteFunc(c.Secondaries, func(x string) bool { return x == node })
			return c
		})
	case admin.ConfigType_CT_ADD_SECONDARY, admin.ConfigType_CT_ADD_SECONDARY_FOR_LB:
		if node != "" && node != s.self {
			s.addLearner(g, node, req.Type == admin.ConfigType_CT_ADD_SECONDARY_FOR_LB)
		}
	case admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY:
		s.requestChange(g, cfg, pacifica.ChangeDowngradeToSecond, s.self, func(c pacifica.Config) pacifica.Config {
			c.Primary = ""
			c.Secondaries = append(c.Secondaries, s.self)
			return c
		})
	default:
		s.log.Debug("ignoring a proposal this server does not handle", "type", req.Type.String(), "gpid", g.String())
	}
}

// requestChange asks the executor of a replica to request a configuration change
// computed from the proposal's configuration. A replica taking the primary role
// bases the change on the meta's configuration (it may have been away for several
// ballots); any other change needs the replica to be at the proposal's ballot.
func (s *Stub) requestChange(g base.Gpid, at pacifica.Config, typ pacifica.ChangeType, node string, change func(pacifica.Config) pacifica.Config) {
	p := s.get(g)
	if p == nil {
		return
	}
	p.touch()
	takesPrimary := typ == pacifica.ChangeAssignPrimary || typ == pacifica.ChangeUpgradeToPrimary
	p.post(changeEv{typ: typ, node: node, next: func(cur pacifica.Config) (pacifica.Config, bool) {
		base := cur
		switch {
		case cur.Ballot == at.Ballot:
		case takesPrimary && cur.Ballot < at.Ballot:
			base = at
		default:
			return cur, false
		}
		next := change(base.Clone())
		next.Ballot = at.Ballot + 1
		return next, true
	}})
}

// garbageCollect moves aside the directory of a replica the meta server says may be
// deleted (a dropped table past its reserve time); the disk cleaner deletes it later.
func (s *Stub) garbageCollect(g base.Gpid) {
	if p := s.get(g); p != nil {
		return // still open: the next config sync closes it first
	}
	s.mu.Lock()
	delete(s.closed, g)
	s.mu.Unlock()
	for _, d := range s.disks {
		dir := filepath.Join(d.dir, replicaDirName(g, "pegasus"))
		if _, err := os.Stat(dir); err == nil {
			aside := fmt.Sprintf("%s.%d.gar", dir, time.Now().UnixMicro())
			if err := os.Rename(dir, aside); err == nil {
				s.log.Info("replica garbage-collected", "gpid", g.String(), "moved_to", aside)
			}
		}
	}
}

func typeOf(t pacifica.ChangeType) admin.ConfigType { return admin.ConfigType(t) }
