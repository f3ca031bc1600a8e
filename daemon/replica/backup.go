package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/internal/coldbackup"
	"github.com/pegasusgo/pegasus/rpc"
)

// backups runs the cold backups of this server's primaries (RPC_COLD_BACKUP,
// spec: operations.md 2.3). The meta server drives them: it sends the same
// request until the answer says done or failed, and each request only reads
// the state of the job it started (one job per partition; a newer backup id
// replaces an older one).
type backups struct {
	s         *Stub
	providers *coldbackup.Providers

	mu   sync.Mutex
	jobs map[base.Gpid]*backupJob
}

// backupJob is one partition's upload. Its fields after mu are guarded by mu.
type backupJob struct {
	id     int64
	cancel context.CancelFunc

	mu       sync.Mutex
	progress int32 // 0-1000
	total    int64
	decree   int64
	done     bool
	err      error
}

func newBackups(s *Stub) *backups {
	return &backups{s: s, providers: coldbackup.NewProviders(s.opts.ColdBackup), jobs: map[base.Gpid]*backupJob{}}
}

// registerBackup installs RPC_COLD_BACKUP.
func (s *Stub) registerBackup(mux *rpc.Mux) {
	rpc.Handle(mux, rpc.CodeColdBackup, func(ctx context.Context, c *rpc.Call, req *rpc.String) (*rpc.String, error) {
		if !s.fromMetaServer(senderOf(c), rpc.CodeColdBackup) {
			return nil, errors.New("cold backup requests come from the meta servers")
		}
		var r coldbackup.PartitionRequest
		if err := coldbackup.Decode(req, &r); err != nil {
			return nil, err
		}
		return coldbackup.Encode(s.backups.handle(r)), nil
	})
}

func (b *backups) handle(r coldbackup.PartitionRequest) coldbackup.PartitionResponse {
	if b.providers.Root() == "" {
		return coldbackup.PartitionResponse{Err: base.ErrOperationDisabled, Hint: "[replication] cold_backup_root is empty"}
	}
	g := base.Gpid{Appid: r.AppID, PartitionIndex: r.PartitionIndex}
	p := b.s.get(g)
	if p == nil {
		return coldbackup.PartitionResponse{Err: base.ErrObjectNotFound}
	}
	if pacifica.Status(p.status.Load()) != pacifica.StatusPrimary {
		return coldbackup.PartitionResponse{Err: base.ErrInvalidState, Hint: "not the primary"}
	}
	b.mu.Lock()
	job := b.jobs[g]
	switch {
	case job != nil && job.id > r.BackupID:
		b.mu.Unlock()
		return coldbackup.PartitionResponse{Err: base.ErrVersionOutdated}
	case job == nil || job.id < r.BackupID:
		if job != nil {
			job.cancel()
		}
		if _, err := b.providers.Get(r.Provider); err != nil {
			b.mu.Unlock()
			return coldbackup.PartitionResponse{Err: base.ErrLocalAppFailure, Hint: err.Error()}
		}
		ctx, cancel := context.WithCancel(b.s.ctx)
		job = &backupJob{id: r.BackupID, cancel: cancel}
		b.jobs[g] = job
		b.s.wg.Add(1)
		go func() {
			defer b.s.wg.Done()
			defer cancel()
			man, err := b.run(ctx, p, r, job)
			job.mu.Lock()
			job.done, job.err = true, err
			if err == nil {
				job.progress, job.total, job.decree = 1000, man.CheckpointTotalSize, man.CheckpointDecree
			}
			job.mu.Unlock()
			if err != nil {
				p.log.Warn("cold backup of the partition failed", "backup_id", r.BackupID, "err", err)
			} else {
				p.log.Info("cold backup of the partition uploaded", "backup_id", r.BackupID, "decree", man.CheckpointDecree, "bytes", man.CheckpointTotalSize)
			}
		}()
	}
	b.mu.Unlock()

	job.mu.Lock()
	defer job.mu.Unlock()
	resp := coldbackup.PartitionResponse{Progress: job.progress, CheckpointTotalSize: job.total, CheckpointDecree: job.decree}
	switch {
	case !job.done:
		resp.Err = base.ErrBusy
	case job.err != nil:
		resp.Err, resp.Hint = base.ErrLocalAppFailure, job.err.Error()
		// Forget the failure once reported, so that a new request retries.
		b.mu.Lock()
		if b.jobs[g] == job {
			delete(b.jobs, g)
		}
		b.mu.Unlock()
	default:
		resp.Err = base.ErrOK
	}
	return resp
}

// run takes a checkpoint of p's store at its current decree and uploads it,
// unless an earlier attempt already completed the upload.
func (b *backups) run(ctx context.Context, p *partition, r coldbackup.PartitionRequest, job *backupJob) (coldbackup.BackupMetadata, error) {
	svc, err := b.providers.Get(r.Provider)
	if err != nil {
		return coldbackup.BackupMetadata{}, err
	}
	root := coldbackup.Root(r.BackupPath, b.providers.Root())
	partDir := coldbackup.PartitionDir(root, r.BackupID, r.AppName, r.AppID, r.PartitionIndex)
	if man, ok, err := coldbackup.Uploaded(ctx, svc, partDir); err != nil {
		return man, fmt.Errorf("check earlier upload: %w", err)
	} else if ok {
		return man, nil
	}
	// Leftovers of earlier backups (a crash, a replaced job) go first.
	if old, _ := filepath.Glob(filepath.Join(p.dir, "cold_backup.*")); len(old) > 0 {
		for _, o := range old {
			_ = os.RemoveAll(o)
		}
	}
	local := filepath.Join(p.dir, "cold_backup."+strconv.FormatInt(r.BackupID, 10))
	// The local copy is only the source of the upload.
	defer os.RemoveAll(local)
	st := p.st()
	if st == nil {
		return coldbackup.BackupMetadata{}, errors.New("store closed")
	}
	decree, err := st.Checkpoint(ctx, local)
	if err != nil {
		return coldbackup.BackupMetadata{}, fmt.Errorf("checkpoint: %w", err)
	}
	info := p.appInfo()
	man := coldbackup.BackupMetadata{
		CheckpointDecree: decree,
		AppID:            r.AppID,
		AppName:          r.AppName,
		PartitionIndex:   r.PartitionIndex,
		PartitionCount:   info.PartitionCount,
		Envs:             info.Envs,
	}
	return coldbackup.Upload(ctx, svc, b.providers.Limiter(), local, partDir, coldbackup.CheckpointName(b.s.self), man, func(done, total int64) {
		job.mu.Lock()
		defer job.mu.Unlock()
		if total > 0 {
			// 999 at most: 1000 means the manifest is written too.
			job.progress = int32(min(done*1000/total, 999))
		}
		job.total = total
	})
}
