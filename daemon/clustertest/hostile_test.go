//go:build linux

package clustertest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/rpc/kv"
)

// The limits the hostile-client test runs the servers with: shorter than the
// defaults so that the test is quick, the same mechanisms.
const (
	hostileFirstRequest = 2 * time.Second
	hostileFrame        = 3 * time.Second
	hostilePerIP        = 300
	// rssGrowthBound is how much a server's resident memory may grow under any
	// one attack. Before the frame reader was bounded, 40 headers cost 2.5 GB.
	rssGrowthBound = 128 << 20
)

// TestHostileClients replays against real server processes the attacks that
// used to hurt them: frames that promise 64 MiB, idle-connection floods, file
// descriptor exhaustion, slowloris frames, the profiler on the data port. After
// each, the processes must be up, their memory bounded, the attackers'
// connections closed on time, and a normal client (from another address) must
// have kept reading and writing throughout.
func TestHostileClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3, ExtraConfig: fmt.Sprintf(
		"[network]\nfirst_request_timeout_seconds = %d\nframe_timeout_seconds = %d\nconn_threshold_per_ip = %d\n",
		int(hostileFirstRequest/time.Second), int(hostileFrame/time.Second), hostilePerIP)})
	c.WaitHealthy(90 * time.Second)
	tb := c.OpenTable("temp")
	load := startLoad(t, tb)

	replica := c.ReplicaAddrs()[0]
	meta := c.MetaAddrs()[0]
	alive := func(t *testing.T) {
		t.Helper()
		for i := range c.ReplicaAddrs() {
			if !c.Running("replica", i+1) {
				t.Fatalf("replica server %d died", i+1)
			}
		}
		if !c.Running("meta", 1) {
			t.Fatal("meta server died")
		}
	}
	// attack runs one attack while the load goes on and checks the servers after.
	attack := func(name string, fn func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			rss := map[string]int64{"replica": rssOf(t, c.Pid("replica", 1)), "meta": rssOf(t, c.Pid("meta", 1))}
			before := load.ok.Load()
			fn(t)
			alive(t)
			for role, base := range rss {
				now := rssOf(t, c.Pid(role, 1))
				t.Logf("%s RSS %d MB before, %d MB after", role, base>>20, now>>20)
				if now > base+rssGrowthBound {
					t.Errorf("%s RSS grew from %d MB to %d MB (bound: +%d MB)", role, base>>20, now>>20, rssGrowthBound>>20)
				}
			}
			load.waitProgress(t, before+20, 30*time.Second)
		})
	}

	attack("frames promising 64 MiB", func(t *testing.T) {
		// 40 headers to a replica server and 8 to the meta, each declaring a 64 MiB
		// body that never comes: they must cost next to nothing, and go away once
		// their first request is overdue.
		var conns []net.Conn
		for i := 0; i < 48; i++ {
			target := replica
			if i >= 40 {
				target = meta
			}
			nc := dialFrom(t, target, "127.0.0.2")
			if _, err := nc.Write(promiseHeader(64 << 20)); err != nil {
				t.Fatal(err)
			}
			conns = append(conns, nc)
		}
		closedWithin(t, conns, hostileFirstRequest+4*time.Second)
	})

	attack("idle connection flood and per-IP cap", func(t *testing.T) {
		// From two addresses, more idle connections than the per-IP cap: the excess
		// is refused at once, the rest closed when their first request is overdue.
		const perAddr = hostilePerIP + 100
		var conns []net.Conn
		for _, from := range []string{"127.0.0.3", "127.0.0.4"} {
			for i := 0; i < perAddr; i++ {
				conns = append(conns, dialFrom(t, replica, from))
			}
		}
		refused, held := closeTimes(t, conns, 1500*time.Millisecond, hostileFirstRequest+4*time.Second)
		t.Logf("%d connections: %d refused at once, %d closed after the first-request timeout", len(conns), refused, held)
		if held > 2*hostilePerIP {
			t.Errorf("%d connections held, more than the cap of %d per address", held, hostilePerIP)
		}
		if refused < 2*(perAddr-hostilePerIP) {
			t.Errorf("only %d connections refused, want at least %d", refused, 2*(perAddr-hostilePerIP))
		}
	})

	attack("file descriptors exhausted", func(t *testing.T) {
		// With the descriptor limit lowered, connections past it make accept fail
		// (EMFILE). The server must ride it out and serve again once they are gone.
		pid := c.Pid("replica", 1)
		var old unix.Rlimit
		if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
			t.Skipf("prlimit: %v", err)
		}
		low := unix.Rlimit{Cur: uint64(openFDs(t, pid) + 200), Max: old.Max}
		if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &low, nil); err != nil {
			t.Skipf("prlimit: %v", err)
		}
		defer unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil)
		var conns []net.Conn
		for _, from := range []string{"127.0.0.5", "127.0.0.6"} {
			for i := 0; i < 200; i++ {
				conns = append(conns, dialFrom(t, replica, from))
			}
		}
		// The kernel queues what the server cannot accept; the accepted ones time
		// out, making room for the queued ones, which time out in turn.
		closedWithin(t, conns, 4*hostileFirstRequest+10*time.Second)
		if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(c.Log("replica", 1), "accept failed, retrying") {
			t.Error("no accept failure was logged: the attack did not exhaust descriptors")
		}
	})

	attack("slowloris", func(t *testing.T) {
		// 100 connections send their first request at a byte a second; 100 others
		// make a valid request, then do the same with the next one.
		var fresh, warmed []net.Conn
		for i := 0; i < 100; i++ {
			fresh = append(fresh, dialFrom(t, replica, "127.0.0.7"))
			nc := dialFrom(t, replica, "127.0.0.8")
			if err := rawGet(nc, "warm"); err != nil {
				t.Fatalf("valid request before the slow one: %v", err)
			}
			warmed = append(warmed, nc)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		frame := promiseHeader(10)
		for _, nc := range append(append([]net.Conn{}, fresh...), warmed...) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, b := range frame {
					if _, err := nc.Write([]byte{b}); err != nil {
						return
					}
					select {
					case <-time.After(time.Second):
					case <-stop:
						return
					}
				}
			}()
		}
		defer func() { close(stop); wg.Wait() }()
		closedWithin(t, fresh, hostileFirstRequest+3*time.Second)
		closedWithin(t, warmed, hostileFrame+3*time.Second)
	})

	attack("profiler not served", func(t *testing.T) {
		for _, addr := range []string{replica, meta} {
			resp, err := http.Get("http://" + addr + "/pprof/goroutine?debug=2")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s /pprof/goroutine answered %d, want 404 (enable_pprof is off by default)", addr, resp.StatusCode)
			}
		}
	})

	load.stop()
	load.verify(t, tb)
	for _, role := range []string{"replica", "meta"} {
		if n := len(c.Log(role, 1)); n > 8<<20 {
			t.Errorf("%s log is %d MB after the attacks: refusals must be rate-limited", role, n>>20)
		}
	}
}

