package meta

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/internal/coldbackup"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage/blockservice"
)

// Backup policies (spec: operations.md 2.5): a policy backs up its tables at
// its start hour and then every interval, and keeps the newest
// backup_history_count_to_keep runs.
//
// A policy is persisted at <cluster_root>/backup/<policy_name> and each of its
// runs at <cluster_root>/backup/<policy_name>/<backup_id>, as upstream lays
// them out. A run is one one-time backup per table (backup.go does the work,
// and resumes it after a leader change): the tables of a run get consecutive
// backup ids starting at the run's id, in app id order, so the first table's
// backup has the run's id. Each table backup is restorable on its own with
// its id (restore_app -t). The run records which backup id each table got.
//
// The leader looks at every policy each PolicyCheckInterval (policyPass):
// it finishes a run once every table backup of it has finished, starts the
// next when it is due (never while one runs), and deletes the runs beyond
// the history count: data first (B/<id> of each table backup), then the
// table backups' records, then the run's record, so that no record is left
// pointing at deleted data as if it were usable. A run being deleted is
// marked DELETING first and its deletion is finished by whichever leader
// sees it.

const (
	// policyCheckEvery is upstream's issue_backup_interval_ms: how often a
	// policy looks at the clock, at most.
	policyCheckEvery = 5 * time.Minute
	// anyHour is the start hour that lets a run begin at any hour.
	anyHour = 24
	// runAlive and runDeleting are upstream's backup_info info_status.
	runAlive    = 1
	runDeleting = 2
)

// policyStartTime is upstream's start_time {hour, minute}; hour 24 = any.
type policyStartTime struct {
	Hour   int `json:"hour"`
	Minute int `json:"minute"`
}

func (t policyStartTime) String() string { return fmt.Sprintf("%02d:%02d", t.Hour, t.Minute) }

// parseStartTime reads "H:M". ok is false when it is not a valid time of
// day (hour 0-24, minute 0-59, 24 only with minute 0).
func parseStartTime(s string) (t policyStartTime, ok bool) {
	h, m, found := strings.Cut(strings.TrimSpace(s), ":")
	if !found {
		return policyStartTime{Hour: anyHour}, false
	}
	hour, err1 := strconv.Atoi(strings.TrimSpace(h))
	minute, err2 := strconv.Atoi(strings.TrimSpace(m))
	if err1 != nil || err2 != nil || hour < 0 || hour > 24 || minute < 0 || minute > 59 || hour == 24 && minute != 0 {
		return policyStartTime{Hour: anyHour}, false
	}
	return policyStartTime{Hour: hour, Minute: minute}, true
}

// policyRecord is a policy as persisted (upstream's policy JSON).
type policyRecord struct {
	Name         string           `json:"policy_name"`
	Provider     string           `json:"backup_provider_type"`
	AppIDs       []int32          `json:"app_ids"`
	AppNames     map[int32]string `json:"app_names"`
	IntervalSec  int64            `json:"backup_interval_seconds"`
	HistoryCount int32            `json:"backup_history_count_to_keep"`
	Disabled     bool             `json:"is_disable"`
	Start        policyStartTime  `json:"start_time"`
}

func (p *policyRecord) clone() *policyRecord {
	c := *p
	c.AppIDs = slices.Clone(p.AppIDs)
	c.AppNames = make(map[int32]string, len(p.AppNames))
	for k, v := range p.AppNames {
		c.AppNames[k] = v
	}
	return &c
}

func (p *policyRecord) interval() time.Duration { return time.Duration(p.IntervalSec) * time.Second }

// policyRun is one run of a policy (upstream's backup_info, plus the backup
// id of each table and whether a table backup failed).
type policyRun struct {
	BackupID int64            `json:"backup_id"`
	StartMs  int64            `json:"start_time_ms"`
	EndMs    int64            `json:"end_time_ms"`
	AppIDs   []int32          `json:"app_ids"`
	AppNames map[int32]string `json:"app_names"`
	Status   int32            `json:"info_status"`
	Tables   map[int32]int64  `json:"table_backup_ids"`
	Failed   bool             `json:"failed,omitempty"`
}

func (r *policyRun) finished() bool { return r.EndMs > 0 }

func (r *policyRun) clone() *policyRun {
	c := *r
	c.AppIDs = slices.Clone(r.AppIDs)
	c.AppNames = make(map[int32]string, len(r.AppNames))
	for k, v := range r.AppNames {
		c.AppNames[k] = v
	}
	c.Tables = make(map[int32]int64, len(r.Tables))
	for k, v := range r.Tables {
		c.Tables[k] = v
	}
	return &c
}

