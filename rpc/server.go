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
	"runtime/debug"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
)

// ServerOptions configure a Server. Zero values pick the defaults.
type ServerOptions struct {
	// MaxFrameSize bounds the body of a request frame (default 64 MiB). A larger
	// frame closes its connection.
	MaxFrameSize int
	// MaxInflightPerConn bounds the requests of one connection being handled at
	// once (default 4096); past it the server stops reading that connection.
	MaxInflightPerConn int
	// HTTP serves connections that start with an HTTP/1.1 request line. Nil answers
	// 404 to everything.
	HTTP http.Handler
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
}

// Server serves the THFT framing and HTTP/1.1 on the same listener, choosing per
// connection by its first four bytes as the reference server does.
type Server struct {
	mux      *Mux
	opts     ServerOptions
	log      *slog.Logger
	httpSrv  *http.Server
	httpConn *connQueue
	encoders sync.Pool

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	closing   bool
	httpOnce  sync.Once
	connWG    sync.WaitGroup
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
		httpConn:  newConnQueue(),
	}
	s.httpSrv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
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
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Transient (e.g. out of file descriptors): back off instead of spinning.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := &serverConn{s: s, nc: nc}
		if !s.track(c) {
			nc.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) track(c *serverConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	return true
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
		return httpErr
	case <-ctx.Done():
		for _, c := range conns {
			c.abort()
		}
		<-done
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
	return err
}

func (s *Server) beginClose() []*serverConn {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	s  *Server
	nc net.Conn

	mu       sync.Mutex
	stopping bool // shutdown asked the reader to stop
}

func (c *serverConn) stopReading() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	// Unblock the reader without closing: in-flight replies must still go out.
	_ = c.nc.SetReadDeadline(time.Now())
}

func (c *serverConn) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

func (c *serverConn) abort() { c.nc.Close() }

func (c *serverConn) serve() {
	defer c.s.untrack(c)
	br := bufio.NewReaderSize(c.nc, 64<<10)
	magic, err := br.Peek(4)
	if err != nil {
		c.nc.Close()
		return
	}
	switch {
	case string(magic) == magicTHFT:
		c.serveTHFT(br)
	case isHTTPMethod(magic):
		// The HTTP server owns the connection from here; untrack it so Shutdown
		// leaves it to http.Server.Shutdown.
		if !c.s.httpConn.push(&peekedConn{Conn: c.nc, r: br}) {
			c.nc.Close()
		}
	case string(magic) == "RDSN":
		c.s.log.Warn("closing connection: RDSN framing is not supported, use a THFT client", "remote", c.nc.RemoteAddr())
		c.nc.Close()
	default:
		c.s.log.Warn("closing connection: unknown protocol", "remote", c.nc.RemoteAddr(), "first_bytes", fmt.Sprintf("%q", magic))
		c.nc.Close()
	}
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
	out := make(chan *encoder, s.opts.MaxInflightPerConn)
	writerDone := make(chan struct{})
	go c.writeLoop(out, writerDone)

	slots := make(chan struct{}, s.opts.MaxInflightPerConn)
	var handlers sync.WaitGroup
	graceful := c.readLoop(ctx, br, out, slots, &handlers)
	if !graceful {
		// The peer went away or sent garbage: nobody will read the replies.
		cancel()
	}
	handlers.Wait()
	close(out)
	<-writerDone
	cancel()
	c.nc.Close()
}

// readLoop reads and dispatches requests until the stream ends. It reports whether
// it stopped because of a graceful shutdown.
func (c *serverConn) readLoop(ctx context.Context, br *bufio.Reader, out chan<- *encoder, slots chan struct{}, handlers *sync.WaitGroup) bool {
	s := c.s
	remote := c.nc.RemoteAddr()
	for {
		f, err := ReadRequest(br, s.opts.MaxFrameSize)
		if err != nil {
			switch {
			case c.isStopping():
				return true
			case errors.Is(err, ErrMalformed), errors.Is(err, ErrFrameTooLarge):
				s.log.Warn("closing connection: bad request frame", "remote", remote, "err", err)
				c.nc.Close()
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			default:
				s.log.Debug("connection read failed", "remote", remote, "err", err)
			}
			return false
		}
		msg, args, err := ParseCall(f.Body)
		if err != nil {
			// Without a sequence id there is no way to answer: the stream is unusable.
			s.log.Warn("closing connection: bad request message", "remote", remote, "err", err)
			c.nc.Close()
			return false
		}
		h, ok := s.mux.lookup(msg.Name)
		if !ok {
			s.log.Debug("no handler", "rpc", msg.Name, "remote", remote)
			c.reply(ctx, out, base.ErrHandlerNotFound, msg, nil)
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		handlers.Add(1)
		call := &Call{Header: f.Header, Msg: msg, Remote: remote, args: args}
		if fp, ok := args.(*frameProtocol); ok {
			call.raw = f.Body[fp.r.pos:]
		}
		go func() {
			defer handlers.Done()
			defer func() { <-slots }()
			c.run(ctx, h, call, out)
		}()
	}
}

func (c *serverConn) run(ctx context.Context, h handler, call *Call, out chan<- *encoder) {
	s := c.s
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked", "rpc", call.Msg.Name, "remote", call.Remote, "panic", p, "stack", string(debug.Stack()))
			if !h.oneWay {
				c.reply(ctx, out, base.ErrUnknown, call.Msg, nil)
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
	if err != nil {
		code, logIt := frameCode(err)
		if logIt {
			s.log.Warn("handler failed", "rpc", call.Msg.Name, "remote", call.Remote, "err", err, "reply", code)
		}
		c.reply(ctx, out, code, call.Msg, nil)
		return
	}
	c.reply(ctx, out, base.ErrOK, call.Msg, result)
}

func (c *serverConn) reply(ctx context.Context, out chan<- *encoder, code string, msg MessageBegin, result Value) {
	e := c.s.getEncoder()
	if err := e.appendResponse(ctx, code, msg.Name, msg.SeqID, result); err != nil {
		c.s.log.Error("encode reply failed", "rpc", msg.Name, "err", err)
		e.reset()
		if err := e.appendResponse(ctx, base.ErrUnknown, msg.Name, msg.SeqID, nil); err != nil {
			c.s.putEncoder(e)
			return
		}
	}
	out <- e
}

// writeLoop writes replies in completion order, flushing when no more are queued so
// that concurrent replies share system calls.
func (c *serverConn) writeLoop(out <-chan *encoder, done chan<- struct{}) {
	defer close(done)
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	var failed bool
	fail := func(err error) {
		// A peer that stops reading must not pin the connection's goroutines: drop
		// the connection, which also ends the reader, and discard what is queued.
		failed = true
		c.s.log.Debug("connection write failed", "remote", c.nc.RemoteAddr(), "err", err)
		c.nc.Close()
	}
	inBatch := false
	for e := range out {
		if !failed {
			if !inBatch {
				_ = c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
				inBatch = true
			}
			if _, err := bw.Write(e.bytes()); err != nil {
				fail(err)
			}
		}
		c.s.putEncoder(e)
		if !failed && len(out) == 0 {
			if err := bw.Flush(); err != nil {
				fail(err)
			}
			inBatch = false
		}
	}
	if !failed {
		_ = bw.Flush()
	}
}

// writeTimeout bounds how long a reply may wait for a peer that does not read.
const writeTimeout = 30 * time.Second

// peekedConn replays the bytes sniffed from a connection before handing it on.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }

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
