// Package cluster runs a whole Pegasus cluster inside a test process: real meta
// servers (daemon/meta over a local metastore in a temporary directory) and real
// replica servers (daemon/replica over Pebble in temporary directories), all on
// one in-memory network (internal/memnet), with the config timings shortened so
// that failure detection and recovery take a second or two instead of half a
// minute.
//
// Servers are named m1, m2, … and r1, r2, …; the test's own clients dial from
// the host named client. A test kills and restarts servers (keeping their
// directories, or wiping a replica server's data as a lost disk), cuts and heals
// links, holds the frames of one RPC code between two servers and releases them
// later (internal/memnet), writes and reads through rpc/kv, and waits for the
// partition configurations to settle.
//
// The scenario transcripts in testdata/ drive it through datadriven
// (cluster_test.go describes the commands). What they cover, by the sections
// of spec/server.md and the commits that fixed a membership bug:
//
//	failover, secure_failover    2.7 grace, 2.10 dead primary: promote a secondary
//	secondary_lost, secure_…     2.10 dead secondary: downgrade, wait for the dropped
//	                             node, re-add it; 3.8 learning; 3.11 restart after removal
//	rejoin_fast                  3.11 restart within the grace: primary force-updates
//	                             its ballot, secondary goes back
//	data_loss                    3.11 listed as primary without the replica: never
//	                             created from a config sync, handed back after a second
//	                             sync (8410605, 04811f7); learning from nothing
//	all_down                     2.10 no member left (wait for the last ones); recovery
//	                             from the disks
//	cut_meta                     2.7 lease < grace; 3.12 losing the meta
//	meta_restart, meta_failover  2.2/2.7 a new leader counts the configurations' nodes
//	                             alive; 3.12 roles restored at the same ballot
//	balance                      2.8 levels (steady does not move, lively does), 2.13
//	unstable_restart             2.7 unstable-restart blacklist
//	race_stale_sync_answer       a sync answer older than an install (a7c05a5)
//	race_sync_before_install     a sync listing a primary before its install (04811f7)
//	race_install_before_sync     proposals kept until the first sync (38b620e, 44f4101)
//	race_install_before_beacon_ack  proposals wait for the beacon ack (dee602a)
//	race_pending_change          syncs while the replica's promotion is at the meta
//	race_proposal_newer_ballot   a newer ballot adopted first (ca85e4d)
//	stuck_learner                a learner whose invitation was lost is replaced
//
// A directory of transcripts of bugs found and not fixed yet (none today) can
// be run with SIM_DIR=dir; they stay out of testdata/ until fixed.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/meta"
	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/daemon/replica"
	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/cmd"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/internal/memnet"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/rpc/kv"
)

// Options configure a cluster. Zero values pick the defaults.
type Options struct {
	Metas    int // meta servers (default 1)
	Replicas int // replica servers (default 3)
	// Logger receives every server's log (default: discarded). Each record
	// carries the server's name as "node".
	Logger *slog.Logger
	// Secure turns cluster authentication on: the servers share a keyring,
	// prove their membership to each other and check the senders of cluster
	// RPCs (the peer checks); the test's clients stay unauthenticated.
	Secure bool
}

// The shortened timings. The lease is shorter than the meta's grace, as in
// production, so that a replica server stops serving before the meta server
// gives its partitions to others. The grace is 30 beacons: with less, a few
// clusters at once on a loaded machine (a beacon waits for the meta's lock
// while a store write syncs to disk) had live servers declared dead. The unheld grace is well above the config
// sync period, so that an install proposal held for a few syncs still finds
// its partition (race_sync_before_install); the prepare timeout is the
// production default. All are stretched by slow under the race detector.
const (
	beaconInterval = slow * 100 * time.Millisecond
	lease          = slow * 2 * time.Second
	fdGrace        = slow * 3 * time.Second
	checkInterval  = slow * 100 * time.Millisecond
	syncInterval   = slow * 300 * time.Millisecond
	lbInterval     = slow * 200 * time.Millisecond
	assignDelay    = slow * 500 * time.Millisecond
	unheldGrace    = slow * 2 * time.Second
	prepareTimeout = slow * 3 * time.Second
	emptyWrite     = slow * 500 * time.Millisecond
	rpcTimeout     = slow * 2 * time.Second
)

