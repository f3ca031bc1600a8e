package replica_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/radmin"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/rpc/golden"
)

func vectorsDir(t *testing.T) string { return golden.Dir(t) }

func loadFrame(t *testing.T, path string) []byte { return golden.Frame(t, path) }

// TestReplicaAnswersRequestVectors sends every replica-server request frame of the
// golden vectors, byte for byte as the official clients produced them, to the
// replica server the request is meant for, and checks each reply: the right reply
// name and sequence id, a frame error only where the protocol says so, a result that
// decodes (and re-encodes identically), the serving partition echoed, and the rrdb
// status the request predicts. The cluster mirrors the vectors' scenario: stat is
// app 1 (4 partitions) and temp app 2 (8 partitions).
func TestReplicaAnswersRequestVectors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(vectorsDir(t), "frames", "req.*.hex"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no request vectors: %v", err)
	}
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3, Tables: []clustertest.Table{
		{Name: "stat", Partitions: 4, Replicas: 3}, {Name: "temp", Partitions: 8, Replicas: 3},
	}})
	c.WaitHealthy(60 * time.Second)
	temp := c.OpenTable("temp")
	if temp.AppID() != 2 {
		t.Fatalf("temp is app %d, the vectors need 2", temp.AppID())
	}
	// Writes first, so that reads find data; then reads; then node-level calls.
	rank := func(f string) int {
		for i, w := range []string{"_PUT", "MULTI_PUT", "INCR", "CHECK_AND", "_GET", "MULTI_GET", "BATCH_GET", "TTL", "SORTKEY", "SCANNER", "SCAN", "REMOVE"} {
			if strings.Contains(f, w) {
				return i
			}
		}
		return 100
	}
	slices.SortStableFunc(files, func(a, b string) int { return rank(a) - rank(b) })

	conns := map[string]*vectorConn{}
	defer func() {
		for _, vc := range conns {
			vc.nc.Close()
		}
	}()
	methods := rpc.Catalogue()
	sent := 0
	for _, f := range files {
		frame := loadFrame(t, f)
		req, err := rpc.ReadRequest(bufio.NewReader(bytes.NewReader(frame)), 0)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		msg, args, err := rpc.ParseCall(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(msg.Name, "RPC_CM_") {
			continue // meta server RPCs, tested in daemon/meta
		}
		name := filepath.Base(f)
		m := methods[msg.Name]
		decoded := m.NewArgs()
		if err := rpc.DecodeArgs(context.Background(), args, decoded); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		target := c.ReplicaAddrs()[0]
		if req.Header.AppID > 0 {
			target = temp.Primary(int(req.Header.PartitionIndex))
		}
		vc := conns[target]
		if vc == nil {
			nc, err := net.Dial("tcp", target)
			if err != nil {
				t.Fatal(err)
			}
			vc = &vectorConn{nc: nc, br: bufio.NewReader(nc)}
			conns[target] = vc
		}
		if _, err := vc.nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		sent++
		if m.OneWay() {
			// Never answered: the next reply on this connection must be for the
			// next request (checked by sequence id below).
			continue
		}
		_ = vc.nc.SetReadDeadline(time.Now().Add(20 * time.Second))
		respFrame, err := rpc.ReadResponse(vc.br, 0)
		if err != nil {
			t.Fatalf("%s: no reply: %v", name, err)
		}
		head, p, err := rpc.ParseResponse(respFrame)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if head.Name != msg.Name+"_ACK" || head.SeqID != msg.SeqID {
			t.Errorf("%s: reply %s seq %d, want %s_ACK seq %d", name, head.Name, head.SeqID, msg.Name, msg.SeqID)
			continue
		}
		if msg.Name == rpc.CodeDetectHotkey {
			// Not implemented: the frame error is the safe answer (no go client has
			// a decoder for a successful reply).
			if head.ErrorName != base.ErrHandlerNotFound {
				t.Errorf("%s: frame error %s, want %s", name, head.ErrorName, base.ErrHandlerNotFound)
			}
			continue
		}
		if head.ErrorName != base.ErrOK {
			t.Errorf("%s: frame error %s", name, head.ErrorName)
			continue
		}
		result := m.NewResult()
		if err := rpc.DecodeResult(context.Background(), p, result); err != nil {
			t.Errorf("%s: reply does not decode as %T: %v", name, result, err)
			continue
		}
		again, err := rpc.EncodeResponse(head.ErrorName, msg.Name, msg.SeqID, result)
		if err != nil || !bytes.Equal(again[4:], respFrame) {
			if !multiEntryMap(result) {
				t.Errorf("%s: reply does not re-encode to the same bytes", name)
			}
		}
		checkReplicaPrediction(t, name, req.Header, decoded, result)
	}
	if sent < 45 {
		t.Fatalf("only %d replica request vectors were sent", sent)
	}
}

