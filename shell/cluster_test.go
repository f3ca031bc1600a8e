package shell_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/meta"
	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/daemon/remotecmd"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/radmin"
	"github.com/pegasusgo/pegasus/internal/coldbackup"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/shell"
	"github.com/pegasusgo/pegasus/storage/blockservice"
)

// testCluster is an in-process meta server with fake replica servers that
// beacon to it, answer remote commands and RPC_QUERY_DISK_INFO, and serve
// /metrics: enough for every admin command.
type testCluster struct {
	meta  string
	nodes []string
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func startMeta(t *testing.T, minLive int) string {
	t.Helper()
	ln := listen(t)
	addr := ln.Addr().String()
	store, err := metastore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	elector := store.NewElector(addr)
	srv, err := meta.New(meta.Options{
		Self:            addr,
		MetaServers:     []string{addr},
		ClusterName:     "onebox",
		ClusterRoot:     "/pegasus/onebox/127.0.0.1",
		StoreHosts:      []string{"127.0.0.1:22181"},
		Store:           store,
		Elector:         elector,
		FDGrace:         3 * time.Second,
		FDCheckInterval: 50 * time.Millisecond,
		LBInterval:      200 * time.Millisecond,
		MinLiveNodes:    minLive,
		DefaultTables:   []meta.DefaultTable{{Name: "temp", PartitionCount: 8, ReplicaCount: 3}},
		// Provider "fs" for the backup policy commands ("local", which the
		// one-time backup tests use, stays unconfigured).
		ColdBackup: coldbackup.Options{Root: "onebox", Providers: map[string]blockservice.Config{
			"fs": {Type: blockservice.TypeLocal, Args: []string{t.TempDir()}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := rpc.NewMux()
	srv.Register(mux)
	rs := rpc.NewServer(mux, rpc.ServerOptions{HTTP: srv.HTTPHandler()})
	go rs.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Run(ctx)
		elector.Close()
		store.Close()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		rs.Close()
	})
	waitfor.True(t, 5*time.Second, 10*time.Millisecond, "the meta server to become leader", srv.IsLeader)
	return addr
}

// fakeNode is a replica server stand-in.
type fakeNode struct {
	addr string
	stop chan struct{}
	done chan struct{}
}

func startFakeNode(t *testing.T, metaAddr string) *fakeNode {
	t.Helper()
	ln := listen(t)
	addr := ln.Addr().String()
	port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	reg := metrics.NewRegistry("onebox", "replica", port)
	srvE := reg.Entity("server", "server", nil)
	srvE.Gauge("resident_mem_usage_mb").Set(512)
	srvE.Gauge("virtual_mem_usage_mb").Set(2048)
	srvE.Gauge("rdb_block_cache_mem_usage_bytes").Set(64 << 20)
	srvE.Gauge("total_replicas").Set(8)
	for i, tag := range []string{"ssd1", "ssd2"} {
		d := reg.Entity("disk", tag, map[string]string{"tag": tag, "data_dir": "/data/" + tag})
		d.Gauge("disk_capacity_total_mb").Set(1000)
		d.Gauge("disk_capacity_avail_mb").Set(float64(400 + 100*i))
	}
	start := time.Now()
	for p := 0; p < 8; p++ {
		e := reg.Entity("replica", "1."+strconv.Itoa(p), map[string]string{"table_id": "1", "partition_id": strconv.Itoa(p)})
		e.Gauge("rdb_total_sst_size_mb").Set(2)
		e.Gauge("rdb_total_sst_files").Set(3)
		e.GaugeFunc("get_requests", func() float64 { return 100 * time.Since(start).Seconds() })
	}
	mux := rpc.NewMux()
	remotecmd.New("replica", start).Handle(mux)
	rpc.Handle(mux, rpc.CodeQueryDiskInfo, func(ctx context.Context, call *rpc.Call, req *radmin.QueryDiskInfoRequest) (*radmin.QueryDiskInfoResponse, error) {
		if req.AppName != "" && req.AppName != "temp" {
			return &radmin.QueryDiskInfoResponse{Err: base.NewErrorCode(base.ErrObjectNotFound)}, nil
		}
		g := func(p int32) *base.Gpid { return base.NewGpid(1, p) }
		return &radmin.QueryDiskInfoResponse{
			Err:              base.NewErrorCode(base.ErrOK),
			TotalCapacityMb:  2000,
			TotalAvailableMb: 900,
			DiskInfos: []*radmin.DiskInfo{
				{Tag: "ssd1", FullDir: "/data/ssd1", DiskCapacityMb: 1000, DiskAvailableMb: 400,
					HoldingPrimaryReplicas:   map[int32][]*base.Gpid{1: {g(0), g(1)}},
					HoldingSecondaryReplicas: map[int32][]*base.Gpid{1: {g(2), g(3)}}},
				{Tag: "ssd2", FullDir: "/data/ssd2", DiskCapacityMb: 1000, DiskAvailableMb: 500,
					HoldingPrimaryReplicas:   map[int32][]*base.Gpid{1: {g(4)}},
					HoldingSecondaryReplicas: map[int32][]*base.Gpid{1: {g(5), g(6), g(7)}}},
			},
		}, nil
	})
	rs := rpc.NewServer(mux, rpc.ServerOptions{HTTP: reg})
	go rs.Serve(ln)
	n := &fakeNode{addr: addr, stop: make(chan struct{}), done: make(chan struct{})}
	client := rpc.NewClient(metaAddr, rpc.ClientOptions{})
	go func() {
		defer close(n.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		startMS := start.UnixMilli()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			var ack consensus.BeaconAck
			_ = client.Call(ctx, rpc.Request{Code: rpc.CodeBeacon, Args: &consensus.BeaconMsg{
				Time: time.Now().UnixMilli(), FromNode: base.MustParseRPCAddress(addr), ToNode: &base.RPCAddress{}, StartTime: &startMS,
			}}, &ack)
			cancel()
			select {
			case <-n.stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		n.halt()
		client.Close()
		rs.Close()
	})
	return n
}

func (n *fakeNode) halt() {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	<-n.done
}

// startCluster runs a meta server and n fake replica servers and waits until
// the default table "temp" is fully placed.
func startCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	m := startMeta(t, n)
	c := &testCluster{meta: m}
	for i := 0; i < n; i++ {
		c.nodes = append(c.nodes, startFakeNode(t, m).addr)
	}
	sort.Strings(c.nodes)
	sh := newShell(t, c.meta, nil)
	waitfor.Until(t, 10*time.Second, 50*time.Millisecond, "temp to become healthy", func() (bool, string) {
		out, _ := runScript(t, sh, "ls -d\n")
		return strings.Contains(out, "fully_healthy_app_count    : 1"), "\n" + out
	})
	return c
}

// syncBuffer is a bytes.Buffer safe for the shell's concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}

type testShell struct {
	*shell.Shell
	out, err *syncBuffer
}

func newShell(t *testing.T, metaAddr string, tweak func(*shell.Options)) *testShell {
	t.Helper()
	out, errb := &syncBuffer{}, &syncBuffer{}
	o := shell.Options{
		ConfigFile:  "(none)",
		ClusterName: "unknown",
		MetaServers: []string{metaAddr},
		MetaTimeout: 3 * time.Second,
		NodeTimeout: 2 * time.Second,
		Stdout:      out,
		Stderr:      errb,
	}
	if tweak != nil {
		tweak(&o)
	}
	sh, err := shell.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Close() })
	return &testShell{Shell: sh, out: out, err: errb}
}

// runScript feeds script to the shell as piped input and returns what it wrote
// to stdout and stderr.
func runScript(t *testing.T, sh *testShell, script string) (string, string) {
	t.Helper()
	return runScriptFor(t, sh, script, 60*time.Second)
}

// runScriptFor is runScript with a deadline for the commands (which they report
// as their error; the run itself goes on to the end of the script).
func runScriptFor(t *testing.T, sh *testShell, script string, d time.Duration) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := sh.RunScript(ctx, bufio.NewReader(strings.NewReader(script))); err != nil && ctx.Err() == nil {
		t.Fatalf("run %q: %v", script, err)
	}
	return sh.out.take(), sh.err.take()
}

var (
	timeRE = regexp.MustCompile(`\d{4}-\d{2}-\d{2}_\d{2}:\d{2}:\d{2}`)
)

// mask replaces what varies between runs with placeholders of the same width,
// so that column alignment is still checked: the meta address becomes
// 127.0.0.1:meta1, node addresses 127.0.0.1:node1.. in address order, and
// times YYYY-MM-DD_hh:mm:ss.
func (c *testCluster) mask(s string) string {
	s = timeRE.ReplaceAllString(s, "YYYY-MM-DD_hh:mm:ss")
	s = strings.ReplaceAll(s, c.meta, maskAddr(c.meta, "meta1"))
	for i, n := range c.nodes {
		s = strings.ReplaceAll(s, n, maskAddr(n, "node"+strconv.Itoa(i+1)))
	}
	return s
}

// maskAddr replaces the port of addr with a tag padded to the port's width.
func maskAddr(addr, tag string) string {
	i := strings.LastIndexByte(addr, ':')
	port := addr[i+1:]
	if len(tag) < len(port) {
		tag = strings.Repeat("_", len(port)-len(tag)) + tag
	}
	return addr[:i+1] + tag
}
