package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
)

// The status of restores (spec: operations.md 2.6). Each member of a
// restored partition's first configuration downloads the partition in the
// background and reports its progress and its outcome
// (RPC_CM_REPORT_RESTORE_STATUS). A partition is restored once its primary
// has reported its copy complete (or skipped as bad); the table is restored
// once every partition was, and until then RPC_CM_QUERY_PARTITION_CONFIG
// answers ERR_BUSY_CREATING for it, as upstream does for a table being
// created, so that no client reads or writes a table only partly restored.
//
// The record of a restore is in the store (<cluster_root>/restore/<app_id>),
// written before the table is created and at each outcome a member reports,
// so that a new leader knows which tables are still restoring and which
// members have their data. Progress is in memory only (a new leader learns it
// from the next reports).

// restoreRecord is the persisted part of one restore; per partition lists
// have one entry per partition.
type restoreRecord struct {
	AppID    int32  `json:"app_id"`
	AppName  string `json:"app_name"`
	BackupID int64  `json:"backup_id"`
	// Restored lists, per partition, the nodes that reported their copy
	// complete (or skipped as bad, which Skipped says).
	Restored [][]string `json:"restored"`
	Skipped  []bool     `json:"skipped"`
	// Done marks the partitions restored: their primary reported. Sticky, so
	// that a later move of the primary to a learner does not undo it.
	Done     []bool `json:"done"`
	Finished bool   `json:"finished"`
	// Failed holds the reason a member could not restore its copy because
	// the backup is missing or damaged (the table is then dropped).
	Failed string `json:"failed,omitempty"`
}

// restoreLive is one restore: its record and, in memory, the last status and
// progress each member reported, per partition.
type restoreLive struct {
	rec     restoreRecord
	reports []map[string]memberReport
}

type memberReport struct {
	status   string
	progress int32
}

// shown is what query_restore_status says of an unfinished partition: the
// primary's report, else the most advanced member's.
func (l *restoreLive) shown(pidx int, primary string) memberReport {
	if r, ok := l.reports[pidx][primary]; ok {
		return r
	}
	var best memberReport
	for _, r := range l.reports[pidx] {
		if best.status == "" || r.progress > best.progress {
			best = r
		}
	}
	return best
}

// restores is the meta server's restore state, that of the current leader
// term (loaded when it began).
type restores struct {
	// persistMu serialises the writes of records, each built under it from
	// the record in memory, so that no write undoes another's.
	persistMu sync.Mutex

	mu   sync.Mutex
	byID map[int32]*restoreLive
}

func newRestores() *restores { return &restores{byID: map[int32]*restoreLive{}} }

func restoresPath(root string) string { return joinPath(root, "restore") }

func newRestoreLive(rec restoreRecord) *restoreLive {
	l := &restoreLive{rec: rec, reports: make([]map[string]memberReport, len(rec.Done))}
	for i := range l.reports {
		l.reports[i] = map[string]memberReport{}
	}
	return l
}

// registerRestoreStatus installs the restore status RPCs.
func (s *Server) registerRestoreStatus(mux *rpc.Mux) {
	rpc.Handle(mux, rpc.CodeQueryRestoreStatus, s.queryRestoreStatus)
	rpc.Handle(mux, rpc.CodeReportRestoreStatus, s.reportRestoreStatus)
}

