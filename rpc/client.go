package rpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/internal/ratelog"
)

// ClientOptions configure a Client. Zero values pick the defaults.
type ClientOptions struct {
	DialTimeout  time.Duration // default 3 s, as the go client
	MaxFrameSize int           // bounds a response frame; default 64 MiB
	// MinBackoff and MaxBackoff bound the wait after a failed dial before the next
	// attempt (defaults 50 ms and 2 s); calls made while waiting fail at once with
	// ErrUnavailable so callers can try another peer.
	MinBackoff, MaxBackoff time.Duration
	// Dial replaces net.Dialer for tests.
	Dial   func(ctx context.Context, addr string) (net.Conn, error)
	Logger *slog.Logger
	// Auth, when set, authenticates every new connection as a cluster member
	// before any call is made on it.
	Auth *ClientAuth
}

func (o *ClientOptions) setDefaults() {
	if o.DialTimeout <= 0 {
		o.DialTimeout = 3 * time.Second
	}
	if o.MaxFrameSize <= 0 {
		o.MaxFrameSize = DefaultMaxFrame
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 50 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Dial == nil {
		timeout := o.DialTimeout
		o.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: timeout}
			return d.DialContext(ctx, "tcp", addr)
		}
	}
}

// Request is one call to make.
type Request struct {
	Code           string
	AppID          int32 // > 0 targets the replica of (AppID, PartitionIndex)
	PartitionIndex int32
	PartitionHash  uint64
	Args           Value
}

// Client is a connection to one server address with pipelined calls: many calls
// share the connection and their replies are matched by sequence id. A broken
// connection is redialled by the next call, with back-off after failed dials.
type Client struct {
	addr     string
	opts     ClientOptions
	seq      atomic.Int32
	encoders sync.Pool

	mu        sync.Mutex
	cur       *clientConn
	dialing   chan struct{} // closed when the dial in progress ends
	nextDial  time.Time
	backoff   time.Duration
	lastError error
	closed    bool
	// authLog limits the warnings about refused authentication handshakes: a
	// server with the wrong secret retries for as long as it runs.
	authLog *ratelog.Limiter
}

// NewClient returns a client for addr ("ip:port"). It dials lazily.
func NewClient(addr string, opts ClientOptions) *Client {
	opts.setDefaults()
	c := &Client{addr: addr, opts: opts, authLog: ratelog.New(logEvery)}
	c.encoders.New = func() any { return newWriter(256) }
	return c
}

// Addr returns the peer address.
func (c *Client) Addr() string { return c.addr }

// Close closes the connection; calls in flight fail with ErrConnectionLost and
// later calls with ErrClientClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	cc := c.cur
	c.cur = nil
	c.mu.Unlock()
	if cc != nil {
		cc.fail(ErrClientClosed)
	}
	return nil
}

// nextSeq returns the next sequence id, wrapping from MaxInt32 back to 1 without
// ever handing the same id to two concurrent callers.
func (c *Client) nextSeq() int32 {
	for {
		cur := c.seq.Load()
		next := cur + 1
		if cur == math.MaxInt32 {
			next = 1
		}
		if c.seq.CompareAndSwap(cur, next) {
			return next
		}
	}
}

// Call sends req and decodes the reply into result. A nil result makes a one-way
// call that returns once the request is queued for writing. Frame-level errors come
// back as *Error.
func (c *Client) Call(ctx context.Context, req Request, result Value) error {
	cc, err := c.conn(ctx)
	if err != nil {
		return err
	}
	seq := c.nextSeq()
	var ch chan response
	if result != nil {
		ch = make(chan response, 1)
		if !cc.register(seq, ch) {
			return fmt.Errorf("call %s on %s: %w", req.Code, c.addr, ErrConnectionLost)
		}
	}
	e := c.encoders.Get().(*encoder)
	e.reset()
	h := Header{
		AppID:           req.AppID,
		PartitionIndex:  req.PartitionIndex,
		PartitionHash:   req.PartitionHash,
		ThreadHash:      req.AppID*7919 + req.PartitionIndex,
		ClientTimeoutMS: timeoutMS(ctx),
	}
	if err := e.appendRequest(ctx, h, req.Code, seq, req.Args); err != nil {
		c.encoders.Put(e)
		cc.unregister(seq)
		return fmt.Errorf("call %s: %w", req.Code, err)
	}
	select {
	case cc.out <- e:
	case <-cc.done:
		c.encoders.Put(e)
		cc.unregister(seq)
		return fmt.Errorf("call %s on %s: %w", req.Code, c.addr, ErrConnectionLost)
	case <-ctx.Done():
		c.encoders.Put(e)
		cc.unregister(seq)
		return fmt.Errorf("call %s on %s: %w", req.Code, c.addr, ctx.Err())
	}
	if result == nil {
		return nil
	}
	select {
	case r := <-ch:
		return decodeReply(ctx, req.Code, r, result)
	case <-cc.done:
		// The reply may have been delivered just before the connection broke.
		select {
		case r := <-ch:
			return decodeReply(ctx, req.Code, r, result)
		default:
		}
		return fmt.Errorf("call %s on %s: %w: %v", req.Code, c.addr, ErrConnectionLost, cc.cause())
	case <-ctx.Done():
		cc.unregister(seq)
		return fmt.Errorf("call %s on %s: %w", req.Code, c.addr, ctx.Err())
	}
}

