package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestDiskFullBackoffDoublesAndStartsOver(t *testing.T) {
	ms := time.Millisecond
	t0 := time.Unix(1000, 0)
	cases := []struct {
		name  string
		gaps  []time.Duration // time since the previous pause ended, per failure
		wants []time.Duration
	}{
		{"doubles up to the bound", []time.Duration{0, 0, 0, 0, 0, 0, 0}, []time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second}},
		{"failures a pause apart are consecutive", []time.Duration{0, time.Second, 2 * time.Second}, []time.Duration{50 * ms, 100 * ms, 200 * ms}},
		{"a quiet spell starts over", []time.Duration{0, 0, 0, 3 * time.Second, 0}, []time.Duration{50 * ms, 100 * ms, 200 * ms, 50 * ms, 100 * ms}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newDiskFullBackoff(nil)
			now := t0
			for i, gap := range tc.gaps {
				now = now.Add(gap)
				if got := b.next(now); got != tc.wants[i] {
					t.Fatalf("failure %d: pause %v, want %v", i, got, tc.wants[i])
				}
				b.last = now
			}
		})
	}
}

func TestDiskFullBackoffNotifiesAndSleeps(t *testing.T) {
	var notified atomic.Int32
	b := newDiskFullBackoff(func() { notified.Add(1) })
	var slept []time.Duration
	b.sleep = func(d time.Duration) { slept = append(slept, d) }
	b.onDiskFull()
	b.onDiskFull()
	if notified.Load() != 2 || len(slept) != 2 || slept[0] != diskFullMinBackoff || slept[1] != 2*diskFullMinBackoff {
		t.Fatalf("notified %d times, slept %v", notified.Load(), slept)
	}
}

// lineCounter is a log destination that counts lines and keeps the text.
type lineCounter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineCounter) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lineCounter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Len()
}

// Pebble reports a lasting background failure on every retry: the store logs one
// line per interval, and says how many it left out.
func TestBackgroundErrorsAreRateLimited(t *testing.T) {
	var logs lineCounter
	s := openTestStore(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	for range 1000 {
		s.backgroundError(errors.New("disk full"))
	}
	if n := strings.Count(logs.text(), "pebble background error"); n != 1 {
		t.Fatalf("%d lines logged for 1000 errors in a burst, want 1:\n%s", n, logs.text())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.text(), "pebble background errors not logged") || !strings.Contains(logs.text(), "count=999") {
		t.Fatalf("close does not report the errors left out:\n%s", logs.text())
	}
}

// mountTmpfs mounts a tmpfs of size bytes and unmounts it when the test ends; it
// skips the test when that is not possible (not root, no mount).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs to fill")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs on %s: %v: %s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes path until the disk is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// On a full disk a flush cannot finish. Pebble retries it in a loop: the store must
// keep that loop cheap (CPU, log volume), Close must return within its bound, and
// the store reopened once there is room must hold its last flushed state, from
// which the mutations after it can be applied again (as the replica's log does).
func TestFullDiskFlushIsBoundedAndCloseReturns(t *testing.T) {
	mnt := mountTmpfs(t, 16<<20)
	var logs lineCounter
	var full atomic.Int32
	opts := testOptions(nil)
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	opts.CloseFlushTimeout = time.Second
	opts.OnDiskFull = func() { full.Add(1) }
	dir := filepath.Join(mnt, "db")
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testStore{Store: s, t: t, clk: newFakeClock()}
	value := strings.Repeat("v", 1000)
	for i := range 200 {
		ts.apply(putOp(fmt.Sprint("h", i), "s", value, 0))
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	durable := s.LastDurableDecree()
	for i := 200; i < 400; i++ {
		ts.apply(putOp(fmt.Sprint("h", i), "s", value, 0))
	}
	filler := filepath.Join(mnt, "filler")
	fillDisk(t, filler)

	const window = 3 * time.Second
	cpu0, log0, start := cpuTime(), logs.size(), time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), window)
	err = s.Flush(ctx)
	cancel()
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("a flush on a full disk succeeded")
	}
	cpu := float64(cpuTime()-cpu0) / float64(elapsed)
	logged := logs.size() - log0
	t.Logf("while full: %.0f%% of a core, %d bytes of log over %v, %d disk-full signals", 100*cpu, logged, elapsed.Round(time.Millisecond), full.Load())
	if cpu > 0.25 {
		t.Errorf("the failing flush loop used %.0f%% of a core", 100*cpu)
	}
	if logged > 16<<10 {
		t.Errorf("%d bytes logged in %v:\n%s", logged, elapsed, logs.text())
	}
	if full.Load() == 0 {
		t.Error("OnDiskFull was never called")
	}
	// Flushes queued behind the failing one must not pile up memtables until Pebble
	// stalls writes.
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		s.Flush(ctx)
		cancel()
	}
	ts.apply(putOp("after", "s", "v", 0))

	start = time.Now()
	err = s.Close()
	took := time.Since(start)
	t.Logf("close took %v: %v", took.Round(time.Millisecond), err)
	if err == nil {
		t.Error("Close says the final flush succeeded on a full disk")
	}
	if limit := opts.CloseFlushTimeout + 2*diskFullMaxBackoff + time.Second; took > limit {
		t.Errorf("Close took %v, more than %v", took, limit)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.LastAppliedDecree(); got != durable {
		t.Fatalf("reopened at decree %d, want the last flushed one %d", got, durable)
	}
	ts = &testStore{Store: s, t: t, clk: newFakeClock(), decree: durable}
	for i := 200; i < 400; i++ {
		ts.apply(putOp(fmt.Sprint("h", i), "s", value, 0))
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("flush once there is room again: %v", err)
	}
	ts.mustGet("h0", "s", value)
	ts.mustGet("h399", "s", value)
}
