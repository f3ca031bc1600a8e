package rpc

import (
	"net"
	"runtime"
	"sync"
	"time"
)

// replyWriter writes the replies of one connection. The goroutine that
// finishes a reply writes it itself unless another is writing at that moment;
// that one then also writes what was queued meanwhile, in one system call.
// Handing every reply to a writer goroutine instead cost a wake-up of that
// goroutine and a write(2) per reply: replies finish one by one, so its queue
// was nearly always empty when it looked.
type replyWriter struct {
	nc net.Conn
	// maxQueued bounds the replies waiting while one write is in progress; a
	// reply past it waits for room, which holds its request's slot, so a peer
	// that stops reading ends up no longer read from either.
	maxQueued int
	// onFail is called once, without the lock, when a write fails.
	onFail func(error)

	mu       sync.Mutex
	room     sync.Cond // signalled when the queue is taken or the writer fails
	queue    []byte    // replies waiting to be written
	queued   int       // how many
	spare    []byte    // the buffer of the last write, for the next queue
	writing  bool      // a goroutine is writing; it writes the queue before it stops
	failed   bool      // a write failed: replies are dropped
	deadline time.Time // the write deadline in effect
}

// Buffers above this size are not kept for the next replies once written.
const maxSpareReplyBuffer = 1 << 20

func newReplyWriter(nc net.Conn, maxQueued int, onFail func(error)) *replyWriter {
	w := &replyWriter{nc: nc, maxQueued: max(maxQueued, 1), onFail: onFail}
	w.room.L = &w.mu
	return w
}

// write sends b, which the caller may reuse once write returns. It returns
// once b is written, or queued for the goroutine writing at the time.
//
// With yield, other requests of the connection are being handled: the caller
// first lets the goroutines ready to run go ahead, so that those about to
// finish queue their replies and one system call carries them all. Replies
// finish one after the other on a busy server, so without this each would be
// written alone. Requests that are waiting (a write for its replicas) cost
// the caller only the yield.
func (w *replyWriter) write(b []byte, yield bool) {
	w.mu.Lock()
	for w.writing && w.queued >= w.maxQueued && !w.failed {
		w.room.Wait()
	}
	if w.failed {
		w.mu.Unlock()
		return
	}
	w.queue = append(w.queue, b...)
	w.queued++
	if w.writing {
		w.mu.Unlock()
		return
	}
	if yield {
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
		// Whoever wrote meanwhile, or is writing, took this reply too.
		if w.writing || len(w.queue) == 0 {
			w.mu.Unlock()
			return
		}
	}
	w.writing = true
	var err error
	for len(w.queue) > 0 {
		out := w.queue
		w.queue, w.spare, w.queued = w.spare[:0], nil, 0
		w.room.Broadcast()
		w.mu.Unlock()
		err = w.send(out)
		w.mu.Lock()
		if err != nil {
			w.failed = true
			w.queue, w.queued = nil, 0
			w.room.Broadcast()
			break
		}
		if cap(out) <= maxSpareReplyBuffer {
			w.spare = out[:0]
		}
	}
	w.writing = false
	w.mu.Unlock()
	if err != nil {
		w.onFail(err)
	}
}

// send writes b under a deadline of writeTimeout: a peer that stops reading
// must not hold the writing goroutine for ever. The deadline is moved only
// when less than half of it is left, to keep the timer off most writes; a
// write thus always has between writeTimeout/2 and writeTimeout.
func (w *replyWriter) send(b []byte) error {
	now := time.Now()
	if w.deadline.Sub(now) < writeTimeout/2 {
		w.deadline = now.Add(writeTimeout)
		if err := w.nc.SetWriteDeadline(w.deadline); err != nil {
			return err
		}
	}
	_, err := w.nc.Write(b)
	return err
}
