package meta

import (
	"context"
	"fmt"
	"slices"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
	"github.com/pegasusgo/pegasus/rpc"
)

func (s *Server) registerReplicaProtocol(mux *rpc.Mux) {
	rpc.Handle(mux, rpc.CodeBeacon, s.beacon)
	rpc.Handle(mux, rpc.CodeConfigSync, s.configSync)
	rpc.Handle(mux, rpc.CodeUpdatePartitionConfig, s.updatePartitionConfig)
}

// beacon answers a replica server's failure-detector ping. A follower names the
// leader so the replica server switches to it.
func (s *Server) beacon(ctx context.Context, call *rpc.Call, req *consensus.BeaconMsg) (*consensus.BeaconAck, error) {
	ack := &consensus.BeaconAck{
		Time:        req.Time,
		ThisNode:    base.MustParseRPCAddress(s.opts.Self),
		PrimaryNode: &base.RPCAddress{},
		Allowed:     true,
	}
	lt := s.currentTerm()
	if lt == nil {
		if l := s.LeaderAddr(); l != "" {
			if a, err := base.ParseRPCAddress(l); err == nil {
				ack.PrimaryNode = a
			}
		}
		return ack, nil
	}
	ack.IsMaster = true
	ack.PrimaryNode = base.MustParseRPCAddress(s.opts.Self)
	node := req.FromNode.String()
	if !req.FromNode.IsValid() {
		return nil, rpc.NewError(base.ErrInvalidParameters)
	}
	if p := call.Peer(); p.Authenticated() && !p.Is(node) {
		// A member beaconing for another node would keep a phantom alive, or
		// make a live node look like it keeps restarting.
		s.refusePeer(call, rpc.CodeBeacon, "a beacon for another node", "node", node)
		return nil, rpc.NewError(base.ErrACLDeny)
	}
	if len(s.opts.WhiteList) > 0 && !slices.Contains(s.opts.WhiteList, node) {
		s.log.Warn("refusing a replica server outside the white list", "node", node)
		ack.Allowed = false
		return ack, nil
	}
	s.mu.Lock()
	accepted, becameAlive := lt.fd.beacon(node, req.GetStartTime(), s.opts.Now())
	s.mu.Unlock()
	if !accepted {
		// Upstream stops answering a node that keeps restarting: it stays dead.
		s.log.Warn("ignoring beacon of an unstable replica server", "node", node)
		return nil, rpc.NewError(base.ErrBusy)
	}
	if becameAlive {
		s.log.Info("replica server is alive", "node", node)
		go s.cureAll(lt)
	}
	return ack, nil
}

// configSync tells a replica server which partitions it serves, with their table
// info, and remembers what the node reported storing.
func (s *Server) configSync(ctx context.Context, call *rpc.Call, req *consensus.ConfigurationQueryByNodeRequest) (*consensus.ConfigurationQueryByNodeResponse, error) {
	resp := &consensus.ConfigurationQueryByNodeResponse{Partitions: []*consensus.ConfigurationUpdateRequest{}}
	lt, code := s.leaderOrNot()
	resp.Err = errCode(code)
	if lt == nil {
		return resp, nil
	}
	if !req.Node.IsValid() {
		resp.Err = errCode(base.ErrInvalidParameters)
		return resp, nil
	}
	node := req.Node.String()
	if p := call.Peer(); p.Authenticated() && !p.Is(node) {
		s.refusePeer(call, rpc.CodeConfigSync, "a config sync for another node", "node", node)
		resp.Err = errCode(base.ErrACLDeny)
		return resp, nil
	}
	s.mu.Lock()
	lt.reports[node] = req
	apps := lt.state.sortedApps()
	s.mu.Unlock()
	for _, a := range apps {
		if a.info.Status != layer2.AppStatus_AS_AVAILABLE {
			continue
		}
		for _, pc := range a.partitions {
			if !slices.Contains(members(pc), node) {
				continue
			}
			u := &consensus.ConfigurationUpdateRequest{
				Info:     cloneInfo(a.info),
				Config:   cloneConfig(pc),
				Type:     admin.ConfigType_CT_INVALID,
				Node:     base.RPCAddressFromRaw(req.Node.Raw()),
				HostNode: &base.RPCAddress{},
			}
			s.fillUpdateHostPorts(u)
			resp.Partitions = append(resp.Partitions, u)
		}
	}
	resp.GcReplicas = s.garbageReplicas(lt, req)
	if id := s.ClusterID(); id != "" {
		resp.ClusterID = &id
	}
	return resp, nil
}

