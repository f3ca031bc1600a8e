package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
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

// createInstalled makes the replica of a partition's first configuration:
// empty, or from the backup for a restored table.
func (s *Stub) createInstalled(g base.Gpid, info *layer2.AppInfo) (*partition, error) {
	spec, err := restoreSpecOf(info)
	if err != nil {
		return nil, err
	}
	if spec == nil {
		return s.create(g, info)
	}
	s.restoring.Store(g, spec)
	defer s.restoring.Delete(g)
	return s.create(g, info)
}

// restoredData downloads a restored partition's checkpoint into a new
// replica directory's data directory; create calls it before it writes the
// replica's state file, so that a crash midway leaves a directory the
// server skips at start (no state) and the next attempt moves aside, never
// a replica that looks valid with part of its data.
func (s *Stub) restoredData(g base.Gpid, dir string) error {
	v, ok := s.restoring.Load(g)
	if !ok {
		return nil
	}
	return s.downloadRestore(g, v.(*restoreSpec), filepath.Join(dir, "data"))
}

// downloadRestore fetches the partition's checkpoint into stage. A bad
// partition skipped leaves no stage directory (the store starts empty).
func (s *Stub) downloadRestore(g base.Gpid, spec *restoreSpec, stage string) error {
	_ = os.RemoveAll(stage)
	svc, err := s.backups.providers.Get(spec.provider)
	if err != nil {
		return fmt.Errorf("restore %s: %w", g.String(), err)
	}
	partDir := coldbackup.PartitionDir(spec.root, spec.backupID, spec.appName, spec.appID, g.PartitionIndex)
	start := time.Now()
	man, err := coldbackup.Download(s.ctx, svc, s.backups.providers.Limiter(), partDir, stage, nil)
	switch {
	case err == nil:
		s.log.Info("restored a partition from a backup", "gpid", g.String(), "backup_id", spec.backupID, "decree", man.CheckpointDecree,
			"bytes", man.CheckpointTotalSize, "took", time.Since(start).Round(time.Millisecond))
		return nil
	case errors.Is(err, blockservice.ErrNotFound) || errors.Is(err, blockservice.ErrCorrupt):
		if spec.skipBad {
			s.log.Warn("restore: the partition's backup is missing or corrupted; it starts empty (skip_bad_partition)", "gpid", g.String(), "err", err)
			return nil
		}
		s.log.Error("restore: the partition's backup is missing or corrupted; asking the meta server to drop the table", "gpid", g.String(), "backup_id", spec.backupID, "err", err)
		s.dropRestoredTable(g)
		return fmt.Errorf("restore %s: %w", g.String(), err)
	default:
		return fmt.Errorf("restore %s: %w", g.String(), err)
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
