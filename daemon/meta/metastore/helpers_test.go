package metastore

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/zktest"
	"github.com/pegasusgo/pegasus/internal/waitfor"
)

func TestMain(m *testing.M) {
	// Re-executed as a candidate process by TestLocalElectionAcrossProcesses.
	if dir := os.Getenv(childDirEnv); dir != "" {
		os.Exit(runChildCandidate(dir, os.Getenv(childAddrEnv)))
	}
	os.Exit(m.Run())
}

// testLogger logs through t.Logf (shown with -v or on failure) at info level,
// debug with PEGASUS_TEST_DEBUG=1. Messages from goroutines that outlive the
// test, which t.Logf would reject, are dropped.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	level := slog.LevelInfo
	if os.Getenv("PEGASUS_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// newZKStore opens a store (a new ZooKeeper session) closed at the end of the
// test.
func newZKStore(t testing.TB, addr string, sessionTimeout time.Duration) *ZKStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := NewZK(ctx, []string{addr}, sessionTimeout, testLogger(t))
	if err != nil {
		t.Fatalf("NewZK(%s): %v", addr, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newLocalStore(t testing.TB, dir string) *LocalStore {
	t.Helper()
	s, err := NewLocal(dir)
	if err != nil {
		t.Fatalf("NewLocal(%s): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// startZK starts a ZooKeeper server for the test.
// startZK starts a ZooKeeper server for the test; a failed test shows the end
// of the server's log, which is often where the reason is.
func startZK(t testing.TB) *zktest.Server {
	srv := zktest.Start(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ZooKeeper log %s:\n%s", srv.Dir(), srv.LogTail())
		}
	})
	return srv
}

// checkGoroutines fails the test if goroutines of this package or of
// go-zookeeper are still running once every other cleanup of the test has run.
// Call it first in the test, so that its cleanup runs last.
func checkGoroutines(t testing.TB) {
	t.Cleanup(func() {
		var leaked []string
		if waitfor.Within(10*time.Second, 50*time.Millisecond, func() (bool, string) {
			leaked = leakedGoroutines()
			return len(leaked) == 0, ""
		}) != nil {
			t.Errorf("%d goroutines left behind:\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
	})
}

// goroutines returns the stacks of every goroutine.
func goroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Split(string(buf), "\n\n")
}

// running reports whether a goroutine is inside fn (as named in a stack trace,
// e.g. "metastore.(*ZKStore).Set(").
func running(fn string) bool {
	for _, g := range goroutines() {
		if strings.Contains(g, fn) {
			return true
		}
	}
	return false
}

func leakedGoroutines() []string {
	var leaked []string
	for _, g := range goroutines() {
		if strings.Contains(g, "go-zookeeper/zk.") ||
			strings.Contains(g, "metastore.(*") ||
			strings.Contains(g, "metastore.NewZK") {
			leaked = append(leaked, g)
		}
	}
	return leaked
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	waitfor.True(t, timeout, 20*time.Millisecond, what, cond)
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func addr(i int) string { return fmt.Sprintf("127.0.0.1:%d", 34601+i) }
