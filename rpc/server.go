package rpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/security"
	"github.com/pegasusgo/pegasus/internal/ratelog"
)

// ServerOptions configure a Server. Zero values pick the defaults.
type ServerOptions struct {
	// MaxFrameSize bounds the body of a request frame (default 64 MiB). A larger
	// frame closes its connection.
	MaxFrameSize int
	// MaxInflightPerConn bounds the requests of one connection being handled at
	// once (default 4096); past it the server stops reading that connection.
	MaxInflightPerConn int
	// MaxConnections caps the connections open at once, THFT and HTTP together
	// (default DefaultMaxConnections; negative: no cap). Past it new connections
	// are closed as soon as they are accepted.
	MaxConnections int
	// MaxConnectionsPerIP caps the connections from one remote IP address
	// (default DefaultMaxConnectionsPerIP; negative: no cap).
	MaxConnectionsPerIP int
	// PendingFrameBytes is the server-wide budget of memory held by request frames
	// still arriving (default DefaultPendingFrameBytes, at least MaxFrameSize).
	// When it is spent, readers wait for it (no longer reading their sockets, so
	// TCP pushes back on the senders) until their frame deadline.
	PendingFrameBytes int64
	// FrameTimeout is how long a request frame may take to arrive once its first
	// byte has (default DefaultFrameTimeout). A slower one closes its connection.
	FrameTimeout time.Duration
	// FirstRequestTimeout is how long a new connection may take to deliver its
	// first complete request (default DefaultFirstRequestTimeout). Connections
	// that have made a request may then stay idle as long as they like: the
	// official clients keep theirs for hours.
	FirstRequestTimeout time.Duration
	// HTTP serves connections that start with an HTTP/1.1 request line. Nil answers
	// 404 to everything.
	HTTP http.Handler
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// Access decides who may call what. Nil serves everything to everyone (tests,
	// and the shell's fakes); servers always set it.
	Access *Access
}

// Defaults of the protective limits; docs/operations.md ("Limits and protections")
// explains each.
const (
	DefaultMaxConnections      = 10000
	DefaultMaxConnectionsPerIP = 1000
	DefaultPendingFrameBytes   = 256 << 20
	DefaultFrameTimeout        = 30 * time.Second
	DefaultFirstRequestTimeout = 10 * time.Second
	// httpIdleTimeout closes HTTP keep-alive connections nobody uses.
	httpIdleTimeout = 2 * time.Minute
	// logEvery bounds how often one kind of refusal is logged.
	logEvery = 10 * time.Second
)

// ErrOverloaded marks a request frame that could not be read because the server's
// budget for frames in progress stayed spent until the frame's deadline.
var ErrOverloaded = errors.New("server overloaded")

// Server serves the THFT framing and HTTP/1.1 on the same listener, choosing per
// connection by its first four bytes as the reference server does.
type Server struct {
	mux      *Mux
	opts     ServerOptions
	log      *slog.Logger
	httpSrv  *http.Server
	httpConn *connQueue
	encoders sync.Pool
	workers  *workerPool
	pending  *semaphore.Weighted
	stats    serverCounters

	// Refusals happen at the rate peers make them: each kind is logged at most once
	// per logEvery.
	acceptLog, capLog, frameLog, authLog *ratelog.Limiter

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	perIP     map[netip.Addr]int
	open      int // connections holding a slot, HTTP ones included
	closing   bool
	closed    chan struct{}
	httpOnce  sync.Once
	connWG    sync.WaitGroup
}

// serverCounters count what the limits did, for Stats.
type serverCounters struct {
	refusedTotal, refusedPerIP     atomic.Int64
	frameTimeouts, firstTimeouts   atomic.Int64
	overloaded, badFrames, accepts atomic.Int64
	authFailed, denied             atomic.Int64
}

