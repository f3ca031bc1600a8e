package replica

import (
	"context"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

// scriptedMeta is a meta server the test drives: it keeps one table's partition
// configurations, accepts the replica's configuration changes at the next ballot,
// and answers config syncs from its current state unless a test holds them.
type scriptedMeta struct {
	t    *testing.T
	addr string
	self string // the replica server under test

	mu      sync.Mutex
	configs map[base.Gpid]*layer2.PartitionConfiguration
	// hold, when set, makes the next config sync compute its answer at once but
	// wait for the channel to close before sending it (an answer in flight).
	hold    chan struct{}
	held    chan struct{} // closed once a held sync has computed its answer
	paused  bool          // config syncs are refused (as by a meta server not ready)
	refused int           // config syncs refused while paused
	// updGate, when set, holds the next configuration change until it is closed;
	// updSeen is closed when that change arrives (a change being persisted).
	updGate chan struct{}
	updSeen chan struct{}
	reports []*consensus.ConfigurationQueryByNodeRequest
	// beaconGate, when set before the replica server starts, holds the answers to
	// its beacons until closed; startScripted then does not wait for it.
	beaconGate chan struct{}
	// cl sends proposals; it lives as long as the test, since a one-way call
	// returns once queued and closing the client could drop it.
	cl *rpc.Client
	// keys, when set before the servers start, turns cluster authentication on:
	// the servers check membership, the replica server and cl prove theirs.
	keys *rpc.Keyring
	// mux is the scripted meta server's, for handlers a test adds before the
	// servers start; stubOpts, when set then, adjusts the replica server's
	// options.
	mux      *rpc.Mux
	stubOpts func(*Options)
}

func tableInfo() *layer2.AppInfo {
	return &layer2.AppInfo{Status: layer2.AppStatus_AS_AVAILABLE, AppType: "pegasus", AppName: "temp", AppID: 1,
		PartitionCount: 1, IsStateful: true, MaxReplicaCount: 1, Envs: map[string]string{}}
}

func partitionConfig(g base.Gpid, ballot int64, primary string, lastDrops ...string) *layer2.PartitionConfiguration {
	pc := &layer2.PartitionConfiguration{Pid: base.NewGpid(g.Appid, g.PartitionIndex), Ballot: ballot, MaxReplicaCount: 1,
		Primary: &base.RPCAddress{}, Secondaries: []*base.RPCAddress{}, LastDrops: []*base.RPCAddress{}}
	if primary != "" {
		pc.Primary = base.MustParseRPCAddress(primary)
	}
	for _, d := range lastDrops {
		pc.LastDrops = append(pc.LastDrops, base.MustParseRPCAddress(d))
	}
	return pc
}

// startScripted starts a scripted meta server and a replica server using it, with
// quick config syncs; both stop when the test ends. before, if given, runs before
// the replica server starts.
func startScripted(t *testing.T, before ...func(*scriptedMeta)) (*scriptedMeta, *Stub) {
	t.Helper()
	metaLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	replicaLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &scriptedMeta{t: t, addr: metaLn.Addr().String(), self: replicaLn.Addr().String(), configs: map[base.Gpid]*layer2.PartitionConfiguration{}}
	mux := rpc.NewMux()
	rpc.Handle(mux, rpc.CodeBeacon, func(ctx context.Context, c *rpc.Call, req *consensus.BeaconMsg) (*consensus.BeaconAck, error) {
		if m.beaconGate != nil {
			select {
			case <-m.beaconGate:
			case <-ctx.Done():
			}
		}
		return &consensus.BeaconAck{Time: req.Time, ThisNode: base.MustParseRPCAddress(m.addr),
			PrimaryNode: base.MustParseRPCAddress(m.addr), IsMaster: true, Allowed: true}, nil
	})
	rpc.Handle(mux, rpc.CodeConfigSync, m.configSync)
	rpc.Handle(mux, rpc.CodeUpdatePartitionConfig, m.updateConfig)
	m.mux = mux
	for _, f := range before {
		f(m)
	}
	meta := rpc.NewServer(mux, rpc.ServerOptions{Access: m.access()})
	go meta.Serve(metaLn)
	t.Cleanup(func() { meta.Shutdown(context.Background()) })

	opts := Options{
		Self:               m.self,
		ClusterName:        "c",
		MetaServers:        []string{m.addr},
		DataDirs:           []DataDir{{Tag: "ssd1", Dir: t.TempDir()}},
		BeaconInterval:     50 * time.Millisecond,
		ConfigSyncInterval: 50 * time.Millisecond,
		RPCTimeout:         5 * time.Second,
		UnheldGrace:        300 * time.Millisecond,
		Replication:        pacifica.Options{Min2PC: 1},
		Logger:             testLogger(t),
		ClientAuth:         m.clientAuth(m.self),
	}
	if m.stubOpts != nil {
		m.stubOpts(&opts)
	}
	stub, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	rmux := rpc.NewMux()
	stub.Register(rmux)
	srv := rpc.NewServer(rmux, rpc.ServerOptions{Access: m.access()})
	go srv.Serve(replicaLn)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { stub.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Shutdown(context.Background())
		stub.Close()
	})
	m.cl = rpc.NewClient(m.self, rpc.ClientOptions{Auth: m.clientAuth(m.addr)})
	t.Cleanup(func() { m.cl.Close() })
	if m.beaconGate != nil {
		return m, stub
	}
	waitFor(t, "the replica server to connect", func() bool { return stub.meta.Connected() })
	// A first config sync tells the replica server which cluster it serves; only
	// then does it take proposals.
	waitFor(t, "a first config sync", func() bool { m.mu.Lock(); defer m.mu.Unlock(); return len(m.reports) > 0 || m.refused > 0 })
	return m, stub
}

