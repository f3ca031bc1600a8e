package memnet

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

// echoServer serves RPC_ECHO (the argument back) and RPC_WHO (the caller's
// remote address) on host addr.
func echoServer(t *testing.T, n *Network, addr string) {
	t.Helper()
	h, err := n.Host(addr)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := h.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	mux := rpc.NewMux()
	mux.HandleFunc("RPC_ECHO", func(ctx context.Context, c *rpc.Call) (rpc.Value, error) {
		var s rpc.String
		if err := c.DecodeArgs(ctx, &s); err != nil {
			return nil, err
		}
		return &s, nil
	})
	mux.HandleFunc("RPC_WHO", func(ctx context.Context, c *rpc.Call) (rpc.Value, error) {
		return &rpc.String{V: c.Remote.String()}, nil
	})
	srv := rpc.NewServer(mux, rpc.ServerOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

func client(t *testing.T, n *Network, from, to string) *rpc.Client {
	t.Helper()
	h, err := n.Host(from)
	if err != nil {
		t.Fatal(err)
	}
	c := rpc.NewClient(to, rpc.ClientOptions{Dial: h.Dial, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	return c
}

func call(c *rpc.Client, code, v string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out rpc.String
	err := c.Call(ctx, rpc.Request{Code: code, Args: &rpc.String{V: v}}, &out)
	return out.V, err
}

const (
	srvAddr = "10.0.0.1:34801"
	cliAddr = "10.0.0.2:0"
)

func TestCallCarriesAddresses(t *testing.T) {
	n := New()
	echoServer(t, n, srvAddr)
	c := client(t, n, cliAddr, srvAddr)
	got, err := call(c, "RPC_ECHO", "hello", 5*time.Second)
	if err != nil || got != "hello" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	who, err := call(c, "RPC_WHO", "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ap, err := net.ResolveTCPAddr("tcp", who)
	if err != nil || ap.IP.String() != "10.0.0.2" || ap.Port == 0 {
		t.Fatalf("server saw the caller as %q (%v), want 10.0.0.2 with an ephemeral port", who, err)
	}
	if k := n.Delivered(cliAddr, srvAddr, "RPC_ECHO"); k != 1 {
		t.Errorf("delivered RPC_ECHO = %d, want 1", k)
	}
	if k := n.Delivered(srvAddr, cliAddr, "RPC_ECHO_ACK"); k != 1 {
		t.Errorf("delivered RPC_ECHO_ACK = %d, want 1", k)
	}
}

func TestHoldReleaseReorders(t *testing.T) {
	n := New()
	echoServer(t, n, srvAddr)
	c := client(t, n, cliAddr, srvAddr)
	n.Hold(srvAddr, cliAddr, "RPC_ECHO_ACK")
	first := make(chan string, 1)
	go func() {
		v, err := call(c, "RPC_ECHO", "first", 10*time.Second)
		if err != nil {
			v = err.Error()
		}
		first <- v
	}()
	waitfor.True(t, 5*time.Second, time.Millisecond, "reply held", func() bool { return n.Held() == 1 })
	// Another code passes while the reply is held.
	if v, err := call(c, "RPC_WHO", "", 5*time.Second); err != nil || v == "" {
		t.Fatalf("RPC_WHO while RPC_ECHO_ACK is held = %q, %v", v, err)
	}
	select {
	case v := <-first:
		t.Fatalf("held reply arrived: %q", v)
	default:
	}
	if k := n.Release(srvAddr, cliAddr, "RPC_ECHO_ACK"); k != 1 {
		t.Fatalf("released %d frames, want 1", k)
	}
	if v := <-first; v != "first" {
		t.Fatalf("first = %q after release", v)
	}
}

func TestCutAndHeal(t *testing.T) {
	n := New()
	echoServer(t, n, srvAddr)
	c := client(t, n, cliAddr, srvAddr)
	if _, err := call(c, "RPC_ECHO", "x", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	n.Cut(cliAddr, srvAddr, true)
	if _, err := call(c, "RPC_ECHO", "x", 200*time.Millisecond); err == nil {
		t.Fatal("call over a cut link succeeded")
	}
	h, _ := n.Host(cliAddr)
	if _, err := h.Dial(context.Background(), srvAddr); !errors.Is(err, ErrRefused) {
		t.Fatalf("dial over a cut link: %v, want ErrRefused", err)
	}
	n.Heal(cliAddr, srvAddr)
	waitfor.True(t, 5*time.Second, 5*time.Millisecond, "calls pass after heal", func() bool {
		v, err := call(c, "RPC_ECHO", "y", time.Second)
		return err == nil && v == "y"
	})
}

func TestOneWayDrop(t *testing.T) {
	n := New()
	echoServer(t, n, srvAddr)
	c := client(t, n, cliAddr, srvAddr)
	n.Drop(srvAddr, cliAddr, "RPC_ECHO_ACK")
	if _, err := call(c, "RPC_ECHO", "x", 200*time.Millisecond); err == nil {
		t.Fatal("a call whose reply is dropped succeeded")
	}
	if k := n.Delivered(cliAddr, srvAddr, "RPC_ECHO"); k != 1 {
		t.Errorf("the request was not delivered (%d)", k)
	}
	if v, err := call(c, "RPC_WHO", "", 5*time.Second); err != nil || v == "" {
		t.Fatalf("other codes: %q, %v", v, err)
	}
}

func TestCrashRefusesAndRestarts(t *testing.T) {
	n := New()
	echoServer(t, n, srvAddr)
	c := client(t, n, cliAddr, srvAddr)
	if _, err := call(c, "RPC_ECHO", "x", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	n.Crash(srvAddr)
	if _, err := call(c, "RPC_ECHO", "x", 200*time.Millisecond); err == nil {
		t.Fatal("call to a crashed host succeeded")
	}
	echoServer(t, n, srvAddr) // the restarted process listens again
	waitfor.True(t, 5*time.Second, 5*time.Millisecond, "calls pass after restart", func() bool {
		v, err := call(c, "RPC_ECHO", "z", time.Second)
		return err == nil && v == "z"
	})
}

func TestHoldNPassesTheRest(t *testing.T) {
	n := New()
	echoServer(t, n, srvAddr)
	c := client(t, n, cliAddr, srvAddr)
	n.HoldN(cliAddr, srvAddr, "RPC_ECHO", 1)
	first := make(chan error, 1)
	go func() {
		_, err := call(c, "RPC_ECHO", "first", 10*time.Second)
		first <- err
	}()
	waitfor.True(t, 5*time.Second, time.Millisecond, "request held", func() bool { return n.Held() == 1 })
	if v, err := call(c, "RPC_ECHO", "second", 5*time.Second); err != nil || v != "second" {
		t.Fatalf("the second request after a hold of one = %q, %v", v, err)
	}
	if k := n.Release(cliAddr, srvAddr, "RPC_ECHO"); k != 1 {
		t.Fatalf("released %d, want 1", k)
	}
	if err := <-first; err != nil {
		t.Fatalf("held request after release: %v", err)
	}
}