type vectorConn struct {
	nc net.Conn
	br *bufio.Reader
}

func multiEntryMap(v rpc.Value) bool {
	if r, ok := v.(*radmin.QueryDiskInfoResponse); ok {
		for _, d := range r.DiskInfos {
			if len(d.HoldingPrimaryReplicas) > 1 || len(d.HoldingSecondaryReplicas) > 1 {
				return true
			}
		}
	}
	if r, ok := v.(*admin.QueryAppInfoResponse); ok {
		for _, a := range r.Apps {
			if len(a.Envs) > 1 {
				return true
			}
		}
	}
	return false
}

// checkReplicaPrediction checks the rrdb status and the echoed partition.
func checkReplicaPrediction(t *testing.T, name string, h rpc.Header, req, resp rpc.Value) {
	t.Helper()
	type echo interface {
		GetAppID() int32
		GetPartitionIndex() int32
		GetServer() string
	}
	if e, ok := resp.(echo); ok {
		if e.GetAppID() != h.AppID || e.GetPartitionIndex() != h.PartitionIndex || e.GetServer() == "" {
			t.Errorf("%s: reply for %d.%d from %q, request was for %d.%d", name, e.GetAppID(), e.GetPartitionIndex(), e.GetServer(), h.AppID, h.PartitionIndex)
		}
	}
	want := func(got int32, allowed ...int32) {
		if !slices.Contains(allowed, got) {
			t.Errorf("%s: rrdb status %d, want one of %v", name, got, allowed)
		}
	}
	switch r := resp.(type) {
	case *rrdb.UpdateResponse:
		want(r.Error, 0)
		if r.Decree <= 0 {
			t.Errorf("%s: write applied at decree %d", name, r.Decree)
		}
	case *rrdb.MultiRemoveResponse:
		want(r.Error, 0)
		if q := req.(*rrdb.MultiRemoveRequest); r.Count != int64(len(q.SortKeys)) {
			t.Errorf("%s: count %d, want %d", name, r.Count, len(q.SortKeys))
		}
	case *rrdb.IncrResponse:
		want(r.Error, 0)
	case *rrdb.CheckAndSetResponse:
		want(r.Error, 0, 13)
	case *rrdb.CheckAndMutateResponse:
		want(r.Error, 0, 13)
	case *rrdb.ReadResponse:
		want(r.Error, 0, 1)
	case *rrdb.MultiGetResponse:
		want(r.Error, 0, 7)
	case *rrdb.BatchGetResponse:
		want(r.Error, 0)
	case *rrdb.TTLResponse:
		want(r.Error, 0, 1)
	case *rrdb.CountResponse:
		want(r.Error, 0)
	case *rrdb.ScanResponse:
		if _, ok := req.(*rrdb.ScanRequest); ok {
			// The vector continues a scan context of another server's run.
			want(r.Error, 1)
			if r.ContextID != -1 && r.Error == 1 {
				t.Errorf("%s: unknown context answered with context id %d", name, r.ContextID)
			}
		} else {
			want(r.Error, 0)
		}
	case *radmin.QueryDiskInfoResponse:
		if !r.Err.OK() || len(r.DiskInfos) == 0 || r.DiskInfos[0].DiskCapacityMb <= 0 {
			t.Errorf("%s: disk info %s %+v", name, r.Err.Name(), r.DiskInfos)
		}
	case *admin.QueryAppInfoResponse:
		if !r.Err.OK() || len(r.Apps) == 0 {
			t.Errorf("%s: app info %s, %d apps", name, r.Err.Name(), len(r.Apps))
		}
	case *radmin.ReplicaDiskMigrateResponse:
		if r.Err.Name() != base.ErrNotImplemented {
			t.Errorf("%s: %s", name, r.Err.Name())
		}
	case *radmin.AddNewDiskResponse:
		if r.Err.Name() != base.ErrNotImplemented {
			t.Errorf("%s: %s", name, r.Err.Name())
		}
	case *rpc.String:
		if !strings.HasPrefix(r.V, "{") {
			t.Errorf("%s: remote command reply %q is not JSON", name, r.V)
		}
	}
}
