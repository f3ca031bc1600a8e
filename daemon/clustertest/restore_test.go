package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/rpc/kv"
)

// restoreStatus asks the meta for a restore's per-partition status.
func restoreStatus(t *testing.T, c *clustertest.Cluster, id int32) *backup.ConfigurationQueryRestoreResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rpc.CallMeta[backup.ConfigurationQueryRestoreResponse](ctx, metaClient(t, c), rpc.CodeQueryRestoreStatus, &backup.ConfigurationQueryRestoreRequest{RestoreAppID: id})
	if err != nil {
		t.Fatalf("query restore status: %v", err)
	}
	return r
}

// downloading reports whether a replica server's data directory holds a
// replica of table appID with some data but no state file: a restore's
// download under way.
func downloading(root string, appID int32) bool {
	found := false
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found || !d.IsDir() || !strings.HasPrefix(d.Name(), fmt.Sprint(appID, ".")) || !strings.HasSuffix(d.Name(), ".pegasus") {
			return nil
		}
		if _, err := os.Stat(filepath.Join(p, "replica.json")); err == nil {
			return filepath.SkipDir
		}
		files, _ := os.ReadDir(filepath.Join(p, "data"))
		found = len(files) > 0
		return filepath.SkipDir
	})
	return found
}

// restoreSummary is the status as the shell would sum it up: partitions
// restored (ok or skipped), the progress of the others, and the first error.
func restoreSummary(r *backup.ConfigurationQueryRestoreResponse) (restored int, progress []int32, failed string) {
	for i, e := range r.RestoreStatus {
		switch {
		case e.Name() == base.ErrIgnoreBadData || e.Name() == base.ErrOK && r.RestoreProgress[i] == 1000:
			restored++
		case e.Name() == base.ErrOK:
			progress = append(progress, r.RestoreProgress[i])
		default:
			if failed == "" {
				failed = fmt.Sprintf("partition %d: %s", i, e.Name())
			}
		}
	}
	return restored, progress, failed
}

// TestRestoreSurvivesReplicaKill restores a table whose download is slowed
// (1 MB/s per replica server) and kills one replica server in the middle of
// it. Until every partition is restored the table cannot be opened
// (ERR_BUSY_CREATING), so nothing reads or writes it partly restored, and
// query_restore_status shows the partitions ongoing with their progress;
// the members still alive finish their downloads, the partitions whose
// primary died get a new one among them, and the restored table holds
// every row. The killed server comes back and the table heals.
func TestRestoreSurvivesReplicaKill(t *testing.T) {
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
	// Incompressible values: about 2 MB per partition on disk, so each
	// server downloads about 8 MB (8 s at the rate limit).
	const rows = 2000
	val := func(i int) []byte {
		b := make([]byte, 4096)
		x := uint32(i*2654435761 + 7)
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
	id := startBackup(t, c, appID)
	waitfor.Until(t, 2*time.Minute, 500*time.Millisecond, "the backup complete", func() (bool, string) {
		it := backupItem(t, c, appID, id)
		if it.IsBackupFailed {
			t.Fatalf("backup failed: %+v", it)
		}
		return it.EndTimeMs > 0, fmt.Sprintf("%+v", it)
	})

	code, newID := restore(t, c, appID, id, "src", "dst", false)
	if code != base.ErrOK {
		t.Fatalf("restore: %s", code)
	}
	// Not served while restoring: the config query and a client opening
	// the table get ERR_BUSY_CREATING.
	cfgCtx, cfgCancel := context.WithTimeout(ctx, 10*time.Second)
	qc, err := rpc.CallMeta[layer2.QueryCfgResponse](cfgCtx, metaClient(t, c), rpc.CodeQueryConfig, &layer2.QueryCfgRequest{AppName: "dst"})
	cfgCancel()
	if err != nil || qc.Err.Name() != base.ErrBusyCreating {
		t.Fatalf("config of the table being restored: %v %v, want ERR_BUSY_CREATING", err, qc.GetErr())
	}
	cl, err := kv.NewClient(kv.Config{MetaServers: c.MetaAddrs(), OperationTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	openCtx, openCancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = cl.OpenTable(openCtx, "dst")
	openCancel()
	var ke *kv.Error
	if !errors.As(err, &ke) || ke.Code != base.ErrBusyCreating {
		t.Fatalf("opening the table being restored: %v, want ERR_BUSY_CREATING", err)
	}

	// Kill a replica server once its downloads are under way: a replica
	// directory of the new table with data but no state file yet.
	victim := 2
	waitfor.Until(t, time.Minute, 50*time.Millisecond, "the victim's downloads under way", func() (bool, string) {
		return downloading(filepath.Join(c.Dir(), "data", fmt.Sprint("replica", victim)), newID), "no partial download"
	})
	c.Kill("replica", victim)
	r := restoreStatus(t, c, newID)
	if r.Err.Name() != base.ErrOK {
		t.Fatalf("query restore status after the kill: %s", r.Err.Name())
	}
	if done, progress, _ := restoreSummary(r); done == len(r.RestoreStatus) {
		t.Log("the restore finished before the kill: the kill tests nothing")
	} else {
		t.Logf("killed %s with %d partitions restored, progress %v", c.Addr("replica", victim), done, progress)
	}
	waitfor.Until(t, 3*time.Minute, time.Second, "the restore finished despite the kill", func() (bool, string) {
		r := restoreStatus(t, c, newID)
		if r.Err.Name() == base.ErrAppDropped {
			t.Fatal("the restore failed (table dropped) after a replica server was killed")
		}
		done, progress, failed := restoreSummary(r)
		return done == len(r.RestoreStatus), fmt.Sprintf("%d restored, progress %v, %s", done, progress, failed)
	})
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
	if err := dst.Set(ctx, []byte("new"), []byte("row"), []byte("v"), 0); err != nil {
		t.Fatalf("write to the restored table: %v", err)
	}
	c.Start("replica", victim)
	c.WaitHealthy(3 * time.Minute)
}