// ServerStats is a snapshot of the server's connection accounting.
type ServerStats struct {
	Connections         int   // open now, THFT and HTTP
	Accepted            int64 // since start
	RefusedTotalCap     int64 // closed at accept: MaxConnections reached
	RefusedPerIPCap     int64 // closed at accept: MaxConnectionsPerIP reached
	FrameTimeouts       int64 // closed: a request frame did not complete in FrameTimeout
	FirstRequestTimeout int64 // closed: no complete first request in FirstRequestTimeout
	Overloaded          int64 // closed: the pending-frame budget stayed spent
	BadFrames           int64 // closed: malformed or oversized frame
	AuthFailed          int64 // failed cluster authentication handshakes
	Denied              int64 // calls refused: cluster RPC unauthenticated, or admin RPC from a non-administrator
}

// Stats returns the connection accounting.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	open := s.open
	s.mu.Unlock()
	return ServerStats{
		Connections:         open,
		Accepted:            s.stats.accepts.Load(),
		RefusedTotalCap:     s.stats.refusedTotal.Load(),
		RefusedPerIPCap:     s.stats.refusedPerIP.Load(),
		FrameTimeouts:       s.stats.frameTimeouts.Load(),
		FirstRequestTimeout: s.stats.firstTimeouts.Load(),
		Overloaded:          s.stats.overloaded.Load(),
		BadFrames:           s.stats.badFrames.Load(),
		AuthFailed:          s.stats.authFailed.Load(),
		Denied:              s.stats.denied.Load(),
	}
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("rpc: server closed")

// NewServer returns a server routing THFT calls through mux.
func NewServer(mux *Mux, opts ServerOptions) *Server {
	if opts.MaxFrameSize <= 0 {
		opts.MaxFrameSize = DefaultMaxFrame
	}
	if opts.MaxInflightPerConn <= 0 {
		opts.MaxInflightPerConn = 4096
	}
	if opts.MaxConnections == 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.MaxConnectionsPerIP == 0 {
		opts.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if opts.PendingFrameBytes <= 0 {
		opts.PendingFrameBytes = DefaultPendingFrameBytes
	}
	// One frame of the largest size must always be able to arrive.
	opts.PendingFrameBytes = max(opts.PendingFrameBytes, int64(opts.MaxFrameSize))
	if opts.FrameTimeout <= 0 {
		opts.FrameTimeout = DefaultFrameTimeout
	}
	if opts.FirstRequestTimeout <= 0 {
		opts.FirstRequestTimeout = DefaultFirstRequestTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := opts.HTTP
	if h == nil {
		h = http.NotFoundHandler()
	}
	s := &Server{
		mux:       mux,
		opts:      opts,
		log:       log,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*serverConn]struct{}),
		perIP:     make(map[netip.Addr]int),
		closed:    make(chan struct{}),
		httpConn:  newConnQueue(),
		workers:   newWorkerPool(),
		pending:   semaphore.NewWeighted(opts.PendingFrameBytes),
		acceptLog: ratelog.New(logEvery),
		capLog:    ratelog.New(logEvery),
		frameLog:  ratelog.New(logEvery),
		authLog:   ratelog.New(logEvery),
	}
	s.httpSrv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       httpIdleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.encoders.New = func() any { return newWriter(256) }
	return s
}

// Serve accepts connections on ln until Shutdown or Close. It always returns a
// non-nil error; ErrServerClosed after a shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	s.httpOnce.Do(func() {
		go func() { _ = s.httpSrv.Serve(s.httpConn) }()
	})
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
			}
			// Out of file descriptors, or a connection reset before it was accepted:
			// the listener still works, so back off and go on. Ending here would let
			// any peer that can exhaust descriptors stop the role.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.acceptLog.Warn(s.log, "accept failed, retrying", "addr", ln.Addr(), "err", err, "delay", delay)
			select {
			case <-time.After(delay):
			case <-s.closed:
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		s.stats.accepts.Add(1)
		c := &serverConn{s: s, nc: nc, ip: remoteIP(nc)}
		c.readCtx, c.stopReader = context.WithCancel(context.Background())
		if ok, why := s.track(c); !ok {
			nc.Close()
			if why == "" {
				return ErrServerClosed
			}
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		go c.serve()
	}
}

// remoteIP is the peer's address, IPv4-mapped addresses unmapped so that one
// client is counted once whichever way it connected.
func remoteIP(nc net.Conn) netip.Addr {
	if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		if ap := ta.AddrPort(); ap.IsValid() {
			return ap.Addr().Unmap()
		}
	}
	return netip.Addr{}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// track admits a new connection against the caps and takes its slot. It reports
