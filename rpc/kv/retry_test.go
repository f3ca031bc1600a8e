package kv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/internal/kvtest"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

// setFault installs f on every node.
func (e *env) setFault(f kvtest.FaultFunc) {
	for _, n := range e.c.Nodes() {
		n.SetFault(f)
	}
}

func TestRetriedErrors(t *testing.T) {
	e := newEnv(t, 4, nil)
	ctx, cancel := e.ctx()
	defer cancel()
	for _, code := range []string{base.ErrInvalidState, base.ErrObjectNotFound, base.ErrParentPartitionMisused,
		base.ErrForwardToOthers, base.ErrBusy, base.ErrNotEnoughMember, base.ErrCapacityExceeded, base.ErrTimeout} {
		t.Run(code, func(t *testing.T) {
			e.setFault(kvtest.FailFirst(3, code, rpc.CodePut, rpc.CodeGet))
			defer e.setFault(nil)
			before := e.c.Calls(rpc.CodePut)
			if err := e.tbl.Set(ctx, []byte("retry"), []byte(code), []byte("v"), 0); err != nil {
				t.Fatalf("set: %v", err)
			}
			if n := e.c.Calls(rpc.CodePut) - before; n != 4 {
				t.Fatalf("%d PUT calls, want 4 (3 refused, 1 served)", n)
			}
			if v := e.get("retry", code); string(v) != "v" {
				t.Fatalf("get = %q", v)
			}
		})
	}
}

func TestFinalErrors(t *testing.T) {
	e := newEnv(t, 4, nil)
	ctx, cancel := e.ctx()
	defer cancel()
	for _, code := range []string{base.ErrHandlerNotFound, base.ErrInvalidData, base.ErrACLDeny, base.ErrOperationDisabled, base.ErrSplitting} {
		t.Run(code, func(t *testing.T) {
			e.setFault(kvtest.FailFirst(1, code))
			defer e.setFault(nil)
			before := e.c.Calls(rpc.CodeGet)
			_, err := e.tbl.Get(ctx, []byte("final"), []byte("x"))
			var ke *Error
			if !errors.As(err, &ke) || ke.Code != code || ke.Op != "Get" || ke.Table != "t" {
				t.Fatalf("err = %v, want Code %s", err, code)
			}
			if n := e.c.Calls(rpc.CodeGet) - before; n != 1 {
				t.Fatalf("%d GET calls, want 1", n)
			}
		})
	}
}

func TestNonIdempotentRetries(t *testing.T) {
	e := newEnv(t, 4, nil)
	ctx, cancel := e.ctx()
	defer cancel()
	hk := []byte("inc")

	// A refusal proves the replica did not execute the request: retried.
	e.setFault(kvtest.FailFirst(2, base.ErrInvalidState, rpc.CodeIncr))
	if v, err := e.tbl.Incr(ctx, hk, []byte("a"), 1, 0); err != nil || v != 1 {
		t.Fatalf("incr after refusals = %d, %v", v, err)
	}

	// A replica-side timeout may follow execution: not retried.
	e.setFault(kvtest.FailFirst(1, base.ErrTimeout, rpc.CodeIncr, rpc.CodeCheckAndSet, rpc.CodeCheckAndMutate))
	before := e.c.Calls(rpc.CodeIncr)
	if _, err := e.tbl.Incr(ctx, hk, []byte("a"), 1, 0); ErrorCode(err) != base.ErrTimeout {
		t.Fatalf("incr after a timeout: %v", err)
	}
	if n := e.c.Calls(rpc.CodeIncr) - before; n != 1 {
		t.Fatalf("%d INCR calls, want 1", n)
	}
	e.setFault(kvtest.FailFirst(1, base.ErrTimeout, rpc.CodeCheckAndSet))
	if _, err := e.tbl.CheckAndSet(ctx, hk, []byte("a"), rrdb.CasCheckType_CT_NO_CHECK, nil, []byte("a"), []byte("1"), CheckAndSetOptions{}); ErrorCode(err) != base.ErrTimeout {
		t.Fatalf("check and set after a timeout: %v", err)
	}
	e.setFault(nil)

	// A connection lost with the request in flight is not retried either.
	pidx := e.tbl.PartitionOf(hk)
	primary := e.c.Primary("t", pidx)
	var once sync.Once
	primary.SetFault(func(code string, gpid base.Gpid) kvtest.Fault {
		if code == rpc.CodeIncr {
			// Crash the node while the request waits for its answer.
			once.Do(func() { go primary.Stop() })
			return kvtest.Fault{Drop: true}
		}
		return kvtest.Fault{}
	})
	_, err := e.tbl.Incr(ctx, hk, []byte("a"), 1, 0)
	if ErrorCode(err) != base.ErrSessionReset || !errors.Is(err, rpc.ErrConnectionLost) {
		t.Fatalf("incr on a crashing node: %v", err)
	}
	primary.SetFault(nil)
	if err := primary.Start(); err != nil {
		t.Fatal(err)
	}
}

