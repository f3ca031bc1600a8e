package meta

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/daemon/zktest"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

// serverBinary is the pegasus_server binary built once for the process tests.
var serverBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pegasus-meta-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBinary = filepath.Join(dir, "pegasus_server")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildServer(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(serverBinary); err == nil {
		return serverBinary
	}
	cmd := exec.Command("go", "build", "-o", serverBinary, "github.com/pegasusgo/pegasus/cmd/pegasus_server")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pegasus_server: %v\n%s", err, out)
	}
	return serverBinary
}

// metaCluster is three meta server processes.
type metaCluster struct {
	t      *testing.T
	dir    string
	config string
	addrs  []string
	procs  []*proc
}

// electionSecret is the cluster secret of the meta servers started here.
const electionSecret = "election-test-secret-0123456789"

// electionMember is a fakeNode that authenticates as a cluster member with
// electionSecret: the meta servers refuse beacons from anyone else.
func electionMember(t *testing.T, metaAddr, self string, interval time.Duration) *fakeNode {
	keys, err := rpc.NewKeyring([]byte(electionSecret))
	if err != nil {
		t.Fatal(err)
	}
	auth := &rpc.ClientAuth{Keys: keys, Node: self}
	n := &fakeNode{addr: self, client: rpc.NewClient(metaAddr, rpc.ClientOptions{Auth: auth}), interval: interval,
		start: time.Now().UnixMilli(), stopped: make(chan struct{}), done: make(chan struct{})}
	go n.loop()
	t.Cleanup(n.stop)
	return n
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startMetaCluster writes one config.ini naming three meta servers ([apps.meta1..3])
// and starts them. zk is the ZooKeeper address, or "" for the local store shared
// through dir.
func startMetaCluster(t *testing.T, zk string) *metaCluster {
	buildServer(t)
	dir := t.TempDir()
	ports := clustertest.FreePorts(t, 3)
	c := &metaCluster{t: t, dir: dir}
	var apps strings.Builder
	for i, p := range ports {
		c.addrs = append(c.addrs, fmt.Sprintf("127.0.0.1:%d", p))
		fmt.Fprintf(&apps, "[apps.meta%d]\ntype = meta\nports = %d\nrun = false\n\n", i+1, p)
	}
	store := fmt.Sprintf(`meta_state_service_type = meta_state_service_simple
distributed_lock_service_type = distributed_lock_service_simple
meta_state_service_parameters = %s/metastate`, dir)
	if zk != "" {
		store = `meta_state_service_type = meta_state_service_zookeeper
distributed_lock_service_type = distributed_lock_service_zookeeper
distributed_lock_service_parameters = /pegasus/election/lock`
	}
	// The meta servers authenticate to each other, as in every deployment.
	if err := os.WriteFile(filepath.Join(dir, "cluster_secret"), []byte(electionSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`%s
[core]
data_dir = %s/data

[security]
cluster_secret_file = cluster_secret

[meta_server]
server_list = %s
cluster_root = /pegasus/election
%s
min_live_node_count_for_unfreeze = 1

[meta_server.apps.temp]
app_name = temp
app_type = pegasus
partition_count = 8
max_replica_count = 3

[zookeeper]
hosts_list = %s
timeout_ms = 3000

[replication]
cluster_name = election
fd_grace_seconds = 5
fd_lease_seconds = 4
fd_beacon_interval_seconds = 1
fd_check_interval_seconds = 1
lb_interval_ms = 300
`, apps.String(), dir, strings.Join(c.addrs, ","), store, zkOr(zk))
	c.config = filepath.Join(dir, "config.ini")
	if err := os.WriteFile(c.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c.procs = make([]*proc, 3)
	for i := range c.procs {
		c.start(i)
	}
	t.Cleanup(c.killAll)
	return c
}

func zkOr(zk string) string {
	if zk == "" {
		return "127.0.0.1:1"
	}
	return zk
}

func (c *metaCluster) start(i int) {
	cmd := exec.Command(serverBinary, c.config, "-app_list", fmt.Sprintf("meta%d", i+1))
	cmd.Dir = c.dir
	out, err := os.Create(filepath.Join(c.dir, fmt.Sprintf("meta%d.out", i+1)))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	c.procs[i] = p
	go func() { cmd.Wait(); out.Close(); close(p.done) }()
}

func (c *metaCluster) kill(i int) {
	if p := c.procs[i]; p != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	c.procs[i] = nil
}

func (c *metaCluster) killAll() {
	for i := range c.procs {
		c.kill(i)
	}
}

// leaders asks each meta directly (without following forwards) whether it is the
// leader, and returns the indexes of those that are.
func (c *metaCluster) leaders() []int {
	var out []int
	for i, a := range c.addrs {
		if c.procs[i] == nil {
			continue
		}
		cl := rpc.NewClient(a, rpc.ClientOptions{DialTimeout: 500 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var r admin.ConfigurationClusterInfoResponse
		err := cl.Call(ctx, rpc.Request{Code: rpc.CodeClusterInfo, Args: &admin.ConfigurationClusterInfoRequest{}}, &r)
		cancel()
		cl.Close()
		if err == nil && r.Err.OK() {
			out = append(out, i)
		}
	}
	return out
}

// leaderSeenBy asks meta i directly which meta it forwards to as the leader
// ("" when it answers itself, gives no hint or cannot be reached).
func (c *metaCluster) leaderSeenBy(i int) string {
	cl := rpc.NewClient(c.addrs[i], rpc.ClientOptions{DialTimeout: 500 * time.Millisecond})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var r layer2.QueryCfgResponse
	err := cl.Call(ctx, rpc.Request{Code: rpc.CodeQueryConfig, Args: &layer2.QueryCfgRequest{AppName: "temp", PartitionIndices: []int32{}}}, &r)
	if err != nil || r.Err.Name() != base.ErrForwardToOthers || len(r.Partitions) == 0 || !r.Partitions[0].Primary.IsValid() {
		return ""
	}
	return r.Partitions[0].Primary.String()
}

func (c *metaCluster) waitLeader(d time.Duration) int {
	c.t.Helper()
	leader := -1
	waitfor.Until(c.t, d, 50*time.Millisecond, "a leader", func() (bool, string) {
		l := c.leaders()
		if len(l) > 1 {
			c.t.Fatalf("several leaders at once: %v", l)
		}
		if len(l) == 1 {
			leader = l[0]
		}
		return len(l) == 1, "no meta answers as the leader"
	})
	return leader
}

func testElectionAndRecovery(t *testing.T, zk string, maxFailover time.Duration) {
	c := startMetaCluster(t, zk)
	first := c.waitLeader(30 * time.Second)
	a := newAdmin(t, c.addrs...)
	// Replica servers beacon every meta; only the leader's acks count.
	for i := 0; i < 3; i++ {
		for _, m := range c.addrs {
			electionMember(t, m, fmt.Sprintf("127.0.0.1:%d", 36801+i), 200*time.Millisecond)
		}
	}
	waitFor(t, 10*time.Second, "temp placed", func() bool {
		r := a.query("temp")
		return r.Err.OK() && r.Partitions[7].Ballot >= 1
	})
	if r := a.create("orders", 4, 3, false, nil); !r.Err.OK() {
		t.Fatalf("create: %s", r.Err.Name())
	}
	before := map[string]*layer2.QueryCfgResponse{"temp": a.query("temp"), "orders": a.query("orders")}
	if a.mc.Leader() != c.addrs[first] {
		t.Fatalf("client follows %s, leader is %s", a.mc.Leader(), c.addrs[first])
	}

	killed := time.Now()
	c.kill(first)
	second := c.waitLeader(maxFailover + 10*time.Second)
	took := time.Since(killed)
	t.Logf("failover after SIGKILL of the leader: %v", took)
	if second == first {
		t.Fatal("the killed meta is still leader")
	}
	if took > maxFailover {
		t.Fatalf("a new leader took %v, want under %v", took, maxFailover)
	}
	// The client still holds the dead leader's address: its next calls are
	// forwarded to the new leader.
	for name, b := range before {
		got := a.query(name)
		if !got.Err.OK() || got.AppID != b.AppID {
			t.Fatalf("%s after failover: %s", name, got.Err.Name())
		}
		for i := range got.Partitions {
			if !got.Partitions[i].Equals(b.Partitions[i]) {
				t.Errorf("%s partition %d after failover: %+v, want %+v", name, i, got.Partitions[i], b.Partitions[i])
			}
		}
	}
	if a.mc.Leader() != c.addrs[second] {
		t.Errorf("client follows %s, leader is %s", a.mc.Leader(), c.addrs[second])
	}
	// A client that only knows a follower is pointed at the leader.
	follower := 3 - first - second
	solo := newAdmin(t, c.addrs[follower])
	if r := solo.query("orders"); !r.Err.OK() {
		t.Fatalf("query through the follower: %s", r.Err.Name())
	}
	// The killed meta comes back as a follower.
	c.start(first)
	// It is back once it forwards to the leader it found in the election; the
	// check below tells what is wrong if that never happens.
	_ = waitfor.Within(30*time.Second, 50*time.Millisecond, func() (bool, string) {
		return c.leaderSeenBy(first) == c.addrs[second], ""
	})
	if l := c.leaders(); len(l) != 1 || l[0] != second {
		t.Fatalf("leaders after restart: %v, want [%d]", l, second)
	}
}

func TestElectionZooKeeper(t *testing.T) {
	zk := zktest.Start(t)
	// ZooKeeper session timeout 3 s in the config: the dead leader's lock goes when
	// its session expires.
	testElectionAndRecovery(t, zk.Addr(), 3*time.Second+5*time.Second)
}

func TestElectionLocalStore(t *testing.T) {
	testElectionAndRecovery(t, "", 5*time.Second)
}
