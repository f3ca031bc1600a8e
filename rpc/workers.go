package rpc

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// A request is handled on a goroutine of its own, so that a slow one (a write
// waiting for its replicas, a throttled read) never holds up the others of its
// connection. A fresh goroutine per request starts on a small stack, and a
// storage read grows it two or three times: copying stacks was a quarter of a
// replica server's CPU during reads. The workers below are goroutines kept
// after their request, whose stacks are already grown; a request that finds no
// idle worker starts a new one, so requests never wait for each other.

const (
	// workerIdle is how long a worker waits for another request before it ends.
	workerIdle = 20 * time.Second
	// maxIdleWorkers bounds the workers kept waiting: more than that many are
	// only left by a burst, and end after their request.
	maxIdleWorkers = 256
)

// request is one call for a worker to run.
type request struct {
	c        *serverConn
	ctx      context.Context
	h        handler
	call     *Call
	slots    <-chan struct{}
	handlers *sync.WaitGroup
}

func (r *request) run() {
	defer r.handlers.Done()
	defer func() { <-r.slots }()
	r.c.run(r.ctx, r.h, r.call)
}

// workerPool runs requests on reused goroutines.
type workerPool struct {
	// requests is unbuffered: a send succeeds only when a worker is waiting.
	requests chan request
	idle     atomic.Int32
	started  atomic.Int64 // workers started, for tests
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func newWorkerPool() *workerPool {
	return &workerPool{requests: make(chan request), stop: make(chan struct{})}
}

// run hands r to an idle worker, or to a new one when none is waiting.
func (p *workerPool) run(r request) {
	select {
	case p.requests <- r:
		return
	default:
	}
	p.wg.Add(1)
	p.started.Add(1)
	go p.work(r)
}

func (p *workerPool) work(r request) {
	defer p.wg.Done()
	var timer *time.Timer
	for {
		r.run()
		r = request{} // drop the references while idle
		if p.idle.Add(1) > maxIdleWorkers {
			p.idle.Add(-1)
			return
		}
		if timer == nil {
			timer = time.NewTimer(workerIdle)
			defer timer.Stop()
		} else {
			timer.Reset(workerIdle)
		}
		select {
		case r = <-p.requests:
			p.idle.Add(-1)
		case <-timer.C:
			p.idle.Add(-1)
			return
		case <-p.stop:
			p.idle.Add(-1)
			return
		}
	}
}

// close ends the idle workers and waits for every worker to end; a request
// still running is waited for.
func (p *workerPool) close() {
	p.stopOnce.Do(func() { close(p.stop) })
	p.wg.Wait()
}