// false with an empty reason when the server is closing.
func (s *Server) track(c *serverConn) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false, ""
	}
	if max := s.opts.MaxConnections; max > 0 && s.open >= max {
		s.stats.refusedTotal.Add(1)
		s.capLog.Warn(s.log, "connection refused: too many connections", "remote", c.nc.RemoteAddr(), "open", s.open, "max_connections", max)
		return false, "total"
	}
	if max := s.opts.MaxConnectionsPerIP; max > 0 && s.perIP[c.ip] >= max {
		s.stats.refusedPerIP.Add(1)
		s.capLog.Warn(s.log, "connection refused: too many connections from one address", "remote", c.nc.RemoteAddr(), "open_from_ip", s.perIP[c.ip], "conn_threshold_per_ip", max)
		return false, "per-ip"
	}
	s.open++
	s.perIP[c.ip]++
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	return true, ""
}

// releaseSlot gives back the connection's place under the caps. An HTTP
// connection keeps its slot after untrack, until the HTTP server closes it.
func (s *Server) releaseSlot(ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	if n := s.perIP[ip] - 1; n > 0 {
		s.perIP[ip] = n
	} else {
		delete(s.perIP, ip)
	}
}

func (s *Server) untrack(c *serverConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

// Shutdown stops accepting, stops reading new requests, lets the requests being
// handled finish and their replies reach the wire, then closes every connection.
// When ctx ends first, the remaining connections are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	conns := s.beginClose()
	for _, c := range conns {
		c.stopReading()
	}
	httpErr := s.httpSrv.Shutdown(ctx)
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	select {
	case <-done:
		s.workers.close()
		return httpErr
	case <-ctx.Done():
		for _, c := range conns {
			c.abort()
		}
		<-done
		s.workers.close()
		return ctx.Err()
	}
}

// Close closes the listeners and every connection immediately.
func (s *Server) Close() error {
	conns := s.beginClose()
	for _, c := range conns {
		c.abort()
	}
	err := s.httpSrv.Close()
	s.connWG.Wait()
	// Every connection has ended, and with it every request: no more work comes.
	s.workers.close()
	return err
}

func (s *Server) beginClose() []*serverConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		close(s.closed)
	}
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.httpConn.Close()
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

func (s *Server) getEncoder() *encoder {
	e := s.encoders.Get().(*encoder)
	e.reset()
	return e
}

func (s *Server) putEncoder(e *encoder) {
	// Do not keep the buffer of a huge reply alive in the pool.
	if e.buf.Cap() <= 1<<20 {
		s.encoders.Put(e)
	}
}

// serverConn is one accepted connection.
type serverConn struct {
	s        *Server
	nc       net.Conn
	ip       netip.Addr
	slotOnce sync.Once

	// deadline is the read deadline of the frame being read; only the reader
	// goroutine touches it.
	deadline time.Time
	// readCtx ends when the reader must stop (shutdown, abort): a reader waiting
	// for the pending-frame budget gives up then.
	readCtx    context.Context
	stopReader context.CancelFunc

	// w writes the replies of a THFT connection; slots holds one token per
	// request of it being handled.
	w     *replyWriter
	slots chan struct{}

	mu       sync.Mutex
	stopping bool // shutdown asked the reader to stop
}

func (c *serverConn) releaseSlot() { c.slotOnce.Do(func() { c.s.releaseSlot(c.ip) }) }

func (c *serverConn) stopReading() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	c.stopReader()
	// Unblock the reader without closing: in-flight replies must still go out.
	_ = c.nc.SetReadDeadline(time.Now())
}

// setReadDeadline sets the read deadline (zero: none) unless shutdown has asked
// the reader to stop, whose immediate deadline must not be overwritten. It
// reports false in that case.
func (c *serverConn) setReadDeadline(t time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return false
	}
	if t.Equal(c.deadline) {
		// No deadline again, as between most requests: the timer is left alone.
		return true
	}
	c.deadline = t
	_ = c.nc.SetReadDeadline(t)
	return true
}

func (c *serverConn) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

func (c *serverConn) abort() {
	c.stopReader()
	c.nc.Close()
}

