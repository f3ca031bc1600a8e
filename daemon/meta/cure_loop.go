package meta

import (
	"maps"
	"slices"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
)

// replace installs a new configuration of a partition and remembers when members
// left it. Caller holds s.mu.
func (lt *leaderTerm) replace(next *layer2.PartitionConfiguration, now time.Time) {
	g := *next.Pid
	if a := lt.state.apps[g.Appid]; a != nil && int(g.PartitionIndex) < len(a.partitions) {
		old := a.partitions[g.PartitionIndex]
		for _, m := range members(old) {
			if !slices.Contains(members(next), m) {
				if lt.drops[g] == nil {
					lt.drops[g] = map[string]time.Time{}
				}
				lt.drops[g][m] = now
			}
		}
	}
	lt.state.setPartition(next)
	lt.ops.observe(next)
}

// cureAll is the pass over every partition, on a timer and after events: first
// configurations for new partitions (placeNew), then for each partition the
// checker's verdict (cure) and the operator controller's order (operators.next)
// - a repair, a move's next step, or nothing - and, at level lively on a healthy
// cluster, new moves from the balancer. The decisions are pure; this function
// takes the locks, snapshots the state, persists, sends and logs.
func (s *Server) cureAll(lt *leaderTerm) {
	lt.cureMu.Lock()
	defer lt.cureMu.Unlock()
	if lt.ctx.Err() != nil {
		return
	}
	now := s.opts.Now()
	s.mu.RLock()
	level := s.effectiveLevel(lt)
	apps := lt.state.sortedApps()
	alive := lt.aliveNodes()
	s.mu.RUnlock()
	if level <= admin.MetaFunctionLevel_fl_freezed {
		return
	}
	for _, a := range apps {
		if a.info.Status != layer2.AppStatus_AS_AVAILABLE {
			continue
		}
		if slices.ContainsFunc(a.partitions, isNewPartition) {
			if err := s.placeApp(lt, a.info.AppID); err != nil && lt.ctx.Err() == nil {
				s.log.Warn("placing table failed", "app_id", a.info.AppID, "err", err)
			}
		}
	}
	s.mu.RLock()
	apps = lt.state.sortedApps()
	s.mu.RUnlock()
	allHealthy := true
	for _, a := range apps {
		if a.info.Status != layer2.AppStatus_AS_AVAILABLE {
			continue
		}
		in := s.cureInput(lt, a.info.AppID, alive, now)
		for _, pc := range a.partitions {
			if isNewPartition(pc) {
				allHealthy = false
				continue
			}
			if partitionHealth(pc, s.opts.Min2PCReplicas) != healthHealthy {
				allHealthy = false
			}
			g := *pc.Pid
			verdict, need := cure(pc, in)
			s.mu.Lock()
			o := lt.ops.next(pc, verdict, need, now)
			s.mu.Unlock()
			s.logEnded(g, o.ended)
			switch {
			case o.write != nil:
				s.writeRepair(lt, pc, *o.write, now)
			case o.send != nil:
				s.propose(lt, a.info, pc, *o.send)
			}
			if o.stale || o.moving {
				allHealthy = false
				continue
			}
			if need {
				allHealthy = false
			} else if !pc.Primary.IsValid() && len(pc.Secondaries) == 0 {
				s.warnDead(lt, pc, in, now)
			}
			if pc.Primary.IsValid() {
				delete(lt.deadWarned, g)
			}
		}
	}
	if level >= admin.MetaFunctionLevel_fl_lively && allHealthy && len(alive) >= s.opts.MinLiveNodes {
		s.mu.Lock()
		fresh := balance(balanceInput{apps: apps, alive: alive, excluded: func(n string) bool { return lt.excluded[n] }, busy: lt.ops.busy, maxMoves: s.opts.BalanceMoves - lt.ops.moveCount()})
		for g, p := range fresh {
			lt.ops.add(g, p, fromBalancer, now)
		}
		s.mu.Unlock()
		if len(fresh) > 0 {
			s.log.Info("balancer planned moves", "moves", len(fresh), "counts", countMoves(fresh).String())
			go s.cureAll(lt)
		}
	}
}

// deadWarnEvery spaces the log lines about a partition that lost every member.
const deadWarnEvery = time.Minute

// warnDead tells the operator, once a minute, why a partition that lost every
// member is not being given a new primary: only the member that left last is sure
// to hold every acknowledged write, so the checker waits for it. Caller holds
// lt.cureMu.
func (s *Server) warnDead(lt *leaderTerm, pc *layer2.PartitionConfiguration, in cureInput, now time.Time) {
	g := *pc.Pid
	if last, ok := lt.deadWarned[g]; ok && now.Sub(last) < deadWarnEvery {
		return
	}
	lt.deadWarned[g] = now
	if len(pc.LastDrops) == 0 {
		s.log.Warn("partition has no member and no record of its last one: it needs an operator", "gpid", g.String(), "ballot", pc.Ballot)
		return
	}
	last := pc.LastDrops[len(pc.LastDrops)-1].String()
	why := "it is not alive"
	if in.alive(last) {
		why = "it is alive but does not report the replica"
	}
	s.log.Warn("partition lost every member: waiting for the one that left last", "gpid", g.String(), "ballot", pc.Ballot, "last", last, "why", why)
}

