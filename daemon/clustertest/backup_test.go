package clustertest_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

func backupConfig(dir string, mbps int) string {
	return fmt.Sprintf("[meta_server]\ncold_backup_disabled = false\n\n[replication]\ncold_backup_root = test\ncold_backup_rate_mbps = %d\n\n[block_service.local]\ntype = local_service\nargs = %s\n\n", mbps, dir)
}

func startBackup(t *testing.T, c *clustertest.Cluster, appID int32) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rpc.CallMeta[backup.StartBackupAppResponse](ctx, metaClient(t, c), rpc.CodeStartBackupApp, &backup.StartBackupAppRequest{AppID: appID, BackupProviderType: "local"})
	if err != nil || !r.Err.OK() {
		t.Fatalf("start backup: %v %+v", err, r)
	}
	return r.GetBackupID()
}

func backupItem(t *testing.T, c *clustertest.Cluster, appID int32, id int64) *backup.BackupItem {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rpc.CallMeta[backup.QueryBackupStatusResponse](ctx, metaClient(t, c), rpc.CodeQueryBackupStatus, &backup.QueryBackupStatusRequest{AppID: appID, BackupID: &id})
	if err != nil || !r.Err.OK() || len(r.BackupItems) != 1 {
		t.Fatalf("query backup status: %v %+v", err, r)
	}
	return r.BackupItems[0]
}

func restore(t *testing.T, c *clustertest.Cluster, appID int32, id int64, oldName, newName string, skip bool) (string, int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rpc.CallMeta[admin.ConfigurationCreateAppResponse](ctx, metaClient(t, c), rpc.CodeStartRestore, &backup.ConfigurationRestoreRequest{
		ClusterName: "test", TimeStamp: id, AppName: oldName, AppID: appID, NewAppName_: newName,
		BackupProviderName: "local", SkipBadPartition: skip,
	})
	if err != nil {
		t.Fatalf("start restore: %v", err)
	}
	return r.Err.Name(), r.Appid
}

func tableStatus(t *testing.T, c *clustertest.Cluster, name string) layer2.AppStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rpc.CallMeta[admin.ConfigurationListAppsResponse](ctx, metaClient(t, c), rpc.CodeListApps, &admin.ConfigurationListAppsRequest{Status: layer2.AppStatus_AS_INVALID})
	if err != nil || !r.Err.OK() {
		t.Fatalf("list apps: %v %+v", err, r)
	}
	for _, i := range r.Infos {
		if i.AppName == name {
			return i.Status
		}
	}
	return layer2.AppStatus_AS_INVALID
}