// access is what the servers check: nothing without keys.
func (m *scriptedMeta) access() *rpc.Access {
	if m.keys == nil {
		return nil
	}
	return &rpc.Access{Keys: m.keys}
}

// clientAuth proves node's membership (nil without keys).
func (m *scriptedMeta) clientAuth(node string) *rpc.ClientAuth {
	if m.keys == nil {
		return nil
	}
	return &rpc.ClientAuth{Keys: m.keys, Node: node}
}

func (m *scriptedMeta) configSync(ctx context.Context, c *rpc.Call, req *consensus.ConfigurationQueryByNodeRequest) (*consensus.ConfigurationQueryByNodeResponse, error) {
	id := "cluster-id"
	resp := &consensus.ConfigurationQueryByNodeResponse{Err: base.NewErrorCode(base.ErrOK), ClusterID: &id,
		Partitions: []*consensus.ConfigurationUpdateRequest{}, GcReplicas: []*metadata.ReplicaInfo{}}
	m.mu.Lock()
	if m.paused {
		m.refused++
		m.mu.Unlock()
		resp.Err = base.NewErrorCode(base.ErrServiceNotActive)
		return resp, nil
	}
	m.reports = append(m.reports, req)
	for _, pc := range m.configs {
		if configOf(pc).Has(m.self) {
			resp.Partitions = append(resp.Partitions, &consensus.ConfigurationUpdateRequest{Info: tableInfo(),
				Config: cloneConfig(pc), Type: admin.ConfigType_CT_INVALID, Node: req.Node, HostNode: &base.RPCAddress{}})
		}
	}
	hold, held := m.hold, m.held
	m.hold, m.held = nil, nil
	m.mu.Unlock()
	if hold != nil {
		close(held)
		select {
		case <-hold:
		case <-ctx.Done():
		}
	}
	return resp, nil
}