// policyState is a policy with its runs, by backup id ascending.
type policyState struct {
	rec  *policyRecord
	runs []*policyRun
}

// running returns the run in progress, if any.
func (st *policyState) running() *policyRun {
	for _, r := range st.runs {
		if !r.finished() && r.Status != runDeleting {
			return r
		}
	}
	return nil
}

// backupPolicies is the meta server's policy state, that of the current
// leader term (loaded when it began).
type backupPolicies struct {
	// opMu serialises the changes (RPCs and the scheduler): each is
	// persisted, then applied, under it.
	opMu sync.Mutex

	mu       sync.Mutex
	policies map[string]*policyState
}

func newBackupPolicies() *backupPolicies {
	return &backupPolicies{policies: map[string]*policyState{}}
}

// snapshot returns a copy of a policy and its runs (nil if unknown).
func (b *backupPolicies) snapshot(name string) *policyState {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.policies[name]
	if st == nil {
		return nil
	}
	c := &policyState{rec: st.rec.clone()}
	for _, r := range st.runs {
		c.runs = append(c.runs, r.clone())
	}
	return c
}

func (b *backupPolicies) names() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.policies))
	for n := range b.policies {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// setPolicy installs a policy record (keeping its runs).
func (b *backupPolicies) setPolicy(rec *policyRecord) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st := b.policies[rec.Name]; st != nil {
		st.rec = rec
		return
	}
	b.policies[rec.Name] = &policyState{rec: rec}
}

// setRun installs or replaces a run; nil deletes the run id.
func (b *backupPolicies) setRun(name string, id int64, run *policyRun) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.policies[name]
	if st == nil {
		return
	}
	i := slices.IndexFunc(st.runs, func(r *policyRun) bool { return r.BackupID == id })
	switch {
	case run == nil && i >= 0:
		st.runs = slices.Delete(st.runs, i, i+1)
	case run == nil:
	case i >= 0:
		st.runs[i] = run
	default:
		st.runs = append(st.runs, run)
		slices.SortFunc(st.runs, func(a, b *policyRun) int { return cmp.Compare(a.BackupID, b.BackupID) })
	}
}

func policiesPath(root string) string { return joinPath(root, "backup") }

func policyPath(root, name string) string { return joinPath(policiesPath(root), name) }

func policyRunPath(root, name string, id int64) string {
	return joinPath(policyPath(root, name), strconv.FormatInt(id, 10))
}

// registerBackupPolicies installs the backup policy RPCs.
func (s *Server) registerBackupPolicies(mux *rpc.Mux) {
	rpc.Handle(mux, rpc.CodeAddBackupPolicy, s.addBackupPolicy)
	rpc.Handle(mux, rpc.CodeQueryBackupPolicy, s.queryBackupPolicy)
	rpc.Handle(mux, rpc.CodeModifyBackupPolicy, s.modifyBackupPolicy)
}

// checkBackupInterval returns why an interval is refused ("" if it is not).
func (s *Server) checkBackupInterval(sec int64) string {
	if minSec := int64(s.opts.MinBackupInterval / time.Second); sec < minSec {
		if minSec == 86400 {
			return "backup interval must be >= 86400 (1 day)"
		}
		return fmt.Sprintf("backup interval must be >= %d ([meta_server] min_backup_interval_seconds)", minSec)
	}
	return ""
}

var policyNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// checkPolicyName returns why a new policy name is refused ("" if it is
// not): upstream reserves backup_info and wants a Prometheus metric and label
// name, since the policy names a metric entity.
func checkPolicyName(name string, exists bool) string {
	switch {
	case strings.Contains(name, coldbackup.BackupInfoFile):
		return "policy name is reserved"
	case !policyNameRE.MatchString(name) || strings.HasPrefix(name, "__"):
		return "policy name should match regex '[a-zA-Z_][a-zA-Z0-9_]*' when act as a metric label in prometheus"
	case exists:
		return "policy name is already exist"
	}
	return ""
}

