package clustertest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

func queryPolicy(t *testing.T, c *clustertest.Cluster, name string) (*backup.PolicyEntry, []*backup.BackupEntry, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rpc.CallMeta[backup.ConfigurationQueryBackupPolicyResponse](ctx, metaClient(t, c), rpc.CodeQueryBackupPolicy,
		&backup.ConfigurationQueryBackupPolicyRequest{PolicyNames: []string{name}, BackupInfoCount: 100})
	if err != nil {
		return nil, nil, err
	}
	if !r.Err.OK() || len(r.Policys) != 1 || len(r.BackupInfos) != 1 {
		return nil, nil, fmt.Errorf("query backup policy: %s %v %v", r.Err.Name(), r.Policys, r.GetHintMsg())
	}
	return r.Policys[0], r.BackupInfos[0], nil
}

func modifyPolicy(t *testing.T, c *clustertest.Cluster, req *backup.ConfigurationModifyBackupPolicyRequest) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rpc.CallMeta[backup.ConfigurationModifyBackupPolicyResponse](ctx, metaClient(t, c), rpc.CodeModifyBackupPolicy, req)
	if err != nil || !r.Err.OK() {
		t.Fatalf("modify backup policy: %v %+v", err, r)
	}
}

// finishedIDs are the backup ids of the finished runs listed, and whether a
// run is in progress.
func finishedIDs(entries []*backup.BackupEntry) (ids []int64, running bool) {
	for _, e := range entries {
		if e.EndTimeMs > 0 {
			ids = append(ids, e.BackupID)
		} else {
			running = true
		}
	}
	slices.Sort(ids)
	return ids, running
}

// TestBackupPolicy runs a policy every 2 s (min_backup_interval_seconds
// lowered for the test) on real servers: it runs on schedule, a kill of
// the meta leader does not lose it (the new leader lists it and its runs
// go on), and once it is disabled only its history count of backups is
// left, in the block service and in the records.
func TestBackupPolicy(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups")
	const history = 2
	c := clustertest.Start(t, clustertest.Options{Metas: 2, Replicas: 3,
		Tables: []clustertest.Table{{Name: "src", Partitions: 2, Replicas: 3}},
		ExtraConfig: fmt.Sprintf("[meta_server]\ncold_backup_disabled = false\nmin_backup_interval_seconds = 2\n\n"+
			"[replication]\ncold_backup_root = test\n\n[block_service.local]\ntype = local_service\nargs = %s\n\n", dir),
	})
	c.WaitHealthy(60 * time.Second)
	src := c.OpenTable("src")
	appID := src.AppID()
	ctx, cancel := c.Context(5 * time.Minute)
	defer cancel()
	for i := range 100 {
		if err := src.Set(ctx, []byte(fmt.Sprint("h", i)), []byte("s"), []byte(fmt.Sprint("v", i)), 0); err != nil {
			t.Fatal(err)
		}
	}

	r, err := rpc.CallMeta[backup.ConfigurationAddBackupPolicyResponse](ctx, metaClient(t, c), rpc.CodeAddBackupPolicy, &backup.ConfigurationAddBackupPolicyRequest{
		PolicyName: "every2s", BackupProviderType: "local", AppIds: []int32{appID}, BackupIntervalSeconds: 2, BackupHistoryCountToKeep: history,
	})
	if err != nil || !r.Err.OK() {
		t.Fatalf("add backup policy: %v %+v", err, r)
	}

	// Runs on schedule: more runs finish than the history keeps, and the
	// list never holds more than the history.
	seen := map[int64]bool{}
	waitRuns := func(what string, n int, after int64) {
		t.Helper()
		waitfor.Until(t, 2*time.Minute, 200*time.Millisecond, what, func() (bool, string) {
			_, entries, err := queryPolicy(t, c, "every2s")
			if err != nil {
				return false, err.Error()
			}
			ids, _ := finishedIDs(entries)
			if len(ids) > history {
				t.Errorf("%d finished runs listed, history is %d: %v", len(ids), history, ids)
			}
			for _, id := range ids {
				seen[id] = true
			}
			newer := 0
			for id := range seen {
				if id > after {
					newer++
				}
			}
			return newer >= n, fmt.Sprintf("finished runs listed %v, %d seen", ids, len(seen))
		})
	}
	waitRuns("history+1 runs", history+1, 0)

	// A new leader has the policy and runs it.
	leader := c.Leader()
	if leader == 0 {
		t.Fatal("no meta leader")
	}
	killedAt := time.Now().UnixMilli()
	c.Kill("meta", leader)
	waitfor.Until(t, time.Minute, 200*time.Millisecond, "a new meta leader", func() (bool, string) {
		l := c.Leader()
		return l != 0 && l != leader, fmt.Sprint("leader ", l)
	})
	p, _, err := queryPolicy(t, c, "every2s")
	if err != nil {
		t.Fatalf("the policy after the failover: %v", err)
	}
	if p.IsDisable || p.BackupIntervalSeconds != "2" || p.BackupHistoryCountToKeep != history || !slices.Equal(p.AppIds, []int32{appID}) {
		t.Errorf("the policy after the failover: %+v", p)
	}
	waitRuns("two runs started by the new leader", 2, killedAt)
	c.Start("meta", leader)

	// Disabled (forced: a run may be in progress), it settles to its
	// history: the runs listed are the backups stored and recorded.
	modifyPolicy(t, c, &backup.ConfigurationModifyBackupPolicyRequest{PolicyName: "every2s", IsDisable: policyBool(true), ForceDisable: policyBool(true)})
	waitfor.Until(t, 2*time.Minute, 200*time.Millisecond, "the policy settled to its history", func() (bool, string) {
		_, entries, err := queryPolicy(t, c, "every2s")
		if err != nil {
			return false, err.Error()
		}
		ids, running := finishedIDs(entries)
		stored := storedBackups(t, filepath.Join(dir, "test"))
		recorded := recordedBackups(t, c, appID)
		return !running && len(ids) == history && slices.Equal(ids, stored) && slices.Equal(ids, recorded),
			fmt.Sprintf("listed %v running %v, stored %v, recorded %v", ids, running, stored, recorded)
	})
	if len(seen) < history+3 {
		t.Errorf("only %d runs seen", len(seen))
	}
	// Each kept backup is complete.
	_, entries, _ := queryPolicy(t, c, "every2s")
	for _, e := range entries {
		if it := backupItem(t, c, appID, e.BackupID); it.IsBackupFailed || it.EndTimeMs == 0 {
			t.Errorf("backup %d: %+v", e.BackupID, it)
		}
		if _, err := os.Stat(filepath.Join(dir, "test", strconv.FormatInt(e.BackupID, 10), "backup_info")); err != nil {
			t.Errorf("backup %d has no backup_info: %v", e.BackupID, err)
		}
	}
}

func policyBool(v bool) *bool { return &v }

// storedBackups lists the backup ids that have a directory in the block
// service's root.
func storedBackups(t *testing.T, root string) []int64 {
	t.Helper()
	ents, err := os.ReadDir(root)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []int64
	for _, e := range ents {
		if id, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && e.IsDir() {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// recordedBackups lists the backup ids the meta has records of for a table.
func recordedBackups(t *testing.T, c *clustertest.Cluster, appID int32) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rpc.CallMeta[backup.QueryBackupStatusResponse](ctx, metaClient(t, c), rpc.CodeQueryBackupStatus, &backup.QueryBackupStatusRequest{AppID: appID})
	if err != nil {
		return nil
	}
	var out []int64
	for _, it := range r.BackupItems {
		out = append(out, it.BackupID)
	}
	slices.Sort(out)
	return out
}
