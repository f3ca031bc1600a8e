// Package kvtest runs a small Pegasus cluster inside a test process, for testing
// clients (rpc/kv and the tools built on it) against real wire traffic.
//
// The cluster is a real meta server (daemon/meta over a local metastore in a
// temporary directory) and fake replica servers. Each fake node listens on a loopback
// port, beacons the meta server like a replica server, learns its partitions from it
// (config sync, triggered by the meta's proposals and repeated periodically), and
// serves the rrdb RPCs of every partition it is primary of from a storage.Store. There
// is no replication: the data of a partition lives in one store per gpid shared by the
// nodes, written with increasing decrees, so a primary that moves keeps its data.
//
// Nodes are strict about routing, which makes client routing bugs visible: a request
// for a partition the node does not hold is answered ERR_OBJECT_NOT_FOUND, one for a
// partition it holds as a secondary ERR_INVALID_STATE, and one whose header partition
// hash does not belong to the partition, or (for keyed requests) differs from the
// CRC-64 of the request's hash key, ERR_PARENT_PARTITION_MISUSED.
//
// Tests drive failures with Node.Stop and Node.Start (a crash and a restart on the
// same address: after the meta's failure-detector grace the dead primary's partitions
// are taken over by a running secondary), Cluster.MovePrimary (a configuration change
// through the meta server), Node.SetFault (answer chosen requests with an error, late,
// or never) and Cluster.DropScanContexts (the server forgets every scanner context).
//
//	c := kvtest.StartCluster(t, 3)
//	c.CreateTable("orders", 8)
//	client, _ := kv.NewClient(kv.Config{MetaServers: []string{c.MetaAddr()}})
package kvtest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/meta"
	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage"
)

// Options configure a cluster. Zero values pick the defaults.
type Options struct {
	// Nodes is the number of fake replica servers (default 3).
	Nodes int
	// FDGrace is how long the meta server waits without beacons before it declares
	// a node dead (default 2 s, so that a loaded test machine does not kill live
	// nodes). Nodes beacon every BeaconInterval (default 100 ms).
	FDGrace, BeaconInterval time.Duration
	// SyncInterval is the period of the nodes' config syncs (default 100 ms).
	SyncInterval time.Duration
	// Clock is the storage clock, which judges record expiry (default time.Now).
	// Advancing it makes records written with a TTL expire without waiting.
	Clock func() time.Time
	// Logger receives the meta server's and the nodes' logs (default: discarded).
	Logger *slog.Logger
	// NoTakeover stops running secondaries from taking over the partitions of a
	// dead primary: they stay without a primary until MovePrimary.
	NoTakeover bool
}

func (o *Options) setDefaults() {
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.FDGrace, 2*time.Second)
	def(&o.BeaconInterval, 100*time.Millisecond)
	def(&o.SyncInterval, 100*time.Millisecond)
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Cluster is a meta server and its fake replica servers. Its methods may be called
// from the test goroutine only (they fail the test on errors).
type Cluster struct {
	t    testing.TB
	opts Options
	dir  string

	metaAddr   string
	metaClient *rpc.MetaClient
	stopMeta   func()

	nodes []*Node

	mu     sync.Mutex
	parts  map[base.Gpid]*partition
	closed bool
}

// StartCluster starts a meta server and nodes fake replica servers (0 = 3), waits
// until the meta server sees every node alive, and stops everything when the test
// ends.
func StartCluster(t testing.TB, nodes int) *Cluster {
	t.Helper()
	return StartClusterWithOptions(t, Options{Nodes: nodes})
}