func (s *Server) addBackupPolicy(ctx context.Context, call *rpc.Call, req *backup.ConfigurationAddBackupPolicyRequest) (*backup.ConfigurationAddBackupPolicyResponse, error) {
	resp := &backup.ConfigurationAddBackupPolicyResponse{}
	if s.opts.ColdBackupDisabled {
		resp.Err = errCode(base.ErrServiceNotActive)
		resp.HintMessage = coldBackupDisabledHint
		return resp, nil
	}
	code, hint := s.leaderOp(opSpec{what: "add backup policy"}, func(op *leaderOp) error {
		lt := op.lt
		if h := s.checkBackupInterval(req.BackupIntervalSeconds); h != "" {
			return refuse(base.ErrInvalidParameters, h)
		}
		// Not checked by upstream's meta (its shell does): a policy that keeps
		// no backup would delete each one as it completes.
		if req.BackupHistoryCountToKeep <= 0 {
			return refuse(base.ErrInvalidParameters, "backup_history_count_to_keep must be > 0")
		}
		names := map[int32]string{}
		s.mu.RLock()
		for _, id := range req.AppIds {
			a := lt.state.apps[id]
			if a == nil || a.info.Status != layer2.AppStatus_AS_AVAILABLE {
				s.mu.RUnlock()
				return refuse(base.ErrInvalidParameters, fmt.Sprintf("invalid app %d", id))
			}
			names[id] = a.info.AppName
		}
		s.mu.RUnlock()
		s.pol.opMu.Lock()
		defer s.pol.opMu.Unlock()
		if lt.ctx.Err() != nil {
			return errNotLeader
		}
		if h := checkPolicyName(req.PolicyName, s.pol.snapshot(req.PolicyName) != nil); h != "" {
			return refuse(base.ErrInvalidParameters, fmt.Sprintf("invalid policy name: '%s', %s", req.PolicyName, h))
		}
		if _, err := s.cold.providers.Get(req.BackupProviderType); err != nil {
			return refuse(base.ErrInvalidParameters, "invalid backup_provider_type: "+req.BackupProviderType)
		}
		start := policyStartTime{Hour: anyHour}
		if req.StartTime != "" {
			// An unreadable start time keeps "any hour", as upstream.
			start, _ = parseStartTime(req.StartTime)
		}
		ids := slices.Sorted(func(yield func(int32) bool) {
			for id := range names {
				if !yield(id) {
					return
				}
			}
		})
		rec := &policyRecord{
			Name: req.PolicyName, Provider: req.BackupProviderType, AppIDs: ids, AppNames: names,
			IntervalSec: req.BackupIntervalSeconds, HistoryCount: req.BackupHistoryCountToKeep, Start: start,
		}
		if err := s.writePolicy(lt.ctx, rec, true); err != nil {
			return persisted(err)
		}
		s.pol.setPolicy(rec)
		s.log.Info("backup policy added", "policy", rec.Name, "app_ids", rec.AppIDs, "interval_s", rec.IntervalSec,
			"history", rec.HistoryCount, "start_time", rec.Start.String(), "provider", rec.Provider)
		return nil
	})
	resp.Err = errCode(code)
	resp.HintMessage = hint
	return resp, nil
}

// writePolicy persists a policy record (creating it the first time).
func (s *Server) writePolicy(ctx context.Context, rec *policyRecord, create bool) error {
	return s.putRecord(ctx, policiesPath(s.opts.ClusterRoot), policyPath(s.opts.ClusterRoot, rec.Name), rec, create)
}

// writeRun persists a run record (creating it the first time); its parent,
// the policy's node, exists.
func (s *Server) writeRun(ctx context.Context, name string, run *policyRun, create bool) error {
	return s.putRecord(ctx, "", policyRunPath(s.opts.ClusterRoot, name, run.BackupID), run, create)
}

// putRecord writes v as JSON at path. create creates the node, and dir first
// when one is given; a node already there was left by an earlier attempt whose
// answer was lost (the record is new to what the leader loaded from the
// store), and is replaced.
func (s *Server) putRecord(ctx context.Context, dir, path string, v any, create bool) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if create {
		if dir != "" {
			if err := metastore.EnsurePath(ctx, s.opts.Store, dir); err != nil {
				return err
			}
		}
		if err := s.opts.Store.Create(ctx, path, data); !errors.Is(err, metastore.ErrExists) {
			return err
		}
	}
	return s.opts.Store.Set(ctx, path, data)
}