// reserve charges the pending-frame budget for the frame being read, waiting for
// it no longer than the frame's deadline.
func (c *serverConn) reserve(n int64) error {
	p := c.s.pending
	if n <= 0 {
		p.Release(-n)
		return nil
	}
	if p.TryAcquire(n) {
		return nil
	}
	ctx, cancel := context.WithDeadline(c.readCtx, c.deadline)
	defer cancel()
	if err := p.Acquire(ctx, n); err != nil {
		return fmt.Errorf("%w: no room for %d more bytes of request frames (pending_frame_bytes %d) before the frame deadline", ErrOverloaded, n, c.s.opts.PendingFrameBytes)
	}
	return nil
}

func (c *serverConn) serve() {
	defer c.s.untrack(c)
	defer c.stopReader()
	// Whoever connects must say something, and soon: an idle socket that never
	// sends a request costs a descriptor and memory for nothing.
	if !c.setReadDeadline(time.Now().Add(c.s.opts.FirstRequestTimeout)) {
		c.nc.Close()
		c.releaseSlot()
		return
	}
	br := bufio.NewReaderSize(c.nc, 16<<10)
	magic, err := br.Peek(4)
	if err != nil {
		if isTimeout(err) && !c.isStopping() {
			c.s.stats.firstTimeouts.Add(1)
			c.s.frameLog.Warn(c.s.log, "closing connection: nothing received", "remote", c.nc.RemoteAddr(), "timeout", c.s.opts.FirstRequestTimeout)
		}
		c.nc.Close()
		c.releaseSlot()
		return
	}
	switch {
	case string(magic) == magicTHFT:
		c.serveTHFT(br)
		c.releaseSlot()
	case isHTTPMethod(magic):
		// The HTTP server owns the connection from here (it sets its own deadlines);
		// untrack it so Shutdown leaves it to http.Server.Shutdown, but keep its
		// slot under the caps until it is closed.
		_ = c.nc.SetReadDeadline(time.Time{})
		if !c.s.httpConn.push(&peekedConn{Conn: c.nc, r: br, onClose: c.releaseSlot}) {
			c.nc.Close()
			c.releaseSlot()
		}
	case string(magic) == "RDSN":
		c.s.frameLog.Warn(c.s.log, "closing connection: RDSN framing is not supported, use a THFT client", "remote", c.nc.RemoteAddr())
		c.nc.Close()
		c.releaseSlot()
	default:
		c.s.frameLog.Warn(c.s.log, "closing connection: unknown protocol", "remote", c.nc.RemoteAddr(), "first_bytes", fmt.Sprintf("%q", magic))
		c.nc.Close()
		c.releaseSlot()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isHTTPMethod(b []byte) bool {
	switch string(b) {
	case "GET ", "POST", "PUT ", "HEAD", "DELE", "OPTI", "PATC":
		return true
	}
	return false
}

func (c *serverConn) serveTHFT(br *bufio.Reader) {
	s := c.s
	ctx, cancel := context.WithCancel(context.Background())
	c.w = newReplyWriter(c.nc, s.opts.MaxInflightPerConn, func(err error) {
		// A peer that stops reading must not pin the connection's goroutines: drop
		// the connection, which also ends the reader, and discard what is queued.
		s.log.Debug("connection write failed", "remote", c.nc.RemoteAddr(), "err", err)
		c.nc.Close()
	})
	slots := make(chan struct{}, s.opts.MaxInflightPerConn)
	c.slots = slots
	var handlers sync.WaitGroup
	graceful := c.readLoop(ctx, br, slots, &handlers)
	if !graceful {
		// The peer went away or sent garbage: nobody will read the replies.
		cancel()
	}
	// Each handler has written its reply (or queued it for the one writing)
	// before it ended: once they all have, every reply is on the wire.
	handlers.Wait()
	cancel()
	c.nc.Close()
}

// readLoop reads and dispatches requests until the stream ends. It reports whether
// it stopped because of a graceful shutdown.
func (c *serverConn) readLoop(ctx context.Context, br *bufio.Reader, slots chan struct{}, handlers *sync.WaitGroup) bool {
	s := c.s
	remote := c.nc.RemoteAddr()
	reserve := c.reserve
	first := true // the accept-time deadline covers the first request
	// Without Access, everyone may administer (Peer.Admin).
	auth := connAuth{peer: Peer{Addr: c.ip, Admin: true}}
	if a := s.opts.Access; a != nil {
		auth.peer.Admin = a.isAdminAddr(c.ip)
	}
	for {
		if !first {
			if br.Buffered() == 0 {
				// Between requests a connection may idle as long as it likes.
				if !c.setReadDeadline(time.Time{}) {
					return true
				}
				if _, err := br.Peek(1); err != nil {
					return c.readFailed(err, false)
				}
			}
			// A frame has started: all of it must arrive within FrameTimeout. One
			// already buffered whole needs no deadline: nothing more is read for it.
			deadline := time.Time{}
			if !frameBuffered(br) {
				deadline = time.Now().Add(s.opts.FrameTimeout)
			}
			if !c.setReadDeadline(deadline) {
				return true
			}
		}
		f, err := readRequest(br, s.opts.MaxFrameSize, reserve)
		if err != nil {
			return c.readFailed(err, first)
		}
		msg, args, err := ParseCall(f.Body)
		if err != nil {
			// Without a sequence id there is no way to answer: the stream is unusable.
			s.stats.badFrames.Add(1)
			s.frameLog.Warn(s.log, "closing connection: bad request message", "remote", remote, "err", err)
			c.nc.Close()
			return false
		}
		first = false
		if a := s.opts.Access; a != nil && msg.Name == CodeNegotiation {
			c.negotiate(ctx, a, &auth, msg, args)
			continue
		}
		h, ok := s.mux.lookup(msg.Name)
		if !ok {
			s.log.Debug("no handler", "rpc", msg.Name, "remote", remote)
			c.reply(ctx, base.ErrHandlerNotFound, msg, nil)
			continue
		}
		if a := s.opts.Access; a != nil {
			if code := c.deny(a, &auth, msg.Name); code != "" {
				if !h.oneWay { // a one-way call is never answered, refused or not
					c.reply(ctx, code, msg, nil)
				}
				continue
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		handlers.Add(1)
		call := &Call{Header: f.Header, Msg: msg, Remote: remote, args: args, peer: auth.peer}
		if fp, ok := args.(*frameProtocol); ok {
			call.raw = f.Body[fp.r.pos:]
		}
		s.workers.run(request{c: c, ctx: ctx, h: h, call: call, slots: slots, handlers: handlers})
	}
}

// negotiate runs one step of the authentication handshake. It runs on the reader
// goroutine, so the requests that follow see its outcome.
func (c *serverConn) negotiate(ctx context.Context, a *Access, st *connAuth, msg MessageBegin, args thrift.TProtocol) {
	req := security.NewNegotiationRequest()
	if err := DecodeArgs(ctx, args, req); err != nil {
		c.reply(ctx, base.ErrInvalidData, msg, nil)
		return
	}
	resp, err := a.negotiate(st, req)
	if err != nil {
		c.s.stats.authFailed.Add(1)
		c.s.authLog.Warn(c.s.log, "cluster authentication refused", "remote", c.nc.RemoteAddr(), "err", err)
	} else if st.peer.Node != "" && resp.Status == security.NegotiationStatus_SASL_SUCC {
		c.s.log.Debug("cluster member authenticated", "remote", c.nc.RemoteAddr(), "node", st.peer.Node)
	}
	c.reply(ctx, base.ErrOK, msg, resp)
}

// deny returns the error a call must be refused with ("" to serve it): cluster
// RPCs need an authenticated member, administrative ones an administrator.
func (c *serverConn) deny(a *Access, st *connAuth, code string) string {
	switch {
	case a.Keys != nil && st.peer.Node == "" && a.internal(code):
		c.s.stats.denied.Add(1)
		c.s.authLog.Warn(c.s.log, "cluster RPC refused: the connection has not authenticated as a cluster member", "remote", c.nc.RemoteAddr(), "rpc", code)
		return base.ErrUnauthenticated
	case !st.peer.Admin && adminCodes[code]:
		c.s.stats.denied.Add(1)
		c.s.authLog.Warn(c.s.log, "administrative RPC refused: the caller is not an administrator", "remote", c.nc.RemoteAddr(), "rpc", code)
		return base.ErrACLDeny
	}
	return ""
}

// readFailed handles a failed frame read and reports whether the loop stopped
// because of a graceful shutdown.
func (c *serverConn) readFailed(err error, first bool) bool {
	s := c.s
	remote := c.nc.RemoteAddr()
	switch {
	case c.isStopping():
		return true
	case errors.Is(err, ErrOverloaded):
		s.stats.overloaded.Add(1)
		s.frameLog.Warn(s.log, "closing connection: request frames pending server-wide exceed the budget", "remote", remote, "err", err)
	case isTimeout(err) && first:
		s.stats.firstTimeouts.Add(1)
		s.frameLog.Warn(s.log, "closing connection: no complete request in time", "remote", remote, "timeout", s.opts.FirstRequestTimeout)
	case isTimeout(err):
		s.stats.frameTimeouts.Add(1)
		s.frameLog.Warn(s.log, "closing connection: request frame not complete in time", "remote", remote, "timeout", s.opts.FrameTimeout)
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrFrameTooLarge):
		s.stats.badFrames.Add(1)
		s.frameLog.Warn(s.log, "closing connection: bad request frame", "remote", remote, "err", err)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return false
	default:
		s.log.Debug("connection read failed", "remote", remote, "err", err)
		return false
	}
	c.nc.Close()
	return false
}

func (c *serverConn) run(ctx context.Context, h handler, call *Call) {
	s := c.s
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", "rpc", call.Msg.Name, "remote", call.Remote, "panic", p, "stack", string(debug.Stack()))
			if !h.oneWay {
				c.answer(ctx, base.ErrUnknown, call.Msg, nil)
			}
		}
	}()
	result, err := h.fn(ctx, call)
	if h.oneWay {
		if err != nil {
			s.log.Warn("one-way handler failed", "rpc", call.Msg.Name, "remote", call.Remote, "err", err)
		}
		return
	}
	if errors.Is(err, ErrNoReply) {
		return
	}
	if err != nil {
		code, logIt := frameCode(err)
		if logIt {
			s.log.Warn("handler failed", "rpc", call.Msg.Name, "remote", call.Remote, "err", err, "reply", code)
		}
		c.answer(ctx, code, call.Msg, nil)
		return
	}
	c.answer(ctx, base.ErrOK, call.Msg, result)
}

// reply answers a call on the reader goroutine, which does not wait for
// other replies (see replyWriter.write).
func (c *serverConn) reply(ctx context.Context, code string, msg MessageBegin, result Value) {
	c.send(ctx, code, msg, result, false)
}

// answer sends a handler's reply, letting other handlers of the connection
// add theirs to the same write when any are running.
func (c *serverConn) answer(ctx context.Context, code string, msg MessageBegin, result Value) {
	c.send(ctx, code, msg, result, len(c.slots) > 1)
}

func (c *serverConn) send(ctx context.Context, code string, msg MessageBegin, result Value, yield bool) {
	e := c.s.getEncoder()
	if err := e.appendResponse(ctx, code, msg.Name, msg.SeqID, result); err != nil {
		c.s.log.Error("encode reply failed", "rpc", msg.Name, "err", err)
		e.reset()
		if err := e.appendResponse(ctx, base.ErrUnknown, msg.Name, msg.SeqID, nil); err != nil {
			c.s.putEncoder(e)
			return
		}
	}
	c.w.write(e.bytes(), yield)
	c.s.putEncoder(e)
}

// writeTimeout bounds how long a reply may wait for a peer that does not read.
const writeTimeout = 30 * time.Second

// peekedConn replays the bytes sniffed from a connection before handing it on.
type peekedConn struct {
	net.Conn
	r       *bufio.Reader
	onClose func()
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

func (p *peekedConn) Close() error {
	err := p.Conn.Close()
	p.onClose()
	return err
}

// connQueue is a net.Listener fed with connections that turned out to be HTTP.
type connQueue struct {
	ch     chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newConnQueue() *connQueue {
	return &connQueue{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.closed:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.closed) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return &net.TCPAddr{} }
