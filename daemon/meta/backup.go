package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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

// One-time cold backups (spec: operations.md 2.4). A backup is a record in
// the metadata store, <cluster_root>/backup_once/<backup_id>, so that a new
// leader resumes the unfinished ones (upstream keeps them in memory only).
// The leader drives each partition's primary with RPC_COLD_BACKUP until it
// reports the upload done, then checks every partition's manifest against
// the stored files and writes backup_info, the completion marker, last.

const (
	// backupRetry is the pause between two rounds of requests to the primaries.
	backupRetry = time.Second
	// backupCallTimeout bounds one RPC_COLD_BACKUP, as upstream's 10 s.
	backupCallTimeout = 10 * time.Second
)

// backupRecord is a one-time backup as persisted. Progress, Done and Decree
// have one entry per partition.
type backupRecord struct {
	BackupID   int64   `json:"backup_id"`
	AppID      int32   `json:"app_id"`
	AppName    string  `json:"app_name"`
	Provider   string  `json:"backup_provider_type"`
	BackupPath string  `json:"backup_path"`
	StartMs    int64   `json:"start_time_ms"`
	EndMs      int64   `json:"end_time_ms"`
	Failed     bool    `json:"is_backup_failed"`
	Reason     string  `json:"reason,omitempty"`
	Progress   []int32 `json:"progress"`
	Done       []bool  `json:"done"`
	Decree     []int64 `json:"decree"`
}

func (r *backupRecord) finished() bool { return r.Failed || r.EndMs > 0 }

func (r *backupRecord) clone() *backupRecord {
	c := *r
	c.Progress = append([]int32(nil), r.Progress...)
	c.Done = append([]bool(nil), r.Done...)
	c.Decree = append([]int64(nil), r.Decree...)
	return &c
}

// coldBackups is the meta server's backup state. The records are those of
// the current leader term, loaded when it began.
type coldBackups struct {
	providers *coldbackup.Providers
	// persistMu serialises the writes of backup records, each built from
	// the record in memory under it, so that no write undoes another's.
	persistMu sync.Mutex

	mu      sync.Mutex
	records map[int64]*backupRecord
	lastID  int64
}

func newColdBackups(opts coldbackup.Options) *coldBackups {
	return &coldBackups{providers: coldbackup.NewProviders(opts), records: map[int64]*backupRecord{}}
}

func backupsPath(root string) string { return joinPath(root, "backup_once") }

// registerBackup installs the one-time backup and restore RPCs.
func (s *Server) registerBackup(mux *rpc.Mux) {
	rpc.Handle(mux, rpc.CodeStartBackupApp, s.startBackupApp)
	rpc.Handle(mux, rpc.CodeQueryBackupStatus, s.queryBackupStatus)
	rpc.Handle(mux, rpc.CodeStartRestore, s.startRestore)
}

// resumeBackups loads the backups of the store when a term begins, before
// the term serves (so that no backup started in the term is overwritten),
// and drives the unfinished ones.
func (s *Server) resumeBackups(lt *leaderTerm) {
	var recs map[int64]*backupRecord
	err := s.retryStore(lt.ctx, "load backups", func() error {
		var err error
		recs, err = s.loadBackups(lt.ctx)
		return err
	}, nil)
	if err != nil {
		return
	}
	s.cold.mu.Lock()
	s.cold.records = recs
	for id := range recs {
		s.cold.lastID = max(s.cold.lastID, id)
	}
	s.cold.mu.Unlock()
	for _, r := range recs {
		if !r.finished() {
			s.log.Info("resuming a cold backup", "backup_id", r.BackupID, "app_id", r.AppID)
			go s.driveBackup(lt, r.BackupID)
		}
	}
}