func (s *Server) queryBackupPolicy(ctx context.Context, call *rpc.Call, req *backup.ConfigurationQueryBackupPolicyRequest) (*backup.ConfigurationQueryBackupPolicyResponse, error) {
	resp := &backup.ConfigurationQueryBackupPolicyResponse{}
	if s.opts.ColdBackupDisabled {
		resp.Err = errCode(base.ErrServiceNotActive)
		hint := coldBackupDisabledHint
		resp.HintMsg = &hint
		return resp, nil
	}
	code, _ := s.leaderOp(opSpec{what: "query backup policy"}, func(op *leaderOp) error {
		names := req.PolicyNames
		if len(names) == 0 {
			names = s.pol.names()
		}
		var unknown []string
		resp.Policys = []*backup.PolicyEntry{}
		resp.BackupInfos = [][]*backup.BackupEntry{}
		for _, name := range names {
			st := s.pol.snapshot(name)
			if st == nil {
				unknown = append(unknown, "invalid policy_name "+name)
				continue
			}
			resp.Policys = append(resp.Policys, policyEntryOf(st.rec))
			resp.BackupInfos = append(resp.BackupInfos, backupEntriesOf(st, int(req.BackupInfoCount)))
		}
		if len(unknown) > 0 {
			h := strings.Join(unknown, "\n\t")
			resp.HintMsg = &h
		}
		if len(resp.Policys) == 0 && len(req.PolicyNames) > 0 {
			return refuse(base.ErrInvalidParameters, "")
		}
		return nil
	})
	resp.Err = errCode(code)
	return resp, nil
}

func policyEntryOf(p *policyRecord) *backup.PolicyEntry {
	return &backup.PolicyEntry{
		PolicyName: p.Name, BackupProviderType: p.Provider, BackupIntervalSeconds: strconv.FormatInt(p.IntervalSec, 10),
		AppIds: slices.Clone(p.AppIDs), BackupHistoryCountToKeep: p.HistoryCount, StartTime: p.Start.String(), IsDisable: p.Disabled,
	}
}

// backupEntriesOf lists the running run first, then the newest finished
// ones, count at most; runs being deleted are left out.
func backupEntriesOf(st *policyState, count int) []*backup.BackupEntry {
	out := []*backup.BackupEntry{}
	add := func(r *policyRun) {
		if len(out) < count {
			out = append(out, &backup.BackupEntry{BackupID: r.BackupID, StartTimeMs: r.StartMs, EndTimeMs: r.EndMs, AppIds: slices.Clone(r.AppIDs)})
		}
	}
	if r := st.running(); r != nil {
		add(r)
	}
	for i := len(st.runs) - 1; i >= 0; i-- {
		if r := st.runs[i]; r.finished() && r.Status != runDeleting {
			add(r)
		}
	}
	return out
}

func (s *Server) modifyBackupPolicy(ctx context.Context, call *rpc.Call, req *backup.ConfigurationModifyBackupPolicyRequest) (*backup.ConfigurationModifyBackupPolicyResponse, error) {
	resp := &backup.ConfigurationModifyBackupPolicyResponse{}
	if s.opts.ColdBackupDisabled {
		resp.Err = errCode(base.ErrServiceNotActive)
		resp.HintMessage = coldBackupDisabledHint
		return resp, nil
	}
	answer := base.ErrOK
	code, hint := s.leaderOp(opSpec{what: "modify backup policy"}, func(op *leaderOp) error {
		lt := op.lt
		s.pol.opMu.Lock()
		defer s.pol.opMu.Unlock()
		if lt.ctx.Err() != nil {
			return errNotLeader
		}
		st := s.pol.snapshot(req.PolicyName)
		if st == nil {
			return refuse(base.ErrInvalidParameters, fmt.Sprintf("invalid policy_name %s", req.PolicyName))
		}
		next, changed, busy, hint := modifyPolicy(st, req, s.tableNames(lt, req.AddAppids), s.checkBackupInterval)
		if busy {
			answer = base.ErrBusy
		}
		if !changed {
			if hint != "" {
				return refuse(answer, hint)
			}
			return nil
		}
		if err := s.writePolicy(lt.ctx, next, false); err != nil {
			return persisted(err)
		}
		s.pol.setPolicy(next)
		s.log.Info("backup policy modified", "policy", next.Name, "app_ids", next.AppIDs, "interval_s", next.IntervalSec,
			"history", next.HistoryCount, "start_time", next.Start.String(), "disabled", next.Disabled)
		return nil
	})
	if code == base.ErrOK {
		code = answer
	}
	resp.Err = errCode(code)
	resp.HintMessage = hint
	return resp, nil
}

