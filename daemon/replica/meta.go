package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/membership"
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
	// gained is closed when the lease is gained, and replaced by an open one
	// when it is lost: waitConnected waits on it.
	gained  chan struct{}
	syncing bool
}

func newMetaLink(s *Stub) *metaLink {
	m := &metaLink{s: s, start: s.opts.StartTime.UnixMilli(), gained: make(chan struct{})}
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

// connectedOrSignal reports whether the lease is valid and, when it is not, returns
// a channel closed once it is gained.
func (m *metaLink) connectedOrSignal() (bool, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.connected, m.gained
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
	if becameConnected {
		close(m.gained)
	}
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
		m.gained = make(chan struct{})
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
// node should serve (the decisions are the membership machine's).
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
	var sent membership.Sync
	m.s.withMembers(func(mm *membership.Machine) { sent = mm.SyncSent() })
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
	m.s.stepMembers(func(mm *membership.Machine, local membership.Local) []membership.Action {
		return mm.SyncAnswered(sent, stored, resp.Partitions, resp.GcReplicas, local, time.Now())
	})
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

// disownPrimary asks the meta server to take this server out as a partition's
// primary (membership.Disown says when and why).
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
	t := time.NewTimer(s.opts.RPCTimeout)
	defer t.Stop()
	for {
		ok, gained := s.meta.connectedOrSignal()
		if ok {
			return true
		}
		select {
		case <-gained:
		case <-t.C:
			return false
		case <-s.ctx.Done():
			return false
		}
	}
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
	// Until a config sync tells whose meta servers these are, the membership
	// machine holds the proposal; it waits a little for that sync first.
	s.waitClusterConfirmed()
	s.stepMembers(func(mm *membership.Machine, local membership.Local) []membership.Action {
		return mm.Proposal(req, local, time.Now())
	})
}

// garbageCollect moves aside the directory of a replica the meta server says may be
// deleted (a dropped table past its reserve time); the disk cleaner deletes it later.
func (s *Stub) garbageCollect(g base.Gpid) {
	if p := s.get(g); p != nil {
		return // opened since the answer was read: the next config sync closes it first
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
