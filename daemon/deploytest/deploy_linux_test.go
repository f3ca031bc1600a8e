//go:build linux

package deploytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"golang.org/x/sys/unix"

	"github.com/pegasusgo/pegasus/daemon/zktest"
	"github.com/pegasusgo/pegasus/internal/waitfor"
)

// The simulated LAN: hosts are 10.77.0.1, .2, .3 on one bridge. The addresses live
// only inside the test's namespaces, so they cannot clash with the machine's own.
const (
	lanPrefix     = "10.77.0."
	decoyPrefix   = "192.168.250."
	zkClientPort  = 2181
	metaPort      = 34601
	replicaPort   = 34801
	collectorPort = 34101
	clusterName   = "deploy_test"
)

// host is one machine of the deployment: a network namespace with its own NIC and
// its own directory tree, standing for /home/work on a real server.
type host struct {
	n    int
	ns   string // network namespace
	nic  string // its veth on the LAN, the one primary_interface names
	ip   string
	dir  string // everything of the host: its home, ZooKeeper, process output
	home string // %{home.dir}
	pkg  string // the extracted package
	bin  string // <pkg>/bin, where the guide starts everything from
	vars map[string]string
}

func (h *host) name() string { return fmt.Sprintf("host%d", h.n) }

// ipCmd runs `ip args...` and fails the test on an error.
func ipCmd(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// makeHosts builds n hosts on a bridged LAN. The bridge sits in a namespace of its
// own, away from the machine's firewall (bridged traffic may be filtered by the
// root namespace's iptables). Each host also gets a decoy NIC with a private
// address ahead of its LAN NIC, so that automatic address selection would pick
// the wrong address: only primary_interface makes the cluster work. Everything is
// deleted when the test ends, whatever happened.
func makeHosts(t *testing.T, root string, n int) []*host {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the deployment test needs root to make hosts out of network namespaces (ip netns); CI runs it as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("the deployment test needs the ip command (iproute2) to make network namespaces: %v", err)
	}
	sweepNamespaces(t)
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	// Unique names, as several test runs may share the machine; the pid lets a
	// later run delete what a killed run left.
	prefix := fmt.Sprintf("pgd%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
	lan := prefix + "-lan"
	var namespaces []string
	t.Cleanup(func() {
		for _, ns := range namespaces {
			// Deleting a namespace destroys its interfaces, veth peers included.
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("delete network namespace %s: %v %s", ns, err, out)
			}
		}
		out, _ := exec.Command("ip", "netns", "list").Output()
		if strings.Contains(string(out), prefix) {
			t.Errorf("network namespaces left behind:\n%s", out)
		}
	})
	if out, err := exec.Command("ip", "netns", "add", lan).CombinedOutput(); err != nil {
		t.Skipf("cannot make network namespaces here (ip netns add: %v: %s); the deployment test needs them", err, strings.TrimSpace(string(out)))
	}
	namespaces = append(namespaces, lan)
	ipCmd(t, "-n", lan, "link", "set", "lo", "up")
	ipCmd(t, "-n", lan, "link", "add", "br0", "type", "bridge")
	ipCmd(t, "-n", lan, "link", "set", "br0", "up")

	var hosts []*host
	for i := 1; i <= n; i++ {
		h := &host{
			n:   i,
			ns:  fmt.Sprintf("%s-h%d", prefix, i),
			nic: fmt.Sprintf("veth-h%d", i),
			ip:  fmt.Sprintf("%s%d", lanPrefix, i),
			dir: filepath.Join(root, fmt.Sprintf("host%d", i)),
		}
		h.home = filepath.Join(h.dir, "home", "work")
		ipCmd(t, "netns", "add", h.ns)
		namespaces = append(namespaces, h.ns)
		ipCmd(t, "-n", h.ns, "link", "set", "lo", "up")
		ipCmd(t, "-n", h.ns, "link", "add", "decoy0", "type", "veth", "peer", "name", "decoy1")
		ipCmd(t, "-n", h.ns, "addr", "add", fmt.Sprintf("%s%d/24", decoyPrefix, i), "dev", "decoy0")
		ipCmd(t, "-n", h.ns, "link", "set", "decoy0", "up")
		ipCmd(t, "-n", h.ns, "link", "set", "decoy1", "up")
		port := fmt.Sprintf("port%d", i)
		ipCmd(t, "-n", lan, "link", "add", port, "type", "veth", "peer", "name", h.nic, "netns", h.ns)
		ipCmd(t, "-n", lan, "link", "set", port, "master", "br0", "up")
		ipCmd(t, "-n", h.ns, "addr", "add", h.ip+"/24", "dev", h.nic)
		ipCmd(t, "-n", h.ns, "link", "set", h.nic, "up")
		hosts = append(hosts, h)
	}
	return hosts
}