// tableNames returns the names of the available tables among ids.
func (s *Server) tableNames(lt *leaderTerm, ids []int32) map[int32]string {
	out := map[int32]string{}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, id := range ids {
		if a := lt.state.apps[id]; a != nil && a.info.Status == layer2.AppStatus_AS_AVAILABLE {
			out[id] = a.info.AppName
		}
	}
	return out
}

// modifyPolicy applies a modify request to a policy, as upstream: tables
// that do not exist are skipped, an invalid interval or start time and a
// history count <= 0 are ignored, disabling while a run is in progress is
// refused (busy) unless forced, the other changes still apply.
func modifyPolicy(st *policyState, req *backup.ConfigurationModifyBackupPolicyRequest, addable map[int32]string,
	checkInterval func(int64) string) (next *policyRecord, changed, busy bool, hint string) {
	next = st.rec.clone()
	if req.IsDisable != nil {
		switch {
		case *req.IsDisable && st.running() != nil && !req.GetForceDisable():
			busy = true
		case *req.IsDisable:
			changed = changed || !next.Disabled
			next.Disabled = true
		case next.Disabled:
			next.Disabled, changed = false, true
		default:
			hint = "policy is already enabled"
		}
	}
	for id, name := range addable {
		if !slices.Contains(next.AppIDs, id) {
			next.AppIDs = append(next.AppIDs, id)
		}
		next.AppNames[id] = name
		changed = true
	}
	for _, id := range req.RemovalAppids {
		if id > 0 {
			next.AppIDs = slices.DeleteFunc(next.AppIDs, func(v int32) bool { return v == id })
			delete(next.AppNames, id)
			changed = true
		}
	}
	slices.Sort(next.AppIDs)
	if req.NewBackupIntervalSec_ != nil && checkInterval(*req.NewBackupIntervalSec_) == "" {
		next.IntervalSec, changed = *req.NewBackupIntervalSec_, true
	}
	if n := req.GetBackupHistoryCountToKeep(); n > 0 {
		next.HistoryCount, changed = n, true
	}
	if req.StartTime != nil {
		if t, ok := parseStartTime(*req.StartTime); ok {
			next.Start, changed = t, true
		}
	}
	return next, changed, busy, hint
}

// loadPolicies loads the policies and their runs when a term begins,
// before the term serves. The backup ids the runs planned are taken off the
// one-time backups' id sequence so that none is given out twice.
func (s *Server) loadPolicies(lt *leaderTerm) {
	if s.opts.ColdBackupDisabled {
		return
	}
	s.pol.opMu.Lock()
	defer s.pol.opMu.Unlock()
	s.pol.mu.Lock()
	s.pol.policies = map[string]*policyState{}
	s.pol.mu.Unlock()
	var got map[string]*policyState
	err := s.retryStore(lt.ctx, "load backup policies", func() error {
		var err error
		got, err = s.readPolicies(lt.ctx)
		return err
	}, nil)
	if err != nil {
		return
	}
	s.cold.mu.Lock()
	for _, st := range got {
		for _, r := range st.runs {
			s.cold.lastID = max(s.cold.lastID, r.BackupID)
			for _, id := range r.Tables {
				s.cold.lastID = max(s.cold.lastID, id)
			}
		}
	}
	s.cold.mu.Unlock()
	s.pol.mu.Lock()
	s.pol.policies = got
	s.pol.mu.Unlock()
}

func (s *Server) readPolicies(ctx context.Context) (map[string]*policyState, error) {
	root := s.opts.ClusterRoot
	out := map[string]*policyState{}
	names, err := s.opts.Store.Children(ctx, policiesPath(root))
	if errors.Is(err, metastore.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		data, err := s.opts.Store.Get(ctx, policyPath(root, n))
		if err != nil {
			return nil, err
		}
		var rec policyRecord
		if err := json.Unmarshal(data, &rec); err != nil || rec.Name != n {
			s.log.Error("undecodable backup policy ignored", "node", n, "err", err)
			continue
		}
		if rec.AppNames == nil {
			rec.AppNames = map[int32]string{}
		}
		st := &policyState{rec: &rec}
		ids, err := s.opts.Store.Children(ctx, policyPath(root, n))
		if err != nil {
			return nil, err
		}
		for _, idName := range ids {
			data, err := s.opts.Store.Get(ctx, joinPath(policyPath(root, n), idName))
			if err != nil {
				return nil, err
			}
			var run policyRun
			if err := json.Unmarshal(data, &run); err != nil || strconv.FormatInt(run.BackupID, 10) != idName {
				s.log.Error("undecodable backup policy run ignored", "policy", n, "node", idName, "err", err)
				continue
			}
			if run.AppNames == nil {
				run.AppNames = map[int32]string{}
			}
			if run.Tables == nil {
				run.Tables = map[int32]int64{}
			}
			st.runs = append(st.runs, &run)
		}
		slices.SortFunc(st.runs, func(a, b *policyRun) int { return cmp.Compare(a.BackupID, b.BackupID) })
		out[n] = st
	}
	return out, nil
}

