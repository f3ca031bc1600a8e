package waitfor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakeTB records a failure instead of ending the goroutine.
type fakeTB struct{ failed string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestPollHoldsAtOnce(t *testing.T) {
	calls := 0
	// A cancelled context: a condition already true is still seen.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Poll(ctx, time.Hour, func() (bool, string) { calls++; return true, "" }); err != nil || calls != 1 {
		t.Fatalf("Poll = %v after %d calls, want nil after 1", err, calls)
	}
}

func TestPollUntilTrue(t *testing.T) {
	calls := 0
	err := Within(10*time.Second, time.Millisecond, func() (bool, string) {
		calls++
		return calls == 5, fmt.Sprintf("call %d", calls)
	})
	if err != nil || calls != 5 {
		t.Fatalf("Within = %v after %d calls, want nil after 5", err, calls)
	}
}

func TestPollTimeoutReportsLastState(t *testing.T) {
	calls := 0
	start := time.Now()
	err := Within(50*time.Millisecond, 5*time.Millisecond, func() (bool, string) {
		calls++
		return false, fmt.Sprintf("state %d", calls)
	})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), fmt.Sprintf("last: state %d", calls)) {
		t.Fatalf("Within = %v after %d calls, want a deadline error naming the last state", err, calls)
	}
	if calls < 2 {
		t.Errorf("polled %d times in 50 ms at a 5 ms period", calls)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v, deadline 50 ms", d)
	}
}

func TestUntilFails(t *testing.T) {
	var f fakeTB
	Until(&f, 20*time.Millisecond, time.Millisecond, "the answer", func() (bool, string) { return false, "41" })
	if !strings.Contains(f.failed, "the answer: not within 20ms") || !strings.Contains(f.failed, "last: 41") {
		t.Fatalf("failure %q, want what was awaited and the last state", f.failed)
	}
	f = fakeTB{}
	True(&f, 20*time.Millisecond, time.Millisecond, "never", func() bool { return false })
	if !strings.Contains(f.failed, "never: not within") || !strings.Contains(f.failed, "(condition false)") {
		t.Fatalf("failure %q", f.failed)
	}
	f = fakeTB{}
	n := 0
	True(&f, 10*time.Second, time.Millisecond, "third", func() bool { n++; return n == 3 })
	if f.failed != "" {
		t.Fatalf("failed: %s", f.failed)
	}
}

// A slow check is not repeated back to back: the next one waits a period after
// it ends.
func TestPeriodAfterSlowCheck(t *testing.T) {
	var ends []time.Time
	const period = 30 * time.Millisecond
	_ = Within(10*time.Second, period, func() (bool, string) {
		if len(ends) > 0 {
			if gap := time.Since(ends[len(ends)-1]); gap < period-5*time.Millisecond {
				t.Errorf("check %d came %v after the previous one ended, period %v", len(ends)+1, gap, period)
			}
		}
		busy := time.Now().Add(2 * period)
		for time.Now().Before(busy) { // a slow check, longer than the period
		}
		ends = append(ends, time.Now())
		return len(ends) == 3, ""
	})
}