var nsNameRE = regexp.MustCompile(`^pgd(\d+)-[0-9a-f]+-(lan|h\d+)$`)

// sweepNamespaces deletes the namespaces of earlier runs whose test process is
// gone: a run killed by a timeout does not get to run its cleanups (its servers
// died with it, through Pdeathsig).
func sweepNamespaces(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		m := nsNameRE.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if err := syscall.Kill(pid, 0); err == syscall.ESRCH {
			if out, err := exec.Command("ip", "netns", "del", f[0]).CombinedOutput(); err != nil {
				t.Logf("delete stale network namespace %s: %v %s", f[0], err, out)
			} else {
				t.Logf("deleted network namespace %s left by an earlier run", f[0])
			}
		}
	}
}

// nsDial dials from inside a network namespace, so that the test itself (in the
// root namespace) can talk to the hosts. The socket is made on an OS thread moved
// into the namespace for the call; a socket keeps its namespace wherever it is
// used later.
func nsDial(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			// The thread returns to its namespace and to the pool afterwards. A
			// thread left locked would end with this goroutine, and the children
			// it once forked (started with Pdeathsig) would be killed with it.
			orig, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, err}
				return
			}
			defer orig.Close()
			target, err := os.Open("/run/netns/" + ns)
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, err}
				return
			}
			defer target.Close()
			if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, fmt.Errorf("enter network namespace %s: %w", ns, err)}
				return
			}
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// packServer runs `./run.sh pack_server` as the guide says, in a copy of the
// working tree (pack_server writes next to run.sh; the copy keeps the repository
// clean and concurrent runs apart), and returns the tarball.
func packServer(t *testing.T, root string) string {
	t.Helper()
	repo := repoRoot(t)
	src := filepath.Join(root, "src")
	out, err := exec.Command("git", "-C", repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if err := copyFile(filepath.Join(repo, rel), filepath.Join(src, rel)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("./run.sh", "pack_server")
	cmd.Dir = src
	// The git SHA in the package name comes from the repository itself.
	cmd.Env = append(os.Environ(), "GIT_DIR="+filepath.Join(repo, ".git"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("./run.sh pack_server: %v\n%s", err, out)
	}
	tars, _ := filepath.Glob(filepath.Join(src, "pegasus-server-*.tar.gz"))
	if len(tars) != 1 {
		t.Fatalf("pack_server made %d tarballs, want 1: %v", len(tars), tars)
	}
	name := strings.TrimSuffix(filepath.Base(tars[0]), ".tar.gz")
	if !strings.HasSuffix(name, "-release") || strings.Count(name, "-") < 5 {
		t.Errorf("package name %q does not follow pegasus-server-{version}-{gitSHA}-{platform}-{buildType}", name)
	}
	return tars[0]
}

// copyFile copies a regular file, keeping its mode; a file deleted from the
// working tree but still in the index is skipped.
func copyFile(from, to string) error {
	fi, err := os.Lstat(from)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// install extracts the package on a host and fills its config.ini for that host,
// as the guide's "prepare the configuration file" says: every %{...} replaced,
// two tagged data disks, and primary_interface naming the LAN NIC.
func install(t *testing.T, h *host, tarball string, hosts []*host) {
	t.Helper()
	if err := os.MkdirAll(h.home, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "xzf", tarball, "-C", h.home).CombinedOutput(); err != nil {
		t.Fatalf("%s: tar xzf: %v\n%s", h.name(), err, out)
	}
	h.pkg = filepath.Join(h.home, strings.TrimSuffix(filepath.Base(tarball), ".tar.gz"))
	h.bin = filepath.Join(h.pkg, "bin")
	for _, f := range []string{"pegasus_server", "pegasus_shell", "config.ini", "cluster_secret"} {
		if _, err := os.Stat(filepath.Join(h.bin, f)); err != nil {
			t.Fatalf("the package lacks bin/%s: %v", f, err)
		}
	}
	// The secret pack_server generated, which the template's cluster_secret_file
	// names: the servers refuse it unless only its owner can read it.
	if fi, err := os.Stat(filepath.Join(h.bin, "cluster_secret")); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: bin/cluster_secret has mode %v after tar xzf, want 0600", h.name(), fi.Mode().Perm())
	}
	metas := []string{}
	for _, m := range hosts[:2] {
		metas = append(metas, fmt.Sprintf("%s:%d", m.ip, metaPort))
	}
	h.vars = map[string]string{
		"cluster.name":     clusterName,
		"home.dir":         h.home,
		"app.dir":          filepath.Join(h.home, "app", "pegasus"),
		"slog.dir":         "",
		"data.dirs":        "ssd1:" + filepath.Join(h.home, "ssd1", "pegasus") + ",ssd2:" + filepath.Join(h.home, "ssd2", "pegasus"),
		"meta.server.list": strings.Join(metas, ","),
		"zk.server.list":   fmt.Sprintf("%s:%d", hosts[0].ip, zkClientPort),
	}
	if h.n == 3 {
		// Host 3 keeps the deprecated shared-log disk of an older deployment:
		// accepted, ignored with a warning, and deleted by the cleanup.
		h.vars["slog.dir"] = filepath.Join(h.home, "ssd0", "pegasus")
		if err := os.MkdirAll(h.vars["slog.dir"], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(h.bin, "config.ini")
	text, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	filled := setKey(t, fill(string(text), h.vars), "network", "primary_interface", h.nic)
	if err := os.WriteFile(cfgPath, []byte(filled), 0o644); err != nil {
		t.Fatal(err)
	}
}

// zkJava finds java and ZooKeeper's classpath the way zktest does.
func zkJava(t *testing.T) (java, classpath string) {
	t.Helper()
	java = os.Getenv(zktest.EnvJava)
	if java == "" {
		var err error
		if java, err = exec.LookPath("java"); err != nil {
			t.Fatalf("java not found (install the Debian package zookeeper or set %s): %v", zktest.EnvJava, err)
		}
	}
	classpath = os.Getenv(zktest.EnvClasspath)
	if classpath == "" {
		classpath = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
	}
	if _, err := os.Stat("/usr/share/java/zookeeper.jar"); err != nil && os.Getenv(zktest.EnvClasspath) == "" {
		t.Fatalf("ZooKeeper not installed (install the Debian package zookeeper or set %s): %v", zktest.EnvClasspath, err)
	}
	return java, classpath
}

// startZooKeeper runs a single ZooKeeper server on host h, listening on the host's
// LAN address only, like the ensemble the guide asks to prepare.
func startZooKeeper(t *testing.T, h *host) {
	t.Helper()
	java, classpath := zkJava(t)
	dir := filepath.Join(h.dir, "zookeeper")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "zoo.cfg")
	conf := strings.Join([]string{
		"tickTime=1000",
		"dataDir=" + filepath.Join(dir, "data"),
		fmt.Sprintf("clientPort=%d", zkClientPort),
		"clientPortAddress=" + h.ip,
		"admin.enableServer=false",
		"maxSessionTimeout=60000",
		"4lw.commands.whitelist=ruok",
		// The machine is never crashed in this test: skip fsync and
		// preallocation, which only cost time here.
		"forceSync=no",
		"preAllocSize=1024",
		"",
	}, "\n")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", h.ns, java, "-Xmx256m", "-XX:-UsePerfData",
		"-Dzookeeper.log.dir="+dir, "-Dzookeeper.root.logger=INFO,ROLLINGFILE",
		"-cp", classpath, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg)
	cmd.Dir = dir
	p := startProcess(t, "zookeeper", cmd, filepath.Join(dir, "zookeeper.out"))
	dial := nsDial(h.ns)
	addr := fmt.Sprintf("%s:%d", h.ip, zkClientPort)
	waitfor.Until(t, 60*time.Second, 200*time.Millisecond, "ZooKeeper on "+addr+" to answer", func() (bool, string) {
		if !p.running() {
			t.Fatalf("ZooKeeper exited: %v\n%s", p.err, tail(p.out, 4000))
		}
		return ruok(dial, addr), "\n" + tail(p.out, 4000)
	})
}

func ruok(dial func(context.Context, string, string) (net.Conn, error), addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ruok")); err != nil {
		return false
	}
	b, _ := io.ReadAll(c)
	return string(b) == "imok"
}

// zkClient connects to ZooKeeper from inside a host's namespace.
func zkClient(t *testing.T, h *host, addr string) *zk.Conn {
	t.Helper()
	dial := nsDial(h.ns)
	conn, _, err := zk.Connect([]string{addr}, 10*time.Second,
		zk.WithDialer(func(network, address string, timeout time.Duration) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			return dial(ctx, network, address)
		}),
		zk.WithLogger(quietZK{}))
	if err != nil {
		t.Fatalf("connect to ZooKeeper %s: %v", addr, err)
	}
	if err := waitfor.Within(20*time.Second, 50*time.Millisecond, func() (bool, string) {
		st := conn.State()
		return st == zk.StateHasSession, fmt.Sprintf("state %v", st)
	}); err != nil {
		conn.Close()
		t.Fatalf("no ZooKeeper session with %s within 20 s (%v)", addr, err)
	}
	return conn
}

type quietZK struct{}

func (quietZK) Printf(string, ...any) {}

// startRole starts `./pegasus_server config.ini -app_list <role>` from the host's
// bin/. With guideEnv it goes through a shell doing exactly what the guide writes
// (export LD_LIBRARY_PATH=..., cd bin/); otherwise the binary is run directly,
// without LD_LIBRARY_PATH.
func startRole(t *testing.T, h *host, role string, guideEnv bool) *process {
	t.Helper()
	var cmd *exec.Cmd
	if guideEnv {
		script := fmt.Sprintf("export LD_LIBRARY_PATH=%s:$LD_LIBRARY_PATH\ncd bin/\nexec ./pegasus_server config.ini -app_list %s\n", h.bin, role)
		cmd = exec.Command("ip", "netns", "exec", h.ns, "sh", "-c", script)
		cmd.Dir = h.pkg
	} else {
		cmd = exec.Command("ip", "netns", "exec", h.ns, "./pegasus_server", "config.ini", "-app_list", role)
		cmd.Dir = h.bin
		cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "LD_LIBRARY_PATH=") })
	}
	return startProcess(t, h.name()+" "+role, cmd, filepath.Join(h.dir, role+".out"))
}

