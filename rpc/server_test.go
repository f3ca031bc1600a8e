package rpc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/idl/gen/cmd"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/internal/waitfor"
)

// startServer serves mux on a loopback port and stops it when the test ends.
func startServer(t testing.TB, mux *Mux, opts ServerOptions) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(mux, opts)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		s.Close()
		<-served
	})
	return s, ln.Addr().String()
}

// echoMux answers RPC_RRDB_RRDB_GET with the key as value after an optional delay
// taken from the key's first byte (milliseconds).
func echoMux(delay func() time.Duration) *Mux {
	mux := NewMux()
	Handle(mux, CodeGet, func(ctx context.Context, call *Call, key *base.Blob) (*rrdb.ReadResponse, error) {
		if delay != nil {
			if d := delay(); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
		}
		return &rrdb.ReadResponse{Value: base.NewBlob(key.Data), AppID: call.Header.AppID, PartitionIndex: call.Header.PartitionIndex, Server: "test"}, nil
	})
	return mux
}

// settleGoroutines waits until the goroutine count drops to at most want.
func settleGoroutines(t *testing.T, want int) {
	t.Helper()
	if err := waitfor.Within(5*time.Second, 20*time.Millisecond, func() (bool, string) {
		n := runtime.NumGoroutine()
		return n <= want, fmt.Sprintf("%d goroutines", n)
	}); err != nil {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("goroutine leak: %v, want <= %d\n%s", err, want, buf)
	}
}

func TestPipelinedRoundTrip(t *testing.T) {
	base0 := runtime.NumGoroutine()
	func() {
		var rngMu sync.Mutex
		rng := rand.New(rand.NewPCG(1, 2))
		delay := func() time.Duration {
			rngMu.Lock()
			defer rngMu.Unlock()
			return time.Duration(rng.IntN(2000)) * time.Microsecond
		}
		s, addr := startServer(t, echoMux(delay), ServerOptions{})
		c := NewClient(addr, ClientOptions{})
		defer c.Close()

		const callers, calls = 64, 1000
		var wg sync.WaitGroup
		errs := make(chan error, callers)
		for g := 0; g < callers; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < calls; i++ {
					key := fmt.Sprintf("caller-%d-call-%d", g, i)
					var resp rrdb.ReadResponse
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err := c.Call(ctx, Request{Code: CodeGet, AppID: int32(g + 1), PartitionIndex: int32(i % 8), Args: base.BlobString(key)}, &resp)
					cancel()
					if err != nil {
						errs <- fmt.Errorf("caller %d call %d: %w", g, i, err)
						return
					}
					if string(resp.Value.Bytes()) != key || resp.AppID != int32(g+1) || resp.PartitionIndex != int32(i%8) {
						errs <- fmt.Errorf("caller %d call %d: reply for another call: value %q app %d pidx %d", g, i, resp.Value.Bytes(), resp.AppID, resp.PartitionIndex)
						return
					}
				}
			}(g)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}()
	// The server's Serve goroutine ends with the test cleanup; allow for it.
	settleGoroutines(t, base0+2)
}

func TestMalformedFrameClosesOnlyThatConnection(t *testing.T) {
	_, addr := startServer(t, echoMux(nil), ServerOptions{MaxFrameSize: 1 << 20})
	good := NewClient(addr, ClientOptions{})
	defer good.Close()
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var resp rrdb.ReadResponse
		return good.Call(ctx, Request{Code: CodeGet, AppID: 1, Args: base.BlobString("k")}, &resp)
	}
	if err := call(); err != nil {
		t.Fatalf("call before: %v", err)
	}
	cases := map[string][]byte{
		"bad magic":          []byte("XXXXsome garbage that is not a frame at all"),
		"bad header version": append([]byte("THFT\x00\x00\x00\x07"), make([]byte, 40)...),
		"bad header length": func() []byte {
			b := AppendRequestV0(nil, Header{}, []byte{})
			binary.BigEndian.PutUint32(b[8:12], 47)
			return b
		}(),
		"frame too large": func() []byte {
			b := AppendRequestV0(nil, Header{}, []byte{})
			binary.BigEndian.PutUint32(b[16:20], 2<<20)
			return b
		}(),
		"garbage message": AppendRequestV0(nil, Header{}, []byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}),
		"rdsn framing":    append([]byte("RDSN"), make([]byte, 188)...),
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write(frame); err != nil {
				t.Fatal(err)
			}
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := nc.Read(make([]byte, 64))
			if n != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("server did not close the connection: n=%d err=%v", n, err)
			}
			if err := call(); err != nil {
				t.Fatalf("other connection broken by %s: %v", name, err)
			}
		})
	}
}

