package repl_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/pegasusgo/pegasus/daemon/meta"
	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

// startMeta runs an in-process meta server with a default table "temp".
func startMeta(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	store, err := metastore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	elector := store.NewElector(addr)
	srv, err := meta.New(meta.Options{
		Self: addr, MetaServers: []string{addr}, ClusterName: "onebox", ClusterRoot: "/pegasus/onebox",
		Store: store, Elector: elector, MinLiveNodes: 1,
		DefaultTables: []meta.DefaultTable{{Name: "temp", PartitionCount: 4, ReplicaCount: 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := rpc.NewMux()
	srv.Register(mux)
	rs := rpc.NewServer(mux, rpc.ServerOptions{})
	go rs.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Run(ctx)
		elector.Close()
		store.Close()
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		rs.Close()
	})
	waitfor.True(t, 5*time.Second, 10*time.Millisecond, "a meta leader", srv.IsLeader)
	return addr
}

// screen collects what the shell writes to its terminal.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor waits until the screen shows text after offset from, returning where
// it ends.
func (s *screen) waitFor(t *testing.T, from int, text string) int {
	t.Helper()
	end := -1
	waitfor.Until(t, 15*time.Second, 20*time.Millisecond, fmt.Sprintf("the screen to show %q", text), func() (bool, string) {
		all := s.String()
		if i := strings.Index(all[min(from, len(all)):], text); i >= 0 {
			end = from + i + len(text)
			return true, ""
		}
		return false, fmt.Sprintf("the screen shows:\n%q", all[min(from, len(all)):])
	})
	return end
}

// renderStart begins each redraw of the prompt line by go-prompt (it hides the
// cursor while drawing).
const renderStart = "\x1b[?25l"

// renders counts the redraws of the prompt line so far.
func (s *screen) renders() int { return strings.Count(s.String(), renderStart) }

// TestInteractive drives the real binary through a pseudo-terminal: it types a
// command with tab completion, reads the rendered table, and leaves with Ctrl-D.
func TestInteractive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	metaAddr := startMeta(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "pegasus_shell")
	build := exec.Command("go", "build", "-o", bin, "github.com/pegasusgo/pegasus/cmd/pegasus_shell")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	history := filepath.Join(dir, "history")
	cmd := exec.Command(bin, "--meta", metaAddr)
	cmd.Env = append(os.Environ(), "PEGASUS_SHELL_HISTORY="+history, "TERM=xterm")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var scr screen
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&scr, tty)
	}()
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	})

	pos := scr.waitFor(t, 0, "The cluster name is: onebox")
	pos = scr.waitFor(t, pos, ">>> ")
	// "cluster_i" + Tab selects the only completion, cluster_info; Enter runs it.
	type_ := func(s string) {
		t.Helper()
		if _, err := tty.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	// press types keys and waits for the redraw that follows their reading:
	// go-prompt takes a read as a key (Tab, Enter) only when it holds nothing
	// else, so the next keys must come in a read of their own.
	press := func(keys string) {
		t.Helper()
		before := scr.renders()
		type_(keys)
		waitfor.Until(t, 15*time.Second, 10*time.Millisecond, fmt.Sprintf("the shell to redraw after reading %q", keys), func() (bool, string) {
			return scr.renders() > before, fmt.Sprintf("the screen shows:\n%q", scr.String()[pos:])
		})
	}
	press("cluster_i")
	press("\t")
	type_("\r")
	pos = scr.waitFor(t, pos, "[cluster_info]")
	pos = scr.waitFor(t, pos, "primary_meta_server           : "+metaAddr)
	pos = scr.waitFor(t, pos, "cluster_name                  : onebox")
	pos = scr.waitFor(t, pos, ">>> ")

	// Table names complete too.
	press("app te")
	press("\t")
	type_("\r")
	pos = scr.waitFor(t, pos, "app_name           : temp")
	scr.waitFor(t, pos, ">>> ")

	type_("\x04") // Ctrl-D on an empty line leaves
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("shell exit: %v\n%s", waitErr, scr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Ctrl-D did not end the shell; screen:\n%s", scr.String())
	}
	b, err := os.ReadFile(history)
	if err != nil || !strings.Contains(string(b), "cluster_info\n") || !strings.Contains(string(b), "app temp\n") {
		t.Errorf("history file: %v %q", err, b)
	}
}
