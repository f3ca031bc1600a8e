package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/internal/coldbackup"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage/blockservice"
)

// Restore (spec: operations.md 2.6). A replica of a restored table (one
// with the restore.* envs) made for its partition's first configuration
// downloads the partition's checkpoint from the backup into its data
// directory before the store opens, checking every file against the
// manifest. Every member of the first configuration does so, so all start
// from the same data at the same decree and none needs to learn; replicas
// made later (learners) learn from the primary as usual.
//
// Missing or corrupted data: with restore.skip_bad_partition the partition
// starts empty (upstream's ERR_IGNORE_BAD_DATA); without it the replica
// server asks the meta server to drop the table, as upstream does, and the
// replica is not created.

// restoreSpec is what the restore.* envs of a table say.
type restoreSpec struct {
	provider, root, appName string
	appID                   int32
	backupID                int64
	skipBad                 bool
}

func restoreSpecOf(info *layer2.AppInfo) (*restoreSpec, error) {
	envs := info.Envs
	id, ok := envs["restore.backup_id"]
	if !ok {
		return nil, nil
	}
	backupID, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("restore.backup_id %q: %w", id, err)
	}
	appID, err := strconv.Atoi(envs["restore.app_id"])
	if err != nil {
		return nil, fmt.Errorf("restore.app_id %q: %w", envs["restore.app_id"], err)
	}
	return &restoreSpec{
		provider: envs["restore.block_service_provider"],
		root:     blockservice.Join(envs["restore.restore_path"], envs["restore.cluster_name"], envs["restore.policy_name"]),
		appName:  envs["restore.app_name"],
		appID:    int32(appID),
		backupID: backupID,
		skipBad:  envs["restore.skip_bad_partition"] == "true",
	}, nil
}

// createInstalled makes the replica of a partition's first configuration
// and applies cfg to it: empty at once, or, for a restored table, in the
// background once its data is downloaded (it then returns nil, nil).
func (s *Stub) createInstalled(g base.Gpid, info *layer2.AppInfo, cfg pacifica.Config) (*partition, error) {
	spec, err := restoreSpecOf(info)
	if err != nil {
		return nil, err
	}
	if spec == nil {
		return s.create(g, info)
	}
	s.startRestore(g, info, cfg, spec)
	return nil, nil
}

// restoreJob is one partition's download from a backup, running in the
// background so that the proposal that asked for it, the config syncs and
// the beacons go on meanwhile.
type restoreJob struct {
	spec        *restoreSpec
	done, total atomic.Int64 // bytes
}

// progress is upstream's 0-1000, 999 at most until the replica is made.
func (j *restoreJob) progress() int32 {
	total := j.total.Load()
	if total <= 0 {
		return 0
	}
	return int32(min(j.done.Load()*1000/total, 999))
}

// restoreRunning returns an error when g is being restored from a backup:
// nothing else may open or create it until the restore ends.
func (s *Stub) restoreRunning(g base.Gpid) error {
	if _, ok := s.restoring.Load(g); ok {
		return fmt.Errorf("replica %s is being restored from a backup", g.String())
	}
	return nil
}

const (
	// restoreReportEvery is how often a running restore reports its progress.
	restoreReportEvery = time.Second
	// restoreAttempts bounds the downloads of one restore that fail on
	// something other than the backup's data (a file system error, ...).
	restoreAttempts = 3
)