// promiseHeader is a THFT v0 request header declaring a body of n bytes.
func promiseHeader(n uint32) []byte {
	h := rpc.AppendRequestV0(nil, rpc.Header{AppID: 1}, nil)
	binary.BigEndian.PutUint32(h[16:20], n)
	return h
}

// dialFrom connects to addr from a loopback alias, so that the attacker's
// per-IP accounting is not the normal client's (127.0.0.1).
func dialFrom(t *testing.T, addr, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// rawGet sends one get on nc and reads the reply.
func rawGet(nc net.Conn, key string) error {
	body, err := rpc.EncodeCall(rpc.CodeGet, 1, base.BlobString(key))
	if err != nil {
		return err
	}
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write(rpc.AppendRequestV0(nil, rpc.Header{AppID: 1}, body)); err != nil {
		return err
	}
	var pre [4]byte
	if _, err := io.ReadFull(nc, pre[:]); err != nil {
		return err
	}
	_, err = io.CopyN(io.Discard, nc, int64(binary.BigEndian.Uint32(pre[:]))-4)
	return err
}

// closeTimes waits up to limit for the server to close each connection and
// counts those it closed within quick of the call and those it closed later.
// A connection still open at limit fails the test.
func closeTimes(t *testing.T, conns []net.Conn, quick, limit time.Duration) (fast, slow int) {
	t.Helper()
	start := time.Now()
	var nFast, nSlow, open atomic.Int64
	var wg sync.WaitGroup
	for _, nc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = nc.SetReadDeadline(start.Add(limit))
			_, err := io.Copy(io.Discard, nc)
			switch {
			case err != nil && os.IsTimeout(err):
				open.Add(1)
			case time.Since(start) < quick:
				nFast.Add(1)
			default:
				nSlow.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := open.Load(); n > 0 {
		t.Fatalf("%d of %d connections still open after %v", n, len(conns), limit)
	}
	return int(nFast.Load()), int(nSlow.Load())
}

// closedWithin checks that the server closes every connection within limit.
func closedWithin(t *testing.T, conns []net.Conn, limit time.Duration) {
	t.Helper()
	closeTimes(t, conns, 0, limit)
}

// rssOf is a process's resident memory in bytes.
func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read process status: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// openFDs counts a process's open file descriptors.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("list descriptors: %v", err)
	}
	return len(ents)
}

