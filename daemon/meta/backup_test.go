package meta

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/internal/coldbackup"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage/blockservice"
)

func callMeta[R any, PR interface {
	*R
	rpc.Value
}](t *testing.T, addr, code string, args rpc.Value) PR {
	t.Helper()
	c := rpc.NewClient(addr, rpc.ClientOptions{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := PR(new(R))
	if err := c.Call(ctx, rpc.Request{Code: code, Args: args}, res); err != nil {
		t.Fatalf("%s: %v", code, err)
	}
	return res
}

// The meta's side of one-time backups and restores, without replica
// servers: the refusals, the app_metadata written at the start, a second
// start refused while the first runs, and the record surviving a restart
// of the leader.
func TestBackupAnswers(t *testing.T) {
	bsDir := filepath.Join(t.TempDir(), "bs")
	withBackup := func(o *Options) {
		o.ColdBackup = coldbackup.Options{Root: "test", Providers: map[string]blockservice.Config{"local": {Type: blockservice.TypeLocal, Args: []string{bsDir}}}}
	}
	t.Run("disabled", func(t *testing.T) {
		m := startMeta(t, t.TempDir(), func(o *Options) { withBackup(o); o.ColdBackupDisabled = true })
		if r := callMeta[backup.StartBackupAppResponse](t, m.addr, rpc.CodeStartBackupApp, &backup.StartBackupAppRequest{AppID: 1, BackupProviderType: "local"}); r.Err.Name() != base.ErrServiceNotActive {
			t.Errorf("start: %s", r.Err.Name())
		}
		if r := callMeta[backup.QueryBackupStatusResponse](t, m.addr, rpc.CodeQueryBackupStatus, &backup.QueryBackupStatusRequest{AppID: 1}); r.Err.Name() != base.ErrServiceNotActive {
			t.Errorf("query: %s", r.Err.Name())
		}
		if r := callMeta[admin.ConfigurationCreateAppResponse](t, m.addr, rpc.CodeStartRestore, &backup.ConfigurationRestoreRequest{AppName: "temp", AppID: 1, BackupProviderName: "local"}); r.Err.Name() != base.ErrServiceNotActive {
			t.Errorf("restore: %s", r.Err.Name())
		}
	})

	dir := t.TempDir()
	m := startMeta(t, dir, withBackup)
	for _, tc := range []struct {
		name     string
		req      *backup.StartBackupAppRequest
		wantCode string
	}{
		{"unknown table", &backup.StartBackupAppRequest{AppID: 99, BackupProviderType: "local"}, base.ErrAppNotExist},
		{"unknown provider", &backup.StartBackupAppRequest{AppID: 1, BackupProviderType: "hdfs"}, base.ErrInvalidParameters},
	} {
		if r := callMeta[backup.StartBackupAppResponse](t, m.addr, rpc.CodeStartBackupApp, tc.req); r.Err.Name() != tc.wantCode {
			t.Errorf("%s: %s %q, want %s", tc.name, r.Err.Name(), r.HintMessage, tc.wantCode)
		}
	}
	r := callMeta[backup.StartBackupAppResponse](t, m.addr, rpc.CodeStartBackupApp, &backup.StartBackupAppRequest{AppID: 1, BackupProviderType: "local"})
	if !r.Err.OK() || r.BackupID == nil {
		t.Fatalf("start: %s %q", r.Err.Name(), r.HintMessage)
	}
	id := r.GetBackupID()
	if _, err := os.Stat(filepath.Join(bsDir, coldbackup.AppMetadataPath("test", id, "temp", 1))); err != nil {
		t.Errorf("app_metadata: %v", err)
	}
	if r := callMeta[backup.StartBackupAppResponse](t, m.addr, rpc.CodeStartBackupApp, &backup.StartBackupAppRequest{AppID: 1, BackupProviderType: "local"}); r.Err.Name() != base.ErrInvalidState {
		t.Errorf("second start while the first runs: %s", r.Err.Name())
	}
	if q := callMeta[backup.QueryBackupStatusResponse](t, m.addr, rpc.CodeQueryBackupStatus, &backup.QueryBackupStatusRequest{AppID: 1, BackupID: ptrTo(id + 1)}); q.Err.Name() != base.ErrInvalidParameters {
		t.Errorf("query of an unknown backup id: %s", q.Err.Name())
	}
	// No replica server answers: the backup stays in progress, and a new
	// leader (the same server restarted) still knows it.
	m.stop()
	m = startMeta(t, dir, withBackup)
	waitFor(t, 10*time.Second, "the backup record reloaded", func() bool {
		q := callMeta[backup.QueryBackupStatusResponse](t, m.addr, rpc.CodeQueryBackupStatus, &backup.QueryBackupStatusRequest{AppID: 1})
		return q.Err.OK() && len(q.BackupItems) == 1 && q.BackupItems[0].BackupID == id && q.BackupItems[0].EndTimeMs == 0 && !q.BackupItems[0].IsBackupFailed
	})

	for _, tc := range []struct {
		name     string
		req      *backup.ConfigurationRestoreRequest
		damage   func()
		wantCode string
	}{
		{"unknown provider", &backup.ConfigurationRestoreRequest{ClusterName: "test", TimeStamp: id, AppName: "temp", AppID: 1, NewAppName_: "r", BackupProviderName: "x"}, nil, base.ErrInvalidParameters},
		{"no such backup", &backup.ConfigurationRestoreRequest{ClusterName: "test", TimeStamp: id + 1, AppName: "temp", AppID: 1, NewAppName_: "r", BackupProviderName: "local"}, nil, base.ErrObjectNotFound},
		{"existing name", &backup.ConfigurationRestoreRequest{ClusterName: "test", TimeStamp: id, AppName: "temp", AppID: 1, BackupProviderName: "local"}, nil, base.ErrInvalidParameters},
		{"undecodable metadata", &backup.ConfigurationRestoreRequest{ClusterName: "test", TimeStamp: id, AppName: "temp", AppID: 1, NewAppName_: "r", BackupProviderName: "local"}, func() {
			if err := os.WriteFile(filepath.Join(bsDir, coldbackup.AppMetadataPath("test", id, "temp", 1)), []byte("{not json"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, base.ErrCorruption},
	} {
		if tc.damage != nil {
			tc.damage()
		}
		if r := callMeta[admin.ConfigurationCreateAppResponse](t, m.addr, rpc.CodeStartRestore, tc.req); r.Err.Name() != tc.wantCode {
			t.Errorf("restore, %s: %s, want %s", tc.name, r.Err.Name(), tc.wantCode)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
