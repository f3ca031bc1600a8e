package metastore

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// termEvent is a win or a loss of one candidate, with its time.
type termEvent struct {
	who  int
	won  bool // false: the term was lost
	at   time.Time
	term *Term
}

// runCandidates makes every candidate campaign again each time its term ends,
// until the test ends, and reports every win and loss.
func runCandidates(t *testing.T, cands []candidate) <-chan termEvent {
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan termEvent, 100)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	for i, c := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				term, err := c.el.Campaign(ctx)
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, ErrClosed) {
						t.Errorf("%s: Campaign: %v", c.addr, err)
					}
					return
				}
				events <- termEvent{who: i, won: true, at: time.Now(), term: term}
				select {
				case <-term.Lost():
					events <- termEvent{who: i, at: time.Now(), term: term}
				case <-ctx.Done():
					term.Resign()
					return
				}
			}
		}()
	}
	return events
}

func nextEvent(t *testing.T, events <-chan termEvent, timeout time.Duration, what string) termEvent {
	t.Helper()
	select {
	case ev := <-events:
		return ev
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
		return termEvent{}
	}
}

func zkCandidates(t *testing.T, addrs ...string) []candidate {
	srv := startZK(t)
	var cands []candidate
	for _, a := range addrs {
		s := newZKStore(t, srv.Addr(), testSessionTimeout)
		el := s.NewElector(testLockDir, a)
		t.Cleanup(func() { el.Close() })
		cands = append(cands, candidate{a, s, el})
	}
	return cands
}

// TestZKServerOutage stops the ZooKeeper server under a leader: the leader is
// cut off and must step down within the session timeout (at 2/3 of it), and a
// leader is elected again once the server is back.
func TestZKServerOutage(t *testing.T) {
	checkGoroutines(t)
	srv := startZK(t)
	var cands []candidate
	for i := 0; i < 3; i++ {
		s := newZKStore(t, srv.Addr(), testSessionTimeout)
		el := s.NewElector(testLockDir, addr(i))
		t.Cleanup(func() { el.Close() })
		cands = append(cands, candidate{addr(i), s, el})
	}
	events := runCandidates(t, cands)
	leader := nextEvent(t, events, 10*time.Second, "a first leader")
	if !leader.won {
		t.Fatalf("first event is a loss: %+v", leader)
	}

	stopped := time.Now()
	srv.Stop()
	lost := nextEvent(t, events, testSessionTimeout+2*time.Second, "the cut-off leader to step down")
	if lost.won || lost.who != leader.who {
		t.Fatalf("during the outage: %s won=%v, want %s to lose its term", cands[lost.who].addr, lost.won, cands[leader.who].addr)
	}
	after := lost.at.Sub(stopped)
	t.Logf("leader stepped down %v after ZooKeeper stopped (session timeout %v)", after, testSessionTimeout)
	if after >= testSessionTimeout {
		t.Errorf("leader stepped down %v after the server stopped, not within the session timeout %v", after, testSessionTimeout)
	}

	// The server comes back once every candidate has lost its connection.
	eventually(t, 10*time.Second, "every candidate to see the outage", func() bool {
		for _, c := range cands {
			if st, _ := c.store.(*ZKStore).session(); st.state == zk.StateHasSession {
				return false
			}
		}
		return true
	})
	restarted := time.Now()
	srv.Restart(t)
	ev := nextEvent(t, events, testSessionTimeout+10*time.Second, "a leader after the restart")
	if !ev.won {
		t.Fatalf("after restart: %s lost a term it should not have had", cands[ev.who].addr)
	}
	t.Logf("%s leader %v after ZooKeeper restarted", cands[ev.who].addr, time.Since(restarted))
	ctx := ctxTimeout(t, 10*time.Second)
	for _, c := range cands {
		if got, err := c.el.Leader(ctx); err != nil || got != cands[ev.who].addr {
			t.Errorf("Leader() seen by %s = %q, %v; want %s", c.addr, got, err, cands[ev.who].addr)
		}
	}
	select {
	case ev2 := <-events:
		t.Fatalf("unexpected second event after the restart: %s won=%v", cands[ev2.who].addr, ev2.won)
	case <-time.After(time.Second):
	}
}