func TestUnknownRPCAnsweredHandlerNotFound(t *testing.T) {
	_, addr := startServer(t, echoMux(nil), ServerOptions{})
	c := NewClient(addr, ClientOptions{})
	defer c.Close()
	var out String
	err := c.Call(context.Background(), Request{Code: "RPC_NO_SUCH_THING", Args: &cmd.Command{Cmd: "x"}}, &out)
	var fe *Error
	if !errors.As(err, &fe) || fe.Code != base.ErrHandlerNotFound {
		t.Fatalf("got %v, want frame error %s", err, base.ErrHandlerNotFound)
	}
	// The connection stays usable.
	var resp rrdb.ReadResponse
	if err := c.Call(context.Background(), Request{Code: CodeGet, Args: base.BlobString("x")}, &resp); err != nil {
		t.Fatal(err)
	}
}

func TestOneWayNeverAnswered(t *testing.T) {
	mux := echoMux(nil)
	cleared := make(chan int64, 1)
	HandleOneWay(mux, CodeClearScanner, func(ctx context.Context, call *Call, id *I64) { cleared <- id.V })
	_, addr := startServer(t, mux, ServerOptions{})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	clear, _ := EncodeCall(CodeClearScanner, 7, &I64{V: 42})
	get, _ := EncodeCall(CodeGet, 8, base.BlobString("k"))
	frames := AppendRequestV0(nil, Header{AppID: 1}, clear)
	frames = AppendRequestV0(frames, Header{AppID: 1}, get)
	if _, err := nc.Write(frames); err != nil {
		t.Fatal(err)
	}
	if id := <-cleared; id != 42 {
		t.Fatalf("clear_scanner got context %d", id)
	}
	br := bufio.NewReader(nc)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	frame, err := ReadResponse(br, 0)
	if err != nil {
		t.Fatal(err)
	}
	head, _, err := ParseResponse(frame)
	if err != nil {
		t.Fatal(err)
	}
	if head.SeqID != 8 || head.Name != CodeGet+"_ACK" {
		t.Fatalf("first reply is %s seq %d, want the get (seq 8): clear_scanner was answered", head.Name, head.SeqID)
	}
	_ = nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := ReadResponse(br, 0); !isTimeout(err) {
		t.Fatalf("unexpected second reply: %v", err)
	}
}

