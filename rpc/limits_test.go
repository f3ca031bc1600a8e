package rpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/internal/waitfor"
)

// v0Header is a THFT v0 request header declaring a body of bodyLen bytes.
func v0Header(bodyLen uint32) []byte {
	h := AppendRequestV0(nil, Header{AppID: 1}, nil)
	binary.BigEndian.PutUint32(h[16:20], bodyLen)
	return h
}

// peakReserve is a reserveFunc that records the most it ever held.
type peakReserve struct {
	mu         sync.Mutex
	held, peak int64
}

func (p *peakReserve) reserve(n int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held += n
	p.peak = max(p.peak, p.held)
	return nil
}

func TestReadBodyGrowsWithWhatArrives(t *testing.T) {
	const declared = 64 << 20
	tests := []struct {
		name    string
		sent    int // body bytes that actually arrive
		maxPeak int64
	}{
		{"header only", 0, firstChunk},
		{"a few bytes", 100, firstChunk},
		{"one chunk", firstChunk, firstChunk},
		{"a megabyte", 1 << 20, 3 << 20},
		{"all of it", declared, declared + declared/2*3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append(v0Header(declared), make([]byte, tc.sent)...)
			var p peakReserve
			_, err := readRequest(bufio.NewReader(bytes.NewReader(in)), DefaultMaxFrame, p.reserve)
			if tc.sent < declared {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want a truncated frame", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if p.peak > tc.maxPeak {
				t.Errorf("peak held %d bytes for %d received, want <= %d", p.peak, tc.sent, tc.maxPeak)
			}
			if p.held != 0 {
				t.Errorf("%d bytes still charged after the read", p.held)
			}
		})
	}
}

// rawConn dials addr from the given local IP (loopback aliases such as
// 127.0.0.2 work on Linux) and closes the connection when the test ends.
func rawConn(t *testing.T, addr, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// getFrame is a complete RPC_RRDB_RRDB_GET request frame.
func getFrame(t *testing.T, key string, seq int32) []byte {
	t.Helper()
	e := newWriter(64)
	if err := e.appendRequest(context.Background(), Header{AppID: 1}, CodeGet, seq, base.BlobString(key)); err != nil {
		t.Fatal(err)
	}
	return e.bytes()
}

// roundTrip sends a get on nc and reads its reply.
func roundTrip(t *testing.T, nc net.Conn, key string) error {
	t.Helper()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write(getFrame(t, key, 1)); err != nil {
		return err
	}
	_, err := ReadResponse(bufio.NewReader(nc), 0)
	return err
}

// waitClosed waits up to d for the server to close nc and returns how long it took.
func waitClosed(t *testing.T, nc net.Conn, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = nc.SetReadDeadline(start.Add(d))
	_, err := io.Copy(io.Discard, nc)
	if isTimeout(err) {
		t.Fatalf("connection still open after %v", d)
	}
	return time.Since(start)
}

func TestConnectionCaps(t *testing.T) {
	s, addr := startServer(t, echoMux(nil), ServerOptions{MaxConnections: 5, MaxConnectionsPerIP: 3})
	var from1 []net.Conn
	for i := 0; i < 3; i++ {
		nc := rawConn(t, addr, "127.0.0.1")
		if err := roundTrip(t, nc, "k"); err != nil {
			t.Fatalf("connection %d under the caps: %v", i, err)
		}
		from1 = append(from1, nc)
	}
	// The fourth from the same address is closed at once, whatever it sends.
	extra := rawConn(t, addr, "127.0.0.1")
	if err := roundTrip(t, extra, "k"); err == nil {
		t.Fatal("a fourth connection from one address was served")
	}
	// Another address still gets in, up to the total cap.
	for i := 0; i < 2; i++ {
		if err := roundTrip(t, rawConn(t, addr, "127.0.0.2"), "k"); err != nil {
			t.Fatalf("connection from another address: %v", err)
		}
	}
	if err := roundTrip(t, rawConn(t, addr, "127.0.0.3"), "k"); err == nil {
		t.Fatal("a connection past the total cap was served")
	}
	st := s.Stats()
	if st.RefusedPerIPCap != 1 || st.RefusedTotalCap != 1 || st.Connections != 5 {
		t.Errorf("stats = %+v, want 1 refused per IP, 1 refused in total, 5 open", st)
	}
	// Closing one gives its slot back.
	from1[0].Close()
	waitfor.Until(t, 5*time.Second, 5*time.Millisecond, "the slot to be released", func() (bool, string) {
		st := s.Stats()
		return st.Connections <= 4, fmt.Sprintf("%+v", st)
	})
	if err := roundTrip(t, rawConn(t, addr, "127.0.0.1"), "k"); err != nil {
		t.Fatalf("connection after one closed: %v", err)
	}
}

func TestSilentConnectionClosedButIdleClientKept(t *testing.T) {
	const first = 300 * time.Millisecond
	s, addr := startServer(t, echoMux(nil), ServerOptions{FirstRequestTimeout: first})
	// The server's clock for the silent connection starts at its accept,
	// after this: the time from here to the close is never shorter than the
	// timeout, however slow the loaded machine makes the steps between.
	dialed := time.Now()
	silent := rawConn(t, addr, "")
	client := rawConn(t, addr, "")
	if err := roundTrip(t, client, "hello"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, silent, 5*time.Second)
	if took := time.Since(dialed); took < first {
		t.Errorf("silent connection closed %v after it was dialed, before its %v", took, first)
	}
	// The client that made a request may stay idle well past the first-request
	// timeout and still be served.
	time.Sleep(3 * first) // the idle period under test
	if err := roundTrip(t, client, "again"); err != nil {
		t.Fatalf("idle client connection was closed: %v", err)
	}
	if got := s.Stats().FirstRequestTimeout; got != 1 {
		t.Errorf("first-request timeouts = %d, want 1", got)
	}
}

func TestSlowFrameClosed(t *testing.T) {
	const frameTimeout = 400 * time.Millisecond
	s, addr := startServer(t, echoMux(nil), ServerOptions{FrameTimeout: frameTimeout})
	nc := rawConn(t, addr, "")
	if err := roundTrip(t, nc, "first"); err != nil {
		t.Fatal(err)
	}
	// Slowloris: the next frame arrives a byte at a time and never completes in time.
	frame := getFrame(t, "slow", 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond) // the slowloris's pace
		defer tick.Stop()
		for _, b := range frame {
			if _, err := nc.Write([]byte{b}); err != nil {
				return
			}
			<-tick.C
		}
	}()
	took := waitClosed(t, nc, 10*time.Second)
	<-done
	if took > frameTimeout+2*time.Second {
		t.Errorf("slow frame closed after %v, timeout %v", took, frameTimeout)
	}
	if got := s.Stats().FrameTimeouts; got != 1 {
		t.Errorf("frame timeouts = %d, want 1", got)
	}
	// Other connections are not affected.
	if err := roundTrip(t, rawConn(t, addr, ""), "other"); err != nil {
		t.Fatal(err)
	}
}

