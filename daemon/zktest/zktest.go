// Package zktest runs a real, single-node ZooKeeper server for tests.
//
// The server is the Debian `zookeeper` package started as a JVM
// (QuorumPeerMain) on a free loopback port, with its data and logs in a
// temporary directory of the test. The JVM runs in its own process group and
// the whole group is killed by Stop and by the test's cleanup, so no
// ZooKeeper outlives the test that started it. Restart brings the server back
// on the same port and data directory, which lets tests simulate ZooKeeper
// outages.
//
// A missing java or ZooKeeper jar fails the test instead of skipping it: the
// ZooKeeper code paths are the production ones and must not go untested by
// accident. PEGASUS_ZK_CLASSPATH overrides the default classpath
// (/etc/zookeeper/conf:/usr/share/java/zookeeper.jar) and PEGASUS_ZK_JAVA the
// java binary.
package zktest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/testnet"
)

// Environment variables that override where ZooKeeper is found.
const (
	EnvClasspath = "PEGASUS_ZK_CLASSPATH"
	EnvJava      = "PEGASUS_ZK_JAVA"
)

const (
	defaultClasspath = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
	defaultJava      = "/usr/bin/java"
	mainClass        = "org.apache.zookeeper.server.quorum.QuorumPeerMain"

	// A cold JVM takes a few seconds on a loaded machine; a server that is not
	// answering after this long is broken, not slow.
	readyTimeout = 30 * time.Second
	// TickTime of the test server. Small, so that session expiry (rounded up
	// to ticks by the server) follows the client's timeout closely.
	TickTime = 500 * time.Millisecond
	// Session timeout bounds negotiated by the test server.
	MinSessionTimeout = 2 * TickTime
	MaxSessionTimeout = 60 * time.Second
)

// Server is one running (or stopped) ZooKeeper server owned by a test.
type Server struct {
	java      string
	classpath string
	dir       string
	cfgPath   string
	logPath   string
	port      int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has been waited for
}

// Start launches a ZooKeeper server and waits until it serves sessions. The
// server is killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	java, classpath, err := locate()
	if err != nil {
		t.Fatalf("zktest: %v", err)
	}
	// TempDir first: cleanups run last-in first-out, so the JVM registered
	// below is killed before its data directory is removed.
	dir := t.TempDir()
	s := &Server{
		java:      java,
		classpath: classpath,
		dir:       dir,
		cfgPath:   filepath.Join(dir, "zoo.cfg"),
		logPath:   filepath.Join(dir, "zookeeper.out"),
	}
	t.Cleanup(s.Stop)

	// The free port is found by binding and releasing it, so another process
	// can take it before the JVM binds: try a few ports before giving up.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("zktest: %v", err)
		}
		s.port = port
		if err := s.writeConfig(); err != nil {
			t.Fatalf("zktest: %v", err)
		}
		if lastErr = s.start(); lastErr == nil {
			return s
		}
		s.Stop()
	}
	t.Fatalf("zktest: start ZooKeeper: %v", lastErr)
	return nil
}

// Addr returns the client address, "127.0.0.1:port".
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// LogTail returns the end of the server's log, for a failing test to show.
func (s *Server) LogTail() string { return tail(s.logPath) }

// Dir returns the directory holding the configuration, data and logs.
func (s *Server) Dir() string { return s.dir }

// Stop kills the server (SIGKILL to its process group, like a crash) and waits
// for it to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Restart stops the server if it runs and starts it again on the same port
// with the same data, so sessions, ephemeral nodes and data survive as they
// would in a real ZooKeeper restart.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	// The port was released a moment ago and ZooKeeper binds with
	// SO_REUSEADDR, but another process may still grab it: retry briefly.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		s.Stop()
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("zktest: restart ZooKeeper on %s: %v", s.Addr(), err)
}

