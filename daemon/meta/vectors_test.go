package meta

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/rpc/golden"
)

func vectorsDir(t *testing.T) string { return golden.Dir(t) }

func loadFrame(t *testing.T, path string) []byte { return golden.Frame(t, path) }

// TestMetaAnswersRequestVectors sends every meta request frame of the golden vectors,
// byte for byte as the official clients produced it, to a running meta server, and
// checks each reply against what the request predicts. The cluster mirrors the
// vectors' scenario: table stat is app 1, temp app 2, and the create/drop/recall
// requests name the table orders, which becomes app 3.
func TestMetaAnswersRequestVectors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(vectorsDir(t), "frames", "req.go-client*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no request vectors: %v", err)
	}
	m := startMeta(t, t.TempDir(), func(o *Options) {
		o.DefaultTables = []DefaultTable{{Name: "stat", PartitionCount: 4, ReplicaCount: 3}, {Name: "temp", PartitionCount: 8, ReplicaCount: 3}}
	})
	// The replica servers of the vectors' scenario (the balancer proposal names them).
	startNodesAt(t, m.addr, 34801, 3)
	a := newAdmin(t, m.addr)
	waitFor(t, 20*time.Second, "three alive nodes", func() bool { return len(a.nodes()) == 3 })

	// Group by revision so that each client's create/drop/recall sequence runs in
	// order: create orders, drop it, recall it as app 3.
	order := []string{"CLUSTER_INFO", "LIST_NODES", "LIST_APPS", "QUERY_PARTITION_CONFIG", "CREATE_APP", "DROP_APP", "LIST_APPS.dropped", "RECALL_APP", "UPDATE_APP_ENV"}
	rank := func(f string) int {
		for i, o := range order {
			if strings.Contains(f, o) {
				return i
			}
		}
		return len(order)
	}
	sort.SliceStable(files, func(i, j int) bool {
		ri, rj := strings.Contains(files[i], "-2022."), strings.Contains(files[j], "-2022.")
		if ri != rj {
			return !ri
		}
		return rank(files[i]) < rank(files[j])
	})

	nc, err := net.Dial("tcp", m.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)
	methods := rpc.Catalogue()
	sent := 0
	for _, f := range files {
		frame := loadFrame(t, f)
		req, err := rpc.ReadRequest(bufio.NewReader(strings.NewReader(string(frame))), 0)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		msg, args, err := rpc.ParseCall(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		isMeta := strings.HasPrefix(msg.Name, "RPC_CM_") || msg.Name == rpc.CodeRemoteCommand || msg.Name == rpc.CodeQueryAppInfo
		if !isMeta {
			continue
		}
		name := filepath.Base(f)
		m := methods[msg.Name]
		decoded := m.NewArgs()
		if err := rpc.DecodeArgs(context.Background(), args, decoded); err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		respFrame, err := rpc.ReadResponse(br, 0)
		if err != nil {
			t.Fatalf("%s: no reply: %v", name, err)
		}
		sent++
		head, p, err := rpc.ParseResponse(respFrame)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if head.Name != msg.Name+"_ACK" || head.SeqID != msg.SeqID {
			t.Errorf("%s: reply %s seq %d, want %s_ACK seq %d", name, head.Name, head.SeqID, msg.Name, msg.SeqID)
		}
		if msg.Name == rpc.CodeQueryAppInfo {
			// A replica RPC the go client aims at the meta: upstream's meta has no handler.
			if head.ErrorName != base.ErrHandlerNotFound {
				t.Errorf("%s: frame error %s, want %s", name, head.ErrorName, base.ErrHandlerNotFound)
			}
			continue
		}
		if head.ErrorName != base.ErrOK {
			t.Errorf("%s: frame error %s, want ERR_OK (meta errors travel in the err field)", name, head.ErrorName)
			continue
		}
		result := m.NewResult()
		if err := rpc.DecodeResult(context.Background(), p, result); err != nil {
			t.Errorf("%s: reply does not decode as %T: %v", name, result, err)
			continue
		}
		// What we sent must re-encode identically: no stray or unknown fields.
		again, err := rpc.EncodeResponse(head.ErrorName, msg.Name, msg.SeqID, result)
		if err != nil || string(again[4:]) != string(respFrame) {
			if !hasMultiEntryMap(result) {
				t.Errorf("%s: reply does not re-encode to the same bytes", name)
			}
		}
		checkPrediction(t, name, decoded, result)
	}
	if sent < 50 {
		t.Fatalf("only %d meta request vectors were sent", sent)
	}
}

func hasMultiEntryMap(v rpc.Value) bool {
	r, ok := v.(*admin.ConfigurationListAppsResponse)
	if !ok {
		return false
	}
	for _, i := range r.Infos {
		if len(i.Envs) > 1 {
			return true
		}
	}
	return false
}

