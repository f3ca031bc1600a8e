package replica

import (
	"context"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/membership"
	"github.com/pegasusgo/pegasus/idl/base"
)

// localView is the membership machine's read-only view of the server's replicas.
type localView struct{ s *Stub }

func (v localView) Held(g base.Gpid) (int64, bool) {
	p := v.s.get(g)
	if p == nil {
		return 0, false
	}
	return p.ballot.Load(), true
}

func (v localView) Open() []base.Gpid {
	ps := v.s.all()
	out := make([]base.Gpid, len(ps))
	for i, p := range ps {
		out[i] = p.gpid
	}
	return out
}

func (v localView) Retired(g base.Gpid) bool { return v.s.wasRetired(g) }

func (v localView) Restoring(g base.Gpid) bool { return v.s.restoreRunning(g) != nil }

// withMembers runs f on the membership machine, serialised with its other events.
func (s *Stub) withMembers(f func(m *membership.Machine)) {
	s.memMu.Lock()
	defer s.memMu.Unlock()
	f(s.members)
}

// stepMembers feeds one event to the membership machine and carries out the
// actions it returns, outside the machine's lock (they open replicas, write
// disks and send RPCs).
func (s *Stub) stepMembers(ev func(m *membership.Machine, local membership.Local) []membership.Action) {
	s.memMu.Lock()
	acts := ev(s.members, localView{s})
	s.memMu.Unlock()
	s.carryOut(acts)
}

// earlyHeld is the number of proposals held until the cluster is confirmed.
func (s *Stub) earlyHeld() int {
	s.memMu.Lock()
	defer s.memMu.Unlock()
	return s.members.EarlyCount()
}

// carryOut performs the membership machine's actions in order.
func (s *Stub) carryOut(acts []membership.Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case membership.ApplyConfig:
			if p := s.get(a.G); p != nil {
				p.post(configEv{cfg: a.Config, info: a.Info})
			}
		case membership.Create:
			p, err := s.createInstalled(a.G, a.Info, a.Config)
			if err != nil {
				s.log.Warn("creating replica failed", "gpid", a.G.String(), "err", err)
				continue
			}
			if p == nil {
				continue // restored from a backup in the background (restore.go)
			}
			p.post(configEv{cfg: a.Config, info: a.Info})
		case membership.Reopen:
			p, err := s.reopen(a.G)
			switch a.For {
			case membership.ReopenListedPrimary:
				if err != nil {
					s.log.Warn("reopening a replica listed as primary failed", "gpid", a.G.String(), "err", err)
				}
				if p == nil {
					s.stepMembers(func(m *membership.Machine, local membership.Local) []membership.Action {
						return m.ReopenFailed(a, local, time.Now())
					})
					continue
				}
			case membership.ReopenAssignPrimary:
				if err != nil {
					s.log.Warn("reopening a replica to assign it primary failed", "gpid", a.G.String(), "err", err)
					continue
				}
			}
			s.carryOut(a.Then)
		case membership.CheckStale:
			if p := s.get(a.G); p != nil {
				p.post(staleCheckEv{check: a})
			}
		case membership.Retire:
			if p := s.get(a.G); p != nil {
				p.retire(a.Reason)
			}
		case membership.Disown:
			s.disownPrimary(a.Info, a.Config)
		case membership.RequestChange:
			p := s.get(a.G)
			if p == nil {
				continue
			}
			p.touch()
			p.post(changeEv{change: a.Change})
		case membership.AddLearner:
			s.addLearner(a.G, a.Node, a.ForLB)
		case membership.GarbageCollect:
			s.garbageCollect(a.G)
		case membership.SignalConfirmed:
			close(s.confirmed)
		case membership.Release:
			s.onProposal(a.Req)
		case membership.Log:
			s.log.Log(context.Background(), a.Level, a.Msg, a.Args...)
		}
	}
}
