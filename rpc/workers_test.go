package rpc

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/internal/waitfor"
)

// TestWorkersReusedAndNeverWaitedFor: calls made one after the other run on
// one worker; calls that block do not hold up the others of their connection
// (each finds a worker of its own); after a burst at most maxIdleWorkers stay,
// and Close ends them.
func TestWorkersReusedAndNeverWaitedFor(t *testing.T) {
	base0 := runtime.NumGoroutine()
	release := make(chan struct{})
	mux := NewMux()
	Handle(mux, CodeGet, func(ctx context.Context, call *Call, key *base.Blob) (*rrdb.ReadResponse, error) {
		if string(key.Bytes()) == "block" {
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return &rrdb.ReadResponse{Value: key}, nil
	})
	s, addr := startServer(t, mux, ServerOptions{})
	c := NewClient(addr, ClientOptions{})
	defer c.Close()
	ctx := context.Background()
	get := func(key string) error {
		var r rrdb.ReadResponse
		if err := c.Call(ctx, Request{Code: CodeGet, Args: base.BlobString(key)}, &r); err != nil {
			return err
		}
		if string(r.Value.Bytes()) != key {
			return fmt.Errorf("reply %q to %q", r.Value.Bytes(), key)
		}
		return nil
	}

	for i := 0; i < 100; i++ {
		if err := get("k"); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.workers.started.Load(); n > 2 {
		t.Fatalf("100 calls one after the other started %d workers, want them to reuse one", n)
	}

	// More blocked calls than workers are kept: every one is running at once.
	const blocked = maxIdleWorkers + 44
	var wg sync.WaitGroup
	errs := make(chan error, blocked)
	for i := 0; i < blocked; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := get("block"); err != nil {
				errs <- err
			}
		}()
	}
	waitfor.Until(t, 10*time.Second, time.Millisecond, "every blocked call to run", func() (bool, string) {
		n := runtime.NumGoroutine()
		// Each blocked call holds a caller goroutine and a worker.
		return n >= base0+2*blocked, fmt.Sprintf("%d goroutines", n)
	})
	// A call behind them on the same connection is answered at once.
	if err := get("k"); err != nil {
		t.Fatal(err)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitfor.Until(t, 10*time.Second, time.Millisecond, "the workers of the burst to end", func() (bool, string) {
		n := s.workers.idle.Load()
		return n <= maxIdleWorkers && runtime.NumGoroutine() <= base0+maxIdleWorkers+8, fmt.Sprintf("%d idle, %d goroutines", n, runtime.NumGoroutine())
	})
	c.Close()
	s.Close()
	settleGoroutines(t, base0+2)
}
