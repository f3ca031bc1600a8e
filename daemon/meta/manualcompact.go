package meta

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
	"github.com/pegasusgo/pegasus/rpc"
)

// The manual_compact.* envs the meta server reads or writes itself.
const (
	envCompactDisabled    = "manual_compact.disabled"
	envCompactMaxRunning  = "manual_compact.max_concurrent_running_count"
	envCompactOnceTrigger = "manual_compact.once.trigger_time"
)

// registerManualCompact installs RPC_CM_START_MANUAL_COMPACT and
// RPC_CM_QUERY_MANUAL_COMPACT_STATUS (spec: operations.md 1.6). The replicas
// run the compaction from the manual_compact.* envs the start writes, and
// report their status in every config sync; the query adds those up.
func (s *Server) registerManualCompact(mux *rpc.Mux) {
	rpc.Handle(mux, rpc.CodeStartManualCompact, s.startManualCompact)
	rpc.Handle(mux, rpc.CodeQueryManualCompactStatus, s.queryManualCompact)
}

func (s *Server) startManualCompact(ctx context.Context, call *rpc.Call, req *admin.StartAppManualCompactRequest) (*admin.StartAppManualCompactResponse, error) {
	resp := &admin.StartAppManualCompactResponse{}
	check := func() error {
		if req.IsSetTargetLevel() && req.GetTargetLevel() < -1 {
			return refuse(base.ErrInvalidParameters, fmt.Sprintf("invalid target_level %d: want -1 or >= 1", req.GetTargetLevel()))
		}
		if req.IsSetMaxRunningCount() && req.GetMaxRunningCount() < 0 {
			return refuse(base.ErrInvalidParameters, fmt.Sprintf("invalid max_running_count %d", req.GetMaxRunningCount()))
		}
		return nil
	}
	code, hint := s.leaderOp(opSpec{what: "start manual compaction", table: req.AppName, persists: true, check: check}, func(op *leaderOp) error {
		a, err := op.table(req.AppName)
		if err != nil {
			return err
		}
		if a.info.Envs[envCompactDisabled] == "true" {
			return refuse(base.ErrOperationDisabled, fmt.Sprintf("app %s disable manual compaction", req.AppName))
		}
		info := cloneInfo(a.info)
		// Written as upstream does, without the env validator.
		level := int32(-1)
		if req.IsSetTargetLevel() {
			level = req.GetTargetLevel()
		}
		info.Envs["manual_compact.once.target_level"] = strconv.Itoa(int(level))
		if req.GetMaxRunningCount() > 0 {
			info.Envs[envCompactMaxRunning] = strconv.Itoa(int(req.GetMaxRunningCount()))
		}
		bottommost := "skip"
		if req.GetBottommost() {
			bottommost = "force"
		}
		info.Envs["manual_compact.once.bottommost_level_compaction"] = bottommost
		trigger := s.opts.Now().Unix()
		if req.IsSetTriggerTime() {
			trigger = req.GetTriggerTime()
		}
		info.Envs[envCompactOnceTrigger] = strconv.FormatInt(trigger, 10)
		if err := op.commitApp(info, a.partitions); err != nil {
			return err
		}
		// Statuses collected before this start describe an earlier run.
		s.mu.Lock()
		for _, r := range op.lt.reports {
			for _, ri := range r.StoredReplicas {
				if ri != nil && ri.Pid != nil && ri.Pid.Appid == a.info.AppID {
					ri.ManualCompactStatus = nil
				}
			}
		}
		s.mu.Unlock()
		return nil
	})
	resp.Err = errCode(code)
	resp.HintMsg = hint
	if code == base.ErrOK {
		resp.HintMsg = "succeed"
	}
	return resp, nil
}

func (s *Server) queryManualCompact(ctx context.Context, call *rpc.Call, req *admin.QueryAppManualCompactRequest) (*admin.QueryAppManualCompactResponse, error) {
	resp := &admin.QueryAppManualCompactResponse{}
	code, hint := s.leaderOp(opSpec{what: "query manual compaction", table: req.AppName}, func(op *leaderOp) error {
		a, err := op.table(req.AppName)
		if err != nil {
			return err
		}
		total := int(a.info.PartitionCount) * int(a.info.MaxReplicaCount)
		finished, busy := 0, 0
		s.mu.RLock()
		for node, r := range op.lt.reports {
			for _, ri := range r.StoredReplicas {
				if ri == nil || ri.Pid == nil || ri.Pid.Appid != a.info.AppID || int(ri.Pid.PartitionIndex) >= len(a.partitions) {
					continue
				}
				// Only the partition's members count, as upstream counts the
				// replicas it serves.
				if !slices.Contains(members(a.partitions[ri.Pid.PartitionIndex]), node) {
					continue
				}
				switch ri.GetManualCompactStatus() {
				case metadata.ManualCompactionStatus_FINISHED:
					finished++
				case metadata.ManualCompactionStatus_QUEUING, metadata.ManualCompactionStatus_RUNNING:
					busy++
				}
			}
		}
		s.mu.RUnlock()
		if finished+busy == 0 || total <= 0 {
			return refuse(base.ErrInvalidState, fmt.Sprintf("app %s is not manual compaction", req.AppName))
		}
		progress := int32(min(finished*100/total, 100))
		resp.Progress = &progress
		return nil
	})
	resp.Err = errCode(code)
	resp.HintMsg = hint
	if code == base.ErrOK {
		resp.HintMsg = "succeed"
	}
	return resp, nil
}