func (m *scriptedMeta) updateConfig(ctx context.Context, c *rpc.Call, req *consensus.ConfigurationUpdateRequest) (*consensus.ConfigurationUpdateResponse, error) {
	m.mu.Lock()
	gate, seen := m.updGate, m.updSeen
	m.updGate, m.updSeen = nil, nil
	m.mu.Unlock()
	if gate != nil {
		close(seen)
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	g := *req.Config.Pid
	cur := m.configs[g]
	if cur == nil || req.Config.Ballot != cur.Ballot+1 {
		return &consensus.ConfigurationUpdateResponse{Err: base.NewErrorCode(base.ErrInvalidVersion), Config: cloneConfig(cur)}, nil
	}
	next := cloneConfig(req.Config)
	m.configs[g] = next
	return &consensus.ConfigurationUpdateResponse{Err: base.NewErrorCode(base.ErrOK), Config: cloneConfig(next)}, nil
}

func (m *scriptedMeta) set(pc *layer2.PartitionConfiguration) {
	m.mu.Lock()
	m.configs[*pc.Pid] = cloneConfig(pc)
	m.mu.Unlock()
}

func (m *scriptedMeta) get(g base.Gpid) *layer2.PartitionConfiguration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneConfig(m.configs[g])
}

// holdNextSync makes the next config sync answer wait; it returns a channel closed
// once that answer is computed, and the function that lets it go.
func (m *scriptedMeta) holdNextSync() (computed <-chan struct{}, release func()) {
	hold, held := make(chan struct{}), make(chan struct{})
	m.mu.Lock()
	m.hold, m.held = hold, held
	m.mu.Unlock()
	return held, func() { close(hold) }
}

// lastReport returns what the latest config sync said of g (nil if nothing).
func (m *scriptedMeta) lastReport(g base.Gpid) *metadata.ReplicaInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.reports) == 0 {
		return nil
	}
	i := slices.IndexFunc(m.reports[len(m.reports)-1].StoredReplicas, func(r *metadata.ReplicaInfo) bool { return r.Pid.Equals(&g) })
	if i < 0 {
		return nil
	}
	return m.reports[len(m.reports)-1].StoredReplicas[i]
}

func (m *scriptedMeta) propose(typ admin.ConfigType, pc *layer2.PartitionConfiguration, node string) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.cl.Call(ctx, rpc.Request{Code: rpc.CodeConfigProposal, Args: &consensus.ConfigurationUpdateRequest{
		Info: tableInfo(), Config: cloneConfig(pc), Type: typ, Node: base.MustParseRPCAddress(node), HostNode: &base.RPCAddress{}}}, nil)
	if err != nil {
		m.t.Fatal(err)
	}
}

// testLogger sends the replica server's log to the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.True(t, 20*time.Second, 10*time.Millisecond, what, cond)
}

// running returns the goroutines whose stacks name any of fns (such as
// "replica.(*Stub).waitConnected("), one line each.
func running(fns ...string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, fn := range fns {
			if strings.Contains(g, fn) {
				found = append(found, strings.SplitN(g, "\n", 2)[0]+" in "+fn)
				break
			}
		}
	}
	return found
}

// changesInFlight are the goroutines sending a configuration change to the meta
// server.
func changesInFlight() []string {
	return running("replica.(*Stub).disownPrimary.func", "replica.(*Stub).sendConfigChange.func", "replica.(*metaLink).updateConfig(")
}

func cloneConfig(pc *layer2.PartitionConfiguration) *layer2.PartitionConfiguration {
	if pc == nil {
		return nil
	}
	c := *pc
	c.Pid = base.NewGpid(pc.Pid.Appid, pc.Pid.PartitionIndex)
	c.Secondaries = slices.Clone(pc.Secondaries)
	c.LastDrops = slices.Clone(pc.LastDrops)
	return &c
}

func servesAsPrimary(s *Stub, g base.Gpid, ballot int64) func() bool {
	return func() bool {
		p := s.get(g)
		return p != nil && p.ballot.Load() == ballot && metadata.PartitionStatus(p.status.Load()) == metadata.PartitionStatus_PS_PRIMARY
	}
}

// installPrimary creates the partition on the replica server as its only member.
func installPrimary(t *testing.T, m *scriptedMeta, s *Stub, g base.Gpid) {
	t.Helper()
	// Config syncs wait, so that none sees the configuration before the
	// proposal that creates the replica arrives.
	m.mu.Lock()
	m.paused = true
	m.mu.Unlock()
	pc := partitionConfig(g, 1, m.self)
	m.set(pc)
	m.propose(admin.ConfigType_CT_ASSIGN_PRIMARY, pc, m.self)
	waitFor(t, "the partition to be served", servesAsPrimary(s, g, 1))
	m.mu.Lock()
	m.paused = false
	m.mu.Unlock()
}