func TestPrimaryMoved(t *testing.T) {
	e := newEnv(t, 4, nil)
	for pidx := range 4 {
		hk := string(e.tbl.HashKeyForPartition(pidx, "moved"))
		e.set(hk, "s", "before")
	}
	queries := e.client.queries.Load()
	for pidx := range 4 {
		old := e.c.Primary("t", pidx)
		to := e.c.Node((indexOf(e.c, old) + 1) % 3)
		e.c.MovePrimary("t", pidx, to)
	}
	for pidx := range 4 {
		hk := string(e.tbl.HashKeyForPartition(pidx, "moved"))
		if v := e.get(hk, "s"); string(v) != "before" {
			t.Fatalf("partition %d: get = %q", pidx, v)
		}
		e.set(hk, "s", "after")
		if got := e.tbl.Primary(pidx); got != e.c.Primary("t", pidx).Addr() {
			t.Fatalf("partition %d: client routes to %s, meta says %s", pidx, got, e.c.Primary("t", pidx).Addr())
		}
	}
	if n := e.client.queries.Load() - queries; n < 1 || n > 8 {
		t.Fatalf("%d routing queries to follow 4 moved primaries", n)
	}
}

func indexOf(c *kvtest.Cluster, n *kvtest.Node) int {
	for i, m := range c.Nodes() {
		if m == n {
			return i
		}
	}
	return -1
}

