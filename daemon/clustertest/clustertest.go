// Package clustertest runs a real Pegasus cluster for tests: pegasus_server processes
// built from this tree (meta servers, replica servers, optionally a collector), on
// free loopback ports, with their files in a temporary directory, and ZooKeeper when
// asked. Instances can be killed with SIGKILL and restarted, which is what the crash,
// failover and chaos tests need. Every process is killed when the test ends.
package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/testnet"
	"github.com/pegasusgo/pegasus/daemon/zktest"
	"github.com/pegasusgo/pegasus/idl/gen/cmd"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/rpc/kv"
)

// Options describe the cluster.
type Options struct {
	Metas, Replicas int
	Collector       bool
	UseZK           bool // metadata in a real ZooKeeper instead of the embedded store
	// Tables created when the cluster starts (name -> partition count); default
	// temp with 8 partitions.
	Tables []Table
	// Lease and Grace of the failure detector, in seconds (default 4 and 5) and the
	// beacon interval (1 s).
	LeaseSeconds, GraceSeconds int
	// ExtraConfig is appended to config.ini (sections may repeat keys to override).
	ExtraConfig string
	// Binary is a prebuilt pegasus_server; empty builds one.
	Binary string
	// AssignDelay is how long the meta waits for a dropped secondary before adding
	// another node (default: upstream's 10 minutes).
	AssignDelay time.Duration
	// Deferred is how many of the replica servers (the last ones) are configured
	// but not started: a test starts them later to grow the cluster.
	Deferred int
	// Insecure runs the cluster without membership authentication; by default
	// its servers share a secret file (SecretPath).
	Insecure bool
}

// Table is a default table.
type Table struct {
	Name       string
	Partitions int
	Replicas   int
}

// Cluster is a running cluster.
type Cluster struct {
	t      testing.TB
	opts   Options
	dir    string
	bin    string
	config string
	zk     *zktest.Server

	metaPorts, replicaPorts []int
	collectorPort           int

	mu    sync.Mutex
	procs map[string]*proc
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	// stopped is set before the harness signals the process, so that an exit
	// the test did not cause can be told apart.
	stopped atomic.Bool
	err     error // from Wait, read after done is closed
}

// EnvRaceServers, set to 1, builds the servers a cluster test starts with the race
// detector; a data race any of them reports then fails the test.
const EnvRaceServers = "PEGASUS_TEST_RACE_SERVERS"

// Build compiles pegasus_server into dir and returns its path.
func Build(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "pegasus_server")
	args := []string{"build", "-o", bin}
	if os.Getenv(EnvRaceServers) == "1" {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/pegasusgo/pegasus/cmd/pegasus_server")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pegasus_server: %v\n%s", err, out)
	}
	return bin
}

// FreePorts returns n loopback ports free right now, outside the kernel's
// ephemeral range so that a killed instance can listen on its port again.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := testnet.Ports(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// Start writes the configuration and starts every instance.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Metas <= 0 {
		opts.Metas = 1
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 3
	}
	if opts.LeaseSeconds <= 0 {
		opts.LeaseSeconds = 4
	}
	if opts.GraceSeconds <= opts.LeaseSeconds {
		opts.GraceSeconds = opts.LeaseSeconds + 1
	}
	if len(opts.Tables) == 0 {
		opts.Tables = []Table{{Name: "temp", Partitions: 8, Replicas: 3}}
	}
	c := &Cluster{t: t, opts: opts, dir: t.TempDir(), procs: map[string]*proc{}}
	c.bin = opts.Binary
	if c.bin == "" {
		c.bin = Build(t, c.dir)
	}
	ports := FreePorts(t, opts.Metas+opts.Replicas+1)
	c.metaPorts = ports[:opts.Metas]
	c.replicaPorts = ports[opts.Metas : opts.Metas+opts.Replicas]
	c.collectorPort = ports[len(ports)-1]
	if opts.UseZK {
		c.zk = zktest.Start(t)
	}
	c.writeConfig()
	t.Cleanup(func() {
		c.KillAll()
		c.checkRaces()
		if t.Failed() {
			c.dumpLogs()
		}
	})
	for i := range c.metaPorts {
		c.Start("meta", i+1)
	}
	for i := range c.replicaPorts[:len(c.replicaPorts)-opts.Deferred] {
		c.Start("replica", i+1)
	}
	if opts.Collector {
		c.Start("collector", 1)
	}
	return c
}

