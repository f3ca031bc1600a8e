package shell

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/shell/opts"
	"github.com/pegasusgo/pegasus/shell/table"
)

// backupPollEvery is how often the waiting backup commands ask again.
const backupPollEvery = time.Second

// registerBackup adds the cold backup commands: backup and
// query_backup_status as admin-cli names them (the C++ shell has no one-time
// backup), restore_app and query_restore_status as the C++ shell.
func (s *Shell) registerBackup() {
	s.add(&command{name: "backup", args: "<app_id> <backup_provider_type> [backup_path]",
		help: "start a one-time cold backup of a table",
		opts: opts.Set{{Short: "w", Long: "wait", Help: "wait until the backup completes or fails"}}, run: cmdBackup})
	s.add(&command{name: "query_backup_status", args: "<app_id> [backup_id]",
		help: "show the one-time backups of a table", opts: opts.Set{optJSON}, run: cmdQueryBackupStatus})
	s.add(&command{name: "restore_app", help: "restore a backed-up table into a new table",
		opts: opts.Set{
			{Short: "c", Long: "old_cluster_name", Arg: "str", Help: "the cold_backup_root the backup was made under"},
			{Short: "p", Long: "old_policy_name", Arg: "str", Help: "the policy (pre-2.2 layout only)"},
			{Short: "a", Long: "old_app_name", Arg: "str", Help: "the backed-up table's name"},
			{Short: "i", Long: "old_app_id", Arg: "id", Help: "the backed-up table's id"},
			{Short: "t", Long: "timestamp", Arg: "backup_id", Help: "the backup id"},
			{Short: "b", Long: "backup_provider_type", Arg: "str", Help: "the block service provider"},
			{Short: "n", Long: "new_app_name", Arg: "str", Help: "the new table's name (the old one)"},
			{Short: "s", Long: "skip_bad_partition", Help: "start a partition whose backup is damaged empty"},
			{Short: "r", Long: "restore_path", Arg: "str", Help: "the backup_path the backup was made under"},
		}, run: cmdRestoreApp})
	s.add(&command{name: "query_restore_status", args: "<restore_app_id>",
		help: "show the progress of a restore", opts: opts.Set{optDetail}, run: cmdQueryRestoreStatus})
}

func cmdBackup(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) < 2 || len(r.Args) > 3 {
		return badUsage("need <app_id> <backup_provider_type> [backup_path]")
	}
	id, err := strconv.ParseInt(r.Args[0], 10, 32)
	if err != nil || id <= 0 {
		return badUsage("invalid app_id %q", r.Args[0])
	}
	req := &backup.StartBackupAppRequest{AppID: int32(id), BackupProviderType: r.Args[1]}
	if len(r.Args) == 3 {
		req.BackupPath = ptr(r.Args[2])
	}
	resp, err := metaCall[backup.StartBackupAppResponse](ctx, s, rpc.CodeStartBackupApp, req)
	if err != nil {
		return fmt.Errorf("backup failed: %w", err)
	}
	fmt.Fprintf(s.out, "[hint]: %s\n", resp.HintMessage)
	if !resp.Err.OK() {
		return fmt.Errorf("backup failed: %w", &rpc.AppError{Code: errName(resp.Err), Hint: resp.HintMessage})
	}
	fmt.Fprintf(s.out, "BackupID: %d\n", resp.GetBackupID())
	if !r.Bool("wait") {
		return nil
	}
	start := time.Now()
	for {
		items, _, err := s.backupItems(ctx, int32(id), resp.BackupID)
		if err != nil {
			return err
		}
		st := backupStatus(items[0])
		if s.opts.Progress {
			fmt.Fprintf(s.out, "\rbackup %d: %s (%s)", resp.GetBackupID(), st, time.Since(start).Round(time.Second))
		}
		if st != "in progress" {
			if s.opts.Progress {
				fmt.Fprintln(s.out)
			}
			fmt.Fprintf(s.out, "backup %d %s\n", resp.GetBackupID(), st)
			if st == "failed" {
				return fmt.Errorf("backup %d failed", resp.GetBackupID())
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backupPollEvery):
		}
	}
}

