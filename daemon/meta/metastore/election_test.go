package metastore

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	// Session timeout of the ZooKeeper election tests: short, so that failover
	// tests run fast, yet well above the server's 1 s minimum.
	testSessionTimeout = 3 * time.Second
	testLockDir        = "/pegasus/test/lock/dsn.meta.server.leader"
)

// candidate is one meta process taking part in an election: an elector on a
// store of its own (its own ZooKeeper session, its own lock descriptor).
type candidate struct {
	addr  string
	store Store
	el    Elector
}

type electionBackend struct {
	name string
	// setup prepares a shared backend and returns how to add candidates to it.
	setup func(t *testing.T) func(t *testing.T, addr string) candidate
}

func electionBackends() []electionBackend {
	return []electionBackend{
		{"zk", func(t *testing.T) func(*testing.T, string) candidate {
			srv := startZK(t)
			return func(t *testing.T, addr string) candidate {
				s := newZKStore(t, srv.Addr(), testSessionTimeout)
				el := s.NewElector(testLockDir, addr)
				t.Cleanup(func() { el.Close() })
				return candidate{addr, s, el}
			}
		}},
		{"local", func(t *testing.T) func(*testing.T, string) candidate {
			dir := t.TempDir()
			return func(t *testing.T, addr string) candidate {
				s := newLocalStore(t, dir)
				el := s.NewElector(addr)
				t.Cleanup(func() { el.Close() })
				return candidate{addr, s, el}
			}
		}},
	}
}

func forEachElectionBackend(t *testing.T, f func(t *testing.T, newCandidate func(*testing.T, string) candidate)) {
	checkGoroutines(t)
	for _, b := range electionBackends() {
		t.Run(b.name, func(t *testing.T) {
			checkGoroutines(t)
			f(t, b.setup(t))
		})
	}
}

// TestElectionExclusive runs three candidates that win, check that every
// candidate sees them as the leader, and resign, several times each: no two
// terms may ever be live at once.
func TestElectionExclusive(t *testing.T) {
	forEachElectionBackend(t, func(t *testing.T, newCandidate func(*testing.T, string) candidate) {
		const rounds = 3
		cands := make([]candidate, 3)
		for i := range cands {
			cands[i] = newCandidate(t, addr(i))
		}
		ctx := ctxTimeout(t, 60*time.Second)
		var live atomic.Int32
		wins := make([]int, len(cands))
		var wg sync.WaitGroup
		for i, c := range cands {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < rounds; r++ {
					term, err := c.el.Campaign(ctx)
					if err != nil {
						t.Errorf("%s: Campaign: %v", c.addr, err)
						return
					}
					if n := live.Add(1); n != 1 {
						t.Errorf("%s won while %d other terms were live", c.addr, n-1)
					}
					wins[i]++
					for _, other := range cands {
						if got, err := other.el.Leader(ctx); err != nil || got != c.addr {
							t.Errorf("Leader() seen by %s = %q, %v; want %s", other.addr, got, err, c.addr)
						}
					}
					select {
					case <-term.Lost():
						t.Errorf("%s: term lost without cause", c.addr)
					case <-time.After(30 * time.Millisecond):
					}
					// Leaving the critical section before resigning: once
					// Resign starts, another candidate may win at any time.
					live.Add(-1)
					term.Resign()
					select {
					case <-term.Lost():
					default:
						t.Errorf("%s: term still live after Resign returned", c.addr)
					}
				}
			}()
		}
		wg.Wait()
		for i, n := range wins {
			if n != rounds {
				t.Errorf("%s won %d times, want %d", cands[i].addr, n, rounds)
			}
		}
		if got, err := cands[0].el.Leader(ctx); err != nil || got != "" {
			t.Errorf("Leader() after everybody resigned = %q, %v; want none", got, err)
		}
	})
}