func (s *Server) loadBackups(ctx context.Context) (map[int64]*backupRecord, error) {
	dir := backupsPath(s.opts.ClusterRoot)
	names, err := s.opts.Store.Children(ctx, dir)
	if errors.Is(err, metastore.ErrNotFound) {
		return map[int64]*backupRecord{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[int64]*backupRecord{}
	for _, n := range names {
		data, err := s.opts.Store.Get(ctx, joinPath(dir, n))
		if err != nil {
			return nil, err
		}
		var r backupRecord
		if err := json.Unmarshal(data, &r); err != nil {
			s.log.Error("undecodable backup record ignored", "node", n, "err", err)
			continue
		}
		out[r.BackupID] = &r
	}
	return out, nil
}

// writeBackup persists a record (creating it the first time).
func (s *Server) writeBackup(ctx context.Context, r *backupRecord, create bool) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := joinPath(backupsPath(s.opts.ClusterRoot), strconv.FormatInt(r.BackupID, 10))
	if create {
		if err := metastore.EnsurePath(ctx, s.opts.Store, backupsPath(s.opts.ClusterRoot)); err != nil {
			return err
		}
		return s.opts.Store.Create(ctx, p, data)
	}
	return s.opts.Store.Set(ctx, p, data)
}

func appMetadataOf(info *layer2.AppInfo) coldbackup.AppMetadata {
	envs := map[string]string{}
	for k, v := range info.Envs {
		envs[k] = v
	}
	return coldbackup.AppMetadata{
		Status: info.Status.String(), AppType: info.AppType, AppName: info.AppName, AppID: info.AppID,
		PartitionCount: info.PartitionCount, Envs: envs, IsStateful: info.IsStateful,
		MaxReplicaCount: info.MaxReplicaCount, ExpireSecond: info.ExpireSecond, CreateSecond: info.CreateSecond,
		DropSecond: info.DropSecond, Duplicating: info.GetDuplicating(), InitPartitionCount: info.InitPartitionCount,
		IsBulkLoading: info.GetIsBulkLoading(), AtomicIdempotent: info.GetAtomicIdempotent(),
	}
}

func (s *Server) startBackupApp(ctx context.Context, call *rpc.Call, req *backup.StartBackupAppRequest) (*backup.StartBackupAppResponse, error) {
	resp := &backup.StartBackupAppResponse{}
	if s.opts.ColdBackupDisabled {
		resp.Err = errCode(base.ErrServiceNotActive)
		resp.HintMessage = coldBackupDisabledHint
		return resp, nil
	}
	var rec *backupRecord
	code, hint := s.leaderOp(opSpec{what: "start backup", persists: true}, func(op *leaderOp) error {
		lt := op.lt
		s.mu.RLock()
		a := lt.state.apps[req.AppID]
		var info *layer2.AppInfo
		if a != nil {
			info = cloneInfo(a.info)
		}
		s.mu.RUnlock()
		if a == nil {
			return refuse(base.ErrAppNotExist, fmt.Sprintf("Backup failed: invalid app id %d.", req.AppID))
		}
		if info.Status != layer2.AppStatus_AS_AVAILABLE {
			return refuse(base.ErrInvalidState, fmt.Sprintf("Backup failed: invalid app id %d.", req.AppID))
		}
		svc, err := s.cold.providers.Get(req.BackupProviderType)
		if err != nil {
			return refuse(base.ErrInvalidParameters, "Backup failed: "+err.Error())
		}
		now := s.opts.Now().UnixMilli()
		s.cold.mu.Lock()
		for _, r := range s.cold.records {
			if r.AppID == req.AppID && !r.finished() {
				s.cold.mu.Unlock()
				return refuse(base.ErrInvalidState, fmt.Sprintf("Backup failed: app %d is actively being backed up.", req.AppID))
			}
		}
		id := max(now, s.cold.lastID+1)
		s.cold.lastID = id
		s.cold.mu.Unlock()
		n := int(info.PartitionCount)
		rec = &backupRecord{
			BackupID: id, AppID: info.AppID, AppName: info.AppName, Provider: req.BackupProviderType,
			BackupPath: req.GetBackupPath(), StartMs: now,
			Progress: make([]int32, n), Done: make([]bool, n), Decree: make([]int64, n),
		}
		root := coldbackup.Root(rec.BackupPath, s.cold.providers.Root())
		if err := coldbackup.PutJSON(lt.ctx, svc, coldbackup.AppMetadataPath(root, id, info.AppName, info.AppID), appMetadataOf(info)); err != nil {
			return refuseLogged(base.ErrFSInternal, fmt.Sprintf("Backup failed: could not backup metadata for app %d: %v", req.AppID, err))
		}
		if err := s.writeBackup(lt.ctx, rec, true); err != nil {
			return persisted(err)
		}
		s.cold.mu.Lock()
		s.cold.records[id] = rec
		s.cold.mu.Unlock()
		s.log.Info("cold backup started", "backup_id", id, "table", info.AppName, "app_id", info.AppID, "provider", rec.Provider)
		go s.driveBackup(lt, id)
		return nil
	})
	resp.Err = errCode(code)
	resp.HintMessage = hint
	if code == base.ErrOK {
		id := rec.BackupID
		resp.BackupID = &id
		resp.HintMessage = fmt.Sprintf("Backup succeed: metadata of app %d has been successfully backed up and backup request has been sent to replica servers.", req.AppID)
	}
	return resp, nil
}

// driveBackup sends RPC_COLD_BACKUP to the primaries of the partitions not
// done yet, round after round, until every one is done (then it verifies and
// completes the backup) or one fails for good, or the term ends.
func (s *Server) driveBackup(lt *leaderTerm, id int64) {
	for lt.ctx.Err() == nil {
		s.cold.mu.Lock()
		r := s.cold.records[id]
		if r == nil || r.finished() {
			s.cold.mu.Unlock()
			return
		}
		rec := r.clone()
		s.cold.mu.Unlock()

		s.mu.RLock()
		a := lt.state.apps[rec.AppID]
		var primaries []string
		dropped := a == nil || a.info.Status != layer2.AppStatus_AS_AVAILABLE
		if !dropped {
			for _, pc := range a.partitions {
				primaries = append(primaries, addrString(pc.Primary))
			}
		}
		s.mu.RUnlock()
		if dropped {
			s.failBackup(lt, id, "the table was dropped")
			return
		}
		var wg sync.WaitGroup
		for pidx, done := range rec.Done {
			if done || pidx >= len(primaries) || primaries[pidx] == "" {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.backupPartition(lt, rec, int32(pidx), primaries[pidx])
			}()
		}
		wg.Wait()

		s.cold.mu.Lock()
		r = s.cold.records[id]
		all := r != nil && !r.finished()
		if all {
			for _, d := range r.Done {
				all = all && d
			}
		}
		s.cold.mu.Unlock()
		if all {
			s.completeBackup(lt, id)
			return
		}
		sleep(lt.ctx, backupRetry)
	}
}

// backupPartition sends one request to a partition's primary and records
// the answer.
func (s *Server) backupPartition(lt *leaderTerm, rec *backupRecord, pidx int32, primary string) {
	req := coldbackup.PartitionRequest{
		AppID: rec.AppID, PartitionIndex: pidx, AppName: rec.AppName, PartitionCount: int32(len(rec.Done)),
		BackupID: rec.BackupID, Provider: rec.Provider, BackupPath: rec.BackupPath,
	}
	ctx, cancel := context.WithTimeout(lt.ctx, backupCallTimeout)
	defer cancel()
	var out rpc.String
	if err := s.client(primary).Call(ctx, rpc.Request{Code: rpc.CodeColdBackup, Args: coldbackup.Encode(req)}, &out); err != nil {
		s.log.Debug("cold backup request failed", "backup_id", rec.BackupID, "pidx", pidx, "primary", primary, "err", err)
		return
	}
	var resp coldbackup.PartitionResponse
	if err := coldbackup.Decode(&out, &resp); err != nil {
		s.log.Warn("cold backup answer undecodable", "primary", primary, "err", err)
		return
	}
	switch resp.Err {
	case base.ErrOK:
		s.cold.persistMu.Lock()
		s.cold.mu.Lock()
		r := s.cold.records[rec.BackupID]
		if r == nil || r.finished() {
			s.cold.mu.Unlock()
			s.cold.persistMu.Unlock()
			return
		}
		next := r.clone()
		next.Progress[pidx], next.Done[pidx], next.Decree[pidx] = 1000, true, resp.CheckpointDecree
		s.cold.mu.Unlock()
		// Persisted before it counts, so that a new leader does not ask again
		// only because the answer was lost with the old one.
		err := s.writeBackup(lt.ctx, next, false)
		if err == nil {
			s.cold.mu.Lock()
			s.cold.records[rec.BackupID] = next
			s.cold.mu.Unlock()
		}
		s.cold.persistMu.Unlock()
		if err != nil {
			s.log.Warn("persisting a backup's progress failed", "backup_id", rec.BackupID, "err", err)
			return
		}
		s.log.Info("partition backed up", "backup_id", rec.BackupID, "pidx", pidx, "primary", primary, "decree", resp.CheckpointDecree)
	case base.ErrBusy:
		s.cold.mu.Lock()
		if cur := s.cold.records[rec.BackupID]; cur != nil && !cur.Done[pidx] {
			cur.Progress[pidx] = resp.Progress
		}
		s.cold.mu.Unlock()
	case base.ErrLocalAppFailure:
		s.failBackup(lt, rec.BackupID, fmt.Sprintf("partition %d.%d on %s: %s", rec.AppID, pidx, primary, resp.Hint))
	default:
		// Not the primary any more, backups off on that server, ...: the
		// next round asks again, whoever the primary is then.
		s.log.Debug("cold backup request refused", "backup_id", rec.BackupID, "pidx", pidx, "primary", primary, "err", resp.Err, "hint", resp.Hint)
	}
}

// failBackup marks a backup failed for good.
func (s *Server) failBackup(lt *leaderTerm, id int64, why string) {
	s.cold.persistMu.Lock()
	defer s.cold.persistMu.Unlock()
	s.cold.mu.Lock()
	r := s.cold.records[id]
	if r == nil || r.finished() {
		s.cold.mu.Unlock()
		return
	}
	next := r.clone()
	next.Failed, next.Reason = true, why
	s.cold.mu.Unlock()
	_ = s.retryStore(lt.ctx, "persist a failed backup", func() error { return s.writeBackup(lt.ctx, next, false) }, nil)
	s.cold.mu.Lock()
	s.cold.records[id] = next
	s.cold.mu.Unlock()
	s.log.Warn("cold backup failed", "backup_id", id, "app_id", next.AppID, "reason", why)
}

// completeBackup verifies every partition's upload against its manifest,
// writes backup_info to the block service and then the end time to the
// store.
func (s *Server) completeBackup(lt *leaderTerm, id int64) {
	s.cold.mu.Lock()
	rec := s.cold.records[id].clone()
	s.cold.mu.Unlock()
	svc, err := s.cold.providers.Get(rec.Provider)
	if err != nil {
		s.failBackup(lt, id, err.Error())
		return
	}
	root := coldbackup.Root(rec.BackupPath, s.cold.providers.Root())
	for lt.ctx.Err() == nil {
		err = verifyBackup(lt.ctx, svc, root, rec)
		if err == nil || errors.Is(err, blockservice.ErrCorrupt) {
			break
		}
		s.log.Warn("verifying a backup failed, retrying", "backup_id", id, "err", err)
		sleep(lt.ctx, backupRetry)
	}
	if err != nil {
		if lt.ctx.Err() == nil {
			s.failBackup(lt, id, err.Error())
		}
		return
	}
	end := s.opts.Now().UnixMilli()
	info := coldbackup.BackupInfo{BackupID: id, StartTimeMs: rec.StartMs, EndTimeMs: end, AppID: rec.AppID, AppName: rec.AppName}
	for lt.ctx.Err() == nil {
		if err = coldbackup.PutJSON(lt.ctx, svc, blockservice.Join(coldbackup.BackupDir(root, id), coldbackup.BackupInfoFile), info); err == nil {
			break
		}
		s.log.Warn("writing backup_info failed, retrying", "backup_id", id, "err", err)
		sleep(lt.ctx, backupRetry)
	}
	if err != nil {
		return
	}
	s.cold.persistMu.Lock()
	defer s.cold.persistMu.Unlock()
	s.cold.mu.Lock()
	rec = s.cold.records[id].clone()
	s.cold.mu.Unlock()
	if rec.finished() {
		return
	}
	rec.EndMs = end
	if err := s.retryStore(lt.ctx, "persist a completed backup", func() error { return s.writeBackup(lt.ctx, rec, false) }, nil); err != nil {
		return
	}
	s.cold.mu.Lock()
	s.cold.records[id] = rec
	s.cold.mu.Unlock()
	s.log.Info("cold backup completed", "backup_id", id, "table", rec.AppName, "took", time.Duration(end-rec.StartMs)*time.Millisecond)
}

// verifyBackup checks that every partition has a manifest and that every
// file it lists is stored with the recorded size and MD5. A mismatch wraps
// blockservice.ErrCorrupt.
func verifyBackup(ctx context.Context, svc blockservice.Service, root string, rec *backupRecord) error {
	for pidx := range rec.Done {
		dir := coldbackup.PartitionDir(root, rec.BackupID, rec.AppName, rec.AppID, int32(pidx))
		man, ok, err := coldbackup.Uploaded(ctx, svc, dir)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: partition %d has no complete upload", blockservice.ErrCorrupt, pidx)
		}
		ckpt, err := readCurrent(ctx, svc, dir)
		if err != nil {
			return err
		}
		for _, f := range man.Files {
			info, err := svc.Stat(ctx, blockservice.Join(dir, ckpt, f.Name))
			if errors.Is(err, blockservice.ErrNotFound) || err == nil && (info.Size != f.Size || info.MD5 != f.MD5) {
				return fmt.Errorf("%w: partition %d file %s does not match its manifest", blockservice.ErrCorrupt, pidx, f.Name)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func readCurrent(ctx context.Context, svc blockservice.Service, partDir string) (string, error) {
	rc, _, err := svc.Get(ctx, blockservice.Join(partDir, coldbackup.CurrentCheckpointFile))
	if err != nil {
		return "", err
	}
	defer rc.Close()
	buf := make([]byte, 256)
	n, _ := rc.Read(buf)
	return string(buf[:n]), nil
}

func (s *Server) queryBackupStatus(ctx context.Context, call *rpc.Call, req *backup.QueryBackupStatusRequest) (*backup.QueryBackupStatusResponse, error) {
	resp := &backup.QueryBackupStatusResponse{}
	if s.opts.ColdBackupDisabled {
		resp.Err = errCode(base.ErrServiceNotActive)
		resp.HintMessage = coldBackupDisabledHint
		return resp, nil
	}
	code, hint := s.leaderOp(opSpec{what: "query backup status"}, func(op *leaderOp) error {
		s.mu.RLock()
		a := op.lt.state.apps[req.AppID]
		s.mu.RUnlock()
		if a == nil {
			return refuse(base.ErrAppNotExist, fmt.Sprintf("app %d does not exist", req.AppID))
		}
		s.cold.mu.Lock()
		defer s.cold.mu.Unlock()
		for _, r := range s.cold.records {
			if r.AppID != req.AppID || req.IsSetBackupID() && r.BackupID != req.GetBackupID() {
				continue
			}
			resp.BackupItems = append(resp.BackupItems, &backup.BackupItem{
				BackupID: r.BackupID, AppName: r.AppName, BackupProviderType: r.Provider,
				BackupPath: r.BackupPath, StartTimeMs: r.StartMs, EndTimeMs: r.EndMs, IsBackupFailed: r.Failed,
			})
		}
		if len(resp.BackupItems) == 0 {
			return refuse(base.ErrInvalidParameters, "Backup not found, please check app_id or backup_id.")
		}
		sortBackupItems(resp.BackupItems)
		return nil
	})
	resp.Err = errCode(code)
	resp.HintMessage = hint
	if code == base.ErrOK {
		resp.HintMessage = fmt.Sprintf("There are %d available backups for app %d.", len(resp.BackupItems), req.AppID)
	}
	return resp, nil
}

func sortBackupItems(items []*backup.BackupItem) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && items[j].BackupID < items[j-1].BackupID; j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
}