// checkPrediction asserts the reply that the request's own fields predict.
func checkPrediction(t *testing.T, name string, req, resp rpc.Value) {
	t.Helper()
	errOf := func() string {
		if r, ok := resp.(rpc.MetaResult); ok {
			return r.GetErr().Name()
		}
		return ""
	}
	want := base.ErrNotImplemented
	switch r := resp.(type) {
	case *rpc.String:
		if !strings.Contains(r.V, "{") {
			t.Errorf("%s: remote command reply %q is not JSON", name, r.V)
		}
		return
	case *backup.StartBackupAppResponse, *backup.QueryBackupStatusResponse:
		// The test meta has no block service provider configured (so no
		// backup can start) and has made no backup (so none is found).
		want = base.ErrInvalidParameters
	case *backup.ConfigurationQueryBackupPolicyResponse:
		// The vectors ask for policy "daily", which the test meta does not have.
		if len(r.Policys) != 0 || r.HintMsg == nil || !strings.Contains(*r.HintMsg, "invalid policy_name daily") {
			t.Errorf("%s: policies %v, hint %v", name, r.Policys, r.HintMsg)
		}
		want = base.ErrInvalidParameters
	case *layer2.QueryCfgResponse:
		if r.AppID != 2 || r.PartitionCount != 8 || len(r.Partitions) != 8 {
			t.Errorf("%s: temp is app %d with %d/%d partitions, want app 2 with 8", name, r.AppID, len(r.Partitions), r.PartitionCount)
		}
		for _, pc := range r.Partitions {
			if pc.HpPrimary != nil || pc.HpSecondaries != nil || pc.HpLastDrops != nil {
				t.Errorf("%s: a THFT reply carries hp_* fields", name)
			}
		}
		want = base.ErrOK
	case *admin.ConfigurationListAppsResponse:
		q := req.(*admin.ConfigurationListAppsRequest)
		for _, i := range r.Infos {
			if i.Status != q.Status {
				t.Errorf("%s: listed %s with status %s", name, i.AppName, i.Status)
			}
		}
		if q.Status == layer2.AppStatus_AS_AVAILABLE && len(r.Infos) < 2 {
			t.Errorf("%s: %d tables listed, want stat and temp at least", name, len(r.Infos))
		}
		want = base.ErrOK
	case *admin.ConfigurationListNodesResponse:
		if len(r.Infos) != 3 {
			t.Errorf("%s: %d nodes, want 3", name, len(r.Infos))
		}
		for _, n := range r.Infos {
			if n.HpNode != nil || !n.Node.IsValid() {
				t.Errorf("%s: bad node entry %+v", name, n)
			}
		}
		want = base.ErrOK
	case *admin.ConfigurationClusterInfoResponse:
		// Upstream's nine keys in upstream's order, then meta_state_service.
		upstream := []string{"meta_servers", "primary_meta_server", "zookeeper_hosts", "zookeeper_root", "meta_function_level",
			"balance_operation_count", "primary_replica_count_stddev", "total_replica_count_stddev", "cluster_name"}
		if !slices.Equal(r.Keys, append(upstream, "meta_state_service")) || len(r.Values) != len(r.Keys) {
			t.Errorf("%s: keys %v", name, r.Keys)
		}
		want = base.ErrOK
	case *admin.ConfigurationMetaControlResponse:
		want = base.ErrOK
	case *admin.ConfigurationCreateAppResponse:
		if _, restore := req.(*backup.ConfigurationRestoreRequest); restore {
			// No block service provider is configured.
			want = base.ErrInvalidParameters
		}
		if q, ok := req.(*admin.ConfigurationCreateAppRequest); ok {
			// The first client creates orders; the second finds it (recalled) and
			// succeeds only if it asked for success_if_exist.
			if strings.Contains(name, "-2022.") && !q.Options.SuccessIfExist {
				want = base.ErrAppExist
			} else {
				want = base.ErrOK
				if r.Appid != 3 {
					t.Errorf("%s: orders got app id %d, want 3", name, r.Appid)
				}
			}
		}
	case *admin.ConfigurationDropAppResponse:
		want = base.ErrOK
	case *admin.ConfigurationRecallAppResponse:
		want = base.ErrOK
		if r.Info.AppID != 3 || r.Info.AppName != "orders" {
			t.Errorf("%s: recalled %d %q", name, r.Info.AppID, r.Info.AppName)
		}
	case *admin.ConfigurationUpdateAppEnvResponse:
		want = base.ErrOK
	case *admin.StartAppManualCompactResponse:
		want = base.ErrOK
	case *admin.QueryAppManualCompactResponse:
		// The fake replica nodes report no compaction status: temp "is not
		// manual compaction", as upstream answers before any replica queued it.
		want = base.ErrInvalidState
	case *admin.ConfigurationBalancerResponse:
		// A move of temp's partition 4 between two alive replica servers.
		want = base.ErrOK
	}
	if got := errOf(); got != want {
		t.Errorf("%s: err %s, want %s", name, got, want)
	}
}