// TestElectionCampaignRules covers the elector's lifecycle: a second campaign
// while leading is refused, a cancelled candidate withdraws, Close ends the term
// and the elector, and the elector can campaign again after resigning.
func TestElectionCampaignRules(t *testing.T) {
	forEachElectionBackend(t, func(t *testing.T, newCandidate func(*testing.T, string) candidate) {
		a, b := newCandidate(t, addr(0)), newCandidate(t, addr(1))
		ctx := ctxTimeout(t, 30*time.Second)
		if got, err := a.el.Leader(ctx); err != nil || got != "" {
			t.Fatalf("Leader() before any campaign = %q, %v; want none", got, err)
		}
		term, err := a.el.Campaign(ctx)
		mustDo(t, err)
		if _, err := a.el.Campaign(ctx); err == nil {
			t.Fatal("a second Campaign while leading succeeded")
		}

		// A candidate that gives up must leave nothing that could win later.
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err = b.el.Campaign(short)
		cancel()
		wantErr(t, err, context.DeadlineExceeded, "campaign while another leads")
		term.Resign()
		<-term.Lost()
		if got, err := b.el.Leader(ctx); err != nil || got != "" {
			t.Fatalf("Leader() after the only leader resigned = %q, %v; want none (cancelled candidate left a lock node?)", got, err)
		}

		// Resign, then campaign again on the same elector.
		term, err = a.el.Campaign(ctx)
		mustDo(t, err)
		term.Resign()
		term.Resign() // idempotent
		term2, err := a.el.Campaign(ctx)
		mustDo(t, err)
		term.Resign() // an old term's Resign must not end the new one
		select {
		case <-term2.Lost():
			t.Fatal("resigning an ended term ended the next one")
		case <-time.After(100 * time.Millisecond):
		}

		// Close ends the term and lets the other candidate in.
		won := make(chan *Term, 1)
		go func() {
			t, err := b.el.Campaign(ctx)
			if err == nil {
				won <- t
			}
			close(won)
		}()
		mustDo(t, a.el.Close())
		select {
		case <-term2.Lost():
		default:
			t.Fatal("term still live after Close")
		}
		select {
		case bt := <-won:
			if bt == nil {
				t.Fatal("the other candidate's campaign failed")
			}
			if got, err := b.el.Leader(ctx); err != nil || got != b.addr {
				t.Errorf("Leader() = %q, %v; want %s", got, err, b.addr)
			}
			bt.Resign()
		case <-time.After(10 * time.Second):
			t.Fatal("the other candidate did not win after the leader closed")
		}
		_, err = a.el.Campaign(ctx)
		wantErr(t, err, ErrClosed, "campaign after close")
	})
}

// TestElectionStoreClose closes the leader's store (for ZooKeeper, its session):
// the term ends and another candidate takes over within the session timeout and
// a few seconds.
func TestElectionStoreClose(t *testing.T) {
	forEachElectionBackend(t, func(t *testing.T, newCandidate func(*testing.T, string) candidate) {
		cands := []candidate{newCandidate(t, addr(0)), newCandidate(t, addr(1)), newCandidate(t, addr(2))}
		ctx := ctxTimeout(t, 60*time.Second)
		type win struct {
			i    int
			term *Term
		}
		wins := make(chan win, len(cands))
		for i, c := range cands {
			go func() {
				term, err := c.el.Campaign(ctx)
				if err != nil {
					if !errors.Is(err, ErrClosed) && ctx.Err() == nil {
						t.Errorf("%s: Campaign: %v", c.addr, err)
					}
					return
				}
				wins <- win{i, term}
			}()
		}
		first := <-wins
		select {
		case w := <-wins:
			t.Fatalf("%s and %s both won", cands[first.i].addr, cands[w.i].addr)
		case <-time.After(200 * time.Millisecond):
		}

		start := time.Now()
		mustDo(t, cands[first.i].store.Close())
		select {
		case <-first.term.Lost():
		case <-time.After(time.Second):
			t.Fatal("term still live a second after its store was closed")
		}
		var second win
		select {
		case second = <-wins:
		case <-time.After(testSessionTimeout + 5*time.Second):
			t.Fatal("no new leader within the session timeout + 5 s")
		}
		t.Logf("new leader %s %v after the old leader's store closed", cands[second.i].addr, time.Since(start))
		if got, err := cands[3-first.i-second.i].el.Leader(ctx); err != nil || got != cands[second.i].addr {
			t.Errorf("Leader() = %q, %v; want %s", got, err, cands[second.i].addr)
		}
		second.term.Resign()
		third := <-wins
		third.term.Resign()
	})
}
