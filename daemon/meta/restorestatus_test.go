package meta

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/internal/coldbackup"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage/blockservice"
)

// The meta's side of a restore's status, with fake replica servers that
// report as the real ones do: the restored table answers ERR_BUSY_CREATING
// to config queries until every partition's primary has reported its copy
// complete; a secondary's report alone does not count; a server that is
// not a member is refused; query_restore_status shows each partition's
// progress, ok and skip; the outcome survives a restart of the leader.
func TestRestoreStatus(t *testing.T) {
	bsDir := filepath.Join(t.TempDir(), "bs")
	withBackup := func(o *Options) {
		o.ColdBackup = coldbackup.Options{Root: "test", Providers: map[string]blockservice.Config{"local": {Type: blockservice.TypeLocal, Args: []string{bsDir}}}}
	}
	svc, err := blockservice.NewLocal(bsDir)
	if err != nil {
		t.Fatal(err)
	}
	const backupID = 1000
	md := coldbackup.AppMetadata{AppType: "pegasus", AppName: "src", AppID: 7, PartitionCount: 2, MaxReplicaCount: 3, Envs: map[string]string{}}
	if err := coldbackup.PutJSON(context.Background(), svc, coldbackup.AppMetadataPath("test", backupID, "src", 7), md); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m := startMeta(t, dir, withBackup)
	nodes := startNodes(t, m.addr, 3)
	a := newAdmin(t, m.addr)
	waitFor(t, 20*time.Second, "3 alive nodes", func() bool {
		alive := 0
		for _, s := range a.nodes() {
			if s == admin.NodeStatus_NS_ALIVE {
				alive++
			}
		}
		return alive == 3
	})
	r := callMeta[admin.ConfigurationCreateAppResponse](t, m.addr, rpc.CodeStartRestore, &backup.ConfigurationRestoreRequest{
		ClusterName: "test", TimeStamp: backupID, AppName: "src", AppID: 7, NewAppName_: "dst", BackupProviderName: "local"})
	if !r.Err.OK() {
		t.Fatalf("restore: %s", r.Err.Name())
	}
	id := r.Appid
	queryCfg := func() *layer2.QueryCfgResponse {
		return callMeta[layer2.QueryCfgResponse](t, m.addr, rpc.CodeQueryConfig, &layer2.QueryCfgRequest{AppName: "dst"})
	}
	status := func() ([]string, []int32) {
		t.Helper()
		q := callMeta[backup.ConfigurationQueryRestoreResponse](t, m.addr, rpc.CodeQueryRestoreStatus, &backup.ConfigurationQueryRestoreRequest{RestoreAppID: id})
		if !q.Err.OK() {
			t.Fatalf("query restore status: %s", q.Err.Name())
		}
		var st []string
		for _, e := range q.RestoreStatus {
			st = append(st, e.Name())
		}
		return st, q.RestoreProgress
	}
	report := func(g base.Gpid, node, code string, progress int32) string {
		t.Helper()
		resp := callMeta[backup.ConfigurationReportRestoreStatusResponse](t, m.addr, rpc.CodeReportRestoreStatus,
			&backup.ConfigurationReportRestoreStatusRequest{Pid: &g, RestoreStatus: base.NewErrorCode(code), Progress: progress, Node: &node})
		return resp.Err.Name()
	}
	if q := queryCfg(); q.Err.Name() != base.ErrBusyCreating {
		t.Fatalf("config of a table being restored: %s, want ERR_BUSY_CREATING", q.Err.Name())
	}
	// The partitions' members, from the store (the config query refuses).
	m.srv.mu.RLock()
	var pcs []*layer2.PartitionConfiguration
	for _, pc := range m.srv.term.state.apps[id].partitions {
		pcs = append(pcs, cloneConfig(pc))
	}
	m.srv.mu.RUnlock()
	if len(pcs) != 2 || !pcs[0].Primary.IsValid() || len(pcs[0].Secondaries) == 0 {
		t.Fatalf("restored table's partitions: %v", pcs)
	}
	p0, p1 := base.Gpid{Appid: id, PartitionIndex: 0}, base.Gpid{Appid: id, PartitionIndex: 1}

	if st, pr := status(); !slices.Equal(st, []string{base.ErrOK, base.ErrOK}) || !slices.Equal(pr, []int32{0, 0}) {
		t.Fatalf("status before any report: %v %v", st, pr)
	}
	if got := report(p0, "127.0.0.1:1", base.ErrOK, 1000); got != base.ErrInvalidState {
		t.Errorf("report from a server that is not a member: %s, want ERR_INVALID_STATE", got)
	}
	if got := report(p0, pcs[0].Primary.String(), base.ErrOK, 420); got != base.ErrOK {
		t.Fatalf("progress report: %s", got)
	}
	if got := report(p0, pcs[0].Secondaries[0].String(), base.ErrOK, 1000); got != base.ErrOK {
		t.Fatalf("a secondary's final report: %s", got)
	}
	if st, pr := status(); st[0] != base.ErrOK || pr[0] != 420 {
		t.Errorf("partition 0 while its primary downloads: %v %v, want ERR_OK 420 (ongoing)", st, pr)
	}
	if q := queryCfg(); q.Err.Name() != base.ErrBusyCreating {
		t.Fatalf("config with only a secondary restored: %s", q.Err.Name())
	}
	if got := report(p0, pcs[0].Primary.String(), base.ErrOK, 1000); got != base.ErrOK {
		t.Fatalf("primary's final report: %s", got)
	}
	if st, pr := status(); st[0] != base.ErrOK || pr[0] != 1000 || pr[1] == 1000 {
		t.Errorf("partition 0 restored, 1 not: %v %v", st, pr)
	}
	if q := queryCfg(); q.Err.Name() != base.ErrBusyCreating {
		t.Fatalf("config with one partition of two restored: %s", q.Err.Name())
	}
	if got := report(p1, pcs[1].Primary.String(), base.ErrIgnoreBadData, 1000); got != base.ErrOK {
		t.Fatalf("skip report: %s", got)
	}
	if st, pr := status(); !slices.Equal(st, []string{base.ErrOK, base.ErrOK}) || !slices.Equal(pr, []int32{1000, 1000}) {
		// A finished restore answers as a table not restored: all there.
		t.Errorf("finished restore: %v %v", st, pr)
	}
	if q := queryCfg(); !q.Err.OK() {
		t.Fatalf("config of a restored table: %s", q.Err.Name())
	}

	// A new leader knows the restore finished.
	for _, n := range nodes {
		n.stop()
	}
	m.stop()
	m = startMeta(t, dir, withBackup)
	if q := queryCfg(); !q.Err.OK() {
		t.Fatalf("config of a restored table after a restart: %s", q.Err.Name())
	}
	if q := callMeta[backup.ConfigurationQueryRestoreResponse](t, m.addr, rpc.CodeQueryRestoreStatus, &backup.ConfigurationQueryRestoreRequest{RestoreAppID: 99}); q.Err.Name() != base.ErrAppNotExist {
		t.Errorf("status of an unknown table: %s", q.Err.Name())
	}
}