// startRestore starts the background restore of g unless one runs already
// (the meta server may send its install proposal again).
func (s *Stub) startRestore(g base.Gpid, info *layer2.AppInfo, cfg pacifica.Config, spec *restoreSpec) {
	job := &restoreJob{spec: spec}
	if _, dup := s.restoring.LoadOrStore(g, job); dup {
		s.log.Debug("restore already under way", "gpid", g.String())
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p, status, reason := s.runRestore(g, info, job)
		// The job ends before the replica is used, so that what it does
		// next (learning, reopening) is not refused as a restore.
		s.restoring.Delete(g)
		if p != nil {
			p.post(configEv{cfg: cfg, info: info})
		}
		progress := job.progress()
		if status == base.ErrOK || status == base.ErrIgnoreBadData {
			progress = 1000
		}
		s.reportRestoreUntilAnswered(g, status, progress, reason)
		if status == base.ErrCorruption {
			// After the report, so that the meta server logs which file of
			// the backup is damaged before the table goes.
			s.dropRestoredTable(g)
		}
	}()
}

// runRestore downloads the partition and makes the replica, reporting the
// progress to the meta server meanwhile. It returns the replica (nil when
// none was made) and the status to report: ERR_OK, ERR_IGNORE_BAD_DATA (a
// bad partition skipped: the replica starts empty), ERR_CORRUPTION (missing
// or damaged data: the table is to be dropped) or another error.
func (s *Stub) runRestore(g base.Gpid, info *layer2.AppInfo, job *restoreJob) (*partition, string, string) {
	ctx, stop := context.WithCancel(s.ctx)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		t := time.NewTicker(restoreReportEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				// Ongoing is ERR_OK below 1000, as upstream reports it.
				s.reportRestore(ctx, g, base.ErrOK, job.progress(), "")
			}
		}
	}()
	defer func() {
		stop()
		<-reported
	}()
	var err error
	for attempt := 1; attempt <= restoreAttempts; attempt++ {
		var skipped bool
		var p *partition
		p, err = s.createFrom(g, info, func(dataDir string) error {
			var derr error
			skipped, derr = s.downloadRestore(ctx, g, job, dataDir)
			return derr
		})
		switch {
		case err == nil && skipped:
			return p, base.ErrIgnoreBadData, "the partition's backup is missing or damaged; it starts empty (skip_bad_partition)"
		case err == nil:
			return p, base.ErrOK, ""
		case badBackupData(err):
			s.log.Error("restore: the partition's backup is missing or corrupted; asking the meta server to drop the table", "gpid", g.String(), "backup_id", job.spec.backupID, "err", err)
			return nil, base.ErrCorruption, err.Error()
		case s.ctx.Err() != nil:
			return nil, base.ErrTimeout, err.Error()
		}
		s.log.Warn("restore: downloading the partition failed", "gpid", g.String(), "attempt", attempt, "err", err)
		select {
		case <-s.ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	return nil, base.ErrFSInternal, err.Error()
}

// downloadRestore fetches the partition's checkpoint into stage, checking
// every file against the manifest. skipped says that the partition's data
// was missing or damaged and skip_bad_partition let it start empty (no stage
// directory).
func (s *Stub) downloadRestore(ctx context.Context, g base.Gpid, job *restoreJob, stage string) (skipped bool, err error) {
	spec := job.spec
	_ = os.RemoveAll(stage)
	svc, err := s.backups.providers.Get(spec.provider)
	if err != nil {
		return false, fmt.Errorf("restore %s: %w", g.String(), err)
	}
	partDir := coldbackup.PartitionDir(spec.root, spec.backupID, spec.appName, spec.appID, g.PartitionIndex)
	start := time.Now()
	job.done.Store(0)
	man, err := coldbackup.Download(ctx, svc, s.backups.providers.Limiter(), partDir, stage, func(done, total int64) {
		job.total.Store(total)
		job.done.Store(done)
	})
	switch {
	case err == nil:
		s.log.Info("restored a partition from a backup", "gpid", g.String(), "backup_id", spec.backupID, "decree", man.CheckpointDecree,
			"bytes", man.CheckpointTotalSize, "took", time.Since(start).Round(time.Millisecond))
		return false, nil
	case badBackupData(err) && spec.skipBad:
		s.log.Warn("restore: the partition's backup is missing or corrupted; it starts empty (skip_bad_partition)", "gpid", g.String(), "err", err)
		return true, nil
	default:
		return false, fmt.Errorf("restore %s: %w", g.String(), err)
	}
}

// badBackupData reports a download that failed on the backup's data (a file
// missing or not matching the manifest), which no retry mends.
func badBackupData(err error) bool {
	return errors.Is(err, blockservice.ErrNotFound) || errors.Is(err, blockservice.ErrCorrupt)
}

// reportRestore tells the meta server how g's restore goes
// (RPC_CM_REPORT_RESTORE_STATUS); it reports whether the meta server took it.
func (s *Stub) reportRestore(ctx context.Context, g base.Gpid, status string, progress int32, reason string) bool {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RPCTimeout)
	defer cancel()
	self := s.self
	req := &backup.ConfigurationReportRestoreStatusRequest{Pid: &g, RestoreStatus: base.NewErrorCode(status), Progress: progress, Node: &self}
	if reason != "" {
		req.Reason = &reason
	}
	resp := backup.NewConfigurationReportRestoreStatusResponse()
	if err := s.meta.leader().Call(ctx, rpc.Request{Code: rpc.CodeReportRestoreStatus, Args: req}, resp); err != nil {
		s.meta.rotate("")
		return false
	}
	switch resp.Err.Name() {
	case base.ErrOK, base.ErrAppNotExist, base.ErrAppDropped:
		// Taken, or nobody left to tell.
		return true
	case base.ErrForwardToOthers:
		s.meta.rotate("")
	}
	return false
}