func (c *Cluster) writeConfig() {
	var b strings.Builder
	b.WriteString("[apps..default]\nrun = false\ncount = 1\n\n")
	for i, p := range c.metaPorts {
		fmt.Fprintf(&b, "[apps.meta%d]\ntype = meta\nports = %d\n\n", i+1, p)
	}
	for i, p := range c.replicaPorts {
		fmt.Fprintf(&b, "[apps.replica%d]\ntype = replica\nports = %d\n\n", i+1, p)
	}
	fmt.Fprintf(&b, "[apps.collector1]\ntype = collector\nports = %d\n\n", c.collectorPort)
	store := fmt.Sprintf("meta_state_service_type = meta_state_service_simple\ndistributed_lock_service_type = distributed_lock_service_simple\nmeta_state_service_parameters = %s/meta_state\n", c.dir)
	zkHosts := "127.0.0.1:1"
	if c.zk != nil {
		store = "meta_state_service_type = meta_state_service_zookeeper\ndistributed_lock_service_type = distributed_lock_service_zookeeper\ndistributed_lock_service_parameters = /pegasus/test/lock\n"
		zkHosts = c.zk.Addr()
	}
	fmt.Fprintf(&b, "[core]\ndata_dir = %s/data\n\n[network]\nprimary_interface = lo\n\n", c.dir)
	assign := ""
	if c.opts.AssignDelay > 0 {
		assign = fmt.Sprintf("replica_assign_delay_ms_for_dropouts = %d\n", c.opts.AssignDelay.Milliseconds())
	}
	fmt.Fprintf(&b, "[meta_server]\nserver_list = %s\ncluster_root = /pegasus/test\n%s%smin_live_node_count_for_unfreeze = 1\nstable_rs_min_running_seconds = 0\n\n", strings.Join(c.MetaAddrs(), ","), store, assign)
	for _, tb := range c.opts.Tables {
		fmt.Fprintf(&b, "[meta_server.apps.%s]\napp_name = %s\napp_type = pegasus\npartition_count = %d\nmax_replica_count = %d\n\n", tb.Name, tb.Name, tb.Partitions, tb.Replicas)
	}
	fmt.Fprintf(&b, "[zookeeper]\nhosts_list = %s\ntimeout_ms = 3000\n\n", zkHosts)
	fmt.Fprintf(&b, "[replication]\ncluster_name = test\nfd_beacon_interval_seconds = 1\nfd_check_interval_seconds = 1\nfd_lease_seconds = %d\nfd_grace_seconds = %d\nlb_interval_ms = 500\nconfig_sync_interval_ms = 3000\ncheckpoint_interval_seconds = 10\n\n",
		c.opts.LeaseSeconds, c.opts.GraceSeconds)
	fmt.Fprintf(&b, "[pegasus.server]\nrocksdb_block_cache_capacity = 67108864\nrocksdb_write_buffer_size = 8388608\n\n")
	fmt.Fprintf(&b, "[pegasus.collector]\navailable_detect_app = temp\navailable_detect_interval_seconds = 1\navailable_detect_timeout = 2000\n\n")
	fmt.Fprintf(&b, "[pegasus.clusters]\ntest = %s\n\n", strings.Join(c.MetaAddrs(), ","))
	if c.opts.Insecure {
		b.WriteString("[security]\ninsecure_cluster = true\n\n")
	} else {
		if _, err := os.Stat(c.SecretPath()); os.IsNotExist(err) {
			c.WriteSecrets(testSecret)
		}
		fmt.Fprintf(&b, "[security]\ncluster_secret_file = %s\n\n", c.SecretPath())
	}
	b.WriteString(c.opts.ExtraConfig)
	c.config = filepath.Join(c.dir, "config.ini")
	if err := os.WriteFile(c.config, []byte(b.String()), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// testSecret is the cluster secret a test cluster starts with.
const testSecret = "clustertest-secret-0123456789abcdef"

// SecretPath is the cluster secret file every server of the cluster reads.
func (c *Cluster) SecretPath() string { return filepath.Join(c.dir, "cluster_secret") }

// WriteSecrets replaces the cluster secret file (the first secret current);
// running servers pick the change up within their reload interval.
func (c *Cluster) WriteSecrets(secrets ...string) {
	c.t.Helper()
	tmp := c.SecretPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(secrets, "\n")+"\n"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, c.SecretPath()); err != nil {
		c.t.Fatal(err)
	}
}

// Dir is the cluster's working directory.
func (c *Cluster) Dir() string { return c.dir }

// ConfigPath is the cluster's config.ini.
func (c *Cluster) ConfigPath() string { return c.config }

// Binary is the pegasus_server used.
func (c *Cluster) Binary() string { return c.bin }

// ZooKeeper is the cluster's ZooKeeper, nil with the embedded store.
func (c *Cluster) ZooKeeper() *zktest.Server { return c.zk }

func addrs(ports []int) []string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	return out
}