// policyLoop looks at the policies every PolicyCheckInterval while the term
// lasts, the first time at once (to finish what the last leader left).
func (s *Server) policyLoop(lt *leaderTerm) {
	if s.opts.ColdBackupDisabled {
		return
	}
	t := time.NewTicker(s.opts.PolicyCheckInterval)
	defer t.Stop()
	for {
		s.policyPass(lt)
		select {
		case <-lt.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) policyPass(lt *leaderTerm) {
	for _, name := range s.pol.names() {
		if lt.ctx.Err() != nil {
			return
		}
		s.advancePolicy(lt, name)
		s.collectPolicyGarbage(lt, name)
	}
}

// advancePolicy finishes the run in progress when its table backups have
// finished, or starts the next run when it is due.
func (s *Server) advancePolicy(lt *leaderTerm, name string) {
	s.pol.opMu.Lock()
	defer s.pol.opMu.Unlock()
	if lt.ctx.Err() != nil {
		return
	}
	st := s.pol.snapshot(name)
	if st == nil {
		return
	}
	if run := st.running(); run != nil {
		s.settleRun(lt, st.rec, run)
		return
	}
	now := s.opts.Now()
	if policyDue(st.rec, st.runs, now) {
		s.startRun(lt, st.rec, now)
	}
}

// policyDue reports whether a policy starts a run at now (upstream's
// policy_context scheduling): never when disabled or while a run is in
// progress; only in the start hour (24: any); the first run at once, the
// next ones an interval after the last start, pulled earlier by how late
// the last one started after its start time. Minutes only count in that
// lateness.
func policyDue(p *policyRecord, runs []*policyRun, now time.Time) bool {
	if p.Disabled {
		return false
	}
	var last *policyRun
	for _, r := range runs {
		if !r.finished() && r.Status != runDeleting {
			return false
		}
		if last == nil || r.StartMs > last.StartMs {
			last = r
		}
	}
	if p.Start.Hour != anyHour && now.Hour() != p.Start.Hour {
		return false
	}
	if last == nil {
		return true
	}
	started := time.UnixMilli(last.StartMs).In(now.Location())
	next := started.Add(p.interval())
	if p.Start.Hour != anyHour {
		planned := time.Date(started.Year(), started.Month(), started.Day(), p.Start.Hour, p.Start.Minute, 0, 0, started.Location())
		if late := started.Sub(planned); late > 0 && late < p.interval() {
			next = next.Add(-late)
		}
	}
	return !next.After(now)
}

// startRun starts a run of the available tables of a policy that are not
// being backed up already (a replica server runs one backup of a partition
// at a time). Called under pol.opMu.
func (s *Server) startRun(lt *leaderTerm, p *policyRecord, now time.Time) {
	var tables []*layer2.AppInfo
	s.mu.RLock()
	for _, id := range p.AppIDs {
		if a := lt.state.apps[id]; a != nil && a.info.Status == layer2.AppStatus_AS_AVAILABLE {
			tables = append(tables, cloneInfo(a.info))
		}
	}
	s.mu.RUnlock()
	s.cold.mu.Lock()
	tables = slices.DeleteFunc(tables, func(info *layer2.AppInfo) bool {
		for _, r := range s.cold.records {
			if r.AppID == info.AppID && !r.finished() {
				return true
			}
		}
		return false
	})
	if len(tables) == 0 {
		s.cold.mu.Unlock()
		s.opLog.Warn(s.log, "backup policy due, but none of its tables can be backed up now (dropped or being backed up)", "policy", p.Name, "app_ids", p.AppIDs)
		return
	}
	first := max(now.UnixMilli(), s.cold.lastID+1)
	s.cold.lastID = first + int64(len(tables)) - 1
	s.cold.mu.Unlock()

	run := &policyRun{BackupID: first, StartMs: now.UnixMilli(), AppNames: map[int32]string{}, Tables: map[int32]int64{}, Status: runAlive}
	for i, info := range tables {
		run.AppIDs = append(run.AppIDs, info.AppID)
		run.AppNames[info.AppID] = info.AppName
		run.Tables[info.AppID] = first + int64(i)
	}
	if err := s.writeRun(lt.ctx, p.Name, run, true); err != nil {
		s.opLog.Warn(s.log, "persisting a new backup policy run failed; retrying at the next check", "policy", p.Name, "err", err)
		return
	}
	for i, info := range tables {
		s.startTableBackup(lt, p.Provider, run.StartMs, info, first+int64(i))
	}
	// Shown once its table backups are (a query then finds them).
	s.pol.setRun(p.Name, run.BackupID, run)
	s.log.Info("backup policy run started", "policy", p.Name, "backup_id", run.BackupID, "app_ids", run.AppIDs)
}

// startTableBackup starts the one-time backup of one table of a run (or
// records it failed when its metadata cannot be written). When the record
// cannot be persisted, the next check tries again (settleRun).
func (s *Server) startTableBackup(lt *leaderTerm, provider string, startMs int64, info *layer2.AppInfo, id int64) {
	n := int(info.PartitionCount)
	rec := &backupRecord{
		BackupID: id, AppID: info.AppID, AppName: info.AppName, Provider: provider, StartMs: startMs,
		Progress: make([]int32, n), Done: make([]bool, n), Decree: make([]int64, n),
	}
	svc, err := s.cold.providers.Get(provider)
	if err == nil {
		root := coldbackup.Root("", s.cold.providers.Root())
		err = coldbackup.PutJSON(lt.ctx, svc, coldbackup.AppMetadataPath(root, id, info.AppName, info.AppID), appMetadataOf(info))
	}
	if err != nil {
		if lt.ctx.Err() != nil {
			return
		}
		rec.Failed, rec.Reason = true, "could not back up the table's metadata: "+err.Error()
	}
	err = s.writeBackup(lt.ctx, rec, true)
	if errors.Is(err, metastore.ErrExists) {
		err = s.writeBackup(lt.ctx, rec, false)
	}
	if err != nil {
		s.opLog.Warn(s.log, "persisting a backup policy's table backup failed; retrying at the next check", "backup_id", id, "app_id", info.AppID, "err", err)
		return
	}
	s.cold.mu.Lock()
	s.cold.records[id] = rec
	s.cold.mu.Unlock()
	if rec.Failed {
		s.log.Warn("backup policy table backup failed", "backup_id", id, "table", info.AppName, "reason", rec.Reason)
		return
	}
	go s.driveBackup(lt, id)
}

// settleRun starts the table backups of a run that a leader planned but
// did not record, and finishes the run once all of them have finished.
// Called under pol.opMu.
func (s *Server) settleRun(lt *leaderTerm, p *policyRecord, run *policyRun) {
	var missing []int32
	all, failed := true, false
	s.cold.mu.Lock()
	for app, id := range run.Tables {
		r := s.cold.records[id]
		switch {
		case r == nil:
			missing = append(missing, app)
			all = false
		case !r.finished():
			all = false
		default:
			failed = failed || r.Failed
		}
	}
	s.cold.mu.Unlock()
	for _, app := range missing {
		id := run.Tables[app]
		s.mu.RLock()
		a := lt.state.apps[app]
		var info *layer2.AppInfo
		if a != nil && a.info.Status == layer2.AppStatus_AS_AVAILABLE {
			info = cloneInfo(a.info)
		}
		s.mu.RUnlock()
		if info == nil {
			// Dropped before its backup began: recorded as a failed backup,
			// so that the run can finish.
			info = &layer2.AppInfo{AppID: app, AppName: run.AppNames[app]}
			rec := &backupRecord{BackupID: id, AppID: app, AppName: info.AppName, Provider: p.Provider, StartMs: run.StartMs, Failed: true, Reason: "the table was dropped"}
			if err := s.writeBackup(lt.ctx, rec, true); err != nil && !errors.Is(err, metastore.ErrExists) {
				continue
			}
			s.cold.mu.Lock()
			s.cold.records[id] = rec
			s.cold.mu.Unlock()
			continue
		}
		s.log.Info("starting a backup policy's table backup left unrecorded", "policy", p.Name, "backup_id", id, "app_id", app)
		s.startTableBackup(lt, p.Provider, run.StartMs, info, id)
	}
	if !all {
		return
	}
	next := run.clone()
	next.EndMs = max(s.opts.Now().UnixMilli(), next.StartMs+1)
	next.Failed = failed
	if err := s.writeRun(lt.ctx, p.Name, next, false); err != nil {
		s.opLog.Warn(s.log, "persisting a finished backup policy run failed; retrying at the next check", "policy", p.Name, "backup_id", run.BackupID, "err", err)
		return
	}
	s.pol.setRun(p.Name, next.BackupID, next)
	s.log.Info("backup policy run finished", "policy", p.Name, "backup_id", next.BackupID, "failed", failed,
		"took", time.Duration(next.EndMs-next.StartMs)*time.Millisecond)
}

// policyGarbage returns the runs to delete, oldest first: those being
// deleted already, the successful ones beyond the newest history, and the
// failed ones older than the newest successful one (a failed run is kept
// while it is the latest news, so that the operator sees it).
func policyGarbage(runs []*policyRun, history int32) []int64 {
	var out []int64
	kept := int32(0)
	newestOK := int64(-1)
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		switch {
		case r.Status == runDeleting:
			out = append(out, r.BackupID)
		case !r.finished():
		case !r.Failed && kept < history:
			kept++
			newestOK = max(newestOK, r.BackupID)
		case !r.Failed:
			out = append(out, r.BackupID)
		case newestOK > r.BackupID:
			out = append(out, r.BackupID)
		}
	}
	slices.Sort(out)
	return out
}

// collectPolicyGarbage deletes the runs of a policy beyond its history:
// each is marked DELETING, then its table backups' data is deleted from the
// block service, then their records, then the run's record.
func (s *Server) collectPolicyGarbage(lt *leaderTerm, name string) {
	st := s.pol.snapshot(name)
	if st == nil {
		return
	}
	for _, id := range policyGarbage(st.runs, st.rec.HistoryCount) {
		if lt.ctx.Err() != nil {
			return
		}
		if err := s.deleteRun(lt, st.rec, id); err != nil {
			s.opLog.Warn(s.log, "deleting an old backup of a policy failed; retrying at the next check", "policy", name, "backup_id", id, "err", err)
			return
		}
	}
}

func (s *Server) deleteRun(lt *leaderTerm, p *policyRecord, id int64) error {
	s.pol.opMu.Lock()
	if lt.ctx.Err() != nil {
		s.pol.opMu.Unlock()
		return lt.ctx.Err()
	}
	st := s.pol.snapshot(p.Name)
	var run *policyRun
	if st != nil {
		if i := slices.IndexFunc(st.runs, func(r *policyRun) bool { return r.BackupID == id }); i >= 0 {
			run = st.runs[i]
		}
	}
	if run == nil {
		s.pol.opMu.Unlock()
		return nil
	}
	if run.Status != runDeleting {
		run.Status = runDeleting
		if err := s.writeRun(lt.ctx, p.Name, run, false); err != nil {
			s.pol.opMu.Unlock()
			return fmt.Errorf("mark the run deleting: %w", err)
		}
		s.pol.setRun(p.Name, id, run)
	}
	s.pol.opMu.Unlock()

	svc, err := s.cold.providers.Get(p.Provider)
	if err != nil {
		return err
	}
	root := coldbackup.Root("", s.cold.providers.Root())
	for _, tid := range run.Tables {
		if err := svc.Delete(lt.ctx, coldbackup.BackupDir(root, tid), true); err != nil && !errors.Is(err, blockservice.ErrNotFound) {
			return fmt.Errorf("delete the data of backup %d: %w", tid, err)
		}
	}
	for _, tid := range run.Tables {
		if err := s.opts.Store.Delete(lt.ctx, joinPath(backupsPath(s.opts.ClusterRoot), strconv.FormatInt(tid, 10))); err != nil {
			return fmt.Errorf("delete the record of backup %d: %w", tid, err)
		}
		s.cold.mu.Lock()
		delete(s.cold.records, tid)
		s.cold.mu.Unlock()
	}
	s.pol.opMu.Lock()
	defer s.pol.opMu.Unlock()
	if lt.ctx.Err() != nil {
		return lt.ctx.Err()
	}
	if err := s.opts.Store.Delete(lt.ctx, policyRunPath(s.opts.ClusterRoot, p.Name, id)); err != nil {
		return fmt.Errorf("delete the run record: %w", err)
	}
	s.pol.setRun(p.Name, id, nil)
	s.log.Info("old backup of a policy deleted", "policy", p.Name, "backup_id", id, "table_backups", len(run.Tables))
	return nil
}