// garbageReplicas lists the stored replicas a node may delete: those of tables
// dropped longer ago than their reserve time. Only at level lively, as upstream, so
// that an operator can stop deletions by lowering the level.
func (s *Server) garbageReplicas(lt *leaderTerm, req *consensus.ConfigurationQueryByNodeRequest) []*metadata.ReplicaInfo {
	out := []*metadata.ReplicaInfo{}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.effectiveLevel(lt) < admin.MetaFunctionLevel_fl_lively {
		return out
	}
	now := s.opts.Now().Unix()
	for _, r := range req.StoredReplicas {
		if r == nil || r.Pid == nil {
			continue
		}
		a := lt.state.apps[r.Pid.Appid]
		if a != nil && a.info.Status == layer2.AppStatus_AS_DROPPED && a.info.ExpireSecond > 0 && a.info.ExpireSecond <= now {
			out = append(out, r)
		}
	}
	return out
}

// updatePartitionConfig applies a configuration change asked for by a replica (the
// primary, or the node being promoted). The new configuration must carry the next
// ballot; the stored configuration is returned either way. It is a leader
// operation like the admin ones: a refusal answers its code (refusals by kind
// are not logged, as replicas retry them; a peer refusal is logged by
// refusePeer), a failed store write ERR_TIMEOUT, logged with its cause.
func (s *Server) updatePartitionConfig(ctx context.Context, call *rpc.Call, req *consensus.ConfigurationUpdateRequest) (*consensus.ConfigurationUpdateResponse, error) {
	resp := &consensus.ConfigurationUpdateResponse{Config: newPartition(0, 0, 0)}
	spec := opSpec{what: "partition configuration change", persists: true, check: func() error {
		if req.Config == nil || req.Config.Pid == nil {
			return refuse(base.ErrInvalidParameters, "")
		}
		return nil
	}}
	var lt *leaderTerm
	var stored *layer2.PartitionConfiguration
	code, _ := s.leaderOp(spec, func(op *leaderOp) error {
		lt = op.lt
		var err error
		stored, err = s.applyUpdate(op, req, call)
		return err
	})
	resp.Err = errCode(code)
	if stored != nil {
		resp.Config = cloneConfig(stored)
		s.fillPartitionHostPorts(resp.Config)
	}
	if code == base.ErrOK {
		// Recovery chains (promote, then re-add) go on at once rather than at the
		// next periodic pass.
		go s.cureAll(lt)
	}
	return resp, nil
}

// applyUpdate validates, persists and applies one replica-driven change, under
// the operation lock. It returns the configuration now stored (nil when there is
// no such partition) and the refusal or persistence failure to answer with.
func (s *Server) applyUpdate(op *leaderOp, req *consensus.ConfigurationUpdateRequest, call *rpc.Call) (*layer2.PartitionConfiguration, error) {
	lt := op.lt
	pid := req.Config.Pid
	s.mu.RLock()
	a := lt.state.apps[pid.Appid]
	level := s.effectiveLevel(lt)
	s.mu.RUnlock()
	if a == nil || a.info.Status != layer2.AppStatus_AS_AVAILABLE || pid.PartitionIndex < 0 || int(pid.PartitionIndex) >= len(a.partitions) {
		return nil, refuse(base.ErrObjectNotFound, "")
	}
	cur := a.partitions[pid.PartitionIndex]
	if level <= admin.MetaFunctionLevel_fl_freezed {
		return cur, refuse(base.ErrStateFreezed, "")
	}
	if req.Config.Ballot != cur.Ballot+1 {
		if sameMembership(req.Config, cur) && req.Config.Ballot == cur.Ballot {
			// A retry of a change that was applied: answer as the first time.
			return cur, nil
		}
		return cur, refuse(base.ErrInvalidVersion, "")
	}
	// Checked once the change would be applied: a stale or repeated request is
	// answered as before, whoever sends it (it changes nothing).
	if p := call.Peer(); p.Authenticated() && !mayRequestChange(p.Node, cur, req) {
		s.refusePeer(call, rpc.CodeUpdatePartitionConfig, "a configuration change from a node that is neither the partition's primary nor the node it is about",
			"gpid", pid.String(), "type", req.Type.String(), "node", req.Node.String(), "ballot", cur.Ballot,
			"primary", cur.Primary.String(), "secondaries", addrStrings(cur.Secondaries),
			"asked_primary", req.Config.Primary.String(), "asked_secondaries", addrStrings(req.Config.Secondaries))
		return cur, refuse(base.ErrACLDeny, "")
	}
	next, ok := s.checkTransition(lt, cur, req)
	if !ok {
		return cur, refuse(base.ErrInvalidParameters, "")
	}
	if err := op.writePartition(next); err != nil {
		return cur, fmt.Errorf("partition %s: %w", pid.String(), err)
	}
	s.mu.Lock()
	lt.replace(next, s.opts.Now())
	s.mu.Unlock()
	s.log.Info("partition configuration changed", "gpid", pid.String(), "type", req.Type.String(),
		"node", req.Node.String(), "ballot", next.Ballot, "primary", next.Primary.String(), "secondaries", addrStrings(next.Secondaries))
	return next, nil
}