func (s *Shell) backupItems(ctx context.Context, appID int32, backupID *int64) ([]*backup.BackupItem, string, error) {
	resp, err := metaCall[backup.QueryBackupStatusResponse](ctx, s, rpc.CodeQueryBackupStatus, &backup.QueryBackupStatusRequest{AppID: appID, BackupID: backupID})
	if err != nil {
		return nil, "", fmt.Errorf("query backup status failed: %w", err)
	}
	if !resp.Err.OK() {
		return nil, resp.HintMessage, fmt.Errorf("query backup status failed: %w", &rpc.AppError{Code: errName(resp.Err), Hint: resp.HintMessage})
	}
	return resp.BackupItems, resp.HintMessage, nil
}

// backupStatus is admin-cli's Status column.
func backupStatus(it *backup.BackupItem) string {
	switch {
	case it.IsBackupFailed:
		return "failed"
	case it.EndTimeMs == 0:
		return "in progress"
	}
	return "completed"
}

func msTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).Format("2006-01-02 15:04:05")
}

func cmdQueryBackupStatus(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) < 1 || len(r.Args) > 2 {
		return badUsage("need <app_id> [backup_id]")
	}
	id, err := strconv.ParseInt(r.Args[0], 10, 32)
	if err != nil {
		return badUsage("invalid app_id %q", r.Args[0])
	}
	var backupID *int64
	if len(r.Args) == 2 {
		b, err := strconv.ParseInt(r.Args[1], 10, 64)
		if err != nil {
			return badUsage("invalid backup_id %q", r.Args[1])
		}
		backupID = &b
	}
	items, hint, err := s.backupItems(ctx, int32(id), backupID)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "[hint]: %s\n", hint)
	t := table.New("", table.L("BackupID"), table.L("AppName"), table.L("StartTime"), table.L("EndTime"),
		table.L("Status"), table.L("BackupProviderType"), table.L("BackupPath"))
	for _, it := range items {
		t.Row(it.BackupID, it.AppName, msTime(it.StartTimeMs), msTime(it.EndTimeMs), backupStatus(it), it.BackupProviderType, it.BackupPath)
	}
	return table.Single(s.out, r.Bool("json"), t)
}

func cmdRestoreApp(ctx context.Context, s *Shell, r *opts.Result) error {
	cluster := r.String("old_cluster_name", "")
	oldName := r.String("old_app_name", "")
	provider := r.String("backup_provider_type", "")
	oldID, err := r.Int("old_app_id", 0)
	if err != nil || oldID <= 0 {
		return badUsage("invalid old_app_id")
	}
	ts, err := r.Int("timestamp", 0)
	if err != nil || ts <= 0 {
		return badUsage("invalid timestamp")
	}
	if cluster == "" || oldName == "" || provider == "" {
		return badUsage("need -c old_cluster_name, -a old_app_name and -b backup_provider_type")
	}
	newName := r.String("new_app_name", oldName)
	if !validAppName(newName) {
		return badUsage("invalid new_app_name %q", newName)
	}
	req := &backup.ConfigurationRestoreRequest{
		ClusterName: cluster, PolicyName: r.String("old_policy_name", ""), TimeStamp: ts,
		AppName: oldName, AppID: int32(oldID), NewAppName_: newName, BackupProviderName: provider,
		SkipBadPartition: r.Bool("skip_bad_partition"),
	}
	if r.Has("restore_path") {
		req.RestorePath = ptr(r.String("restore_path", ""))
	}
	resp, err := metaCall[admin.ConfigurationCreateAppResponse](ctx, s, rpc.CodeStartRestore, req)
	if err != nil {
		return fmt.Errorf("restore app failed: %w", err)
	}
	switch errName(resp.Err) {
	case base.ErrOK:
	case base.ErrObjectNotFound:
		return fmt.Errorf("restore app failed: couldn't find valid app metadata")
	case base.ErrServiceNotActive:
		// The create-app answer has no hint field to say why.
		return fmt.Errorf("restore app failed: %w", &rpc.AppError{Code: errName(resp.Err), Hint: "cold backup is disabled on the meta servers ([meta_server] cold_backup_disabled = true)"})
	default:
		return fmt.Errorf("restore app failed: %w", &rpc.AppError{Code: errName(resp.Err)})
	}
	// Ready once every partition is restored (query_restore_status shows
	// the same); until then the table answers ERR_BUSY_CREATING.
	for {
		st, err := s.restoreStatus(ctx, resp.Appid)
		if err == nil && st.dropped {
			return fmt.Errorf("restore failed, because some partition's data is damaged on cold backup media")
		}
		if err == nil && st.finished() {
			break
		}
		fmt.Fprintln(s.out, "sleep 1 second to wait complete...")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backupPollEvery):
		}
	}
	fmt.Fprintf(s.out, "\tnew app_id = %d\n", resp.Appid)
	return nil
}