// A config sync answer is computed from the meta server's state when the request
// arrives. If the meta server assigns the replica primary while that answer is on
// its way, the answer (which does not list the replica) must not close it: the
// partition would be left with a primary that serves nothing.
func TestConfigSyncAnswerOlderThanAnAssignment(t *testing.T) {
	m, s := startScripted(t)
	g := base.Gpid{Appid: 1, PartitionIndex: 0}
	installPrimary(t, m, s, g)

	// The meta server takes the replica out (as for a primary it thought dead)
	// and holds the answer of a config sync that does not list it.
	removed := partitionConfig(g, 2, "", m.self)
	m.set(removed)
	computed, release := m.holdNextSync()
	<-computed
	// Meanwhile it assigns the replica primary again.
	m.propose(admin.ConfigType_CT_ASSIGN_PRIMARY, removed, m.self)
	waitFor(t, "the meta server to accept the assignment", func() bool {
		pc := m.get(g)
		return pc.Ballot == 3 && pc.Primary.String() == m.self
	})
	waitFor(t, "the replica to take the new ballot", servesAsPrimary(s, g, 3))
	release()

	// Later syncs list it again; in between, the old answer must have changed nothing.
	reports := func() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.reports) }
	after := reports()
	waitFor(t, "two more config syncs", func() bool { return reports() >= after+2 })
	if !servesAsPrimary(s, g, 3)() {
		t.Fatalf("the replica stopped serving after a config sync answer older than its assignment (open: %v)", s.get(g) != nil)
	}
}

// A replica closed because the meta server no longer listed it keeps being reported
// (with what it holds) so the meta server can give it back the partition; listed as
// primary again, the server opens it and serves.
func TestClosedReplicaIsReportedAndReopened(t *testing.T) {
	m, s := startScripted(t)
	g := base.Gpid{Appid: 1, PartitionIndex: 0}
	installPrimary(t, m, s, g)

	m.set(partitionConfig(g, 2, "", m.self))
	waitFor(t, "the replica to be closed", func() bool { return s.get(g) == nil })
	waitFor(t, "a config sync reporting the closed replica", func() bool {
		r := m.lastReport(g)
		return r != nil && r.Status == metadata.PartitionStatus_PS_INACTIVE && r.Ballot == 1
	})

	m.set(partitionConfig(g, 3, m.self))
	waitFor(t, "the replica to serve again", servesAsPrimary(s, g, 3))
	if r := m.lastReport(g); r == nil {
		t.Fatal("the reopened replica is not reported")
	}
}

// A new table's configuration lists its members before the proposals that create
// their replicas arrive. A config sync answered in between must not make the
// server give the primary role away: the partition would end with no member.
func TestSyncBeforeInstallKeepsThePrimary(t *testing.T) {
	m, s := startScripted(t)
	g := base.Gpid{Appid: 1, PartitionIndex: 0}
	pc := partitionConfig(g, 1, m.self)
	m.set(pc)
	computed, release := m.holdNextSync()
	<-computed
	// No later sync is answered until the install proposal has been handled.
	m.mu.Lock()
	m.paused = true
	m.mu.Unlock()
	release()
	waitFor(t, "the held answer to be handled", func() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.refused > 0 })

	m.propose(admin.ConfigType_CT_ASSIGN_PRIMARY, pc, m.self)
	waitFor(t, "the partition to be served", servesAsPrimary(s, g, 1))
	// A hand-over would have been decided on the held answer, handled above: once
	// no configuration change is on its way, it would have reached the meta server.
	_ = waitfor.Within(20*time.Second, 10*time.Millisecond, func() (bool, string) {
		return len(changesInFlight()) == 0, ""
	})
	if got := m.get(g); got.Ballot != 1 || got.Primary.String() != m.self {
		t.Fatalf("the meta server's configuration became %v: the server gave away a primary it was being given", got)
	}
}