func TestNodeCrash(t *testing.T) {
	e := newEnv(t, 8, func(c *Config) { c.OperationTimeout = 20 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for pidx := range 8 {
		e.set(string(e.tbl.HashKeyForPartition(pidx, "crash")), "s", "v")
	}
	victim := e.c.Primary("t", 0)
	victim.Stop()
	// Every partition stays readable and writable: the crashed node's partitions
	// after the meta server notices and a secondary takes over.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for pidx := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hk := e.tbl.HashKeyForPartition(pidx, "crash")
			v, err := e.tbl.Get(ctx, hk, []byte("s"))
			if err == nil && string(v) != "v" {
				err = fmt.Errorf("partition %d: get = %q", pidx, v)
			}
			if err == nil {
				err = e.tbl.Set(ctx, hk, []byte("s2"), []byte("v2"), 0)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if p := e.c.Primary("t", 0); p == nil || p == victim {
		t.Fatalf("partition 0 primary is %v after the crash", p)
	}
}

func TestDeadline(t *testing.T) {
	e := newEnv(t, 4, func(c *Config) { c.OperationTimeout = 300 * time.Millisecond })

	t.Run("no reply", func(t *testing.T) {
		e.setFault(func(code string, _ base.Gpid) kvtest.Fault { return kvtest.Fault{Drop: true} })
		defer e.setFault(nil)
		start := time.Now()
		_, err := e.tbl.Get(context.Background(), []byte("k"), []byte("s"))
		d := time.Since(start)
		if ErrorCode(err) != base.ErrTimeout || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ERR_TIMEOUT", err)
		}
		if d < 250*time.Millisecond || d > 2*time.Second {
			t.Fatalf("gave up after %v, want about the 300 ms operation timeout", d)
		}
	})

	t.Run("earlier context deadline wins", func(t *testing.T) {
		e.setFault(func(code string, _ base.Gpid) kvtest.Fault { return kvtest.Fault{Drop: true} })
		defer e.setFault(nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := e.tbl.Set(ctx, []byte("k"), []byte("s"), []byte("v"), 0)
		if ErrorCode(err) != base.ErrTimeout || time.Since(start) > time.Second {
			t.Fatalf("err = %v after %v", err, time.Since(start))
		}
	})

	t.Run("refused until the deadline", func(t *testing.T) {
		e.setFault(func(code string, _ base.Gpid) kvtest.Fault { return kvtest.Fault{Err: base.ErrInvalidState} })
		defer e.setFault(nil)
		queries := e.client.queries.Load()
		before := e.c.Calls(rpc.CodeGet)
		start := time.Now()
		_, err := e.tbl.Get(context.Background(), []byte("k"), []byte("s"))
		d := time.Since(start)
		if ErrorCode(err) != base.ErrInvalidState || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ERR_INVALID_STATE after the deadline", err)
		}
		calls := e.c.Calls(rpc.CodeGet) - before
		// Back-off 10, 20, 40, 80, 160 ms (cut short by refreshes): a handful of
		// attempts, not a busy loop.
		if calls < 2 || calls > 20 {
			t.Fatalf("%d attempts in %v", calls, d)
		}
		// At most one routing query per 100 ms.
		if n := e.client.queries.Load() - queries; n < 1 || n > int64(d/(100*time.Millisecond))+2 {
			t.Fatalf("%d routing queries in %v", n, d)
		}
	})

	t.Run("answered, then silent until the deadline", func(t *testing.T) {
		// The first attempt is refused, every later one gets no reply: the
		// error names the refusal, not only the timeout.
		var gets atomic.Int64
		e.setFault(func(code string, _ base.Gpid) kvtest.Fault {
			if code == rpc.CodeGet && gets.Add(1) == 1 {
				return kvtest.Fault{Err: base.ErrInvalidState}
			}
			return kvtest.Fault{Drop: true}
		})
		defer e.setFault(nil)
		_, err := e.tbl.Get(context.Background(), []byte("k"), []byte("s"))
		if ErrorCode(err) != base.ErrInvalidState || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ERR_INVALID_STATE after the deadline", err)
		}
		if gets.Load() < 2 {
			t.Fatalf("%d attempts, want the refusal and at least one unanswered", gets.Load())
		}
	})

	t.Run("attempt timeout retries a hung primary", func(t *testing.T) {
		client := newTestClient(t, e.c, func(c *Config) {
			c.OperationTimeout = 3 * time.Second
			c.AttemptTimeout = 100 * time.Millisecond
		})
		ctx, cancel := e.ctx()
		defer cancel()
		tbl, err := client.OpenTable(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		var dropped atomic.Int64
		e.setFault(func(code string, _ base.Gpid) kvtest.Fault {
			if code == rpc.CodeGet && dropped.Add(1) <= 2 {
				return kvtest.Fault{Drop: true}
			}
			return kvtest.Fault{}
		})
		defer e.setFault(nil)
		e.set("hung", "s", "v")
		if v, err := tbl.Get(ctx, []byte("hung"), []byte("s")); err != nil || string(v) != "v" {
			t.Fatalf("get = %q, %v", v, err)
		}
	})
}

func TestRefreshIsShared(t *testing.T) {
	e := newEnv(t, 4, func(c *Config) { c.OperationTimeout = 2 * time.Second })
	ctx, cancel := e.ctx()
	defer cancel()
	// Every partition refuses for a while: many concurrent callers, few queries.
	var refusals atomic.Int64
	e.setFault(func(code string, _ base.Gpid) kvtest.Fault {
		if refusals.Add(1) <= 200 {
			return kvtest.Fault{Err: base.ErrObjectNotFound}
		}
		return kvtest.Fault{}
	})
	queries := e.client.queries.Load()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- e.tbl.Set(ctx, fmt.Appendf(nil, "shared%d", i), []byte("s"), []byte("v"), 0)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	d := time.Since(start)
	if n := e.client.queries.Load() - queries; n > int64(d/(100*time.Millisecond))+2 {
		t.Fatalf("%d routing queries in %v for 50 callers", n, d)
	}
}

func TestTableDropped(t *testing.T) {
	e := newEnv(t, 2, nil)
	ctx, cancel := e.ctx()
	defer cancel()
	e.set("k", "s", "v")
	resp, err := rpc.CallMeta[admin.ConfigurationDropAppResponse](ctx, e.c.Meta(), rpc.CodeDropApp,
		&admin.ConfigurationDropAppRequest{AppName: "t", Options: admin.NewDropAppOptions()})
	if err != nil || !resp.Err.OK() {
		t.Fatalf("drop: %v %v", resp, err)
	}
	e.c.Sync()
	_, err = e.tbl.Get(ctx, []byte("k"), []byte("s"))
	if !errors.Is(err, ErrTableNotFound) {
		t.Fatalf("get on a dropped table: %v", err)
	}
	if _, err := e.client.OpenTable(ctx, "t"); !errors.Is(err, ErrTableNotFound) {
		t.Fatalf("open a dropped table: %v", err)
	}
}

func TestPartitionWithoutPrimary(t *testing.T) {
	c := kvtest.StartClusterWithOptions(t, kvtest.Options{Nodes: 3, NoTakeover: true})
	c.CreateTable("t", 4)
	// Operations on the orphaned partitions must run into the deadline: a short one.
	// The others must succeed even on a busy machine: the default.
	short := newTestClient(t, c, func(cfg *Config) { cfg.OperationTimeout = 500 * time.Millisecond })
	long := newTestClient(t, c, nil)
	ctx := context.Background()
	shortTbl, err := short.OpenTable(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	longTbl, err := long.OpenTable(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	victim := c.Primary("t", 0)
	lost := map[int]bool{}
	for pidx := range 4 {
		if c.Primary("t", pidx) == victim {
			lost[pidx] = true
		}
	}
	victim.Stop()
	waitfor.True(t, 10*time.Second, 20*time.Millisecond, "the meta server to remove the dead primary", func() bool { return c.Primary("t", 0) == nil })

	// Opening the table waits for the missing primaries, then gives up.
	_, err = short.OpenTable(ctx, "t")
	if !errors.Is(err, ErrNoPrimary) || ErrorCode(err) != base.ErrInvalidState || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("open: %v", err)
	}
	var ke *Error
	if !errors.As(err, &ke) || ke.Op != "OpenTable" {
		t.Fatalf("open error op: %v", err)
	}

	// An open table keeps serving the other partitions; the orphaned ones fail with
	// the partition's state named.
	for pidx := range 4 {
		if lost[pidx] {
			err := shortTbl.Set(ctx, shortTbl.HashKeyForPartition(pidx, "orphan"), []byte("s"), []byte("v"), 0)
			if ErrorCode(err) != base.ErrObjectNotFound || !errors.Is(err, ErrNoPrimary) {
				t.Fatalf("partition %d without primary: %v", pidx, err)
			}
			continue
		}
		if err := longTbl.Set(ctx, longTbl.HashKeyForPartition(pidx, "orphan"), []byte("s"), []byte("v"), 0); err != nil {
			t.Fatalf("partition %d: %v", pidx, err)
		}
	}

	// Once a primary is back, the same table works everywhere.
	for pidx := range lost {
		c.MovePrimary("t", pidx, c.Node((indexOf(c, victim)+1)%3))
	}
	for pidx := range 4 {
		if err := longTbl.Set(ctx, longTbl.HashKeyForPartition(pidx, "orphan"), []byte("s"), []byte("v"), 0); err != nil {
			t.Fatalf("partition %d after the takeover: %v", pidx, err)
		}
	}
	if _, err := long.OpenTable(ctx, "t"); err != nil {
		t.Fatalf("open after the takeover: %v", err)
	}
}
