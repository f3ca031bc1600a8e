package meta

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

// testMeta is an in-process meta server on a loopback port.
type testMeta struct {
	srv    *Server
	addr   string
	store  metastore.Store
	cancel context.CancelFunc
	done   chan struct{}
	rpcSrv *rpc.Server
}

func (m *testMeta) stop() {
	m.cancel()
	<-m.done
	m.rpcSrv.Close()
}

func fastOptions() Options {
	return Options{
		ClusterName:     "test",
		ClusterRoot:     "/pegasus/test",
		FDGrace:         1500 * time.Millisecond,
		FDCheckInterval: 50 * time.Millisecond,
		LBInterval:      200 * time.Millisecond,
		MinLiveNodes:    1,
		DefaultTables:   []DefaultTable{{Name: "temp", PartitionCount: 8, ReplicaCount: 3}},
	}
}

// startMeta runs a meta server over the local store in dir.
func startMeta(t *testing.T, dir string, tweak func(*Options)) *testMeta {
	t.Helper()
	return startMetaAccess(t, dir, tweak, nil)
}

// startMetaAccess runs a meta server whose RPC server checks access (nil: none).
func startMetaAccess(t *testing.T, dir string, tweak func(*Options), access *rpc.Access) *testMeta {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	store, err := metastore.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	opts := fastOptions()
	opts.Self = addr
	opts.MetaServers = []string{addr}
	opts.Store = store
	opts.Elector = store.NewElector(addr)
	if tweak != nil {
		tweak(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := rpc.NewMux()
	srv.Register(mux)
	rs := rpc.NewServer(mux, rpc.ServerOptions{HTTP: srv.HTTPHandler(), Access: access})
	go rs.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	m := &testMeta{srv: srv, addr: addr, store: store, cancel: cancel, done: make(chan struct{}), rpcSrv: rs}
	go func() {
		defer close(m.done)
		srv.Run(ctx)
		opts.Elector.Close()
		store.Close()
	}()
	t.Cleanup(m.stop)
	waitFor(t, 20*time.Second, "meta leader", srv.IsLeader)
	return m
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	waitfor.True(t, d, 10*time.Millisecond, what, cond)
}

// fakeNode beacons a meta server like a replica server would, recording when the
// last acknowledged beacon was sent (the start of its lease).
type fakeNode struct {
	addr     string
	client   *rpc.Client
	interval time.Duration
	start    int64

	mu           sync.Mutex
	lastAckedRun time.Time // send time of the last acknowledged beacon
	stopped      chan struct{}
	done         chan struct{}
}

func newFakeNode(t *testing.T, metaAddr, self string, interval time.Duration) *fakeNode {
	n := &fakeNode{addr: self, client: rpc.NewClient(metaAddr, rpc.ClientOptions{}), interval: interval,
		start: time.Now().UnixMilli(), stopped: make(chan struct{}), done: make(chan struct{})}
	go n.loop()
	t.Cleanup(n.stop)
	return n
}

func (n *fakeNode) beaconOnce() error {
	sent := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var ack consensus.BeaconAck
	start := n.start
	err := n.client.Call(ctx, rpc.Request{Code: rpc.CodeBeacon, Args: &consensus.BeaconMsg{
		Time: sent.UnixMilli(), FromNode: base.MustParseRPCAddress(n.addr), ToNode: &base.RPCAddress{}, StartTime: &start,
	}}, &ack)
	if err == nil && ack.IsMaster {
		n.mu.Lock()
		n.lastAckedRun = sent
		n.mu.Unlock()
	}
	return err
}

func (n *fakeNode) loop() {
	defer close(n.done)
	t := time.NewTicker(n.interval)
	defer t.Stop()
	for {
		n.beaconOnce()
		select {
		case <-n.stopped:
			return
		case <-t.C:
		}
	}
}

func (n *fakeNode) stop() {
	select {
	case <-n.stopped:
	default:
		close(n.stopped)
	}
	<-n.done
	n.client.Close()
}

func (n *fakeNode) lastAcked() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lastAckedRun
}

// adminClient calls a meta server like the admin tools do.
type adminClient struct {
	t  *testing.T
	mc *rpc.MetaClient
}

func newAdmin(t *testing.T, addrs ...string) *adminClient {
	mc, err := rpc.NewMetaClient(addrs, rpc.MetaClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	return &adminClient{t: t, mc: mc}
}

func call[R any, PR interface {
	*R
	rpc.MetaResult
}](a *adminClient, code string, args rpc.Value) PR {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := rpc.CallMeta[R, PR](ctx, a.mc, code, args)
	if err != nil {
		a.t.Fatalf("%s: %v", code, err)
	}
	return resp
}

func (a *adminClient) create(name string, partitions, replicas int32, successIfExist bool, envs map[string]string) *admin.ConfigurationCreateAppResponse {
	a.t.Helper()
	return call[admin.ConfigurationCreateAppResponse](a, rpc.CodeCreateApp, &admin.ConfigurationCreateAppRequest{
		AppName: name,
		Options: &admin.CreateAppOptions{PartitionCount: partitions, ReplicaCount: replicas, SuccessIfExist: successIfExist, AppType: "pegasus", IsStateful: true, Envs: envs},
	})
}

func (a *adminClient) query(name string) *layer2.QueryCfgResponse {
	a.t.Helper()
	return call[layer2.QueryCfgResponse](a, rpc.CodeQueryConfig, &layer2.QueryCfgRequest{AppName: name})
}

func (a *adminClient) listApps(status layer2.AppStatus) []*layer2.AppInfo {
	a.t.Helper()
	r := call[admin.ConfigurationListAppsResponse](a, rpc.CodeListApps, &admin.ConfigurationListAppsRequest{Status: status})
	if !r.Err.OK() {
		a.t.Fatalf("list apps: %s", r.Err.Name())
	}
	return r.Infos
}

func (a *adminClient) nodes() map[string]admin.NodeStatus {
	a.t.Helper()
	r := call[admin.ConfigurationListNodesResponse](a, rpc.CodeListNodes, &admin.ConfigurationListNodesRequest{Status: admin.NodeStatus_NS_INVALID})
	out := map[string]admin.NodeStatus{}
	for _, n := range r.Infos {
		out[n.Node.String()] = n.Status
	}
	return out
}

func appNames(infos []*layer2.AppInfo) map[string]int32 {
	out := map[string]int32{}
	for _, i := range infos {
		out[i.AppName] = i.AppID
	}
	return out
}

func startNodes(t *testing.T, meta string, n int) []*fakeNode {
	return startNodesAt(t, meta, 35801, n)
}

func startNodesAt(t *testing.T, meta string, port, n int) []*fakeNode {
	var out []*fakeNode
	for i := 0; i < n; i++ {
		out = append(out, newFakeNode(t, meta, "127.0.0.1:"+strconv.Itoa(port+i), 100*time.Millisecond))
	}
	return out
}

func TestTableLifecycle(t *testing.T) {
	dir := t.TempDir()
	m := startMeta(t, dir, nil)
	startNodes(t, m.addr, 3)
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

	// The default table exists and gets placed once the nodes are alive.
	waitFor(t, 20*time.Second, "temp placed", func() bool {
		r := a.query("temp")
		if !r.Err.OK() {
			return false
		}
		for _, pc := range r.Partitions {
			if pc.Ballot < 1 || !pc.Primary.IsValid() || len(pc.Secondaries) != 2 {
				return false
			}
		}
		return true
	})

	created := a.create("orders", 8, 3, false, map[string]string{"default_ttl": "86400"})
	if !created.Err.OK() || created.Appid < 2 {
		t.Fatalf("create orders: %s id %d", created.Err.Name(), created.Appid)
	}
	cfg := a.query("orders")
	if !cfg.Err.OK() || cfg.AppID != created.Appid || cfg.PartitionCount != 8 || len(cfg.Partitions) != 8 || !cfg.IsStateful {
		t.Fatalf("query orders: %+v", cfg)
	}
	primaries := map[string]int{}
	replicas := map[string]int{}
	for i, pc := range cfg.Partitions {
		if pc.Pid.PartitionIndex != int32(i) || pc.Pid.Appid != created.Appid || pc.Ballot != 1 || pc.MaxReplicaCount != 3 {
			t.Fatalf("partition %d: %+v", i, pc)
		}
		seen := map[string]bool{pc.Primary.String(): true}
		primaries[pc.Primary.String()]++
		replicas[pc.Primary.String()]++
		for _, s := range pc.Secondaries {
			if seen[s.String()] {
				t.Fatalf("partition %d has %s twice", i, s)
			}
			seen[s.String()] = true
			replicas[s.String()]++
		}
		if len(seen) != 3 || pc.HpPrimary != nil {
			t.Fatalf("partition %d members %v", i, seen)
		}
	}
	for n, c := range primaries {
		if c < 2 || c > 3 {
			t.Errorf("node %s is primary of %d partitions, want 2 or 3 (even spread)", n, c)
		}
	}
	for n, c := range replicas {
		if c != 8 {
			t.Errorf("node %s holds %d replicas of orders, want 8", n, c)
		}
	}

	cases := []struct {
		name       string
		table      string
		partitions int32
		replicas   int32
		ifExist    bool
		envs       map[string]string
		want       string
	}{
		{"existing", "orders", 8, 3, false, nil, base.ErrAppExist},
		{"existing, success_if_exist", "orders", 8, 3, true, nil, base.ErrOK},
		{"existing, different options", "orders", 4, 3, true, nil, base.ErrAppExist},
		{"bad name", "bad name!", 8, 3, false, nil, base.ErrInvalidParameters},
		{"empty name", "", 8, 3, false, nil, base.ErrInvalidParameters},
		{"partitions not a power of two", "t3", 6, 3, false, nil, base.ErrInvalidParameters},
		{"zero partitions", "t0", 0, 3, false, nil, base.ErrInvalidParameters},
		{"more replicas than nodes", "t4", 8, 4, false, nil, base.ErrInvalidParameters},
		{"zero replicas", "t5", 8, 0, false, nil, base.ErrInvalidParameters},
		{"unknown env", "t6", 8, 3, false, map[string]string{"no.such.env": "1"}, base.ErrInvalidParameters},
		{"bad env value", "t7", 8, 3, false, map[string]string{"default_ttl": "-5"}, base.ErrInvalidParameters},
	}
	for _, c := range cases {
		r := a.create(c.table, c.partitions, c.replicas, c.ifExist, c.envs)
		if r.Err.Name() != c.want {
			t.Errorf("create %s: got %s, want %s", c.name, r.Err.Name(), c.want)
		}
		if c.want == base.ErrOK && r.Appid != created.Appid {
			t.Errorf("create %s: app id %d, want %d", c.name, r.Appid, created.Appid)
		}
	}

	// Envs.
	env := func(op admin.AppEnvOperation, keys, values []string, prefix *string) *admin.ConfigurationUpdateAppEnvResponse {
		return call[admin.ConfigurationUpdateAppEnvResponse](a, rpc.CodeUpdateAppEnv, &admin.ConfigurationUpdateAppEnvRequest{AppName: "orders", Op: op, Keys: keys, Values: values, ClearPrefix: prefix})
	}
	envsOf := func(name string) map[string]string {
		for _, i := range a.listApps(layer2.AppStatus_AS_AVAILABLE) {
			if i.AppName == name {
				return i.Envs
			}
		}
		t.Fatalf("table %s not listed", name)
		return nil
	}
	if r := env(admin.AppEnvOperation_APP_ENV_OP_SET, []string{"business.info", "manual_compact.disabled"}, []string{"100", "true"}, nil); !r.Err.OK() {
		t.Fatalf("set envs: %s %s", r.Err.Name(), r.HintMessage)
	}
	if e := envsOf("orders"); e["default_ttl"] != "86400" || e["business.info"] != "100" || e["manual_compact.disabled"] != "true" {
		t.Fatalf("envs after set: %v", e)
	}
	if r := env(admin.AppEnvOperation_APP_ENV_OP_SET, []string{"nope"}, []string{"1"}, nil); r.Err.Name() != base.ErrInvalidParameters || r.HintMessage == "" {
		t.Fatalf("set unknown env: %s %q", r.Err.Name(), r.HintMessage)
	}
	if r := env(admin.AppEnvOperation_APP_ENV_OP_SET, []string{"default_ttl"}, nil, nil); r.Err.Name() != base.ErrInvalidParameters {
		t.Fatalf("set without values: %s", r.Err.Name())
	}
	if r := env(admin.AppEnvOperation_APP_ENV_OP_DEL, []string{"default_ttl"}, nil, nil); !r.Err.OK() || r.HintMessage != "default_ttl" {
		t.Fatalf("del env: %s %q", r.Err.Name(), r.HintMessage)
	}
	prefix := "manual_compact"
	if r := env(admin.AppEnvOperation_APP_ENV_OP_CLEAR, nil, nil, &prefix); !r.Err.OK() {
		t.Fatalf("clear envs: %s", r.Err.Name())
	}
	if e := envsOf("orders"); len(e) != 1 || e["business.info"] != "100" {
		t.Fatalf("envs after del and clear: %v", e)
	}

	// Rename.
	rename := func(from, to string) string {
		return call[admin.ConfigurationRenameAppResponse](a, rpc.CodeRenameApp, &admin.ConfigurationRenameAppRequest{OldAppName: from, NewAppName_: to}).Err.Name()
	}
	if got := rename("orders", "temp"); got != base.ErrAppExist {
		t.Fatalf("rename onto an existing table: %s", got)
	}
	if got := rename("nosuch", "x"); got != base.ErrAppNotExist {
		t.Fatalf("rename a missing table: %s", got)
	}
	if got := rename("orders", "orders2"); got != base.ErrOK {
		t.Fatalf("rename: %s", got)
	}
	if r := a.query("orders"); r.Err.Name() != base.ErrObjectNotFound {
		t.Fatalf("query renamed table by its old name: %s", r.Err.Name())
	}
	if r := a.query("orders2"); !r.Err.OK() || r.AppID != created.Appid {
		t.Fatalf("query renamed table: %s %d", r.Err.Name(), r.AppID)
	}

	// Drop, reuse the name, recall.
	drop := func(name string, ifMissing bool) string {
		return call[admin.ConfigurationDropAppResponse](a, rpc.CodeDropApp, &admin.ConfigurationDropAppRequest{AppName: name, Options: &admin.DropAppOptions{SuccessIfNotExist: ifMissing}}).Err.Name()
	}
	if got := drop("orders2", false); got != base.ErrOK {
		t.Fatalf("drop: %s", got)
	}
	if r := a.query("orders2"); r.Err.Name() != base.ErrObjectNotFound {
		t.Fatalf("query dropped table: %s", r.Err.Name())
	}
	if got := drop("orders2", false); got != base.ErrAppNotExist {
		t.Fatalf("drop twice: %s", got)
	}
	if got := drop("orders2", true); got != base.ErrOK {
		t.Fatalf("drop twice with success_if_not_exist: %s", got)
	}
	dropped := appNames(a.listApps(layer2.AppStatus_AS_DROPPED))
	if dropped["orders2"] != created.Appid {
		t.Fatalf("dropped tables: %v", dropped)
	}
	again := a.create("orders2", 4, 3, false, nil)
	if !again.Err.OK() || again.Appid == created.Appid {
		t.Fatalf("create over a dropped name: %s id %d (old id %d)", again.Err.Name(), again.Appid, created.Appid)
	}
	recall := func(id int32, name string) *admin.ConfigurationRecallAppResponse {
		return call[admin.ConfigurationRecallAppResponse](a, rpc.CodeRecallApp, &admin.ConfigurationRecallAppRequest{AppID: id, NewAppName_: name})
	}
	if r := recall(created.Appid, ""); r.Err.Name() != base.ErrAppExist {
		t.Fatalf("recall onto a taken name: %s", r.Err.Name())
	}
	if r := recall(9999, ""); r.Err.Name() != base.ErrAppNotExist {
		t.Fatalf("recall a missing table: %s", r.Err.Name())
	}
	r := recall(created.Appid, "orders_back")
	if !r.Err.OK() || r.Info.AppName != "orders_back" || r.Info.AppID != created.Appid || r.Info.Status != layer2.AppStatus_AS_AVAILABLE {
		t.Fatalf("recall: %s %+v", r.Err.Name(), r.Info)
	}
	if q := a.query("orders_back"); !q.Err.OK() || q.PartitionCount != 8 {
		t.Fatalf("query recalled table: %s", q.Err.Name())
	}
	all := appNames(a.listApps(layer2.AppStatus_AS_INVALID))
	for _, n := range []string{"temp", "orders2", "orders_back"} {
		if _, ok := all[n]; !ok {
			t.Errorf("table %s missing from the full list %v", n, all)
		}
	}

	// Replica count.
	if g := call[admin.ConfigurationGetMaxReplicaCountResponse](a, rpc.CodeGetMaxReplicaCount, &admin.ConfigurationGetMaxReplicaCountRequest{AppName: "temp"}); !g.Err.OK() || g.MaxReplicaCount != 3 {
		t.Fatalf("get replica count: %s %d", g.Err.Name(), g.MaxReplicaCount)
	}
	if s := call[admin.ConfigurationSetMaxReplicaCountResponse](a, rpc.CodeSetMaxReplicaCount, &admin.ConfigurationSetMaxReplicaCountRequest{AppName: "temp", MaxReplicaCount: 9}); s.Err.Name() != base.ErrInvalidParameters {
		t.Fatalf("set replica count 9: %s", s.Err.Name())
	}
	if s := call[admin.ConfigurationSetMaxReplicaCountResponse](a, rpc.CodeSetMaxReplicaCount, &admin.ConfigurationSetMaxReplicaCountRequest{AppName: "temp", MaxReplicaCount: 2}); !s.Err.OK() || s.OldMaxReplicaCount != 3 {
		t.Fatalf("set replica count 2: %s", s.Err.Name())
	}

	// Freezing refuses DDL with a clear error.
	ctl := call[admin.ConfigurationMetaControlResponse](a, rpc.CodeControlMeta, &admin.ConfigurationMetaControlRequest{Level: admin.MetaFunctionLevel_fl_freezed})
	if !ctl.Err.OK() || ctl.OldLevel != admin.MetaFunctionLevel_fl_steady {
		t.Fatalf("control meta: %s old %s", ctl.Err.Name(), ctl.OldLevel)
	}
	if r := a.create("frozen", 4, 3, false, nil); r.Err.Name() != base.ErrStateFreezed {
		t.Fatalf("create while frozen: %s", r.Err.Name())
	}
	q := call[admin.ConfigurationMetaControlResponse](a, rpc.CodeControlMeta, &admin.ConfigurationMetaControlRequest{Level: admin.MetaFunctionLevel_fl_invalid})
	if q.OldLevel != admin.MetaFunctionLevel_fl_freezed {
		t.Fatalf("query level: %s", q.OldLevel)
	}

	// A new leader over the same store sees exactly the same tables.
	before := map[string]*layer2.QueryCfgResponse{}
	for n := range appNames(a.listApps(layer2.AppStatus_AS_AVAILABLE)) {
		before[n] = a.query(n)
	}
	m.stop()
	m2 := startMeta(t, dir, nil)
	a2 := newAdmin(t, m2.addr)
	after := appNames(a2.listApps(layer2.AppStatus_AS_AVAILABLE))
	if len(after) != len(before) {
		t.Fatalf("after restart: tables %v, want %d", after, len(before))
	}
	for n, b := range before {
		got := a2.query(n)
		if !got.Err.OK() || got.AppID != b.AppID || len(got.Partitions) != len(b.Partitions) {
			t.Fatalf("after restart %s: %s", n, got.Err.Name())
		}
		for i := range got.Partitions {
			if !got.Partitions[i].Equals(b.Partitions[i]) {
				t.Errorf("after restart %s partition %d: %+v, want %+v", n, i, got.Partitions[i], b.Partitions[i])
			}
		}
	}
}

func TestNodeLiveness(t *testing.T) {
	const lease = time.Second
	grace := 1500 * time.Millisecond
	m := startMeta(t, t.TempDir(), func(o *Options) { o.FDGrace = grace })
	a := newAdmin(t, m.addr)
	n := newFakeNode(t, m.addr, "127.0.0.1:35900", 100*time.Millisecond)
	waitFor(t, 10*time.Second, "node alive", func() bool { return a.nodes()[n.addr] == admin.NodeStatus_NS_ALIVE })
	// The lease measured starts with a beacon acknowledged while the node is
	// listed alive.
	seen := time.Now()
	waitFor(t, 10*time.Second, "a beacon acknowledged after the node was seen alive", func() bool { return n.lastAcked().After(seen) })
	n.stop()
	leaseStart := n.lastAcked()
	var unalive time.Time
	ctx, cancel := context.WithDeadline(context.Background(), leaseStart.Add(grace+3*time.Second))
	defer cancel()
	_ = waitfor.Poll(ctx, 10*time.Millisecond, func() (bool, string) {
		st := a.nodes()[n.addr]
		if st == admin.NodeStatus_NS_UNALIVE {
			unalive = time.Now()
		}
		return !unalive.IsZero(), st.String()
	})
	if unalive.IsZero() {
		t.Fatal("node never turned UNALIVE")
	}
	if unalive.Before(leaseStart.Add(lease)) {
		t.Fatalf("node declared dead %v after its lease started, before its %v lease ran out", unalive.Sub(leaseStart), lease)
	}
	if unalive.After(leaseStart.Add(grace + time.Second)) {
		t.Fatalf("node declared dead %v after its last beacon, grace is %v", unalive.Sub(leaseStart), grace)
	}
	// It comes back with its next beacon.
	n2 := newFakeNode(t, m.addr, n.addr, 100*time.Millisecond)
	waitFor(t, 10*time.Second, "node alive again", func() bool { return a.nodes()[n2.addr] == admin.NodeStatus_NS_ALIVE })
}

func TestFollowerForwards(t *testing.T) {
	dir := t.TempDir()
	leader := startMeta(t, dir, nil)
	// A second meta over the same store cannot win the election while the first
	// lives: it answers as a follower.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	store, err := metastore.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	opts := fastOptions()
	opts.Self = ln.Addr().String()
	opts.Store, opts.Elector = store, store.NewElector(opts.Self)
	defer opts.Elector.Close()
	follower, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := rpc.NewMux()
	follower.Register(mux)
	rs := rpc.NewServer(mux, rpc.ServerOptions{HTTP: follower.HTTPHandler()})
	go rs.Serve(ln)
	defer rs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go follower.Run(ctx)
	waitFor(t, 10*time.Second, "follower knows the leader", func() bool { return follower.LeaderAddr() == leader.addr })
	if follower.IsLeader() {
		t.Fatal("two leaders")
	}
	c := rpc.NewClient(opts.Self, rpc.ClientOptions{})
	defer c.Close()
	var resp layer2.QueryCfgResponse
	if err := c.Call(context.Background(), rpc.Request{Code: rpc.CodeQueryConfig, Args: &layer2.QueryCfgRequest{AppName: "temp"}}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Err.Name() != base.ErrForwardToOthers || len(resp.Partitions) != 1 || resp.Partitions[0].Primary.String() != leader.addr {
		t.Fatalf("follower reply: %s %v", resp.Err.Name(), resp.Partitions)
	}
	// A meta client that only knows the follower reaches the leader.
	a := newAdmin(t, opts.Self)
	if r := a.query("temp"); !r.Err.OK() {
		t.Fatalf("query through follower: %s", r.Err.Name())
	}
	// Other RPCs answer ERR_FORWARD_TO_OTHERS too, never stale data.
	var apps admin.ConfigurationListAppsResponse
	if err := c.Call(context.Background(), rpc.Request{Code: rpc.CodeListApps, Args: &admin.ConfigurationListAppsRequest{}}, &apps); err != nil || apps.Err.Name() != base.ErrForwardToOthers {
		t.Fatalf("list apps on follower: %v %s", err, apps.Err.Name())
	}
	// HTTP /meta/* on a follower redirects to the leader, keeping the query.
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	hresp, err := hc.Get("http://" + opts.Self + "/meta/app?name=temp&detail")
	if err != nil {
		t.Fatal(err)
	}
	hresp.Body.Close()
	if hresp.StatusCode != http.StatusTemporaryRedirect || hresp.Header.Get("Location") != "http://"+leader.addr+"/meta/app?name=temp&detail" {
		t.Fatalf("follower HTTP: %d %q", hresp.StatusCode, hresp.Header.Get("Location"))
	}
	// Followed, it lands on the leader's answer.
	hresp, err = http.Get("http://" + opts.Self + "/meta/app?name=temp")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hresp.Body)
	hresp.Body.Close()
	if hresp.StatusCode != 200 || !strings.Contains(string(body), `"app_name": "temp"`) {
		t.Fatalf("redirected answer: %d %s", hresp.StatusCode, body)
	}
}
