package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestShutdownWatchdog(t *testing.T) {
	cases := []struct {
		name        string
		stop        bool          // the stop request comes
		stopsAfter  time.Duration // the roles stop this long after it (< 0: never)
		wantTimeout bool
	}{
		{"no stop request", false, -1, false},
		{"roles stop in time", true, 10 * time.Millisecond, false},
		{"roles never stop", true, -1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stopped := make(chan struct{})
			var restored, timedOut atomic.Bool
			done := make(chan struct{})
			go func() {
				defer close(done)
				shutdownWatchdog(ctx, 100*time.Millisecond, stopped, func() { restored.Store(true) }, func() { timedOut.Store(true) })
			}()
			if tc.stop {
				cancel()
			}
			if tc.stopsAfter >= 0 {
				time.Sleep(tc.stopsAfter) // the roles' stopping time, the case under test
				close(stopped)
			}
			select {
			case <-done:
			case <-time.After(time.Second):
				if tc.stop || tc.stopsAfter >= 0 {
					t.Fatal("the watchdog did not end")
				}
				close(stopped) // no stop request and no stop: end it
				<-done
			}
			if timedOut.Load() != tc.wantTimeout {
				t.Fatalf("timed out: %v, want %v", timedOut.Load(), tc.wantTimeout)
			}
			if restored.Load() != tc.stop {
				t.Fatalf("signals restored: %v, want %v", restored.Load(), tc.stop)
			}
		})
	}
}
