// Package waitfor lets a test wait for a condition instead of sleeping: it polls
// the condition on a time.Ticker until it holds or a deadline passes, and on
// timeout reports the last state the condition observed, so that a failure says
// what the test saw rather than only that it waited.
//
// The condition runs on the calling goroutine, so it may call t.Fatal. The first
// check is immediate; each next one comes one period after the previous check
// ended, so a slow check (an RPC, a scan) is not repeated back to back.
package waitfor

import (
	"context"
	"fmt"
	"time"
)

// TB is the part of testing.TB the helpers use.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Poll checks cond at once and then every period until cond reports ok or ctx
// ends. It returns nil once cond held, otherwise an error wrapping ctx.Err() that
// carries the state cond last described.
func Poll(ctx context.Context, every time.Duration, cond func() (ok bool, state string)) error {
	ok, last := cond()
	if ok {
		return nil
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; last: %s", ctx.Err(), orNothing(last))
		case <-tick.C:
		}
		if ok, last = cond(); ok {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w; last: %s", ctx.Err(), orNothing(last))
		}
		tick.Reset(every) // the next check one period after this one ended
	}
}

// Until polls cond every period for at most timeout and fails t, naming what
// was awaited and the last state cond described, if it never holds.
func Until(t TB, timeout, every time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := Poll(ctx, every, cond); err != nil {
		t.Fatalf("%s: not within %v (%v)", what, timeout, err)
	}
}

// True is Until for a condition with no state to describe.
func True(t TB, timeout, every time.Duration, what string, cond func() bool) {
	t.Helper()
	Until(t, timeout, every, what, func() (bool, string) { return cond(), "" })
}

// Within is Poll with a deadline of timeout from now, for a wait whose end is
// not a failure (the caller decides what a timeout means).
func Within(timeout, every time.Duration, cond func() (ok bool, state string)) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return Poll(ctx, every, cond)
}

func orNothing(state string) string {
	if state == "" {
		return "(condition false)"
	}
	return state
}
