package coldbackup

import (
	"encoding/json"
	"fmt"

	"github.com/pegasusgo/pegasus/rpc"
)

// PartitionRequest asks a partition's primary to back the partition up
// (RPC_COLD_BACKUP; upstream's backup_request). The meta sends it again and
// again until the answer says done or failed; each answer reports progress.
// It travels as JSON in a thrift string: the RPC is cluster-internal and
// not wire-compatible with upstream's replica servers.
type PartitionRequest struct {
	AppID          int32  `json:"app_id"`
	PartitionIndex int32  `json:"partition_index"`
	AppName        string `json:"app_name"`
	PartitionCount int32  `json:"partition_count"`
	BackupID       int64  `json:"backup_id"`
	Provider       string `json:"backup_provider_type"`
	BackupPath     string `json:"backup_path,omitempty"`
}

// PartitionResponse is the answer: Err is an error code name (ERR_OK done,
// ERR_BUSY in progress, ERR_LOCAL_APP_FAILURE failed for good, others:
// retry), Progress 0-1000.
type PartitionResponse struct {
	Err                 string `json:"err"`
	Progress            int32  `json:"progress"`
	CheckpointTotalSize int64  `json:"checkpoint_total_size"`
	CheckpointDecree    int64  `json:"checkpoint_decree"`
	Hint                string `json:"hint,omitempty"`
}

// Encode packs v for the RPC.
func Encode(v any) *rpc.String {
	data, _ := json.Marshal(v)
	return &rpc.String{V: string(data)}
}

// Decode unpacks s into v.
func Decode(s *rpc.String, v any) error {
	if err := json.Unmarshal([]byte(s.V), v); err != nil {
		return fmt.Errorf("coldbackup: decode message: %w", err)
	}
	return nil
}
