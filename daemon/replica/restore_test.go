package replica

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/internal/coldbackup"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage/blockservice"
)

// A replica of a restored table downloads its data in the background: the
// install proposal's handling returns at once, config syncs go on during
// the download, the primary is not handed back past the unheld grace, the
// same proposal sent again does not start a second download, progress and
// the outcome are reported to the meta server, and the replica then serves.
func TestRestoreDownloadsInBackground(t *testing.T) {
	bsDir := t.TempDir()
	svc, err := blockservice.NewLocal(bsDir)
	if err != nil {
		t.Fatal(err)
	}
	// A "checkpoint" of one 2 MB file, downloaded at 1 MB/s: about 2 s. The
	// store opens empty from it (no Pebble files in it).
	local := filepath.Join(t.TempDir(), "chkpt")
	if err := os.MkdirAll(local, 0o755); err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 2<<20)
	_, _ = rand.Read(blob)
	if err := os.WriteFile(filepath.Join(local, "blob.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	const backupID = 42
	partDir := coldbackup.PartitionDir("c", backupID, "src", 9, 0)
	if _, err := coldbackup.Upload(context.Background(), svc, nil, local, partDir, "chkpt_x", coldbackup.BackupMetadata{}, nil); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var reports []*backup.ConfigurationReportRestoreStatusRequest
	m, s := startScripted(t, func(m *scriptedMeta) {
		m.stubOpts = func(o *Options) {
			o.ColdBackup = coldbackup.Options{Root: "c", RateMBps: 1,
				Providers: map[string]blockservice.Config{"local": {Type: blockservice.TypeLocal, Args: []string{bsDir}}}}
		}
		rpc.Handle(m.mux, rpc.CodeReportRestoreStatus, func(ctx context.Context, c *rpc.Call, req *backup.ConfigurationReportRestoreStatusRequest) (*backup.ConfigurationReportRestoreStatusResponse, error) {
			mu.Lock()
			reports = append(reports, req)
			mu.Unlock()
			return &backup.ConfigurationReportRestoreStatusResponse{Err: base.NewErrorCode(base.ErrOK)}, nil
		})
	})
	g := base.Gpid{Appid: 1, PartitionIndex: 0}
	info := tableInfo()
	info.Envs = map[string]string{
		"restore.block_service_provider": "local", "restore.cluster_name": "c", "restore.policy_name": "",
		"restore.app_name": "src", "restore.app_id": "9", "restore.backup_id": "42",
	}
	pc := partitionConfig(g, 1, m.self)
	m.set(pc)
	propose := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.cl.Call(ctx, rpc.Request{Code: rpc.CodeConfigProposal, Args: &consensus.ConfigurationUpdateRequest{
			Info: info, Config: cloneConfig(pc), Type: admin.ConfigType_CT_ASSIGN_PRIMARY, Node: base.MustParseRPCAddress(m.self), HostNode: &base.RPCAddress{}}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	propose()
	waitFor(t, "the restore under way", func() bool { return s.restoreRunning(g) != nil })
	first, _ := s.restoring.Load(g)
	propose()
	m.mu.Lock()
	syncs := len(m.reports)
	m.mu.Unlock()
	waitFor(t, "config syncs answered during the download", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.reports) >= syncs+3
	})
	if again, ok := s.restoring.Load(g); !ok || again != first {
		t.Fatal("the download finished before the checks, or a second one replaced the first")
	}
	waitFor(t, "the restored replica served as primary", servesAsPrimary(s, g, 1))
	waitFor(t, "the outcome reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := len(reports)
		return n > 0 && reports[n-1].RestoreStatus.OK() && reports[n-1].Progress == 1000
	})
	mu.Lock()
	defer mu.Unlock()
	final := 0
	for _, r := range reports {
		if r.Pid.Raw() != g.Raw() || r.Node == nil || *r.Node != m.self {
			t.Errorf("report %+v: wrong partition or node", r)
		}
		if r.Progress == 1000 {
			final++
		}
	}
	if final != 1 {
		t.Errorf("%d final reports, want 1 (one download)", final)
	}
	if len(reports) < 2 {
		t.Errorf("%d reports, want progress reports during the 2 s download too", len(reports))
	}
}