func decodeReply(ctx context.Context, code string, r response, result Value) error {
	if r.head.Name != code+"_ACK" {
		return fmt.Errorf("call %s: reply named %q: %w", code, r.head.Name, ErrMalformed)
	}
	if r.head.ErrorName != base.ErrOK {
		return &Error{Code: r.head.ErrorName}
	}
	if err := DecodeResult(ctx, r.proto, result); err != nil {
		return fmt.Errorf("call %s: decode reply: %w", code, err)
	}
	return nil
}

// timeoutMS is the advisory timeout of the request header: the time left before the
// context's deadline, in milliseconds (0 without a deadline).
func timeoutMS(ctx context.Context) int32 {
	d, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	ms := time.Until(d).Milliseconds()
	switch {
	case ms < 0:
		return 0
	case ms > math.MaxInt32:
		return math.MaxInt32
	}
	return int32(ms)
}

// conn returns the live connection, dialling one if needed.
func (c *Client) conn(ctx context.Context) (*clientConn, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClientClosed
		}
		if c.cur != nil && !c.cur.broken() {
			cc := c.cur
			c.mu.Unlock()
			return cc, nil
		}
		if wait := c.dialing; wait != nil {
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("connect %s: %w", c.addr, ctx.Err())
			}
		}
		if now := time.Now(); now.Before(c.nextDial) {
			err := c.lastError
			c.mu.Unlock()
			return nil, fmt.Errorf("connect %s: %w (last error: %v)", c.addr, ErrUnavailable, err)
		}
		done := make(chan struct{})
		c.dialing = done
		c.mu.Unlock()

		cc, err := c.dial(ctx)

		c.mu.Lock()
		c.dialing = nil
		close(done)
		if err != nil {
			c.lastError = err
			c.backoff = min(max(2*c.backoff, c.opts.MinBackoff), c.opts.MaxBackoff)
			c.nextDial = time.Now().Add(c.backoff)
			c.mu.Unlock()
			if errors.Is(err, ErrAuth) {
				// Not a network problem that goes away: the two servers do not share
				// a cluster secret. Say so in the log of the one that cannot join.
				c.authLog.Warn(c.opts.Logger, "cluster authentication failed: this server and its peer do not share a cluster secret ([security] cluster_secret_file must be the same file on every server of the cluster)", "peer", c.addr, "err", err)
			}
			return nil, fmt.Errorf("connect %s: %w: %w", c.addr, ErrUnavailable, err)
		}
		if c.closed {
			c.mu.Unlock()
			cc.fail(ErrClientClosed)
			return nil, ErrClientClosed
		}
		c.backoff = 0
		c.cur = cc
		c.mu.Unlock()
		return cc, nil
	}
}

func (c *Client) dial(ctx context.Context) (*clientConn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	nc, err := c.opts.Dial(dctx, c.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if a := c.opts.Auth; a != nil {
		if err := a.handshake(dctx, nc, c.opts.MaxFrameSize); err != nil {
			nc.Close()
			return nil, fmt.Errorf("authenticate to %s: %w", c.addr, err)
		}
	}
	cc := &clientConn{
		c:       c,
		nc:      nc,
		out:     make(chan *encoder, 1024),
		done:    make(chan struct{}),
		pending: make(map[int32]chan response),
	}
	go cc.writeLoop()
	go cc.readLoop()
	return cc, nil
}

type response struct {
	head  ResponseHead
	proto thrift.TProtocol
}

// clientConn is one live connection of a Client.
type clientConn struct {
	c    *Client
	nc   net.Conn
	out  chan *encoder
	done chan struct{}

	mu      sync.Mutex
	pending map[int32]chan response
	err     error
}

func (cc *clientConn) broken() bool {
	select {
	case <-cc.done:
		return true
	default:
		return false
	}
}

func (cc *clientConn) cause() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.err
}

func (cc *clientConn) register(seq int32, ch chan response) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.err != nil {
		return false
	}
	cc.pending[seq] = ch
	return true
}

func (cc *clientConn) unregister(seq int32) {
	cc.mu.Lock()
	delete(cc.pending, seq)
	cc.mu.Unlock()
}

// fail breaks the connection once; waiting calls see done closed.
func (cc *clientConn) fail(err error) {
	cc.mu.Lock()
	if cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.err = err
	cc.pending = nil
	cc.mu.Unlock()
	close(cc.done)
	cc.nc.Close()
}

func (cc *clientConn) readLoop() {
	br := bufio.NewReaderSize(cc.nc, 64<<10)
	for {
		frame, err := ReadResponse(br, cc.c.opts.MaxFrameSize)
		if err != nil {
			cc.fail(err)
			return
		}
		head, p, err := ParseResponse(frame)
		if err != nil {
			cc.c.opts.Logger.Warn("dropping connection: bad response", "peer", cc.c.addr, "err", err)
			cc.fail(err)
			return
		}
		cc.mu.Lock()
		ch, ok := cc.pending[head.SeqID]
		if ok {
			delete(cc.pending, head.SeqID)
		}
		cc.mu.Unlock()
		if ok {
			ch <- response{head: head, proto: p}
		}
		// Replies of calls that gave up (deadline) are dropped.
	}
}

func (cc *clientConn) writeLoop() {
	bw := bufio.NewWriterSize(cc.nc, 64<<10)
	for {
		select {
		case e := <-cc.out:
			_, err := bw.Write(e.bytes())
			cc.c.encoders.Put(e)
			if err == nil && len(cc.out) == 0 {
				err = bw.Flush()
			}
			if err != nil {
				cc.fail(err)
				return
			}
		case <-cc.done:
			return
		}
	}
}

// IsTransportError reports whether err means the call may not have reached the
// peer or its reply was lost (as opposed to an answer from the peer).
func IsTransportError(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrClientClosed)
}