// A server listed as primary of a replica it does not hold (its disk was replaced)
// hands the role back once a second config sync still lists it, so that the
// partition does not wait for a primary that cannot serve.
func TestMissingPrimaryIsHandedBack(t *testing.T) {
	m, _ := startScripted(t)
	g := base.Gpid{Appid: 1, PartitionIndex: 0}
	start := time.Now()
	m.set(partitionConfig(g, 5, m.self))
	reports := func() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.reports) }
	before := reports()
	waitFor(t, "the server to hand the primary back", func() bool {
		pc := m.get(g)
		return pc.Ballot == 6 && !pc.Primary.IsValid()
	})
	if n := reports() - before; n < 2 {
		t.Fatalf("handed back after %d config syncs, want at least 2", n)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("handed back after %v, before the grace of 300ms", waited)
	}
}

// A config sync answered while the replica's own change (here taking the primary
// role on the meta's proposal) is still being stored at the meta server predates
// that change: it must not close the replica.
func TestConfigSyncDuringAPendingChange(t *testing.T) {
	m, s := startScripted(t)
	g := base.Gpid{Appid: 1, PartitionIndex: 0}
	installPrimary(t, m, s, g)
	gate, seen := make(chan struct{}), make(chan struct{})
	m.mu.Lock()
	m.paused = true
	m.updGate, m.updSeen = gate, seen
	m.mu.Unlock()
	removed := partitionConfig(g, 2, "", m.self)
	m.set(removed)
	m.propose(admin.ConfigType_CT_ASSIGN_PRIMARY, removed, m.self)
	<-seen // the change is at the meta server, not stored yet
	reports := func() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.reports) }
	before := reports()
	m.mu.Lock()
	m.paused = false
	m.mu.Unlock()
	// Answers not listing the replica, computed after the proposal; the third
	// request leaves only once the second answer was handled.
	waitFor(t, "three config syncs", func() bool { return reports() >= before+3 })
	open := s.get(g) != nil
	close(gate)
	if !open {
		t.Fatal("a config sync answered while the replica's change was at the meta server closed it")
	}
	waitFor(t, "the replica to serve at the new ballot", servesAsPrimary(s, g, 3))
}

// An install proposal that arrives before the first config sync has confirmed the
// cluster is kept and applied once it has: the meta server does not resend it.
func TestInstallBeforeTheFirstConfigSync(t *testing.T) {
	// The meta server refuses config syncs at first (as one not ready yet), so
	// the cluster stays unconfirmed however long the proposal waits.
	m, s := startScripted(t, func(m *scriptedMeta) { m.paused = true })
	g := base.Gpid{Appid: 1, PartitionIndex: 0}
	pc := partitionConfig(g, 1, m.self)
	m.set(pc)
	m.propose(admin.ConfigType_CT_ASSIGN_PRIMARY, pc, m.self)
	waitFor(t, "the proposal to be kept", func() bool { return s.earlyHeld() == 1 })
	if s.get(g) != nil {
		t.Fatal("a proposal was applied before the cluster was confirmed")
	}
	m.mu.Lock()
	m.paused = false
	m.mu.Unlock()
	waitFor(t, "the kept install to be applied", servesAsPrimary(s, g, 1))
}

// The meta server counts a replica server alive on its beacon and may send the new
// table's installs before the acknowledgement reaches the server: they must wait
// for it rather than be dropped.
func TestInstallBeforeTheBeaconAck(t *testing.T) {
	gate := make(chan struct{})
	m, s := startScripted(t, func(m *scriptedMeta) { m.beaconGate = gate })
	g := base.Gpid{Appid: 1, PartitionIndex: 0}
	pc := partitionConfig(g, 1, m.self)
	m.set(pc)
	m.propose(admin.ConfigType_CT_ASSIGN_PRIMARY, pc, m.self)
	// The proposal has arrived once it waits for the acknowledgement; had it been
	// dropped instead, the install below never comes.
	_ = waitfor.Within(5*time.Second, 5*time.Millisecond, func() (bool, string) {
		return len(running("replica.(*Stub).waitConnected(")) > 0, ""
	})
	if s.meta.Connected() {
		t.Fatal("setup: connected before the beacon was answered")
	}
	close(gate)
	waitFor(t, "the install to be applied", servesAsPrimary(s, g, 1))
}