// StartClusterWithOptions is StartCluster with options.
func StartClusterWithOptions(t testing.TB, opts Options) *Cluster {
	t.Helper()
	opts.setDefaults()
	c := &Cluster{t: t, opts: opts, dir: t.TempDir(), parts: map[base.Gpid]*partition{}}
	t.Cleanup(c.shutdown)
	c.startMeta()
	mc, err := rpc.NewMetaClient([]string{c.metaAddr}, rpc.MetaClientOptions{})
	if err != nil {
		t.Fatalf("kvtest: meta client: %v", err)
	}
	c.metaClient = mc
	// The node list is complete before any node runs: their goroutines read it.
	for range opts.Nodes {
		c.nodes = append(c.nodes, &Node{c: c, addr: "127.0.0.1:0", calls: map[string]int{}})
	}
	for i, n := range c.nodes {
		if err := n.Start(); err != nil {
			t.Fatalf("kvtest: start node %d: %v", i, err)
		}
	}
	c.waitFor(10*time.Second, "every node alive", func() bool {
		resp, err := callMeta[admin.ConfigurationListNodesResponse](c, rpc.CodeListNodes,
			&admin.ConfigurationListNodesRequest{Status: admin.NodeStatus_NS_ALIVE})
		return err == nil && resp.Err.OK() && len(resp.Infos) == opts.Nodes
	})
	return c
}

func (c *Cluster) startMeta() {
	t := c.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("kvtest: listen: %v", err)
	}
	c.metaAddr = ln.Addr().String()
	store, err := metastore.NewLocal(filepath.Join(c.dir, "meta"))
	if err != nil {
		ln.Close()
		t.Fatalf("kvtest: meta store: %v", err)
	}
	elector := store.NewElector(c.metaAddr)
	srv, err := meta.New(meta.Options{
		Self:            c.metaAddr,
		MetaServers:     []string{c.metaAddr},
		ClusterName:     "kvtest",
		ClusterRoot:     "/pegasus/kvtest",
		Store:           store,
		Elector:         elector,
		FDGrace:         c.opts.FDGrace,
		FDCheckInterval: 50 * time.Millisecond,
		LBInterval:      200 * time.Millisecond,
		MinLiveNodes:    1,
		Logger:          c.opts.Logger.With("role", "meta"),
	})
	if err != nil {
		ln.Close()
		elector.Close()
		store.Close()
		t.Fatalf("kvtest: meta server: %v", err)
	}
	mux := rpc.NewMux()
	srv.Register(mux)
	rs := rpc.NewServer(mux, rpc.ServerOptions{HTTP: srv.HTTPHandler(), Logger: c.opts.Logger})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = rs.Serve(ln)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_ = srv.Run(ctx)
		elector.Close()
		store.Close()
	}()
	c.stopMeta = func() {
		cancel()
		<-ran
		rs.Close()
		<-served
	}
	c.waitFor(10*time.Second, "meta leader", srv.IsLeader)
}

func (c *Cluster) shutdown() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	for _, n := range c.nodes {
		n.Stop()
	}
	c.mu.Lock()
	parts := c.parts
	c.parts = map[base.Gpid]*partition{}
	c.mu.Unlock()
	for _, p := range parts {
		if err := p.store.Close(); err != nil {
			c.t.Errorf("kvtest: close store %s: %v", p.gpid.String(), err)
		}
	}
	if c.metaClient != nil {
		c.metaClient.Close()
	}
	if c.stopMeta != nil {
		c.stopMeta()
	}
}

func (c *Cluster) waitFor(d time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("kvtest: timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func callMeta[R any, PR interface {
	*R
	rpc.MetaResult
}](c *Cluster, code string, args rpc.Value) (PR, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return rpc.CallMeta[R, PR](ctx, c.metaClient, code, args)
}

// MetaAddr returns the meta server address ("127.0.0.1:port").
func (c *Cluster) MetaAddr() string { return c.metaAddr }

// Meta returns a meta client for admin calls in tests. The cluster closes it.
func (c *Cluster) Meta() *rpc.MetaClient { return c.metaClient }

// Nodes returns the fake replica servers, in start order.
func (c *Cluster) Nodes() []*Node { return slices.Clone(c.nodes) }

// Node returns the i-th fake replica server.
func (c *Cluster) Node(i int) *Node { return c.nodes[i] }