// shell runs pegasus_shell from host h's bin/ with the commands piped in, as in
// the guide's `echo "nodes -d" | ./pegasus_shell --meta ...`.
func shell(t *testing.T, h *host, commands ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var echo []string
	for _, c := range commands {
		echo = append(echo, fmt.Sprintf("echo %q", c))
	}
	script := fmt.Sprintf("(%s) | ./pegasus_shell --meta %s", strings.Join(echo, "; "), h.vars["meta.server.list"])
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", h.ns, "sh", "-c", script)
	cmd.Dir = h.bin
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil && ctx.Err() != nil {
		t.Fatalf("pegasus_shell on %s did not finish %q within 60 s", h.name(), commands)
	}
	return out.String(), errb.String()
}

// TestDeployThreeHosts follows the deployment guide on three hosts: pack, extract
// on each host, fill the template, ZooKeeper on host 1, meta servers on hosts 1-2,
// replica servers on hosts 1-3 and a collector on host 1, each started from bin/;
// then the shell on host 3 sees a healthy cluster, and the cleanup leaves nothing
// behind, neither on the disks nor in ZooKeeper. The servers authenticate to each
// other with the cluster secret the package carries; a fourth host, given another
// secret, starts a replica server that must never join.
func TestDeployThreeHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper and seven servers on four network namespaces")
	}
	root := t.TempDir()
	allHosts := makeHosts(t, root, 4)
	// Host 4 is an intruder: the same package and configuration, another secret.
	hosts, intruder := allHosts[:3], allHosts[3]
	phase := time.Now()
	step := func(what string) {
		t.Logf("%-44s %v", what, time.Since(phase).Round(100*time.Millisecond))
		phase = time.Now()
	}

	tarball := packServer(t, root)
	if fi, err := os.Stat(tarball); err == nil && fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s has mode %v: it holds the cluster secret, only its owner may read it", filepath.Base(tarball), fi.Mode().Perm())
	}
	for _, h := range allHosts {
		install(t, h, tarball, hosts)
	}
	otherSecret := make([]byte, 32)
	if _, err := rand.Read(otherSecret); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(intruder.bin, "cluster_secret"), []byte(hex.EncodeToString(otherSecret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	step("packed and installed on 4 hosts")

	startZooKeeper(t, hosts[0])
	step("ZooKeeper up on host1")

	var procs []*process
	dumped := false
	dump := func() {
		if !t.Failed() || dumped {
			return
		}
		dumped = true
		for _, p := range procs {
			t.Logf("---- %s output:\n%s", p.name, tail(p.out, 2000))
		}
		for _, h := range allHosts {
			logs, _ := filepath.Glob(filepath.Join(h.vars["app.dir"], "log", "*.log"))
			for _, l := range logs {
				t.Logf("---- %s %s:\n%s", h.name(), filepath.Base(l), tail(l, 3000))
			}
		}
	}
	t.Cleanup(dump)
	// Host 1 follows the guide to the letter (LD_LIBRARY_PATH exported); the
	// others run the static binaries without it.
	for _, h := range hosts[:2] {
		procs = append(procs, startRole(t, h, "meta", h.n == 1))
	}
	for _, h := range hosts {
		procs = append(procs, startRole(t, h, "replica", h.n == 1))
	}
	intruderReplica := startRole(t, intruder, "replica", false)
	procs = append(procs, intruderReplica)
	intruderNode := fmt.Sprintf("%s:%d", intruder.ip, replicaPort)
	collector := startRole(t, hosts[0], "collector", true)
	if collector.exited(3 * time.Second) {
		out := collector.output()
		if strings.Contains(out, "not implemented") {
			t.Logf("collector role not available in pegasus_server yet, step skipped: %s", strings.TrimSpace(out))
			collector = nil
		} else {
			t.Fatalf("collector exited at start: %v\n%s", collector.err, out)
		}
	} else {
		procs = append(procs, collector)
	}
	alive := func() {
		t.Helper()
		for _, p := range procs {
			if !p.running() {
				t.Fatalf("%s exited: %v\n%s", p.name, p.err, tail(p.out, 2000))
			}
		}
	}
	alive()
	step("meta x2, replica x3, collector started")

	h3 := hosts[2]
	var want []string
	for _, h := range hosts {
		want = append(want, fmt.Sprintf("%s:%d", h.ip, replicaPort))
	}
	waitFor(t, 60*time.Second, "three ALIVE nodes in `nodes -d` from host3", alive, func() (bool, string) {
		out, errOut := shell(t, h3, "nodes -d")
		if aliveNode(out, intruderNode) {
			t.Fatalf("the replica server of host4, with another cluster secret, is ALIVE:\n%s", out)
		}
		for _, n := range want {
			if !aliveNode(out, n) {
				return false, out + errOut
			}
		}
		return strings.Contains(out, "alive_node_count    : 3"), out + errOut
	})
	step("nodes -d: 3 ALIVE")

	// The intruder's beacons are refused: its log says why, and the meta servers
	// never list it.
	intruderLog := filepath.Join(intruder.vars["app.dir"], "log")
	waitFor(t, 20*time.Second, "host4's replica server logs that cluster authentication failed", alive, func() (bool, string) {
		return logMentions(intruderLog, "cluster authentication failed"), tail(filepath.Join(intruderLog, "pegasus.replica.log"), 2000)
	})
	if !logMentions(filepath.Join(hosts[0].vars["app.dir"], "log"), "cluster authentication refused") {
		t.Errorf("the meta server of host1 does not log the refused authentication of host4")
	}
	if out, errOut := shell(t, h3, "nodes -d"); strings.Contains(out, intruderNode) || !strings.Contains(out, "alive_node_count    : 3") {
		t.Errorf("nodes -d lists the replica server of host4, which has another cluster secret:\n%s%s", out, errOut)
	}
	step("host4 with another secret refused")

	waitFor(t, 90*time.Second, "table temp fully healthy (`app temp -d`)", alive, func() (bool, string) {
		out, errOut := shell(t, h3, "app temp -d -j")
		return tempHealthy(out), out + errOut
	})
	step("temp fully healthy")

	// The meta server's view is healthy as soon as it has placed the replicas;
	// query_disk_info asks the replica servers, which must hold all of them.
	replicas := defaultReplicas(t, filepath.Join(h3.bin, "config.ini"))
	waitFor(t, 30*time.Second, fmt.Sprintf("query_disk_info: disks ssd1 and ssd2 on every node, %d replicas", replicas), alive, func() (bool, string) {
		out, errOut := shell(t, h3, "query_disk_info")
		disks, summary := parseDiskInfo(out)
		if len(disks) != len(want) || summary["replica_count"] != strconv.Itoa(replicas) {
			return false, out + errOut
		}
		for _, n := range want {
			if !slices.Equal(slices.Sorted(maps.Keys(disks[n])), []string{"ssd1", "ssd2"}) {
				return false, out + errOut
			}
			// Both disks serve: new replicas are spread over them.
			for _, count := range disks[n] {
				if count == 0 {
					return false, out + errOut
				}
			}
		}
		return true, ""
	})

	out, errOut := shell(t, h3, "use temp", "set deploy_hash deploy_sort written_from_host3", "get deploy_hash deploy_sort")
	// Like upstream's shell, get prints the value on stderr.
	if !strings.Contains(errOut, `"written_from_host3"`) {
		t.Errorf("set then get through the shell on host3 did not read the value back:\n%s%s", out, errOut)
	}
	for _, h := range hosts {
		warned := logMentions(filepath.Join(h.vars["app.dir"], "log"), "slog_dir is deprecated")
		if want := h.vars["slog.dir"] != ""; warned != want {
			t.Errorf("%s: slog_dir %q: deprecation warning logged = %v, want %v", h.name(), h.vars["slog.dir"], warned, want)
		}
	}
	step("query_disk_info, set/get")

	if collector != nil {
		// The collector checks temp: every partition's latest probe succeeded.
		addr := fmt.Sprintf("%s:%d", hosts[0].ip, collectorPort)
		waitFor(t, 30*time.Second, "collector probing every partition of temp", alive, func() (bool, string) {
			out, errOut := shell(t, h3, "availability --collector "+addr+" -j")
			return availabilityOK(out), out + errOut
		})
		step("collector: temp available")
	}

	dump() // the cleanup below deletes the logs
	// Stop everything but ZooKeeper: the cleanup needs it.
	for i := len(procs) - 1; i >= 0; i-- {
		if code := procs[i].stop(t); code != 0 {
			t.Errorf("%s exited with %d on SIGTERM, want 0:\n%s", procs[i].name, code, tail(procs[i].out, 1000))
		}
	}
	step("servers stopped")

	zkAddr := hosts[0].vars["zk.server.list"]
	zc := zkClient(t, hosts[2], zkAddr)
	defer zc.Close()
	clusterRoot := "/pegasus/" + clusterName
	if ok, _, err := zc.Exists(clusterRoot); err != nil || !ok {
		t.Fatalf("before the cleanup, cluster root %s in ZooKeeper: exists=%v err=%v", clusterRoot, ok, err)
	}

	// The guide's full cleanup, one command per host. Host 2 answers the
	// confirmation prompt instead of passing -y.
	for _, h := range hosts {
		args := []string{"netns", "exec", h.ns, "./pegasus_server", "config.ini", "-clear_cluster"}
		stdin := ""
		if h.n == 2 {
			stdin = "yes\n"
		} else {
			args = append(args, "-y")
		}
		cmd := exec.Command("ip", args...)
		cmd.Dir = h.bin
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: pegasus_server config.ini -clear_cluster: %v\n%s", h.name(), err, out)
		}
	}
	step("clear_cluster on 3 hosts")

	for _, h := range hosts {
		dirs := []string{h.vars["app.dir"]}
		if d := h.vars["slog.dir"]; d != "" {
			dirs = append(dirs, d)
		}
		for _, d := range strings.Split(h.vars["data.dirs"], ",") {
			_, path, _ := strings.Cut(d, ":")
			dirs = append(dirs, path)
		}
		for _, d := range dirs {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				t.Errorf("%s: %s is left after the cleanup (stat: %v)", h.name(), d, err)
			}
		}
		if _, err := os.Stat(filepath.Join(h.bin, "pegasus_server")); err != nil {
			t.Errorf("%s: the cleanup removed the package itself: %v", h.name(), err)
		}
	}
	if ok, _, err := zc.Exists(clusterRoot); err != nil || ok {
		t.Errorf("after the cleanup, cluster root %s in ZooKeeper: exists=%v err=%v", clusterRoot, ok, err)
	}
	left, err := zkTree(zc, "/pegasus")
	if err != nil {
		t.Errorf("list /pegasus in ZooKeeper: %v", err)
	}
	if len(left) > 0 {
		t.Errorf("ZooKeeper paths left under /pegasus after the cleanup: %v", left)
	}
}