// TestBackupAndRestore backs a table up while a writer keeps writing,
// restores it into a new table and compares every row: the rows written
// before the backup started are all there, and of the rows written during
// it each hash key holds a prefix (each partition is cut at one decree) of
// what was written, nothing written after the backup completed, and a scan
// of the whole restored table finds exactly those rows. Then a
// corrupted backup file fails a restore clearly (the table is dropped and
// the replica server says why), and with skip_bad_partition the damaged
// partition starts empty instead.
func TestBackupAndRestore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups")
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3,
		Tables:      []clustertest.Table{{Name: "src", Partitions: 4, Replicas: 3}},
		ExtraConfig: backupConfig(dir, 20),
	})
	c.WaitHealthy(60 * time.Second)
	src := c.OpenTable("src")
	appID := src.AppID()
	ctx, cancel := c.Context(5 * time.Minute)
	defer cancel()

	const hashKeys = 16
	hk := func(i int) []byte { return []byte(fmt.Sprint("h", i%hashKeys)) }
	val := func(kind string, i int) []byte {
		return []byte(fmt.Sprintf("%s-%d-%s", kind, i, strings.Repeat("x", 200)))
	}
	const pre = 800
	for i := range pre {
		if err := src.Set(ctx, hk(i), []byte(fmt.Sprint("pre", i)), val("pre", i), 0); err != nil {
			t.Fatal(err)
		}
	}

	// One sequential writer: within a hash key (one partition) the rows
	// are written in index order.
	var mu sync.Mutex
	written := 0
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := src.Set(ctx, hk(i), []byte(fmt.Sprint("during", i)), val("during", i), 0); err != nil {
				done <- err
				return
			}
			mu.Lock()
			written = i + 1
			mu.Unlock()
		}
	}()
	waitfor.Until(t, 30*time.Second, 50*time.Millisecond, "the writer under way", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return written >= 100, fmt.Sprint(written, " written")
	})
	id := startBackup(t, c, appID)
	waitfor.Until(t, 2*time.Minute, 500*time.Millisecond, "the backup complete", func() (bool, string) {
		it := backupItem(t, c, appID, id)
		if it.IsBackupFailed {
			t.Fatalf("backup failed: %+v", it)
		}
		return it.EndTimeMs > 0, fmt.Sprintf("%+v", it)
	})
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	mu.Lock()
	during := written
	mu.Unlock()
	for i := range 50 {
		if err := src.Set(ctx, hk(i), []byte(fmt.Sprint("post", i)), val("post", i), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "test", fmt.Sprint(id), "backup_info")); err != nil {
		t.Fatalf("backup_info: %v", err)
	}

	if code, newID := restore(t, c, appID, id, "src", "dst", false); code != base.ErrOK || newID <= appID {
		t.Fatalf("restore: %s, app id %d", code, newID)
	}
	if code, _ := restore(t, c, appID, id, "src", "dst", false); code != base.ErrInvalidParameters {
		t.Errorf("restore onto an existing name: %s, want ERR_INVALID_PARAMETERS", code)
	}
	if code, _ := restore(t, c, appID, id+1, "src", "nope", false); code != base.ErrObjectNotFound {
		t.Errorf("restore of a backup that does not exist: %s, want ERR_OBJECT_NOT_FOUND", code)
	}
	c.WaitHealthy(2 * time.Minute)
	dst := c.OpenTable("dst")
	for i := range pre {
		v, err := dst.Get(ctx, hk(i), []byte(fmt.Sprint("pre", i)))
		if err != nil {
			t.Fatal(err)
		}
		if string(v) != string(val("pre", i)) {
			t.Fatalf("pre%d: restored %q", i, v)
		}
	}
	// Per hash key, the rows written during the backup form a prefix.
	restored := 0
	for h := range hashKeys {
		missing := -1
		for i := h; i < during; i += hashKeys {
			v, err := dst.Get(ctx, hk(i), []byte(fmt.Sprint("during", i)))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case v == nil:
				if missing < 0 {
					missing = i
				}
			case missing >= 0:
				t.Fatalf("h%d: during%d restored but during%d, written before it, is not", h, i, missing)
			case string(v) != string(val("during", i)):
				t.Fatalf("during%d: restored %q", i, v)
			default:
				restored++
			}
		}
	}
	for i := range 50 {
		if v, err := dst.Get(ctx, hk(i), []byte(fmt.Sprint("post", i))); err != nil || v != nil {
			t.Fatalf("post%d (written after the backup completed) restored: %q %v", i, v, err)
		}
	}
	// Every row of the restored table is one of those checked above: no
	// row written after its partition's cut, nothing else.
	all := scanTable(t, dst)
	for _, r := range all {
		var kind string
		var i int
		if _, err := fmt.Sscanf(strings.TrimRight(r[1], "0123456789")+" "+strings.TrimLeft(r[1], "abcdefghijklmnopqrstuvwxyz"), "%s %d", &kind, &i); err != nil || r[0] != string(hk(i)) || r[2] != string(val(kind, i)) {
			t.Fatalf("restored row %q/%q (%d bytes) was not written so", r[0], r[1], len(r[2]))
		}
	}
	if len(all) != pre+restored {
		t.Fatalf("restored table holds %d rows, want %d before and %d during the backup", len(all), pre, restored)
	}
	t.Logf("backup %d: %d rows before, %d of %d rows written during the backup restored", id, pre, restored, during)
	// The restored table takes writes.
	if err := dst.Set(ctx, []byte("new"), []byte("row"), []byte("v"), 0); err != nil {
		t.Fatalf("write to the restored table: %v", err)
	}

	// Damage one file of partition 0.
	var sst string
	_ = filepath.WalkDir(filepath.Join(dir, "test", fmt.Sprint(id), fmt.Sprintf("src_%d", appID), "0"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".sst") && sst == "" {
			sst = p
		}
		return nil
	})
	if sst == "" {
		t.Fatal("no sst file in partition 0's backup")
	}
	data, err := os.ReadFile(sst)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(sst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, badID := restore(t, c, appID, id, "src", "bad", false)
	if code != base.ErrOK {
		t.Fatalf("restore bad: %s", code)
	}
	waitfor.Until(t, time.Minute, 500*time.Millisecond, "the table of a corrupted restore dropped", func() (bool, string) {
		st := tableStatus(t, c, "bad")
		return st != layer2.AppStatus_AS_AVAILABLE && st != layer2.AppStatus_AS_CREATING, st.String()
	})
	said := false
	for i := range 3 {
		if log := c.Log("replica", i+1); strings.Contains(log, "corrupted file") && strings.Contains(log, filepath.Base(sst)) {
			said = true
		}
	}
	if !said {
		t.Error("no replica server log names the corrupted file")
	}
	if r := restoreStatus(t, c, badID); r.Err.Name() != base.ErrAppDropped {
		t.Errorf("status of the failed restore: %s, want ERR_APP_DROPPED", r.Err.Name())
	}
	if log := c.Log("meta", 1); !strings.Contains(log, "restore fails") || !strings.Contains(log, filepath.Base(sst)) {
		t.Error("the meta server's log does not name the corrupted file")
	}

	code, skipID := restore(t, c, appID, id, "src", "skipped", true)
	if code != base.ErrOK {
		t.Fatalf("restore with skip_bad_partition: %s", code)
	}
	waitfor.Until(t, time.Minute, 500*time.Millisecond, "the restore with a skipped partition finished", func() (bool, string) {
		r := restoreStatus(t, c, skipID)
		done, progress, failed := restoreSummary(r)
		return done == len(r.RestoreStatus), fmt.Sprintf("%d restored, progress %v, %s", done, progress, failed)
	})
	// While the restore is unfinished, partition 0 shows skip; once it is,
	// every partition shows ok (upstream's answer for a table whole).
	c.WaitHealthy(2 * time.Minute)
	sk := c.OpenTable("skipped")
	found := map[bool]int{}
	for i := range pre {
		v, err := sk.Get(ctx, hk(i), []byte(fmt.Sprint("pre", i)))
		if err != nil {
			t.Fatal(err)
		}
		found[v != nil]++
	}
	// Partition 0 starts empty, the other three are restored.
	if found[true] == 0 || found[false] == 0 || found[true] == pre {
		t.Errorf("skip_bad_partition: %d rows restored, %d missing; want one partition's missing", found[true], found[false])
	}
}