// loadRestores reads the restore records when a term begins.
func (s *Server) loadRestores(lt *leaderTerm) {
	byID := map[int32]*restoreLive{}
	err := s.retryStore(lt.ctx, "load restores", func() error {
		dir := restoresPath(s.opts.ClusterRoot)
		names, err := s.opts.Store.Children(lt.ctx, dir)
		if errors.Is(err, metastore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, n := range names {
			data, err := s.opts.Store.Get(lt.ctx, joinPath(dir, n))
			if err != nil {
				return err
			}
			var r restoreRecord
			if err := json.Unmarshal(data, &r); err != nil || !r.wellFormed() {
				s.log.Error("undecodable restore record ignored", "node", n, "err", err)
				continue
			}
			byID[r.AppID] = newRestoreLive(r)
		}
		return nil
	}, nil)
	if err != nil {
		return
	}
	s.restores.mu.Lock()
	s.restores.byID = byID
	s.restores.mu.Unlock()
}

func (r *restoreRecord) wellFormed() bool {
	n := len(r.Done)
	return n > 0 && len(r.Restored) == n && len(r.Skipped) == n
}

func (r *restoreRecord) clone() restoreRecord {
	c := *r
	c.Restored = make([][]string, len(r.Restored))
	for i, nodes := range r.Restored {
		c.Restored[i] = slices.Clone(nodes)
	}
	c.Skipped = slices.Clone(r.Skipped)
	c.Done = slices.Clone(r.Done)
	return c
}

func (s *Server) writeRestore(ctx context.Context, r *restoreRecord, create bool) error {
	// A record left by a restore whose table was never created (the leader
	// died between the two writes) has the same app id: putRecord replaces it.
	return s.putRecord(ctx, restoresPath(s.opts.ClusterRoot), joinPath(restoresPath(s.opts.ClusterRoot), strconv.Itoa(int(r.AppID))), r, create)
}

// beginRestore persists the record of a restore into a table about to be
// created with app id id.
func (s *Server) beginRestore(ctx context.Context, id int32, name string, backupID int64, partitions int32) error {
	rec := restoreRecord{AppID: id, AppName: name, BackupID: backupID,
		Restored: make([][]string, partitions), Skipped: make([]bool, partitions), Done: make([]bool, partitions)}
	s.restores.persistMu.Lock()
	defer s.restores.persistMu.Unlock()
	if err := s.writeRestore(ctx, &rec, true); err != nil {
		return err
	}
	s.restores.mu.Lock()
	s.restores.byID[id] = newRestoreLive(rec)
	s.restores.mu.Unlock()
	return nil
}

// abandonRestore forgets the record of a restore whose table was not
// created (best effort: a record left behind names a table that does not
// exist, and one created later under the same id and name is a new restore).
func (s *Server) abandonRestore(ctx context.Context, id int32) {
	s.restores.persistMu.Lock()
	defer s.restores.persistMu.Unlock()
	if err := s.opts.Store.Delete(ctx, joinPath(restoresPath(s.opts.ClusterRoot), strconv.Itoa(int(id)))); err != nil {
		s.log.Warn("removing the record of a restore not started failed", "app_id", id, "err", err)
	}
	s.restores.mu.Lock()
	delete(s.restores.byID, id)
	s.restores.mu.Unlock()
}

// restoreBlocks reports whether table a is still being restored, settling
// the partitions whose primary has reported since.
func (s *Server) restoreBlocks(ctx context.Context, lt *leaderTerm, a *app) bool {
	s.restores.mu.Lock()
	l := s.restores.byID[a.info.AppID]
	blocked := l != nil && !l.rec.Finished && l.rec.AppName == a.info.AppName
	s.restores.mu.Unlock()
	if !blocked {
		return false
	}
	return !s.settleRestore(ctx, lt, a.info.AppID)
}

// settleRestore marks done the partitions whose current primary reported its
// copy, and the restore finished when all are, persisting what changed. It
// reports whether the restore is finished.
func (s *Server) settleRestore(ctx context.Context, lt *leaderTerm, id int32) bool {
	s.mu.RLock()
	a := lt.state.apps[id]
	var primaries []string
	if a != nil {
		for _, pc := range a.partitions {
			primaries = append(primaries, addrString(pc.Primary))
		}
	}
	s.mu.RUnlock()

	s.restores.persistMu.Lock()
	defer s.restores.persistMu.Unlock()
	s.restores.mu.Lock()
	l := s.restores.byID[id]
	if l == nil || l.rec.Finished {
		s.restores.mu.Unlock()
		return true
	}
	next := l.rec.clone()
	s.restores.mu.Unlock()
	changed := false
	all := len(primaries) == len(next.Done)
	for i := range next.Done {
		if !next.Done[i] && i < len(primaries) && primaries[i] != "" && slices.Contains(next.Restored[i], primaries[i]) {
			next.Done[i], changed = true, true
		}
		all = all && next.Done[i]
	}
	if all {
		next.Finished, changed = true, true
	}
	if !changed {
		return false
	}
	if err := s.writeRestore(ctx, &next, false); err != nil {
		s.log.Warn("persisting a restore's progress failed", "app_id", id, "err", err)
		return false
	}
	s.restores.mu.Lock()
	if cur := s.restores.byID[id]; cur != nil {
		cur.rec = next
	}
	s.restores.mu.Unlock()
	if next.Finished {
		s.log.Info("table restored: every partition's primary has its data", "table", next.AppName, "app_id", id, "backup_id", next.BackupID)
	}
	return next.Finished
}

// reportRestoreStatus takes a replica server's report on its copy of a
// restored partition (RPC_CM_REPORT_RESTORE_STATUS).
func (s *Server) reportRestoreStatus(ctx context.Context, call *rpc.Call, req *backup.ConfigurationReportRestoreStatusRequest) (*backup.ConfigurationReportRestoreStatusResponse, error) {
	resp := backup.NewConfigurationReportRestoreStatusResponse()
	if req.Pid == nil {
		resp.Err = errCode(base.ErrInvalidParameters)
		return resp, nil
	}
	g := *req.Pid
	status := req.RestoreStatus.Name()
	reason := ""
	if req.Reason != nil {
		reason = *req.Reason
	}
	code, _ := s.leaderOp(opSpec{what: "report restore status"}, func(op *leaderOp) error {
		// The member speaks for itself: with cluster authentication the
		// connection says who it is, else the body does.
		claimed := call.Peer().Node
		if claimed == "" && req.Node != nil {
			claimed = *req.Node
		}
		if req.Node != nil && !rpc.SameNode(claimed, *req.Node) {
			s.refusePeer(call, rpc.CodeReportRestoreStatus, "restore status for another node", "node", *req.Node)
			return refuse(base.ErrACLDeny, "")
		}
		s.mu.RLock()
		a := op.lt.state.apps[g.Appid]
		var node string
		member := false
		if a != nil && g.PartitionIndex >= 0 && int(g.PartitionIndex) < len(a.partitions) {
			for _, m := range members(a.partitions[g.PartitionIndex]) {
				if rpc.SameNode(claimed, m) {
					node, member = m, true
				}
			}
		}
		dropped := a != nil && a.info.Status != layer2.AppStatus_AS_AVAILABLE
		s.mu.RUnlock()
		switch {
		case a == nil:
			return refuse(base.ErrAppNotExist, "")
		case dropped:
			return refuse(base.ErrAppDropped, "")
		case !member:
			// Not a member (any more): its copy does not make the partition.
			s.refusePeer(call, rpc.CodeReportRestoreStatus, "restore status from a server that is not a member", "gpid", g.String())
			return refuse(base.ErrInvalidState, "")
		}
		s.restores.persistMu.Lock()
		s.restores.mu.Lock()
		l := s.restores.byID[g.Appid]
		if l == nil {
			s.restores.mu.Unlock()
			s.restores.persistMu.Unlock()
			return refuse(base.ErrObjectNotFound, "")
		}
		pidx := g.PartitionIndex
		l.reports[pidx][node] = memberReport{status: status, progress: min(max(req.Progress, 0), 1000)}
		// In progress is ERR_OK below 1000, as upstream reports it.
		final := status == base.ErrOK && req.Progress == 1000 || status == base.ErrIgnoreBadData
		var next *restoreRecord
		switch {
		case final && !slices.Contains(l.rec.Restored[pidx], node):
			c := l.rec.clone()
			c.Restored[pidx] = append(c.Restored[pidx], node)
			c.Skipped[pidx] = c.Skipped[pidx] || status == base.ErrIgnoreBadData
			next = &c
		case status == base.ErrCorruption && l.rec.Failed == "":
			c := l.rec.clone()
			c.Failed = fmt.Sprintf("partition %s on %s: %s", g.String(), node, reason)
			next = &c
		}
		s.restores.mu.Unlock()
		var err error
		if next != nil {
			// Persisted before it counts: the member sends it again until
			// answered.
			if err = s.writeRestore(op.lt.ctx, next, false); err == nil {
				s.restores.mu.Lock()
				l.rec = *next
				s.restores.mu.Unlock()
			}
		}
		s.restores.persistMu.Unlock()
		if err != nil {
			return persisted(err)
		}
		switch status {
		case base.ErrOK:
			if final {
				s.log.Info("a member restored its copy of a partition", "gpid", g.String(), "node", node)
			}
		case base.ErrIgnoreBadData:
			s.log.Warn("a member skipped a partition whose backup is missing or damaged: it starts empty", "gpid", g.String(), "node", node, "reason", reason)
		case base.ErrCorruption:
			s.log.Error("a partition's backup is missing or damaged: the restore fails", "gpid", g.String(), "node", node, "reason", reason)
		default:
			s.log.Warn("a member could not restore its copy of a partition", "gpid", g.String(), "node", node, "status", status, "reason", reason)
		}
		if final {
			s.settleRestore(op.lt.ctx, op.lt, g.Appid)
		}
		return nil
	})
	resp.Err = errCode(code)
	return resp, nil
}

// queryRestoreStatus answers RPC_CM_QUERY_RESTORE_STATUS: per partition,
// ERR_OK and 1000 once restored (ERR_IGNORE_BAD_DATA if skipped as bad),
// else the last status and progress a member reported (ERR_OK below 1000
// while it downloads, or the error that stopped it).
func (s *Server) queryRestoreStatus(ctx context.Context, call *rpc.Call, req *backup.ConfigurationQueryRestoreRequest) (*backup.ConfigurationQueryRestoreResponse, error) {
	resp := backup.NewConfigurationQueryRestoreResponse()
	code, _ := s.leaderOp(opSpec{what: "query restore status"}, func(op *leaderOp) error {
		s.mu.RLock()
		a := op.lt.state.apps[req.RestoreAppID]
		var status layer2.AppStatus
		var primaries []string
		if a != nil {
			status = a.info.Status
			for _, pc := range a.partitions {
				primaries = append(primaries, addrString(pc.Primary))
			}
		}
		n := len(primaries)
		s.mu.RUnlock()
		switch {
		case a == nil:
			return refuse(base.ErrAppNotExist, "")
		case status == layer2.AppStatus_AS_DROPPED || status == layer2.AppStatus_AS_DROPPING:
			return refuse(base.ErrAppDropped, "")
		}
		s.settleRestore(op.lt.ctx, op.lt, req.RestoreAppID)
		s.restores.mu.Lock()
		defer s.restores.mu.Unlock()
		l := s.restores.byID[req.RestoreAppID]
		for i := range n {
			st, prog := base.ErrOK, int32(1000)
			switch {
			case l == nil || l.rec.Finished || i >= len(l.rec.Done):
				// Not a restored table, or restored: every partition is there.
			case l.rec.Done[i] && l.rec.Skipped[i]:
				st = base.ErrIgnoreBadData
			case l.rec.Done[i]:
			default:
				// Ongoing is ERR_OK below 1000, as upstream answers it.
				r := l.shown(i, primaries[i])
				st, prog = r.status, min(r.progress, 999)
				if st == "" || st == base.ErrIgnoreBadData {
					// No report yet, or a member skipped its copy and the
					// primary has not reported yet.
					st = base.ErrOK
				}
			}
			resp.RestoreStatus = append(resp.RestoreStatus, base.NewErrorCode(st))
			resp.RestoreProgress = append(resp.RestoreProgress, prog)
		}
		return nil
	})
	resp.Err = errCode(code)
	return resp, nil
}