// zkTree lists every path under p (not p itself); none when p does not exist.
func zkTree(c *zk.Conn, p string) ([]string, error) {
	children, _, err := c.Children(p)
	if err == zk.ErrNoNode {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ch := range children {
		sub := p + "/" + ch
		out = append(out, sub)
		more, err := zkTree(c, sub)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	sort.Strings(out)
	return out, nil
}

// waitFor polls cond until it holds, checking the processes between polls.
func waitFor(t *testing.T, limit time.Duration, what string, check func(), cond func() (bool, string)) {
	t.Helper()
	waitfor.Until(t, limit, time.Second, what, func() (bool, string) {
		check()
		ok, detail := cond()
		return ok, "\n" + detail
	})
}

// aliveNode finds node's row with status ALIVE in the text of `nodes -d`.
func aliveNode(out, node string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == node && f[1] == "ALIVE" {
			return true
		}
	}
	return false
}

// tempHealthy reads `app temp -d -j`: every partition has all its replicas.
func tempHealthy(out string) bool {
	var v struct {
		General  map[string]string            `json:"general"`
		Replicas map[string]map[string]string `json:"replicas"`
		Healthy  map[string]string            `json:"healthy"`
	}
	// The shell prints its banner first, even when piped.
	i := strings.Index(out, "\n{")
	if i < 0 || json.Unmarshal([]byte(out[i:]), &v) != nil {
		return false
	}
	n := v.General["partition_count"]
	if n == "" || n == "0" || v.Healthy["fully_healthy_partition_count"] != n || v.Healthy["unhealthy_partition_count"] != "0" {
		return false
	}
	want := v.General["max_replica_count"] + "/" + v.General["max_replica_count"]
	for _, r := range v.Replicas {
		if r["replica_count"] != want {
			return false
		}
	}
	return len(v.Replicas) > 0
}

// availabilityOK reads `availability -j`: the collector reports on temp, and the
// latest probe of each of its partitions succeeded.
func availabilityOK(out string) bool {
	var v struct {
		General    map[string]string            `json:"general"`
		Partitions map[string]map[string]string `json:"partitions"`
	}
	i := strings.Index(out, "\n{")
	if i < 0 || json.Unmarshal([]byte(out[i:]), &v) != nil {
		return false
	}
	if v.General["table"] != "temp" || len(v.Partitions) == 0 || fmt.Sprint(len(v.Partitions)) != v.General["partition_count"] {
		return false
	}
	for _, p := range v.Partitions {
		if p["result"] != "OK" {
			return false
		}
	}
	return true
}

// parseDiskInfo reads the text of `query_disk_info`: for each node section
// "[ip:port]", the replica count of each disk tag (the total row excluded), and
// the "[summary]" section's values.
func parseDiskInfo(out string) (disks map[string]map[string]int, summary map[string]string) {
	disks, summary = map[string]map[string]int{}, map[string]string{}
	section := ""
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "":
			section = ""
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = strings.Trim(l, "[]")
			if section != "summary" {
				disks[section] = map[string]int{}
			}
		case section == "summary":
			k, v, _ := strings.Cut(l, ":")
			summary[strings.TrimSpace(k)] = strings.TrimSpace(v)
		case section != "":
			// disk capacity_mb available_mb available_ratio(%) primary secondary replica
			// [status ...]
			f := strings.Fields(l)
			if len(f) >= 7 && f[0] != "disk" && f[0] != "total" {
				n, _ := strconv.Atoi(f[6])
				disks[section][f[0]] = n
			}
		}
	}
	return disks, summary
}

// defaultReplicas counts the replicas of the tables a new cluster starts with,
// from the [meta_server.apps.*] sections of a configuration.
func defaultReplicas(t *testing.T, path string) int {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]map[string]int{}
	section := ""
	for _, l := range strings.Split(string(text), "\n") {
		if m := sectionRE.FindStringSubmatch(l); m != nil {
			section = m[1]
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(section, "meta_server.apps.") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			continue
		}
		if values[section] == nil {
			values[section] = map[string]int{}
		}
		values[section][strings.TrimSpace(k)] = n
	}
	total := 0
	for _, v := range values {
		total += v["partition_count"] * v["max_replica_count"]
	}
	if total == 0 {
		t.Fatalf("%s declares no default table", path)
	}
	return total
}