// TestZKPartitionedLeader silences the leader's connection without closing it
// (a network partition): the leader must step down before the server expires
// its session, and so before anybody else can win.
func TestZKPartitionedLeader(t *testing.T) {
	checkGoroutines(t)
	srv := startZK(t)
	proxy := newFreezingProxy(t, srv.Addr())
	var cands []candidate
	for i := 0; i < 3; i++ {
		target := srv.Addr()
		if i == 0 {
			target = proxy.Addr()
		}
		s := newZKStore(t, target, testSessionTimeout)
		el := s.NewElector(testLockDir, addr(i))
		t.Cleanup(func() { el.Close() })
		cands = append(cands, candidate{addr(i), s, el})
	}
	// Candidate 0 campaigns alone first, so that it is the leader.
	ctx := ctxTimeout(t, 30*time.Second)
	term, err := cands[0].el.Campaign(ctx)
	mustDo(t, err)
	events := runCandidates(t, cands[1:])

	frozen := time.Now()
	proxy.Freeze()
	var lostAt time.Time
	select {
	case <-term.Lost():
		lostAt = time.Now()
	case <-time.After(testSessionTimeout):
		t.Fatalf("partitioned leader still leading after the session timeout %v", testSessionTimeout)
	}
	t.Logf("partitioned leader stepped down %v after the partition", lostAt.Sub(frozen))
	ev := nextEvent(t, events, testSessionTimeout+5*time.Second, "a new leader after the partitioned one's session expired")
	if !ev.won {
		t.Fatalf("unexpected loss by %s", cands[ev.who+1].addr)
	}
	t.Logf("new leader %s %v after the partition", cands[ev.who+1].addr, ev.at.Sub(frozen))
	if !lostAt.Before(ev.at) {
		t.Fatalf("two leaders: new leader at %v, old one stepped down at %v", ev.at.Sub(frozen), lostAt.Sub(frozen))
	}
	proxy.Close() // the old leader's client now learns its session expired
	term.Resign() // ended already: returns at once
}

// TestZKOwnNodeDeleted deletes the leader's lock node behind its back: the term
// ends at once and the next candidate wins.
func TestZKOwnNodeDeleted(t *testing.T) {
	checkGoroutines(t)
	cands := zkCandidates(t, addr(0), addr(1))
	ctx := ctxTimeout(t, 30*time.Second)
	term, err := cands[0].el.Campaign(ctx)
	mustDo(t, err)
	events := runCandidates(t, cands[1:])

	var nodes []lockNode
	eventually(t, 5*time.Second, "the second candidate's lock node", func() bool {
		var err error
		nodes, err = cands[1].el.(*zkElector).list(ctx)
		mustDo(t, err)
		return len(nodes) == 2
	})
	mustDo(t, cands[1].store.Delete(ctx, testLockDir+"/"+nodes[0].name))
	select {
	case <-term.Lost():
	case <-time.After(2 * time.Second):
		t.Fatal("term still live 2 s after its lock node was deleted")
	}
	if ev := nextEvent(t, events, 5*time.Second, "the other candidate to win"); !ev.won {
		t.Fatal("unexpected loss")
	}
	if got, err := cands[0].el.Leader(ctx); err != nil || got != addr(1) {
		t.Errorf("Leader() = %q, %v; want %s", got, err, addr(1))
	}
}