// MetaAddrs lists the meta servers.
func (c *Cluster) MetaAddrs() []string { return addrs(c.metaPorts) }

// ReplicaAddrs lists the replica servers.
func (c *Cluster) ReplicaAddrs() []string { return addrs(c.replicaPorts) }

// CollectorAddr is the collector's address.
func (c *Cluster) CollectorAddr() string { return fmt.Sprintf("127.0.0.1:%d", c.collectorPort) }

// Addr returns the address of an instance ("replica", 2).
func (c *Cluster) Addr(role string, idx int) string {
	switch role {
	case "meta":
		return c.MetaAddrs()[idx-1]
	case "replica":
		return c.ReplicaAddrs()[idx-1]
	default:
		return c.CollectorAddr()
	}
}

// Start starts (or restarts) one instance.
func (c *Cluster) Start(role string, idx int) {
	name := fmt.Sprintf("%s%d", role, idx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[name]; p != nil {
		select {
		case <-p.done:
		default:
			return
		}
	}
	out, err := os.OpenFile(filepath.Join(c.dir, name+".out"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, c.config, "-app_list", name)
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	c.procs[name] = p
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
}

// Kill stops an instance with SIGKILL and waits for it.
func (c *Cluster) Kill(role string, idx int) {
	c.signal(fmt.Sprintf("%s%d", role, idx), syscall.SIGKILL)
}

// Stop stops an instance with SIGTERM (graceful) and waits for it.
func (c *Cluster) Stop(role string, idx int) {
	c.signal(fmt.Sprintf("%s%d", role, idx), syscall.SIGTERM)
}

// StopTimed stops an instance with SIGTERM and waits up to limit for it to exit. It
// returns how long the exit took and how the process ended (nil for status 0); an
// instance still running after limit is killed, and the error says so.
func (c *Cluster) StopTimed(role string, idx int, limit time.Duration) (time.Duration, error) {
	name := fmt.Sprintf("%s%d", role, idx)
	c.mu.Lock()
	p := c.procs[name]
	c.mu.Unlock()
	if p == nil {
		return 0, fmt.Errorf("%s was never started", name)
	}
	p.stopped.Store(true)
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return time.Since(start), p.err
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-p.done
		return time.Since(start), fmt.Errorf("%s still running %v after SIGTERM: killed", name, limit)
	}
}

// WaitExit waits up to limit for an instance to end on its own and returns how it
// ended (nil for status 0); the error says so when it is still running.
func (c *Cluster) WaitExit(role string, idx int, limit time.Duration) error {
	name := fmt.Sprintf("%s%d", role, idx)
	c.mu.Lock()
	p := c.procs[name]
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%s was never started", name)
	}
	select {
	case <-p.done:
		p.stopped.Store(true) // expected by the caller: not an unexpected exit
		return p.err
	case <-time.After(limit):
		return fmt.Errorf("%s still running after %v", name, limit)
	}
}

func (c *Cluster) signal(name string, sig syscall.Signal) {
	c.mu.Lock()
	p := c.procs[name]
	c.mu.Unlock()
	if p == nil {
		return
	}
	p.stopped.Store(true)
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// unexpectedExits describes the instances that ended without the test stopping
// them, with the end of their output: the usual reason a cluster never heals.
func (c *Cluster) unexpectedExits() string {
	c.mu.Lock()
	names := make([]string, 0, len(c.procs))
	for n, p := range c.procs {
		select {
		case <-p.done:
			if !p.stopped.Load() {
				names = append(names, n)
			}
		default:
		}
	}
	c.mu.Unlock()
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		c.mu.Lock()
		p := c.procs[n]
		c.mu.Unlock()
		out, _ := os.ReadFile(filepath.Join(c.dir, n+".out"))
		lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		if len(lines) > 5 {
			lines = lines[len(lines)-5:]
		}
		fmt.Fprintf(&b, "\n%s exited on its own (%v); its output ends:\n%s", n, p.err, strings.Join(lines, "\n"))
	}
	return b.String()
}

