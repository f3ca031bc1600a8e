// Package coldbackup is what the meta and replica servers share about cold
// backups: upstream's on-storage layout on a block service, the files'
// formats, the partition-level RPC between them, and the partition's upload
// and download of a checkpoint.
//
// Layout (spec: operations.md 2.2), B = [<backup_path>/]<cold_backup_root>:
//
//	B/<backup_id>/backup_info                            written last, by the meta
//	B/<backup_id>/<app>_<app_id>/meta/app_metadata       by the meta, first
//	B/<backup_id>/<app>_<app_id>/<pidx>/current_checkpoint   by the primary, last
//	B/<backup_id>/<app>_<app_id>/<pidx>/chkpt_<host>_<port>/<files>
//	B/<backup_id>/<app>_<app_id>/<pidx>/chkpt_<host>_<port>/backup_metadata
//
// A partition is backed up once its current_checkpoint exists (written after
// every file and the manifest); a backup is complete once backup_info exists
// (written after every partition). A crash anywhere earlier leaves a backup
// that is never taken for complete.
package coldbackup

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pegasusgo/pegasus/storage/blockservice"
)

// File names of the layout.
const (
	BackupInfoFile        = "backup_info"
	AppMetadataFile       = "app_metadata"
	CurrentCheckpointFile = "current_checkpoint"
	BackupMetadataFile    = "backup_metadata"
)

// Root is B: the directory of a cluster's backups.
func Root(backupPath, coldBackupRoot string) string {
	return blockservice.Join(backupPath, coldBackupRoot)
}

// BackupDir is B/<backup_id>.
func BackupDir(root string, backupID int64) string {
	return blockservice.Join(root, strconv.FormatInt(backupID, 10))
}

// AppDir is B/<backup_id>/<app>_<app_id>.
func AppDir(root string, backupID int64, appName string, appID int32) string {
	return blockservice.Join(BackupDir(root, backupID), fmt.Sprintf("%s_%d", appName, appID))
}

// AppMetadataPath is where the meta writes the table's app_info.
func AppMetadataPath(root string, backupID int64, appName string, appID int32) string {
	return blockservice.Join(AppDir(root, backupID, appName, appID), "meta", AppMetadataFile)
}

// PartitionDir is B/<backup_id>/<app>_<app_id>/<pidx>.
func PartitionDir(root string, backupID int64, appName string, appID, pidx int32) string {
	return blockservice.Join(AppDir(root, backupID, appName, appID), strconv.Itoa(int(pidx)))
}

// CheckpointName is chkpt_<host>_<port> of the uploading primary at addr
// (ip:port).
func CheckpointName(addr string) string {
	return "chkpt_" + strings.ReplaceAll(addr, ":", "_")
}