// restoreState is a restore's status as the meta server answers it.
type restoreState struct {
	dropped  bool // the restore failed: its table was dropped
	status   []string
	progress []int32
}

// finished reports whether every partition is restored (or skipped).
func (r restoreState) finished() bool {
	if len(r.status) == 0 {
		return false
	}
	for i, st := range r.status {
		if st != base.ErrIgnoreBadData && (st != base.ErrOK || r.progress[i] != 1000) {
			return false
		}
	}
	return true
}

// restoreStatus asks the meta server how the restore into the table appID
// goes (RPC_CM_QUERY_RESTORE_STATUS).
func (s *Shell) restoreStatus(ctx context.Context, appID int32) (restoreState, error) {
	resp, err := metaCall[backup.ConfigurationQueryRestoreResponse](ctx, s, rpc.CodeQueryRestoreStatus, &backup.ConfigurationQueryRestoreRequest{RestoreAppID: appID})
	if err != nil {
		return restoreState{}, err
	}
	switch errName(resp.Err) {
	case base.ErrOK:
	case base.ErrAppDropped:
		return restoreState{dropped: true}, nil
	default:
		return restoreState{}, &rpc.AppError{Code: errName(resp.Err)}
	}
	if len(resp.RestoreStatus) != len(resp.RestoreProgress) {
		return restoreState{}, fmt.Errorf("the meta server answered %d statuses for %d progresses", len(resp.RestoreStatus), len(resp.RestoreProgress))
	}
	st := restoreState{progress: resp.RestoreProgress}
	for _, e := range resp.RestoreStatus {
		st.status = append(st.status, errName(e))
	}
	return st, nil
}

func cmdQueryRestoreStatus(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) != 1 {
		return badUsage("need <restore_app_id>")
	}
	id, err := strconv.ParseInt(r.Args[0], 10, 32)
	if err != nil {
		return badUsage("invalid restore_app_id %q", r.Args[0])
	}
	st, err := s.restoreStatus(ctx, int32(id))
	if err != nil {
		return fmt.Errorf("query restore status failed: %w", err)
	}
	if st.dropped {
		fmt.Fprintln(s.out, "restore failed, because some partition's data is damaged on cold backup media")
		return nil
	}
	sum := int64(0)
	t := table.New("", table.L("pid"), table.R("progress(%)"), table.L("restore_status"))
	for i, code := range st.status {
		p := min(max(st.progress[i], 0), 1000)
		sum += int64(p)
		status := code // a download that stopped on an error: its name
		switch {
		case code == base.ErrOK && p == 1000:
			status = "ok"
		case code == base.ErrOK:
			status = "ongoing"
		case code == base.ErrIgnoreBadData:
			status = "skip"
		}
		t.Row(i, p/10, status)
	}
	if len(st.status) > 0 {
		sum /= int64(len(st.status))
	}
	fmt.Fprintf(s.out, "the overall progress of restore is %d%%\n", sum/10)
	if r.Bool("detailed") {
		if err := table.Single(s.out, false, t); err != nil {
			return err
		}
		fmt.Fprintln(s.out, "annotations:\n    ok - restore complete\n    ongoing - restore is in progress\n    skip - restore failed, but skip the bad data\n    ERR_* - the partition's download stopped on that error")
	}
	return nil
}

// validAppName is upstream's client-side check of a table name: letters,
// digits, '_', '.', ':' and '-' only.
func validAppName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}