// load is a normal client writing and reading back keys while attacks run.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	acked      map[string]string
	halt       chan struct{}
	done       chan struct{}
	lastErr    atomic.Value
}

func startLoad(t *testing.T, tb *kv.Table) *load {
	l := &load{acked: map[string]string{}, halt: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := 0; ; i++ {
			select {
			case <-l.halt:
				return
			default:
			}
			hk, sk, v := []byte(fmt.Sprintf("load-%d", i%97)), []byte(strconv.Itoa(i)), []byte(fmt.Sprintf("value-%d", i))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := tb.Set(ctx, hk, sk, v, 0)
			if err == nil {
				l.mu.Lock()
				l.acked[string(hk)+"/"+string(sk)] = string(v)
				l.mu.Unlock()
				var got []byte
				got, err = tb.Get(ctx, hk, sk)
				if err == nil && !bytes.Equal(got, v) {
					err = fmt.Errorf("read %q back as %q", v, got)
				}
			}
			cancel()
			if err != nil {
				l.failed.Add(1)
				l.lastErr.Store(err.Error())
				select { // back off a little after a failure
				case <-l.halt:
					return
				case <-time.After(50 * time.Millisecond):
				}
				continue
			}
			l.ok.Add(1)
		}
	}()
	t.Cleanup(l.stop)
	return l
}

func (l *load) stop() {
	select {
	case <-l.halt:
	default:
		close(l.halt)
	}
	<-l.done
}

// waitProgress waits until the load has made want successful round trips.
func (l *load) waitProgress(t *testing.T, want int64, timeout time.Duration) {
	t.Helper()
	waitfor.Until(t, timeout, 50*time.Millisecond, "normal client progress", func() (bool, string) {
		ok := l.ok.Load()
		return ok >= want, fmt.Sprintf("normal client stalled: %d round trips, want %d; %d failed, last error: %v", ok, want, l.failed.Load(), l.lastErr.Load())
	})
}

// verify reads back every acknowledged write.
func (l *load) verify(t *testing.T, tb *kv.Table) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for key, want := range l.acked {
		hk, sk, _ := strings.Cut(key, "/")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := tb.Get(ctx, []byte(hk), []byte(sk))
		cancel()
		if err != nil || string(got) != want {
			t.Errorf("acknowledged write %s = %q: read %q, %v", key, want, got, err)
		}
	}
	t.Logf("normal client: %d round trips, %d failed, %d acknowledged writes verified", l.ok.Load(), l.failed.Load(), len(l.acked))
	if f := l.failed.Load(); f*20 > l.ok.Load() {
		t.Errorf("normal client: %d of %d operations failed during the attacks", f, f+l.ok.Load())
	}
}