// TestBackupSurvivesReplicaKill kills the replica server uploading
// partition 0 in the middle of its upload (uploads are slowed to 1 MB/s):
// the meta asks the partition's new primary, which uploads its own
// checkpoint, the backup completes, and its restore holds every row.
func TestBackupSurvivesReplicaKill(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups")
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3,
		Tables:      []clustertest.Table{{Name: "src", Partitions: 4, Replicas: 3}},
		ExtraConfig: backupConfig(dir, 1),
	})
	c.WaitHealthy(60 * time.Second)
	src := c.OpenTable("src")
	appID := src.AppID()
	ctx, cancel := c.Context(5 * time.Minute)
	defer cancel()
	// Incompressible values: about 4 MB per partition on disk.
	const rows = 4000
	val := func(i int) []byte {
		b := make([]byte, 4096)
		x := uint32(i*2654435761 + 1)
		for j := range b {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			b[j] = byte(x)
		}
		return b
	}
	for i := range rows {
		if err := src.Set(ctx, []byte(fmt.Sprint("h", i)), []byte("s"), val(i), 0); err != nil {
			t.Fatal(err)
		}
	}
	cfgCtx, cfgCancel := context.WithTimeout(context.Background(), 10*time.Second)
	qc, err := rpc.CallMeta[layer2.QueryCfgResponse](cfgCtx, metaClient(t, c), rpc.CodeQueryConfig, &layer2.QueryCfgRequest{AppName: "src"})
	cfgCancel()
	if err != nil || !qc.Err.OK() {
		t.Fatalf("query config: %v %+v", err, qc)
	}
	primary := qc.Partitions[0].Primary.String()
	victim := 0
	for i := 1; i <= 3; i++ {
		if c.Addr("replica", i) == primary {
			victim = i
		}
	}
	if victim == 0 {
		t.Fatalf("primary %s of partition 0 is none of the replica servers", primary)
	}

	id := startBackup(t, c, appID)
	part := filepath.Join(dir, "test", fmt.Sprint(id), fmt.Sprintf("src_%d", appID), "0")
	chkpt := filepath.Join(part, "chkpt_"+strings.ReplaceAll(primary, ":", "_"))
	waitfor.Until(t, time.Minute, 100*time.Millisecond, "partition 0's upload under way", func() (bool, string) {
		des, _ := os.ReadDir(chkpt)
		return len(des) > 0, chkpt
	})
	if _, err := os.Stat(filepath.Join(part, "current_checkpoint")); err == nil {
		t.Log("partition 0 finished uploading before the kill: the kill tests only the retry")
	}
	c.Kill("replica", victim)
	if it := backupItem(t, c, appID, id); it.EndTimeMs != 0 || it.IsBackupFailed {
		t.Logf("backup already ended at the kill: %+v", it)
	}
	waitfor.Until(t, 3*time.Minute, time.Second, "the backup complete despite the kill", func() (bool, string) {
		it := backupItem(t, c, appID, id)
		if it.IsBackupFailed {
			t.Fatalf("backup failed: %+v", it)
		}
		return it.EndTimeMs > 0, fmt.Sprintf("%+v", it)
	})
	c.Start("replica", victim)
	// The restore places three replicas per partition: every server back.
	c.WaitHealthy(3 * time.Minute)

	if code, _ := restore(t, c, appID, id, "src", "dst", false); code != base.ErrOK {
		t.Fatalf("restore: %s", code)
	}
	c.WaitHealthy(3 * time.Minute)
	dst := c.OpenTable("dst")
	for i := range rows {
		v, err := dst.Get(ctx, []byte(fmt.Sprint("h", i)), []byte("s"))
		if err != nil {
			t.Fatal(err)
		}
		if string(v) != string(val(i)) {
			t.Fatalf("h%d: restored %d bytes, want the written value", i, len(v))
		}
	}
}