// Running reports whether the server process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// PID returns the JVM's process id, 0 when stopped.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()

	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	defer logFile.Close() // the child has its own copy of the descriptor
	cmd := exec.Command(s.java,
		"-Xmx256m",
		// No /tmp/hsperfdata_<user>/<pid> file, which a killed JVM leaves behind.
		"-XX:-UsePerfData",
		"-Dzookeeper.log.dir="+s.dir,
		"-Dzookeeper.root.logger=INFO,ROLLINGFILE",
		"-cp", s.classpath,
		mainClass, s.cfgPath)
	cmd.Dir = s.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Own process group, so Stop can kill the JVM together with anything it
	// spawned; Pdeathsig covers a test binary that dies without cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", s.java, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // a killed JVM exits with an error; nothing to report
		close(done)
	}()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(readyTimeout)
	for {
		if serving(s.Addr()) {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("ZooKeeper exited during start (%v); log %s:\n%s",
				cmd.ProcessState, s.logPath, tail(s.logPath))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ZooKeeper on %s was not serving within %v; log %s:\n%s",
				s.Addr(), readyTimeout, s.logPath, tail(s.logPath))
		}
	}
}

func (s *Server) stopLocked() {
	if s.cmd == nil {
		return
	}
	// Negative pid: the whole process group led by the JVM.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd, s.done = nil, nil
}

func (s *Server) writeConfig() error {
	cfg := strings.Join([]string{
		fmt.Sprintf("tickTime=%d", TickTime.Milliseconds()),
		"dataDir=" + filepath.Join(s.dir, "data"),
		fmt.Sprintf("clientPort=%d", s.port),
		"clientPortAddress=127.0.0.1",
		"admin.enableServer=false",
		fmt.Sprintf("minSessionTimeout=%d", MinSessionTimeout.Milliseconds()),
		fmt.Sprintf("maxSessionTimeout=%d", MaxSessionTimeout.Milliseconds()),
		"4lw.commands.whitelist=ruok,stat,srvr",
		// Tests kill the JVM, never the machine: the page cache keeps the
		// data, and skipping fsync makes writes fast.
		"forceSync=no",
		// The default preallocates 64 MiB per transaction log.
		"preAllocSize=1024",
		"",
	}, "\n")
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", s.cfgPath, err)
	}
	return nil
}

// locate finds java and the classpath, reporting what is missing and how to
// fix it.
func locate() (java, classpath string, err error) {
	java = os.Getenv(EnvJava)
	if java == "" {
		java = defaultJava
		if _, err := os.Stat(java); err != nil {
			if p, lerr := exec.LookPath("java"); lerr == nil {
				java = p
			}
		}
	}
	if _, err := os.Stat(java); err != nil {
		return "", "", fmt.Errorf("java not found at %s (install the Debian package `zookeeper`, which brings a JRE, or set %s): %w", java, EnvJava, err)
	}
	classpath = os.Getenv(EnvClasspath)
	if classpath == "" {
		classpath = defaultClasspath
	}
	for _, entry := range filepath.SplitList(classpath) {
		if entry == "" || strings.ContainsAny(entry, "*") {
			continue // wildcards are expanded by java
		}
		if _, err := os.Stat(entry); err != nil {
			return "", "", fmt.Errorf("ZooKeeper classpath entry %s missing (install the Debian package `zookeeper` or set %s): %w", entry, EnvClasspath, err)
		}
	}
	return java, classpath, nil
}

func freePort() (int, error) {
	ports, err := testnet.Ports(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// serving reports whether the server accepts sessions. ZooKeeper answers
// "ruok" as soon as it listens, before it has loaded its database (and a
// restart that then fails to load it exits after answering), so readiness is
// "srvr", which reports the server's version only once it is serving.
func serving(addr string) bool {
	reply, ok := fourLetter(addr, "srvr")
	return ok && bytes.HasPrefix(reply, []byte("Zookeeper version:"))
}

// ruok sends ZooKeeper's "are you ok" four-letter command.
func ruok(addr string) bool {
	reply, ok := fourLetter(addr, "ruok")
	return ok && bytes.Equal(reply, []byte("imok"))
}

// fourLetter sends one of ZooKeeper's four-letter commands and returns the
// whole reply.
func fourLetter(addr, cmd string) ([]byte, bool) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(cmd)); err != nil {
		return nil, false
	}
	reply, err := io.ReadAll(io.LimitReader(conn, 64<<10))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, false
	}
	return reply, true
}

// tail returns the end of a log file for failure messages.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	const max = 4096
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return string(data)
}
