package meta

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/internal/coldbackup"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage/blockservice"
)

// Restore (spec: operations.md 2.6): the meta reads the backup's
// app_metadata, creates a new table like create_app does with the restore.*
// envs, and the replica servers of each partition's first configuration
// download the partition's checkpoint before they open it (see the replica's
// restore.go). The envs stay on the table.

// coldBackupDisabledHint is the hint of every backup and restore answer of a
// meta server with cold backup disabled (ERR_SERVICE_NOT_ACTIVE).
const coldBackupDisabledHint = "cold backup is disabled ([meta_server] cold_backup_disabled = true)"

// startRestore answers RPC_CM_START_RESTORE.
func (s *Server) startRestore(ctx context.Context, call *rpc.Call, req *backup.ConfigurationRestoreRequest) (*admin.ConfigurationCreateAppResponse, error) {
	resp := &admin.ConfigurationCreateAppResponse{}
	if s.opts.ColdBackupDisabled {
		resp.Err = errCode(base.ErrServiceNotActive)
		return resp, nil
	}
	name := req.NewAppName_
	if name == "" {
		name = req.AppName
	}
	spec := opSpec{what: "restore table", table: name, persists: true, check: func() error {
		if !validTableName(name) {
			return refuseLogged(base.ErrInvalidParameters, "bad table name")
		}
		return nil
	}}
	code, _ := s.leaderOp(spec, func(op *leaderOp) error {
		svc, err := s.cold.providers.Get(req.BackupProviderName)
		if err != nil {
			return refuseLogged(base.ErrInvalidParameters, err.Error())
		}
		root := blockservice.Join(req.GetRestorePath(), req.ClusterName, req.PolicyName)
		var md coldbackup.AppMetadata
		err = coldbackup.GetJSON(op.lt.ctx, svc, coldbackup.AppMetadataPath(root, req.TimeStamp, req.AppName, req.AppID), &md)
		switch {
		case errors.Is(err, blockservice.ErrNotFound):
			return refuseLogged(base.ErrObjectNotFound, err.Error())
		case errors.Is(err, coldbackup.ErrUndecodable):
			return refuseLogged(base.ErrCorruption, err.Error())
		case err != nil:
			return refuseLogged(base.ErrFSInternal, err.Error())
		case md.AppID != req.AppID || md.AppName != req.AppName:
			// Upstream aborts on an assertion here.
			return refuseLogged(base.ErrCorruption, fmt.Sprintf("app_metadata describes table %s (%d), not %s (%d)", md.AppName, md.AppID, req.AppName, req.AppID))
		case !isPowerOfTwo(md.PartitionCount) || md.PartitionCount > maxPartitionCount:
			return refuseLogged(base.ErrCorruption, fmt.Sprintf("app_metadata has partition count %d", md.PartitionCount))
		}
		envs := map[string]string{
			envRestoreProvider: req.BackupProviderName,
			envRestoreCluster:  req.ClusterName,
			envRestorePolicy:   req.PolicyName,
			envRestoreAppName:  req.AppName,
			envRestoreAppID:    strconv.Itoa(int(req.AppID)),
			envRestoreBackupID: strconv.FormatInt(req.TimeStamp, 10),
		}
		if req.SkipBadPartition {
			envs[envRestoreSkipBad] = "true"
		}
		if req.IsSetRestorePath() {
			envs[envRestorePath] = req.GetRestorePath()
		}
		replicas := md.MaxReplicaCount
		if replicas <= 0 {
			replicas = 3
		}
		// The restore's record first, so that the table is never served
		// before its partitions are restored (restorestatus.go).
		s.mu.RLock()
		next := op.lt.state.maxID + 1
		exists := op.lt.state.lookup(name) != nil
		s.mu.RUnlock()
		if !exists {
			if err := s.beginRestore(op.lt.ctx, next, name, req.TimeStamp, md.PartitionCount); err != nil {
				return persisted(err)
			}
		}
		id, err := s.createTable(op, name, md.AppType, md.PartitionCount, replicas, envs)
		if err != nil {
			if !exists {
				s.abandonRestore(op.lt.ctx, next)
			}
			return err
		}
		resp.Appid = id
		s.log.Info("restoring a table", "table", name, "app_id", id, "from_table", req.AppName, "from_app_id", req.AppID, "backup_id", req.TimeStamp)
		return nil
	})
	resp.Err = errCode(code)
	return resp, nil
}

// The restore.* envs a restored table carries (names as upstream).
const (
	envRestoreProvider = "restore.block_service_provider"
	envRestoreCluster  = "restore.cluster_name"
	envRestorePolicy   = "restore.policy_name"
	envRestoreAppName  = "restore.app_name"
	envRestoreAppID    = "restore.app_id"
	envRestoreBackupID = "restore.backup_id"
	envRestoreSkipBad  = "restore.skip_bad_partition"
	envRestorePath     = "restore.restore_path"
)

// createTable makes a new table as create_app does, with envs not checked
// by the env validator (the restore.* ones are set by the meta only).
func (s *Server) createTable(op *leaderOp, name, appType string, partitions, replicas int32, envs map[string]string) (int32, error) {
	lt := op.lt
	s.mu.RLock()
	level := s.effectiveLevel(lt)
	alive := lt.aliveNodes()
	existing := lt.state.lookup(name)
	id := lt.state.maxID + 1
	l := countLoad(lt.state, id)
	s.mu.RUnlock()
	if existing != nil {
		return 0, refuseLogged(base.ErrInvalidParameters, "a table of that name exists")
	}
	if err := refuseIfFrozen(level); err != nil {
		return 0, err
	}
	if int(replicas) > len(alive) {
		return 0, refuseLogged(base.ErrInvalidParameters, "replica count exceeds the alive replica servers")
	}
	if appType == "" {
		appType = "pegasus"
	}
	info := newAppInfo(id, name, appType, partitions, replicas, envs, s.opts.Now().Unix())
	a := &app{info: info}
	for i := int32(0); i < info.PartitionCount; i++ {
		pc := newPartition(id, i, info.MaxReplicaCount)
		if next := placeNew(pc, alive, l); next != nil {
			pc = next
		}
		a.partitions = append(a.partitions, pc)
	}
	if err := op.createApp(a); err != nil {
		return 0, err
	}
	s.mu.Lock()
	lt.state.put(a)
	s.mu.Unlock()
	for _, pc := range a.partitions {
		if pc.Ballot == 1 {
			s.proposeInstall(lt, info, pc)
		}
	}
	return id, nil
}