// TestZKStaleNodeOfSameAddress simulates a fast restart: the previous
// incarnation's lock node (same address, session not yet expired) holds the
// lock; the new incarnation deletes it and wins without waiting for the
// session timeout.
func TestZKStaleNodeOfSameAddress(t *testing.T) {
	checkGoroutines(t)
	srv := startZK(t)
	ctx := ctxTimeout(t, 30*time.Second)
	old := newZKStore(t, srv.Addr(), 60*time.Second) // would hold the lock for a minute
	mustDo(t, EnsurePath(ctx, old, testLockDir))
	if _, err := old.conn.CreateProtectedEphemeralSequential(testLockDir+"/"+lockNodePrefix, []byte(addr(0)), zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	other := newZKStore(t, srv.Addr(), testSessionTimeout)
	if got, err := other.NewElector(testLockDir, addr(9)).Leader(ctx); err != nil || got != addr(0) {
		t.Fatalf("Leader() with the stale node = %q, %v; want %s", got, err, addr(0))
	}

	fresh := newZKStore(t, srv.Addr(), testSessionTimeout)
	el := fresh.NewElector(testLockDir, addr(0))
	t.Cleanup(func() { el.Close() })
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	term, err := el.Campaign(short)
	if err != nil {
		t.Fatalf("the restarted candidate did not win over its stale node: %v", err)
	}
	nodes, err := el.(*zkElector).list(ctx)
	mustDo(t, err)
	if len(nodes) != 1 {
		t.Errorf("lock dir holds %d nodes, want only the new one", len(nodes))
	}
	term.Resign()
}

// freezingProxy forwards TCP connections to a target until frozen; frozen, it
// holds every byte (like a network partition that drops packets) without
// closing anything.
type freezingProxy struct {
	target string
	ln     net.Listener

	mu     sync.Mutex
	frozen bool
	thaw   chan struct{} // closed when unfrozen or closed
	conns  []net.Conn
	closed bool
	wg     sync.WaitGroup
}

func newFreezingProxy(t *testing.T, target string) *freezingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{target: target, ln: ln, thaw: make(chan struct{})}
	close(p.thaw)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

func (p *freezingProxy) Addr() string { return p.ln.Addr().String() }

func (p *freezingProxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen && !p.closed {
		p.frozen = true
		p.thaw = make(chan struct{})
	}
}

// Close drops every connection and stops accepting.
func (p *freezingProxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		if p.frozen {
			close(p.thaw)
		}
		for _, c := range p.conns {
			c.Close()
		}
		p.ln.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *freezingProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns = append(p.conns, c)
	return true
}

func (p *freezingProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(up) {
			c.Close()
			return
		}
		p.wg.Add(2)
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

func (p *freezingProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			thaw, closed := p.thaw, p.closed
			p.mu.Unlock()
			if closed {
				return
			}
			<-thaw // held while frozen; Close releases it
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				src.Close()
			}
			return
		}
	}
}

// TestZKStoreOutage checks that store calls are bounded by their context while
// ZooKeeper is down, and that a call started during an outage succeeds once the
// server is back within its deadline.
func TestZKStoreOutage(t *testing.T) {
	checkGoroutines(t)
	srv := startZK(t)
	s := newZKStore(t, srv.Addr(), testSessionTimeout)
	ctx := ctxTimeout(t, 30*time.Second)
	mustDo(t, s.Create(ctx, "/outage", []byte("before")))

	srv.Stop()
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	start := time.Now()
	_, err := s.Get(short, "/outage")
	cancel()
	wantErr(t, err, context.DeadlineExceeded, "get while ZooKeeper is down")
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("get with a 500 ms deadline returned after %v", d)
	}

	done := make(chan error, 1)
	go func() {
		setCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		done <- s.Set(setCtx, "/outage", []byte("after"))
	}()
	eventually(t, 10*time.Second, "the set to start during the outage", func() bool { return running("metastore.(*ZKStore).Set(") })
	// The set must also have failed and be retrying when the server returns (the
	// case under test); nothing observable says so, and restarting at once made
	// the test fail on a loaded machine, so the outage lasts a second more.
	time.Sleep(time.Second)
	srv.Restart(t)
	select {
	case err := <-done:
		mustDo(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("set started during the outage did not finish after the restart")
	}
	wantData(t, s, ctx, "/outage", []byte("after"))
}

// TestNewZKUnreachable checks that NewZK gives up when its context ends.
func TestNewZKUnreachable(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	mustDo(t, err)
	dead := ln.Addr().String()
	ln.Close() // nothing listens there any more
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	s, err := NewZK(ctx, []string{dead}, testSessionTimeout, testLogger(t))
	if err == nil {
		s.Close()
		t.Fatal("NewZK succeeded without a server")
	}
	wantErr(t, err, context.DeadlineExceeded, "NewZK without a server")
}
