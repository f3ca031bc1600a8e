package memnet

import (
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pegasusgo/pegasus/rpc"
)

// pipe is one direction of a connection: an unbounded byte buffer (a write
// never blocks, as a socket with room in its buffers) with a read deadline.
type pipe struct {
	mu       sync.Mutex
	cond     *sync.Cond
	buf      []byte
	eof      bool // the writer closed: reads drain buf, then io.EOF
	closed   bool // the reader closed: reads fail at once
	deadline time.Time
	timer    *time.Timer
}

func newPipe() *pipe {
	p := &pipe{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *pipe) write(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.eof || p.closed {
		return
	}
	p.buf = append(p.buf, b...)
	p.cond.Broadcast()
}

func (p *pipe) read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case p.closed:
			return 0, net.ErrClosed
		case !p.deadline.IsZero() && !time.Now().Before(p.deadline):
			// As a socket: a passed deadline fails the read even with data
			// waiting (the rpc server sets one to interrupt its readers).
			return 0, os.ErrDeadlineExceeded
		case len(p.buf) > 0:
			n := copy(b, p.buf)
			p.buf = p.buf[n:]
			return n, nil
		case p.eof:
			return 0, io.EOF
		}
		p.cond.Wait()
	}
}

func (p *pipe) setDeadline(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deadline = t
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	if !t.IsZero() {
		// The timer only wakes the readers; they compare the clock themselves.
		p.timer = time.AfterFunc(time.Until(t), func() {
			p.mu.Lock()
			p.cond.Broadcast()
			p.mu.Unlock()
		})
	}
	p.cond.Broadcast()
}

// closeWrite ends the stream for the reader once it has read what is buffered.
func (p *pipe) closeWrite() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.eof = true
	p.cond.Broadcast()
}

// closeRead fails the reader's reads at once and discards the buffer.
func (p *pipe) closeRead() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.buf = nil
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.cond.Broadcast()
}

// conn is one end of a connection.
type conn struct {
	n             *Network
	self, peer    string // host addresses: this end's and the other's
	local, remote *net.TCPAddr
	in, out       *pipe
	other         *conn
	// requests is set on the dialling end, which writes THFT requests; the
	// accepting end writes replies.
	requests bool
	raw      atomic.Bool // not THFT (set by the dialling end for both)

	wmu     sync.Mutex
	pending []byte // bytes of a frame not yet complete
	once    sync.Once
	closed  atomic.Bool
}

func (c *conn) Read(b []byte) (int, error) { return c.in.read(b) }

// Write cuts what is written into whole frames and passes each through the
// network's rules.
func (c *conn) Write(b []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.raw.Load() {
		c.out.write(b)
		return len(b), nil
	}
	c.pending = append(c.pending, b...)
	for len(c.pending) > 0 {
		n := frameLen(c.pending, c.requests)
		if n < 0 {
			// Not THFT: HTTP on the same port. Pass it and what follows as is.
			c.raw.Store(true)
			if c.other != nil {
				c.other.raw.Store(true)
			}
			c.out.write(c.pending)
			c.pending = nil
			break
		}
		if n == 0 || len(c.pending) < n {
			break
		}
		frame := append([]byte(nil), c.pending[:n]...)
		c.pending = c.pending[n:]
		c.n.send(c, frame, frameName(frame, c.requests))
	}
	if len(c.pending) == 0 {
		c.pending = nil
	}
	return len(b), nil
}

// frameName is the message name of a whole frame ("" if it cannot be read).
func frameName(frame []byte, request bool) string {
	if !request {
		head, _, err := rpc.ParseResponse(frame[4:])
		if err != nil {
			return ""
		}
		return head.Name
	}
	body := frame[48:]
	if frame[7] == 1 {
		meta := int(frame[8])<<24 | int(frame[9])<<16 | int(frame[10])<<8 | int(frame[11])
		body = frame[16+meta:]
	}
	mb, _, err := rpc.ParseCall(body)
	if err != nil {
		return ""
	}
	return mb.Name
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		// The peer sees the end of the stream once it has read what was sent;
		// what it writes from now on is lost.
		c.in.closeRead()
		c.out.closeWrite()
		c.n.forget(c)
	})
	return nil
}

func (c *conn) LocalAddr() net.Addr  { return c.local }
func (c *conn) RemoteAddr() net.Addr { return c.remote }

func (c *conn) SetDeadline(t time.Time) error {
	c.in.setDeadline(t)
	return nil
}

func (c *conn) SetReadDeadline(t time.Time) error {
	c.in.setDeadline(t)
	return nil
}

// SetWriteDeadline has nothing to bound: writes never block.
func (c *conn) SetWriteDeadline(time.Time) error { return nil }