func TestPendingFrameBudget(t *testing.T) {
	const budget = 256 << 10
	s, addr := startServer(t, echoMux(nil), ServerOptions{
		MaxFrameSize: budget, PendingFrameBytes: budget, FrameTimeout: 500 * time.Millisecond,
	})
	// Each of these sends a full first chunk of a large frame and stops: they hold
	// the whole budget between them.
	var holders []net.Conn
	for i := 0; i < budget/firstChunk; i++ {
		nc := rawConn(t, addr, "")
		if err := roundTrip(t, nc, "hold"); err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(append(v0Header(budget-1), make([]byte, firstChunk)...)); err != nil {
			t.Fatal(err)
		}
		holders = append(holders, nc)
	}
	// A request arriving meanwhile (on a new connection, whose first-request
	// deadline is the default 10 s) waits for the budget: when the holders' frames
	// time out it gets its turn and is answered.
	if err := roundTrip(t, rawConn(t, addr, ""), "patient"); err != nil {
		t.Fatalf("request behind a spent budget: %v", err)
	}
	for _, nc := range holders {
		waitClosed(t, nc, 5*time.Second)
	}
	if st := s.Stats(); st.FrameTimeouts < int64(len(holders)) {
		t.Errorf("stats = %+v, want the holders closed by their frame deadline", st)
	}
}

// flakyListener fails its first n Accept calls with err.
type flakyListener struct {
	net.Listener
	mu  sync.Mutex
	n   int
	err error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.n > 0 {
		l.n--
		l.mu.Unlock()
		return nil, l.err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func TestAcceptErrorsDoNotStopTheServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: ln, n: 5, err: &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}}
	s := NewServer(echoMux(nil), ServerOptions{})
	served := make(chan error, 1)
	go func() { served <- s.Serve(fl) }()
	defer func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	c := NewClient(ln.Addr().String(), ClientOptions{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Call(ctx, Request{Code: CodeGet, Args: base.BlobString("x")}, &rrdb.ReadResponse{}); err != nil {
		t.Fatalf("call after accept errors: %v", err)
	}
}
