package replica

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

// A meta server acknowledges the beacon before the first config sync tells the
// replica server whose meta servers they are, and its first proposals can overtake
// that sync. A proposal from another cluster's meta server must not be applied in
// that window: it would make the data on these disks part of that cluster.
func TestProposalOvertakingTheIdentityCheck(t *testing.T) {
	dir := t.TempDir()
	id, _ := json.Marshal(identity{ClusterName: "old", ClusterID: "old-id"})
	if err := os.WriteFile(filepath.Join(dir, identityFile), id, 0o644); err != nil {
		t.Fatal(err)
	}
	metaLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	replicaLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	self := replicaLn.Addr().String()

	// The other cluster's meta server: it answers the config sync only once its
	// proposal has been delivered and is held by the replica server.
	proposed := make(chan struct{})
	mux := rpc.NewMux()
	rpc.Handle(mux, rpc.CodeBeacon, func(ctx context.Context, c *rpc.Call, req *consensus.BeaconMsg) (*consensus.BeaconAck, error) {
		return &consensus.BeaconAck{Time: req.Time, ThisNode: base.MustParseRPCAddress(metaLn.Addr().String()),
			PrimaryNode: base.MustParseRPCAddress(metaLn.Addr().String()), IsMaster: true, Allowed: true}, nil
	})
	rpc.Handle(mux, rpc.CodeConfigSync, func(ctx context.Context, c *rpc.Call, req *consensus.ConfigurationQueryByNodeRequest) (*consensus.ConfigurationQueryByNodeResponse, error) {
		select {
		case <-proposed:
		case <-ctx.Done():
		}
		other := "new-id"
		return &consensus.ConfigurationQueryByNodeResponse{Err: base.NewErrorCode(base.ErrOK), ClusterID: &other}, nil
	})
	meta := rpc.NewServer(mux, rpc.ServerOptions{})
	go meta.Serve(metaLn)
	defer meta.Shutdown(context.Background())

	stub, err := Open(Options{
		Self:           self,
		ClusterName:    "old",
		MetaServers:    []string{metaLn.Addr().String()},
		DataDirs:       []DataDir{{Tag: "ssd1", Dir: dir}},
		BeaconInterval: 100 * time.Millisecond,
		// Bounds the held proposal's wait, which the shutdown waits for.
		RPCTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()
	rmux := rpc.NewMux()
	stub.Register(rmux)
	srv := rpc.NewServer(rmux, rpc.ServerOptions{})
	go srv.Serve(replicaLn)
	defer srv.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- stub.Run(ctx) }()

	if waitfor.Poll(ctx, 10*time.Millisecond, func() (bool, string) { return stub.meta.Connected(), "" }) != nil {
		t.Fatal("the replica server never connected to the meta server")
	}
	g := base.Gpid{Appid: 1, PartitionIndex: 0}
	cl := rpc.NewClient(self, rpc.ClientOptions{})
	defer cl.Close()
	err = cl.Call(ctx, rpc.Request{Code: rpc.CodeConfigProposal, Args: &consensus.ConfigurationUpdateRequest{
		Info: &layer2.AppInfo{Status: layer2.AppStatus_AS_AVAILABLE, AppType: "pegasus", AppName: "temp", AppID: 1,
			PartitionCount: 1, IsStateful: true, MaxReplicaCount: 1, Envs: map[string]string{}},
		Config: &layer2.PartitionConfiguration{Pid: &g, Ballot: 1, MaxReplicaCount: 1,
			Primary: base.MustParseRPCAddress(self), Secondaries: []*base.RPCAddress{}, LastDrops: []*base.RPCAddress{}},
		Type:     admin.ConfigType_CT_ASSIGN_PRIMARY,
		Node:     base.MustParseRPCAddress(self),
		HostNode: &base.RPCAddress{},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The config sync is answered once the replica server has taken the proposal
	// in: it waits for the identity check, is kept for after it, or (the check
	// below says so) was applied.
	_ = waitfor.Within(5*time.Second, 5*time.Millisecond, func() (bool, string) {
		kept := stub.earlyHeld()
		return kept > 0 || len(running("replica.(*Stub).waitClusterConfirmed(")) > 0 || stub.get(g) != nil, ""
	})
	close(proposed)

	select {
	case err := <-runErr:
		if err == nil || !strings.Contains(err.Error(), "refusing to join") {
			t.Fatalf("Run returned %v, want the refusal to join another cluster", err)
		}
	case <-ctx.Done():
		t.Fatal("the replica server did not stop on meeting another cluster")
	}
	if stub.get(g) != nil {
		t.Fatal("the replica server applied a proposal of another cluster's meta server")
	}
}