// NodeByAddr returns the node listening on addr, or nil.
func (c *Cluster) NodeByAddr(addr string) *Node {
	for _, n := range c.nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// CreateTable creates a table with the given power-of-two number of partitions, as
// many replicas as there are running nodes (at most 3), and returns its app id once
// every partition has a primary that knows it.
func (c *Cluster) CreateTable(name string, partitions int) int32 {
	c.t.Helper()
	replicas := int32(0)
	for _, n := range c.nodes {
		if n.Running() {
			replicas++
		}
	}
	replicas = min(replicas, 3)
	resp, err := callMeta[admin.ConfigurationCreateAppResponse](c, rpc.CodeCreateApp, &admin.ConfigurationCreateAppRequest{
		AppName: name,
		Options: &admin.CreateAppOptions{PartitionCount: int32(partitions), ReplicaCount: replicas, AppType: "pegasus", IsStateful: true, Envs: map[string]string{}},
	})
	if err != nil {
		c.t.Fatalf("kvtest: create table %s: %v", name, err)
	}
	if !resp.Err.OK() {
		c.t.Fatalf("kvtest: create table %s: %s", name, resp.Err.Name())
	}
	c.waitFor(10*time.Second, "table "+name+" placed", func() bool {
		cfg, err := c.QueryConfig(name)
		if err != nil {
			return false
		}
		for _, pc := range cfg.Partitions {
			if pc.Ballot < 1 || !pc.Primary.IsValid() {
				return false
			}
		}
		return true
	})
	// Open the stores now: a lazy open on the first request can take long enough on
	// a busy machine to eat a test's short deadline.
	for i := range partitions {
		if _, err := c.partition(base.Gpid{Appid: resp.Appid, PartitionIndex: int32(i)}); err != nil {
			c.t.Fatalf("kvtest: open store of %d.%d: %v", resp.Appid, i, err)
		}
	}
	c.Sync()
	return resp.Appid
}

// QueryConfig returns the meta server's routing table of a table.
func (c *Cluster) QueryConfig(name string) (*layer2.QueryCfgResponse, error) {
	resp, err := callMeta[layer2.QueryCfgResponse](c, rpc.CodeQueryConfig, &layer2.QueryCfgRequest{AppName: name})
	if err != nil {
		return nil, err
	}
	if !resp.Err.OK() {
		return nil, fmt.Errorf("query config of %s: %s", name, resp.Err.Name())
	}
	return resp, nil
}

// Primary returns the node the meta server names as primary of partition pidx of a
// table, or nil when there is none.
func (c *Cluster) Primary(table string, pidx int) *Node {
	c.t.Helper()
	cfg, err := c.QueryConfig(table)
	if err != nil {
		c.t.Fatalf("kvtest: %v", err)
	}
	if pidx < 0 || pidx >= len(cfg.Partitions) {
		c.t.Fatalf("kvtest: table %s has no partition %d", table, pidx)
	}
	for _, pc := range cfg.Partitions {
		if int(pc.Pid.PartitionIndex) == pidx && pc.Primary.IsValid() {
			return c.NodeByAddr(pc.Primary.String())
		}
	}
	return nil
}

// MovePrimary makes node to the primary of partition pidx of a table through the
// meta server (the old primary becomes a secondary), then makes every running node
// learn the new configuration before it returns.
func (c *Cluster) MovePrimary(table string, pidx int, to *Node) {
	c.t.Helper()
	cfg, err := c.QueryConfig(table)
	if err != nil {
		c.t.Fatalf("kvtest: %v", err)
	}
	var cur *layer2.PartitionConfiguration
	for _, pc := range cfg.Partitions {
		if int(pc.Pid.PartitionIndex) == pidx {
			cur = pc
		}
	}
	if cur == nil {
		c.t.Fatalf("kvtest: table %s has no partition %d", table, pidx)
	}
	if err := c.promote(cur, to.Addr()); err != nil {
		c.t.Fatalf("kvtest: move primary of %s.%d to %s: %v", table, pidx, to.Addr(), err)
	}
	c.Sync()
}

// promote asks the meta server to make node the primary of a partition, keeping the
// other members (the old primary, if any, as a secondary).
func (c *Cluster) promote(cur *layer2.PartitionConfiguration, node string) error {
	self := base.MustParseRPCAddress(node)
	next := *cur
	next.Ballot = cur.Ballot + 1
	next.Primary = self
	next.Secondaries = nil
	for _, m := range append([]*base.RPCAddress{cur.Primary}, cur.Secondaries...) {
		if m.IsValid() && !m.Equals(self) {
			next.Secondaries = append(next.Secondaries, m)
		}
	}
	resp, err := callMeta[consensus.ConfigurationUpdateResponse](c, rpc.CodeUpdatePartitionConfig, &consensus.ConfigurationUpdateRequest{
		Info:     layer2.NewAppInfo(),
		Config:   &next,
		Type:     admin.ConfigType_CT_UPGRADE_TO_PRIMARY,
		Node:     self,
		HostNode: &base.RPCAddress{},
	})
	if err != nil {
		return err
	}
	if !resp.Err.OK() {
		return fmt.Errorf("meta answered %s", resp.Err.Name())
	}
	return nil
}

// Sync makes every running node fetch its partitions from the meta server now.
func (c *Cluster) Sync() {
	c.t.Helper()
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		if err := n.syncOnce(); err != nil {
			c.t.Fatalf("kvtest: sync node %s: %v", n.Addr(), err)
		}
	}
}