// cureInput gathers what the checker needs for one table. Caller must not hold
// s.mu.
func (s *Server) cureInput(lt *leaderTerm, appID int32, alive []string, now time.Time) cureInput {
	s.mu.RLock()
	l := countLoad(lt.state, appID)
	reports := map[string]map[base.Gpid]*metadata.ReplicaInfo{}
	for node, r := range lt.reports {
		m := map[base.Gpid]*metadata.ReplicaInfo{}
		for _, ri := range r.StoredReplicas {
			if ri != nil && ri.Pid != nil {
				m[*ri.Pid] = ri
			}
		}
		reports[node] = m
	}
	// The inner maps are copied too: cure reads them after s.mu is released,
	// while a configuration update may record a drop into them under s.mu.
	drops := map[base.Gpid]map[string]time.Time{}
	for g, m := range lt.drops {
		drops[g] = maps.Clone(m)
	}
	excluded := map[string]bool{}
	for n := range lt.excluded {
		excluded[n] = true
	}
	aliveSet := map[string]bool{}
	for _, n := range alive {
		aliveSet[n] = true
	}
	s.mu.RUnlock()
	l.nodes = alive
	return cureInput{
		now:   now,
		alive: func(n string) bool { return aliveSet[n] },
		report: func(n string, g base.Gpid) *metadata.ReplicaInfo {
			return reports[n][g]
		},
		dropped: func(g base.Gpid, n string) time.Time {
			if t, ok := drops[g][n]; ok {
				return t
			}
			// Unknown (dropped before this leader's term): the wait starts now.
			return lt.start
		},
		assignDelay: s.opts.AssignDelay,
		min2pc:      s.opts.Min2PCReplicas,
		load:        l,
		excluded:    func(n string) bool { return excluded[n] },
	}
}

// logEnded logs a move that the operator controller ended.
func (s *Server) logEnded(g base.Gpid, e *endedMove) {
	if e == nil {
		return
	}
	switch e.how {
	case moveFinished:
		s.log.Info("balancing move done", "gpid", g.String(), "kind", e.kind)
	case moveTimedOut:
		s.log.Warn("balancing move abandoned", "gpid", g.String(), "kind", e.kind, "stuck_at", e.stuckAt.String())
	case movePreempted:
		s.log.Warn("balancing move abandoned for a repair", "gpid", g.String(), "kind", e.kind)
	}
}

// writeRepair persists and applies a change the leader makes itself (the
// checker's removal of a dead primary), unless the partition changed since pc was
// read: the next pass then looks again.
func (s *Server) writeRepair(lt *leaderTerm, pc *layer2.PartitionConfiguration, st step, now time.Time) {
	g := *pc.Pid
	lt.opMu.Lock()
	defer lt.opMu.Unlock()
	s.mu.RLock()
	cur := lt.state.apps[g.Appid].partitions[g.PartitionIndex]
	s.mu.RUnlock()
	if cur.Ballot != pc.Ballot {
		return
	}
	if err := s.writePartition(lt.ctx, st.next, false); err != nil {
		s.log.Error("guardian change failed", "gpid", g.String(), "err", err)
		return
	}
	s.mu.Lock()
	lt.replace(st.next, now)
	s.mu.Unlock()
	s.log.Info("removed a dead primary", "gpid", g.String(), "node", st.node, "ballot", st.next.Ballot)
}

// propose sends a proposal the operator controller ordered.
func (s *Server) propose(lt *leaderTerm, info *layer2.AppInfo, pc *layer2.PartitionConfiguration, st step) {
	s.log.Info("guardian proposal", "gpid", pc.Pid.String(), "type", st.kind.String(), "target", st.target, "node", st.node, "ballot", pc.Ballot)
	s.sendProposal(lt, info, pc, st.kind, st.target, st.node)
}

// placeApp gives the new partitions of a table their first configuration (all
// members at once: every replica starts empty), persists it and tells the members.
func (s *Server) placeApp(lt *leaderTerm, appID int32) error {
	lt.opMu.Lock()
	defer lt.opMu.Unlock()
	s.mu.RLock()
	a := lt.state.apps[appID]
	alive := lt.aliveNodes()
	l := countLoad(lt.state, appID)
	s.mu.RUnlock()
	if a == nil || a.info.Status != layer2.AppStatus_AS_AVAILABLE {
		return nil
	}
	var placed []*layer2.PartitionConfiguration
	for _, pc := range a.partitions {
		if !isNewPartition(pc) {
			continue
		}
		next := placeNew(pc, alive, l)
		if next == nil {
			break
		}
		if err := s.writePartition(lt.ctx, next, false); err != nil {
			// What was written so far is applied below; the rest waits for the
			// next pass.
			break
		}
		placed = append(placed, next)
	}
	s.mu.Lock()
	for _, pc := range placed {
		lt.replace(pc, s.opts.Now())
	}
	info := lt.state.apps[appID].info
	s.mu.Unlock()
	for _, pc := range placed {
		s.proposeInstall(lt, info, pc)
	}
	if len(placed) > 0 {
		s.log.Info("placed new partitions", "table", info.AppName, "app_id", appID, "count", len(placed))
	}
	return nil
}