func TestHeaderV1(t *testing.T) {
	mux := echoMux(nil)
	var got Header
	var mu sync.Mutex
	Handle(mux, CodeTTL, func(ctx context.Context, call *Call, key *base.Blob) (*rrdb.TTLResponse, error) {
		mu.Lock()
		got = call.Header
		mu.Unlock()
		return &rrdb.TTLResponse{Error: 1, TTLSeconds: -1}, nil
	})
	_, addr := startServer(t, mux, ServerOptions{})
	body, _ := EncodeCall(CodeTTL, 3, base.BlobString("\x00\x02hksk"))
	h := Header{AppID: 5, PartitionIndex: 6, ClientTimeoutMS: 1000, PartitionHash: PartitionHash([]byte("hk")), IsBackupRequest: true}
	frame, err := AppendRequestV1(nil, h, body)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := ReadResponse(bufio.NewReader(nc), 0)
	if err != nil {
		t.Fatal(err)
	}
	head, p, err := ParseResponse(resp)
	if err != nil || head.ErrorName != base.ErrOK || head.SeqID != 3 {
		t.Fatalf("reply %+v err %v", head, err)
	}
	var ttl rrdb.TTLResponse
	if err := DecodeResult(context.Background(), p, &ttl); err != nil || ttl.Error != 1 || ttl.TTLSeconds != -1 {
		t.Fatalf("ttl reply %+v err %v", ttl, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.Version != 1 || got.AppID != 5 || got.PartitionIndex != 6 || got.PartitionHash != h.PartitionHash || !got.IsBackupRequest {
		t.Fatalf("decoded header %+v", got)
	}
}

func TestHandlerErrorsAndPanics(t *testing.T) {
	mux := NewMux()
	mux.HandleFunc("RPC_FRAME_ERR", func(ctx context.Context, call *Call) (Value, error) {
		return nil, NewError(base.ErrInvalidState)
	})
	mux.HandleFunc("RPC_UNSAFE_ERR", func(ctx context.Context, call *Call) (Value, error) {
		return nil, NewError(base.ErrRDBCorruption) // not parseable by go clients at frame level
	})
	mux.HandleFunc("RPC_PANIC", func(ctx context.Context, call *Call) (Value, error) {
		panic("boom")
	})
	Handle(mux, CodeRemoteCommand, func(ctx context.Context, call *Call, c *cmd.Command) (*String, error) {
		return &String{V: c.Cmd + ":" + strings.Join(c.Arguments, ",")}, nil
	})
	_, addr := startServer(t, mux, ServerOptions{})
	c := NewClient(addr, ClientOptions{})
	defer c.Close()
	ctx := context.Background()
	for code, want := range map[string]string{
		"RPC_FRAME_ERR":  base.ErrInvalidState,
		"RPC_UNSAFE_ERR": base.ErrUnknown,
		"RPC_PANIC":      base.ErrUnknown,
	} {
		err := c.Call(ctx, Request{Code: code, Args: &cmd.Command{}}, &String{})
		if got := ErrorCode(err); got != want {
			t.Errorf("%s: got %v, want %s", code, err, want)
		}
	}
	// A request whose args do not decode as the handler's type.
	err := c.Call(ctx, Request{Code: CodeRemoteCommand, Args: &I64{V: 1}}, &String{})
	if got := ErrorCode(err); got != base.ErrInvalidData {
		t.Errorf("bad args: got %v, want %s", err, base.ErrInvalidData)
	}
	var out String
	if err := c.Call(ctx, Request{Code: CodeRemoteCommand, Args: &cmd.Command{Cmd: "help", Arguments: []string{"a", "b"}}}, &out); err != nil || out.V != "help:a,b" {
		t.Fatalf("remote command: %q %v", out.V, err)
	}
}

func TestHTTPOnSamePort(t *testing.T) {
	h := http.NewServeMux()
	h.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"Version":"test"}`)
	})
	_, addr := startServer(t, echoMux(nil), ServerOptions{HTTP: h})
	resp, err := http.Get("http://" + addr + "/version")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"Version":"test"}` {
		t.Fatalf("HTTP reply %d %q", resp.StatusCode, body)
	}
	// THFT still works on the same port.
	c := NewClient(addr, ClientOptions{})
	defer c.Close()
	if err := c.Call(context.Background(), Request{Code: CodeGet, Args: base.BlobString("x")}, &rrdb.ReadResponse{}); err != nil {
		t.Fatal(err)
	}
}

func TestGracefulShutdownDeliversInflightReplies(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 16)
	mux := NewMux()
	Handle(mux, CodeGet, func(ctx context.Context, call *Call, key *base.Blob) (*rrdb.ReadResponse, error) {
		started <- struct{}{}
		<-release
		return &rrdb.ReadResponse{Value: key}, nil
	})
	s, addr := startServer(t, mux, ServerOptions{})
	c := NewClient(addr, ClientOptions{})
	defer c.Close()
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			var r rrdb.ReadResponse
			err := c.Call(context.Background(), Request{Code: CodeGet, Args: base.BlobString(fmt.Sprint(i))}, &r)
			if err == nil && string(r.Value.Bytes()) != fmt.Sprint(i) {
				err = fmt.Errorf("wrong reply %q", r.Value.Bytes())
			}
			errs <- err
		}(i)
	}
	for i := 0; i < n; i++ {
		<-started
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	// The replies are released only once the shutdown has begun: the server
	// refuses new connections and has told every reader to stop.
	waitfor.True(t, 5*time.Second, time.Millisecond, "the shutdown to begin", func() bool {
		s.mu.Lock()
		closing, conns := s.closing, make([]*serverConn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			if !c.isStopping() {
				return false
			}
		}
		return closing
	})
	close(release)
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Errorf("in-flight call: %v", err)
		}
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// New connections are refused.
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("server still accepts after shutdown")
	}
}

func TestClientReconnectsAfterServerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	s1 := NewServer(echoMux(nil), ServerOptions{})
	go s1.Serve(ln)
	c := NewClient(addr, ClientOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	defer c.Close()
	ctx := context.Background()
	if err := c.Call(ctx, Request{Code: CodeGet, Args: base.BlobString("a")}, &rrdb.ReadResponse{}); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	err = c.Call(ctx, Request{Code: CodeGet, Args: base.BlobString("b")}, &rrdb.ReadResponse{})
	if !IsTransportError(err) {
		t.Fatalf("call to a stopped server: %v, want a transport error", err)
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s2 := NewServer(echoMux(nil), ServerOptions{})
	go s2.Serve(ln2)
	defer s2.Close()
	waitfor.Until(t, 5*time.Second, 10*time.Millisecond, "the client to reconnect", func() (bool, string) {
		err := c.Call(ctx, Request{Code: CodeGet, Args: base.BlobString("c")}, &rrdb.ReadResponse{})
		return err == nil, fmt.Sprint(err)
	})
}

func TestCallDeadline(t *testing.T) {
	_, addr := startServer(t, echoMux(func() time.Duration { return time.Second }), ServerOptions{})
	c := NewClient(addr, ClientOptions{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := c.Call(ctx, Request{Code: CodeGet, Args: base.BlobString("slow")}, &rrdb.ReadResponse{})
	if !errors.Is(err, context.DeadlineExceeded) || ErrorCode(err) != base.ErrTimeout {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
}

// metaStub answers query_cfg like a meta server: the leader serves, others forward.
func metaStub(self string, leader func() string) *Mux {
	mux := NewMux()
	Handle(mux, CodeQueryConfig, func(ctx context.Context, call *Call, req *layer2.QueryCfgRequest) (*layer2.QueryCfgResponse, error) {
		l := leader()
		if l != self {
			resp := &layer2.QueryCfgResponse{Err: base.NewErrorCode(base.ErrForwardToOthers)}
			if l != "" {
				resp.Partitions = []*layer2.PartitionConfiguration{{Primary: base.MustParseRPCAddress(l)}}
			}
			return resp, nil
		}
		return &layer2.QueryCfgResponse{Err: base.NewErrorCode(base.ErrOK), AppID: 1, PartitionCount: 2, IsStateful: true}, nil
	})
	return mux
}

func TestMetaClientFollowsLeader(t *testing.T) {
	var mu sync.Mutex
	var leader string
	getLeader := func() string { mu.Lock(); defer mu.Unlock(); return leader }
	addrs := make([]string, 3)
	lns := make([]net.Listener, 3)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], addrs[i] = ln, ln.Addr().String()
	}
	for i, ln := range lns {
		s := NewServer(metaStub(addrs[i], getLeader), ServerOptions{})
		go s.Serve(ln)
		t.Cleanup(func() { s.Close() })
	}
	mc, err := NewMetaClient(addrs, MetaClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	for round, l := range []string{addrs[2], addrs[1], addrs[0], addrs[2]} {
		mu.Lock()
		leader = l
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := CallMeta[layer2.QueryCfgResponse](ctx, mc, CodeQueryConfig, &layer2.QueryCfgRequest{AppName: "temp"})
		cancel()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if !resp.Err.OK() || resp.AppID != 1 {
			t.Fatalf("round %d: reply %+v", round, resp)
		}
		if mc.Leader() != l {
			t.Fatalf("round %d: client leader %s, want %s", round, mc.Leader(), l)
		}
	}
	// Nobody is leader: the call ends with the context and says why.
	mu.Lock()
	leader = ""
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := CallMeta[layer2.QueryCfgResponse](ctx, mc, CodeQueryConfig, &layer2.QueryCfgRequest{AppName: "temp"}); err == nil || !strings.Contains(err.Error(), "not the leader") {
		t.Fatalf("without leader: %v", err)
	}
}

// TestMetaClientColdBackupDisabled checks that ERR_SERVICE_NOT_ACTIVE ends a
// backup or restore call at once (the meta servers have cold backup
// disabled), while other calls still wait for a meta server to become active.
func TestMetaClientColdBackupDisabled(t *testing.T) {
	mux := NewMux()
	notActive := base.NewErrorCode(base.ErrServiceNotActive)
	Handle(mux, CodeQueryBackupStatus, func(ctx context.Context, call *Call, req *backup.QueryBackupStatusRequest) (*backup.QueryBackupStatusResponse, error) {
		return &backup.QueryBackupStatusResponse{Err: notActive, HintMessage: "disabled"}, nil
	})
	Handle(mux, CodeQueryConfig, func(ctx context.Context, call *Call, req *layer2.QueryCfgRequest) (*layer2.QueryCfgResponse, error) {
		return &layer2.QueryCfgResponse{Err: notActive}, nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(mux, ServerOptions{})
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	mc, err := NewMetaClient([]string{ln.Addr().String()}, MetaClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := CallMeta[backup.QueryBackupStatusResponse](ctx, mc, CodeQueryBackupStatus, &backup.QueryBackupStatusRequest{AppID: 1})
	if err != nil {
		t.Fatalf("backup status call: %v, want the meta's answer", err)
	}
	if resp.Err.Name() != base.ErrServiceNotActive || resp.HintMessage != "disabled" {
		t.Fatalf("backup status answer %s %q", resp.Err.Name(), resp.HintMessage)
	}

	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if _, err := CallMeta[layer2.QueryCfgResponse](short, mc, CodeQueryConfig, &layer2.QueryCfgRequest{AppName: "temp"}); err == nil || !strings.Contains(err.Error(), base.ErrServiceNotActive) {
		t.Fatalf("config query to an inactive meta: %v, want a timeout naming %s", err, base.ErrServiceNotActive)
	}
}

func TestMetaClientSkipsDeadServer(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	live := ln.Addr().String()
	s := NewServer(metaStub(live, func() string { return live }), ServerOptions{})
	go s.Serve(ln)
	defer s.Close()
	mc, err := NewMetaClient([]string{deadAddr, live}, MetaClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := CallMeta[layer2.QueryCfgResponse](ctx, mc, CodeQueryConfig, &layer2.QueryCfgRequest{AppName: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetaClient([]string{"meta.example.com:34601"}, MetaClientOptions{}); err == nil {
		t.Fatal("host name accepted in a meta server list")
	}
}

func TestRawArgsRoundTrip(t *testing.T) {
	mux := NewMux()
	got := make(chan []byte, 1)
	Handle(mux, CodePut, func(ctx context.Context, call *Call, req *rrdb.UpdateRequest) (*rrdb.UpdateResponse, error) {
		got <- append([]byte(nil), call.RawArgs()...)
		return &rrdb.UpdateResponse{}, nil
	})
	_, addr := startServer(t, mux, ServerOptions{})
	c := NewClient(addr, ClientOptions{})
	defer c.Close()
	req := &rrdb.UpdateRequest{Key: base.BlobString("\x00\x02hksk"), Value: base.BlobString("v"), ExpireTsSeconds: 7}
	if err := c.Call(context.Background(), Request{Code: CodePut, Args: req}, &rrdb.UpdateResponse{}); err != nil {
		t.Fatal(err)
	}
	raw := <-got
	want, err := EncodeArgs(req)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != string(want) {
		t.Fatalf("raw args %x, want %x", raw, want)
	}
	var back rrdb.UpdateRequest
	if err := DecodeArgsBytes(raw, &back); err != nil || !back.Equals(req) {
		t.Fatalf("decode raw args: %v %+v", err, back)
	}
}