// checkTransition checks that a requested configuration is what its change type
// means from the current one, and fills in what the meta owns (last_drops, the
// replica count, flags).
func (s *Server) checkTransition(lt *leaderTerm, cur *layer2.PartitionConfiguration, req *consensus.ConfigurationUpdateRequest) (*layer2.PartitionConfiguration, bool) {
	prop := req.Config
	next := cloneConfig(cur)
	next.Ballot = prop.Ballot
	next.Primary = base.RPCAddressFromRaw(prop.Primary.Raw())
	next.Secondaries = cloneAddrs(prop.Secondaries)
	if prop.LastCommittedDecree > next.LastCommittedDecree {
		next.LastCommittedDecree = prop.LastCommittedDecree
	}
	// No node may appear twice, and every member must be a known address.
	seen := map[int64]bool{}
	for _, m := range append([]*base.RPCAddress{next.Primary}, next.Secondaries...) {
		if !m.IsValid() {
			if m == next.Primary {
				continue
			}
			return nil, false
		}
		if seen[m.Raw()] {
			return nil, false
		}
		seen[m.Raw()] = true
	}
	node := req.Node
	was := func(pc *layer2.PartitionConfiguration, n *base.RPCAddress) bool {
		return pc.Primary.Equals(n) || slices.ContainsFunc(pc.Secondaries, n.Equals)
	}
	switch req.Type {
	case admin.ConfigType_CT_ASSIGN_PRIMARY, admin.ConfigType_CT_UPGRADE_TO_PRIMARY:
		if !next.Primary.Equals(node) {
			return nil, false
		}
	case admin.ConfigType_CT_UPGRADE_TO_SECONDARY, admin.ConfigType_CT_ADD_SECONDARY, admin.ConfigType_CT_ADD_SECONDARY_FOR_LB:
		if !slices.ContainsFunc(next.Secondaries, node.Equals) {
			return nil, false
		}
	case admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY:
		if next.Primary.IsValid() || !slices.ContainsFunc(next.Secondaries, node.Equals) {
			return nil, false
		}
	case admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, admin.ConfigType_CT_REMOVE:
		if was(next, node) {
			return nil, false
		}
	case admin.ConfigType_CT_PRIMARY_FORCE_UPDATE_BALLOT:
		if !sameMembership(next, cur) {
			return nil, false
		}
	default:
		return nil, false
	}
	// Keep last_drops in step with membership: nodes that left are pushed, nodes
	// that (re)joined are removed.
	for _, m := range append([]*base.RPCAddress{cur.Primary}, cur.Secondaries...) {
		if m.IsValid() && !was(next, m) {
			next.LastDrops = pushDrop(next.LastDrops, m, int(cur.MaxReplicaCount))
		}
	}
	next.LastDrops = slices.DeleteFunc(next.LastDrops, func(d *base.RPCAddress) bool { return was(next, d) })
	return next, true
}

func sameMembership(a, b *layer2.PartitionConfiguration) bool {
	if !a.Primary.Equals(b.Primary) || len(a.Secondaries) != len(b.Secondaries) {
		return false
	}
	for _, s := range a.Secondaries {
		if !slices.ContainsFunc(b.Secondaries, s.Equals) {
			return false
		}
	}
	return true
}