// Calls returns how many requests with an RPC code the nodes received (faulted and
// refused ones included).
func (c *Cluster) Calls(code string) int {
	total := 0
	for _, n := range c.nodes {
		total += n.Calls(code)
	}
	return total
}

// OpenScanners returns the number of scanner contexts the stores hold.
func (c *Cluster) OpenScanners() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for _, p := range c.parts {
		total += p.store.OpenScanners()
	}
	return total
}

// DropScanContexts makes the stores forget every scanner context, as an idle
// timeout or a restart would: the next SCAN of each answers error 1. It returns the
// number of contexts dropped.
func (c *Cluster) DropScanContexts() int {
	c.mu.Lock()
	parts := make([]*partition, 0, len(c.parts))
	for _, p := range c.parts {
		parts = append(parts, p)
	}
	c.mu.Unlock()
	n := 0
	for _, p := range parts {
		n += p.dropContexts()
	}
	return n
}

// isRunning reports whether addr is a running node of the cluster.
func (c *Cluster) isRunning(addr string) bool {
	n := c.NodeByAddr(addr)
	return n != nil && n.Running()
}

// partition returns the store of a gpid, opening it on first use.
func (c *Cluster) partition(gpid base.Gpid) (*partition, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("cluster closed")
	}
	if p, ok := c.parts[gpid]; ok {
		return p, nil
	}
	opts := storage.DefaultOptions()
	opts.MemTableSize = 1 << 20
	opts.BlockCacheSize = 1 << 20
	opts.PurgeInterval = 0
	opts.Clock = c.opts.Clock
	opts.Logger = c.opts.Logger
	s, err := storage.Open(filepath.Join(c.dir, "replica", gpid.String()), opts)
	if err != nil {
		return nil, err
	}
	p := &partition{gpid: gpid, store: s, contexts: map[int64]bool{}}
	c.parts[gpid] = p
	return p, nil
}

// partition is the data of one gpid.
type partition struct {
	gpid  base.Gpid
	store *storage.Store

	writeMu sync.Mutex // assigns decrees in order

	mu       sync.Mutex
	contexts map[int64]bool // live scanner contexts
}

// apply writes one op under the next decree.
func (p *partition) apply(op storage.Op) (storage.OpResult, error) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	res, err := p.store.Apply(&storage.Mutation{Decree: p.store.LastAppliedDecree() + 1, Ops: []storage.Op{op}})
	if err != nil {
		return storage.OpResult{}, err
	}
	return res[0], nil
}

func (p *partition) track(old, next int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.contexts, old)
	if next >= 0 {
		p.contexts[next] = true
	}
}

func (p *partition) dropContexts() int {
	p.mu.Lock()
	ids := p.contexts
	p.contexts = map[int64]bool{}
	p.mu.Unlock()
	for id := range ids {
		p.store.ClearScanner(id)
	}
	return len(ids)
}