// ClientHost is the address the test's clients dial from.
const ClientHost = "127.0.0.1:1"

// Cluster is a running in-process cluster. Its methods are safe to call from
// one goroutine at a time (the test's).
type Cluster struct {
	t    testing.TB
	opts Options
	dir  string
	net  *memnet.Network
	cli  *memnet.Host

	metas    []*metaNode
	replicas []*replicaNode

	keys *rpc.Keyring // nil: insecure

	metaClient *rpc.MetaClient
	kv         *kv.Client
	tables     map[string]*kv.Table
	created    []string // the tables CreateTable made, in order
}

type metaNode struct {
	name, addr string
	stop       func() // nil when not running
	srv        *meta.Server
}

type replicaNode struct {
	name, addr string
	dir        string
	stop       func()
}

// Start starts a cluster and stops it when the test ends. It returns once a
// meta server leads and sees every replica server alive.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Metas <= 0 {
		opts.Metas = 1
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 3
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cluster{t: t, opts: opts, dir: t.TempDir(), net: memnet.New(), tables: map[string]*kv.Table{}}
	t.Cleanup(c.shutdown)
	cli, err := c.net.Host(ClientHost)
	if err != nil {
		t.Fatal(err)
	}
	c.cli = cli
	if opts.Secure {
		keys, err := rpc.NewKeyring([]byte("in-process-cluster-secret-0123456789"))
		if err != nil {
			t.Fatal(err)
		}
		c.keys = keys
	}
	for i := range opts.Metas {
		c.metas = append(c.metas, &metaNode{name: fmt.Sprintf("m%d", i+1), addr: fmt.Sprintf("127.0.0.1:%d", 34601+i)})
	}
	for _, m := range c.metas {
		if err := c.startMeta(m); err != nil {
			t.Fatal(err)
		}
	}
	mc, err := rpc.NewMetaClient(c.MetaAddrs(), rpc.MetaClientOptions{ClientOptions: c.clientOptions(), AttemptTimeout: 5 * time.Second, RetryInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.metaClient = mc
	kc, err := kv.NewClient(kv.Config{MetaServers: c.MetaAddrs(), OperationTimeout: 20 * time.Second, RPC: c.clientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	c.kv = kc
	for range opts.Replicas {
		if _, err := c.AddReplica(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitAlive(opts.Replicas, slow*20*time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *Cluster) clientOptions() rpc.ClientOptions {
	return rpc.ClientOptions{Dial: c.cli.Dial, MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, DialTimeout: time.Second}
}

// Net is the cluster's network, for faults the helpers do not name.
func (c *Cluster) Net() *memnet.Network { return c.net }

// MetaClient calls the leading meta server from the client host.
func (c *Cluster) MetaClient() *rpc.MetaClient { return c.metaClient }

// KV is a data client on the client host.
func (c *Cluster) KV() *kv.Client { return c.kv }

// MetaAddrs are the meta servers' addresses.
func (c *Cluster) MetaAddrs() []string {
	var out []string
	for _, m := range c.metas {
		out = append(out, m.addr)
	}
	return out
}

// Addr resolves a server name (m1, r2, client) to its address.
func (c *Cluster) Addr(name string) (string, error) {
	if name == "client" {
		return ClientHost, nil
	}
	for _, m := range c.metas {
		if m.name == name {
			return m.addr, nil
		}
	}
	for _, r := range c.replicas {
		if r.name == name {
			return r.addr, nil
		}
	}
	return "", fmt.Errorf("no server named %q", name)
}

// Name is the name of the server at addr ("" for none, "-" for an empty
// address).
func (c *Cluster) Name(addr string) string {
	switch addr {
	case "", "0.0.0.0:0", "invalid address":
		return "-"
	case ClientHost:
		return "client"
	}
	for _, m := range c.metas {
		if m.addr == addr {
			return m.name
		}
	}
	for _, r := range c.replicas {
		if r.addr == addr {
			return r.name
		}
	}
	return addr
}

func (c *Cluster) logger(name string) *slog.Logger { return c.opts.Logger.With("node", name) }

// access is what a server checks: with keys, membership for cluster RPCs, and
// loopback (the client host) for administrative ones.
func (c *Cluster) access() *rpc.Access {
	if c.keys == nil {
		return nil
	}
	return &rpc.Access{Keys: c.keys}
}

// auth is what a server proves itself with to the others.
func (c *Cluster) auth(addr string) *rpc.ClientAuth {
	if c.keys == nil {
		return nil
	}
	return &rpc.ClientAuth{Keys: c.keys, Node: addr}
}

func (c *Cluster) startMeta(m *metaNode) error {
	h, err := c.net.Host(m.addr)
	if err != nil {
		return err
	}
	ln, err := h.Listen(m.addr)
	if err != nil {
		return err
	}
	// The meta servers share one local store directory, as on one machine:
	// their electors compete for its lock.
	store, err := metastore.NewLocal(filepath.Join(c.dir, "meta"))
	if err != nil {
		ln.Close()
		return fmt.Errorf("%s: meta store: %w", m.name, err)
	}
	elector := store.NewElector(m.addr)
	log := c.logger(m.name)
	srv, err := meta.New(meta.Options{
		Self:            m.addr,
		MetaServers:     c.MetaAddrs(),
		ClusterName:     "sim",
		ClusterRoot:     "/pegasus/sim",
		Store:           store,
		Elector:         elector,
		FDGrace:         fdGrace,
		FDCheckInterval: checkInterval,
		LBInterval:      lbInterval,
		MinLiveNodes:    1,
		AssignDelay:     assignDelay,
		Logger:          log,
		Dial:            h.Dial,
		ClientAuth:      c.auth(m.addr),
	})
	if err != nil {
		ln.Close()
		elector.Close()
		store.Close()
		return fmt.Errorf("%s: %w", m.name, err)
	}
	mux := rpc.NewMux()
	srv.Register(mux)
	rs := rpc.NewServer(mux, rpc.ServerOptions{HTTP: srv.HTTPHandler(), Logger: log, Access: c.access()})
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
	}()
	m.srv = srv
	m.stop = func() {
		c.net.Crash(m.addr)
		cancel()
		<-ran
		rs.Close()
		<-served
		elector.Close()
		store.Close()
	}
	return nil
}

// AddReplica starts one more replica server and returns its name.
func (c *Cluster) AddReplica() (string, error) {
	i := len(c.replicas)
	r := &replicaNode{name: fmt.Sprintf("r%d", i+1), addr: fmt.Sprintf("127.0.0.1:%d", 34801+i)}
	r.dir = filepath.Join(c.dir, r.name)
	c.replicas = append(c.replicas, r)
	return r.name, c.startReplica(r)
}

func (c *Cluster) startReplica(r *replicaNode) error {
	h, err := c.net.Host(r.addr)
	if err != nil {
		return err
	}
	ln, err := h.Listen(r.addr)
	if err != nil {
		return err
	}
	log := c.logger(r.name)
	stub, err := replica.Open(replica.Options{
		Self:               r.addr,
		ClusterName:        "sim",
		MetaServers:        c.MetaAddrs(),
		DataDirs:           []replica.DataDir{{Tag: "ssd1", Dir: r.dir}},
		BeaconInterval:     beaconInterval,
		Lease:              lease,
		LeaseCheckInterval: checkInterval,
		ConfigSyncInterval: syncInterval,
		RPCTimeout:         rpcTimeout,
		UnheldGrace:        unheldGrace,
		Replication:        pacifica.Options{PrepareTimeout: prepareTimeout, EmptyWriteInterval: emptyWrite},
		Logger:             log,
		Dial:               h.Dial,
		ClientAuth:         c.auth(r.addr),
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("%s: %w", r.name, err)
	}
	mux := rpc.NewMux()
	stub.Register(mux)
	rs := rpc.NewServer(mux, rpc.ServerOptions{HTTP: stub.HTTPHandler(), Logger: log, Access: c.access()})
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = rs.Serve(ln)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_ = stub.Run(ctx)
	}()
	r.stop = func() {
		c.net.Crash(r.addr)
		cancel()
		<-ran
		rs.Close()
		<-served
		stub.Close()
	}
	return nil
}

func (c *Cluster) replica(name string) (*replicaNode, error) {
	for _, r := range c.replicas {
		if r.name == name {
			return r, nil
		}
	}
	return nil, fmt.Errorf("no replica server named %q", name)
}

func (c *Cluster) meta(name string) (*metaNode, error) {
	for _, m := range c.metas {
		if m.name == name {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no meta server named %q", name)
}

// Kill stops a server as a crash would: its connections and listener go at
// once, then the process's goroutines end. Its directories are kept.
func (c *Cluster) Kill(name string) error {
	if r, err := c.replica(name); err == nil {
		if r.stop == nil {
			return fmt.Errorf("%s is not running", name)
		}
		r.stop()
		r.stop = nil
		return nil
	}
	m, err := c.meta(name)
	if err != nil {
		return err
	}
	if m.stop == nil {
		return fmt.Errorf("%s is not running", name)
	}
	m.stop()
	m.stop, m.srv = nil, nil
	return nil
}

// Restart starts a killed server again on its directories.
func (c *Cluster) Restart(name string) error {
	if r, err := c.replica(name); err == nil {
		if r.stop != nil {
			return fmt.Errorf("%s is running", name)
		}
		return c.startReplica(r)
	}
	m, err := c.meta(name)
	if err != nil {
		return err
	}
	if m.stop != nil {
		return fmt.Errorf("%s is running", name)
	}
	return c.startMeta(m)
}

// Wipe deletes a killed replica server's data, as a replaced disk.
func (c *Cluster) Wipe(name string) error {
	r, err := c.replica(name)
	if err != nil {
		return err
	}
	if r.stop != nil {
		return fmt.Errorf("%s is running", name)
	}
	if err := os.RemoveAll(r.dir); err != nil {
		return fmt.Errorf("wipe %s: %w", name, err)
	}
	return nil
}

// Running reports the names of the running replica servers.
func (c *Cluster) Running() []string {
	var out []string
	for _, r := range c.replicas {
		if r.stop != nil {
			out = append(out, r.name)
		}
	}
	return out
}

// Leader is the name of the meta server that leads ("" if none does).
func (c *Cluster) Leader() string {
	for _, m := range c.metas {
		if m.srv != nil && m.srv.IsLeader() {
			return m.name
		}
	}
	return ""
}

func (c *Cluster) shutdown() {
	if c.kv != nil {
		c.kv.Close()
	}
	if c.metaClient != nil {
		c.metaClient.Close()
	}
	var wg sync.WaitGroup
	for _, r := range c.replicas {
		if r.stop != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.stop()
			}()
		}
	}
	wg.Wait()
	for _, m := range c.metas {
		if m.stop != nil {
			m.stop()
		}
	}
}

func callMeta[R any, PR interface {
	*R
	rpc.MetaResult
}](c *Cluster, code string, args rpc.Value) (PR, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return rpc.CallMeta[R, PR](ctx, c.metaClient, code, args)
}

// CreateTable creates a table with partitions partitions of replicas replicas
// each and waits until every partition has a primary.
func (c *Cluster) CreateTable(name string, partitions, replicas int) error {
	resp, err := callMeta[admin.ConfigurationCreateAppResponse](c, rpc.CodeCreateApp, &admin.ConfigurationCreateAppRequest{
		AppName: name,
		Options: &admin.CreateAppOptions{PartitionCount: int32(partitions), ReplicaCount: int32(replicas), AppType: "pegasus", IsStateful: true, Envs: map[string]string{}},
	})
	if err != nil {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	if !resp.Err.OK() {
		return fmt.Errorf("create table %s: %s", name, resp.Err.Name())
	}
	c.created = append(c.created, name)
	return nil
}

// Configs returns a table's partition configurations as the meta leader has
// them.
func (c *Cluster) Configs(table string) ([]*layer2.PartitionConfiguration, error) {
	resp, err := callMeta[layer2.QueryCfgResponse](c, rpc.CodeQueryConfig, &layer2.QueryCfgRequest{AppName: table, PartitionIndices: []int32{}})
	if err != nil {
		return nil, fmt.Errorf("query config of %s: %w", table, err)
	}
	if !resp.Err.OK() {
		return nil, fmt.Errorf("query config of %s: %s", table, resp.Err.Name())
	}
	return resp.Partitions, nil
}

// AliveNodes is how many replica servers the meta leader counts alive.
func (c *Cluster) AliveNodes() (int, error) {
	resp, err := callMeta[admin.ConfigurationListNodesResponse](c, rpc.CodeListNodes,
		&admin.ConfigurationListNodesRequest{Status: admin.NodeStatus_NS_ALIVE})
	if err != nil {
		return 0, err
	}
	if !resp.Err.OK() {
		return 0, errors.New(resp.Err.Name())
	}
	return len(resp.Infos), nil
}

// WaitAlive waits until the meta leader counts n replica servers alive.
func (c *Cluster) WaitAlive(n int, timeout time.Duration) error {
	return poll(timeout, func() (bool, string) {
		k, err := c.AliveNodes()
		if err != nil {
			return false, err.Error()
		}
		return k == n, fmt.Sprintf("%d alive", k)
	})
}

// SetLevel sets the meta function level (steady or lively: lively balances).
func (c *Cluster) SetLevel(level admin.MetaFunctionLevel) error {
	resp, err := callMeta[admin.ConfigurationMetaControlResponse](c, rpc.CodeControlMeta, &admin.ConfigurationMetaControlRequest{Level: level})
	if err != nil {
		return err
	}
	if !resp.Err.OK() {
		return errors.New(resp.Err.Name())
	}
	return nil
}

// ReplicaRow is one replica as its server reports it.
type ReplicaRow struct {
	Gpid      string `json:"gpid"`
	Table     string `json:"table"`
	Status    string `json:"status"`
	Ballot    int64  `json:"ballot"`
	Committed int64  `json:"last_committed_decree"`
}

// ReplicaInfo asks a replica server for the replicas it holds (replica.info).
func (c *Cluster) ReplicaInfo(name string) ([]ReplicaRow, error) {
	var rows []ReplicaRow
	if err := c.remoteCommand(name, "replica.info", &rows); err != nil {
		return nil, err
	}
	slices.SortFunc(rows, func(a, b ReplicaRow) int { return strings.Compare(a.Gpid, b.Gpid) })
	return rows, nil
}

// remoteCommand runs a remote command without arguments on a server and
// decodes its JSON answer into out.
func (c *Cluster) remoteCommand(name, command string, out any) error {
	addr, err := c.Addr(name)
	if err != nil {
		return err
	}
	cl := rpc.NewClient(addr, c.clientOptions())
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var reply rpc.String
	if err := cl.Call(ctx, rpc.Request{Code: rpc.CodeRemoteCommand, Args: &cmd.Command{Cmd: command, Arguments: []string{}}}, &reply); err != nil {
		return fmt.Errorf("%s on %s: %w", command, name, err)
	}
	if err := json.Unmarshal([]byte(reply.V), out); err != nil {
		return fmt.Errorf("%s on %s: %w: %q", command, name, err, reply.V)
	}
	return nil
}

// table opens (once) a table for the data helpers.
func (c *Cluster) table(name string) (*kv.Table, error) {
	if t, ok := c.tables[name]; ok {
		return t, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t, err := c.kv.OpenTable(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("open table %s: %w", name, err)
	}
	c.tables[name] = t
	return t, nil
}

func key(i int) []byte { return []byte(fmt.Sprintf("key%05d", i)) }

// Write writes keys [from, from+n) of table, value "v<i>" (or value+i).
func (c *Cluster) Write(table string, from, n int, value string) error {
	t, err := c.table(table)
	if err != nil {
		return err
	}
	for i := from; i < from+n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := t.Set(ctx, key(i), []byte("s"), []byte(value+strconv.Itoa(i)), 0)
		cancel()
		if err != nil {
			return fmt.Errorf("set %s: %w", key(i), err)
		}
	}
	return nil
}

// Verify reads keys [from, from+n) of table back and checks their values.
func (c *Cluster) Verify(table string, from, n int, value string) error {
	t, err := c.table(table)
	if err != nil {
		return err
	}
	for i := from; i < from+n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		got, err := t.Get(ctx, key(i), []byte("s"))
		cancel()
		if err != nil {
			return fmt.Errorf("get %s: %w", key(i), err)
		}
		if want := value + strconv.Itoa(i); string(got) != want {
			return fmt.Errorf("get %s = %q, want %q", key(i), got, want)
		}
	}
	return nil
}

// poll checks cond every 50 ms until it holds or timeout passes.
func poll(timeout time.Duration, cond func() (bool, string)) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return waitfor.Poll(ctx, 50*time.Millisecond, cond)
}