// Running reports whether an instance runs.
func (c *Cluster) Running(role string, idx int) bool {
	c.mu.Lock()
	p := c.procs[fmt.Sprintf("%s%d", role, idx)]
	c.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// KillTogether sends SIGKILL to several instances before waiting for any, so that
// they die as close to simultaneously as possible.
func (c *Cluster) KillTogether(role string, idxs ...int) {
	var ps []*proc
	c.mu.Lock()
	for _, i := range idxs {
		if p := c.procs[fmt.Sprintf("%s%d", role, i)]; p != nil {
			ps = append(ps, p)
		}
	}
	c.mu.Unlock()
	for _, p := range ps {
		p.stopped.Store(true)
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	for _, p := range ps {
		<-p.done
	}
}

// KillAll kills every instance.
func (c *Cluster) KillAll() {
	c.mu.Lock()
	names := make([]string, 0, len(c.procs))
	for n := range c.procs {
		names = append(names, n)
	}
	c.mu.Unlock()
	for _, n := range names {
		c.signal(n, syscall.SIGKILL)
	}
}

// Pid returns the process id of a running instance, 0 when it is not running.
func (c *Cluster) Pid(role string, idx int) int {
	c.mu.Lock()
	p := c.procs[fmt.Sprintf("%s%d", role, idx)]
	c.mu.Unlock()
	if p == nil {
		return 0
	}
	select {
	case <-p.done:
		return 0
	default:
		return p.cmd.Process.Pid
	}
}

// Output returns what an instance printed (stdout and stderr).
func (c *Cluster) Output(role string, idx int) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("%s%d.out", role, idx)))
	return string(b)
}

// Leader returns the index of the meta leader (0 when none answers).
func (c *Cluster) Leader() int {
	client := &http.Client{Timeout: 2 * time.Second}
	for _, m := range c.MetaAddrs() {
		resp, err := client.Get("http://" + m + "/meta/cluster")
		if err != nil {
			continue
		}
		var body map[string]string
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for i, a := range c.MetaAddrs() {
			if a == body["primary_meta_server"] {
				return i + 1
			}
		}
	}
	return 0
}

// Log returns an instance's log file.
func (c *Cluster) Log(role string, idx int) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "data", "log", fmt.Sprintf("pegasus.%s%d.log", role, idx)))
	return string(b)
}

// WaitHealthy waits until every table is fully replicated: the meta leader says so,
// and the replica servers hold every replica in its role.
func (c *Cluster) WaitHealthy(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, why := c.Healthy()
		if ok {
			ok, why = c.replicasServing()
		}
		if ok {
			return
		}
		last = why
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("cluster not healthy within %v: %s%s", timeout, last, c.unexpectedExits())
}

// WaitReadable waits until every partition of every table has a primary (some may
// still miss secondaries, or have too few members to accept writes).
func (c *Cluster) WaitReadable(timeout time.Duration) {
	c.waitSummary(timeout, "readable", func(sum map[string]string) bool {
		return sum["read_unhealthy_app_count"] == "0"
	})
}

// WaitServing waits until every partition of every table has a primary with
// enough members to accept writes (some may still miss a secondary).
func (c *Cluster) WaitServing(timeout time.Duration) {
	c.waitSummary(timeout, "serving", func(sum map[string]string) bool {
		return sum["read_unhealthy_app_count"] == "0" && sum["write_unhealthy_app_count"] == "0"
	})
}

func (c *Cluster) waitSummary(timeout time.Duration, what string, ok func(map[string]string) bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		sum, err := c.summary()
		if err == nil && ok(sum) {
			return
		}
		last = fmt.Sprintf("%v %v", sum, err)
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("cluster not %s within %v: %s%s", what, timeout, last, c.unexpectedExits())
}

