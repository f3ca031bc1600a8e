package metastore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Environment of a child candidate process (see TestMain).
const (
	childDirEnv  = "PEGASUS_METASTORE_TEST_CHILD_DIR"
	childAddrEnv = "PEGASUS_METASTORE_TEST_CHILD_ADDR"
)

// runChildCandidate is the body of a child process: campaign on the shared
// directory, print "LEADER <addr>" on winning, and live until stdin closes
// (the parent test ends or dies) or the process is killed.
func runChildCandidate(dir, addr string) int {
	s, err := NewLocal(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	el := s.NewElector(addr)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	fmt.Println("CAMPAIGNING", addr)
	term, err := el.Campaign(ctx)
	if err != nil {
		return 0 // stdin closed: the parent is done with us
	}
	fmt.Println("LEADER", addr)
	select {
	case <-term.Lost():
		fmt.Println("LOST", addr)
	case <-ctx.Done():
	}
	return 0
}

type childProc struct {
	addr  string
	cmd   *exec.Cmd
	stdin io.Closer
	done  chan struct{}
}

// TestLocalElectionAcrossProcesses runs three candidate processes on one
// directory and kills the leader with SIGKILL: the kernel releases its lock and
// another process wins within a few seconds.
func TestLocalElectionAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	lines := make(chan string, 32)
	var children []*childProc
	t.Cleanup(func() {
		for _, c := range children {
			c.stdin.Close()
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
	for i := 0; i < 3; i++ {
		c := &childProc{addr: addr(i), done: make(chan struct{})}
		c.cmd = exec.Command(os.Args[0], "-test.run=^$")
		c.cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childAddrEnv+"="+c.addr)
		c.cmd.Stderr = os.Stderr
		stdin, err := c.cmd.StdinPipe()
		mustDo(t, err)
		stdout, err := c.cmd.StdoutPipe()
		mustDo(t, err)
		c.stdin = stdin
		mustDo(t, c.cmd.Start())
		children = append(children, c)
		go func() {
			defer close(c.done)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			_ = c.cmd.Wait() // after the output is drained, as Wait requires
		}()
	}

	ctx := ctxTimeout(t, 30*time.Second)
	observer := newLocalStore(t, dir).NewElector("observer")
	leaderLine := func(what string) string {
		t.Helper()
		for {
			select {
			case l := <-lines:
				if addr, ok := strings.CutPrefix(l, "LEADER "); ok {
					return addr
				}
				if !strings.HasPrefix(l, "CAMPAIGNING ") {
					t.Fatalf("unexpected child output %q", l)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no child became leader %s", what)
			}
		}
	}
	first := leaderLine("at start")
	if got, err := observer.Leader(ctx); err != nil || got != first {
		t.Fatalf("Leader() = %q, %v; want %s", got, err, first)
	}
	var victim *childProc
	for _, c := range children {
		if c.addr == first {
			victim = c
		}
	}
	// Nobody else may win while the leader lives.
	select {
	case l := <-lines:
		if strings.HasPrefix(l, "LEADER ") {
			t.Fatalf("second leader while %s lives: %q", first, l)
		}
	case <-time.After(500 * time.Millisecond):
	}

	killed := time.Now()
	mustDo(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	second := leaderLine("after the leader was killed")
	t.Logf("%s took over %v after %s was killed", second, time.Since(killed), first)
	if second == first {
		t.Fatalf("the killed process %s won again", first)
	}
	if time.Since(killed) > 5*time.Second {
		t.Errorf("takeover took %v, want a few seconds at most", time.Since(killed))
	}
	if got, err := observer.Leader(ctx); err != nil || got != second {
		t.Errorf("Leader() = %q, %v; want %s", got, err, second)
	}
}
