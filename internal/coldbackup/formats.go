package coldbackup

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/pegasusgo/pegasus/storage/blockservice"
)

// AppMetadata is app_metadata: the table's app_info as upstream writes it.
// Upstream clears the envs; they are kept here (restore adds its own envs
// on top and drops the ones that only describe the source table's state).
type AppMetadata struct {
	Status             string            `json:"status"`
	AppType            string            `json:"app_type"`
	AppName            string            `json:"app_name"`
	AppID              int32             `json:"app_id"`
	PartitionCount     int32             `json:"partition_count"`
	Envs               map[string]string `json:"envs"`
	IsStateful         bool              `json:"is_stateful"`
	MaxReplicaCount    int32             `json:"max_replica_count"`
	ExpireSecond       int64             `json:"expire_second"`
	CreateSecond       int64             `json:"create_second"`
	DropSecond         int64             `json:"drop_second"`
	Duplicating        bool              `json:"duplicating"`
	InitPartitionCount int32             `json:"init_partition_count"`
	IsBulkLoading      bool              `json:"is_bulk_loading"`
	AtomicIdempotent   bool              `json:"atomic_idempotent"`
}

// FileEntry is one checkpoint file in backup_metadata.
type FileEntry struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	MD5  string `json:"md5"`
}

// BackupMetadata is backup_metadata, a partition's manifest. The fields after
// checkpoint_total_size are this implementation's additions (upstream's
// readers ignore them): which table and partition it is, and the envs.
type BackupMetadata struct {
	CheckpointDecree    int64       `json:"checkpoint_decree"`
	CheckpointTimestamp int64       `json:"checkpoint_timestamp"`
	Files               []FileEntry `json:"files"`
	CheckpointTotalSize int64       `json:"checkpoint_total_size"`

	AppID          int32             `json:"app_id,omitempty"`
	AppName        string            `json:"app_name,omitempty"`
	PartitionIndex int32             `json:"partition_index"`
	PartitionCount int32             `json:"partition_count,omitempty"`
	Envs           map[string]string `json:"envs,omitempty"`
}

// BackupInfo is backup_info of a one-time backup, the completion marker.
type BackupInfo struct {
	BackupID    int64  `json:"backup_id"`
	StartTimeMs int64  `json:"start_time_ms"`
	EndTimeMs   int64  `json:"end_time_ms"`
	AppID       int32  `json:"app_id"`
	AppName     string `json:"app_name"`
}

// PutJSON writes v as the file p.
func PutJSON(ctx context.Context, svc blockservice.Service, p string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", p, err)
	}
	if _, err := svc.Put(ctx, p, strings.NewReader(string(data))); err != nil {
		return err
	}
	return nil
}

// GetJSON reads the file p into v. A file that does not decode is
// ErrUndecodable.
func GetJSON(ctx context.Context, svc blockservice.Service, p string, v any) error {
	data, err := getAll(ctx, svc, p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUndecodable, p, err)
	}
	return nil
}

// maxMetadataBytes bounds a metadata file read whole (manifests, app and
// backup metadata): a damaged or foreign file in the backup root must not
// make a server read gigabytes into memory. A partition's manifest lists a
// few hundred files at most.
const maxMetadataBytes = 16 << 20

func getAll(ctx context.Context, svc blockservice.Service, p string) ([]byte, error) {
	rc, _, err := svc.Get(ctx, p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(data) > maxMetadataBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrUndecodable, p, maxMetadataBytes)
	}
	return data, nil
}