// reportRestoreUntilAnswered sends the final status of g's restore until the
// meta server takes it (or this server stops): the meta server counts the
// partition restored from it.
func (s *Stub) reportRestoreUntilAnswered(g base.Gpid, status string, progress int32, reason string) {
	for s.ctx.Err() == nil {
		if s.reportRestore(s.ctx, g, status, progress, reason) {
			return
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(restoreReportEvery):
		}
	}
}

// dropRestoredTable asks the meta server, until it answers, to drop a table
// whose restore cannot complete (upstream: RPC_CM_DROP_APP, reserve 1 s).
func (s *Stub) dropRestoredTable(g base.Gpid) {
	if _, dup := s.restoreDrops.LoadOrStore(g.Appid, true); dup {
		return
	}
	p := s.get(g)
	name := ""
	if p != nil {
		name = p.appInfo().AppName
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for s.ctx.Err() == nil {
			if name == "" {
				name = s.tableName(g.Appid)
			}
			if name != "" && s.tryDrop(name) {
				return
			}
			select {
			case <-s.ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
}

// tableName asks the meta server for a table's name by id.
func (s *Stub) tableName(appID int32) string {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.RPCTimeout)
	defer cancel()
	var resp admin.ConfigurationListAppsResponse
	if err := s.meta.leader().Call(ctx, rpc.Request{Code: rpc.CodeListApps, Args: &admin.ConfigurationListAppsRequest{Status: layer2.AppStatus_AS_AVAILABLE}}, &resp); err != nil {
		s.meta.rotate("")
		return ""
	}
	for _, i := range resp.Infos {
		if i.AppID == appID {
			return i.AppName
		}
	}
	return ""
}

func (s *Stub) tryDrop(name string) bool {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.RPCTimeout)
	defer cancel()
	reserve := int64(1)
	req := &admin.ConfigurationDropAppRequest{AppName: name, Options: &admin.DropAppOptions{SuccessIfNotExist: true, ReserveSeconds: &reserve}}
	var resp admin.ConfigurationDropAppResponse
	if err := s.meta.leader().Call(ctx, rpc.Request{Code: rpc.CodeDropApp, Args: req}, &resp); err != nil {
		s.meta.rotate("")
		return false
	}
	if resp.Err.Name() != base.ErrOK {
		s.meta.rotate("")
		return false
	}
	s.log.Warn("restore: the table was dropped", "table", name)
	return true
}