func (c *Cluster) summary() (map[string]string, error) {
	client := &http.Client{Timeout: 2 * time.Second}
	var lastErr error
	for _, m := range c.MetaAddrs() {
		resp, err := client.Get("http://" + m + "/meta/apps?detail")
		if err != nil {
			lastErr = err
			continue
		}
		var body struct {
			Summary map[string]string `json:"summary"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			lastErr = fmt.Errorf("meta %s: status %d: %v", m, resp.StatusCode, err)
			continue
		}
		return body.Summary, nil
	}
	return nil, lastErr
}

// replicasServing checks that the replica servers hold, as primary or secondary,
// as many replicas as the default tables need.
func (c *Cluster) replicasServing() (bool, string) {
	want := 0
	c.mu.Lock()
	started := 0
	for i := range c.replicaPorts {
		if c.procs[fmt.Sprintf("replica%d", i+1)] != nil {
			started++
		}
	}
	c.mu.Unlock()
	if started == 0 {
		return false, "no replica server started"
	}
	for _, tb := range c.opts.Tables {
		want += tb.Partitions * tb.Replicas
	}
	got := 0
	for _, addr := range c.ReplicaAddrs() {
		rows, err := c.replicaInfo(addr)
		if err != nil {
			continue
		}
		for _, r := range rows {
			if r.Status == "PS_PRIMARY" || r.Status == "PS_SECONDARY" {
				got++
			}
		}
	}
	if got < want {
		return false, fmt.Sprintf("%d of %d replicas serving", got, want)
	}
	return true, ""
}

// ReplicaRow is one replica as a replica server reports it (remote command
// replica.info).
type ReplicaRow struct {
	Gpid      string `json:"gpid"`
	Table     string `json:"table"`
	Status    string `json:"status"`
	Ballot    int64  `json:"ballot"`
	Committed int64  `json:"last_committed_decree"`
}

func (c *Cluster) replicaInfo(addr string) ([]ReplicaRow, error) {
	cl := rpc.NewClient(addr, rpc.ClientOptions{DialTimeout: time.Second})
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var out rpc.String
	if err := cl.Call(ctx, rpc.Request{Code: rpc.CodeRemoteCommand, Args: &cmd.Command{Cmd: "replica.info", Arguments: []string{}}}, &out); err != nil {
		return nil, err
	}
	var rows []ReplicaRow
	if err := json.Unmarshal([]byte(out.V), &rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// ReplicaInfo returns the replicas a replica server holds.
func (c *Cluster) ReplicaInfo(idx int) ([]ReplicaRow, error) {
	return c.replicaInfo(c.Addr("replica", idx))
}

// Healthy reports whether every table is fully replicated.
func (c *Cluster) Healthy() (bool, string) {
	client := &http.Client{Timeout: 2 * time.Second}
	for _, m := range c.MetaAddrs() {
		resp, err := client.Get("http://" + m + "/meta/apps?detail")
		if err != nil {
			continue
		}
		var body struct {
			Summary map[string]string `json:"summary"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			continue
		}
		if body.Summary["unhealthy_app_count"] == "0" && body.Summary["fully_healthy_app_count"] != "0" {
			return true, ""
		}
		return false, fmt.Sprintf("summary %v", body.Summary)
	}
	return false, "no meta leader answered"
}

// Context returns a context bounded by d, cancelled when the test ends.
func (c *Cluster) Context(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// checkRaces fails the test when an instance built with the race detector
// reported a data race (it prints the report on stderr, in its .out file).
func (c *Cluster) checkRaces() {
	outs, _ := filepath.Glob(filepath.Join(c.dir, "*.out"))
	for _, f := range outs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if i := strings.Index(string(b), "WARNING: DATA RACE"); i >= 0 {
			end := min(len(b), i+4000)
			c.t.Errorf("%s reported a data race:\n%s", filepath.Base(f), b[i:end])
		}
	}
}

// dumpLogs prints the end of every instance's log into the test output, so that a
// failure in CI can be understood without the temporary directory.
func (c *Cluster) dumpLogs() {
	files, _ := filepath.Glob(filepath.Join(c.dir, "data", "log", "*.log"))
	outs, _ := filepath.Glob(filepath.Join(c.dir, "*.out"))
	for _, f := range append(files, outs...) {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 80 {
			lines = lines[len(lines)-80:]
		}
		c.t.Logf("---- last lines of %s ----\n%s", filepath.Base(f), strings.Join(lines, "\n"))
	}
	// The test's directory is removed with it; PEGASUS_TEST_LOGS keeps the
	// whole logs of failed tests for a look afterwards (CI artefacts).
	if keep := os.Getenv("PEGASUS_TEST_LOGS"); keep != "" {
		dst := filepath.Join(keep, strings.ReplaceAll(c.t.Name(), "/", "_"))
		if err := os.MkdirAll(dst, 0o755); err != nil {
			c.t.Logf("keeping logs: %v", err)
			return
		}
		for _, f := range append(files, outs...) {
			if b, err := os.ReadFile(f); err == nil {
				if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644); err != nil {
					c.t.Logf("keeping logs: %v", err)
				}
			}
		}
		c.t.Logf("full logs kept in %s", dst)
	}
}

// OpenTable opens a table through a data client of the cluster (closed when the
// test ends), with operations bounded by 30 s: long enough to ride out a failover.
func (c *Cluster) OpenTable(name string) *kv.Table {
	c.t.Helper()
	cl, err := kv.NewClient(kv.Config{MetaServers: c.MetaAddrs(), OperationTimeout: 30 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tb, err := cl.OpenTable(ctx, name)
	if err != nil {
		c.t.Fatalf("open table %s: %v", name, err)
	}
	return tb
}
