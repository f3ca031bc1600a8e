package mlog

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const crashDirEnv = "MLOG_CRASH_CHILD_DIR"

// crashRecord varies the size so that kills land inside headers and data alike, and so
// that rolls happen at irregular points.
func crashRecord(decree int64) Record {
	return mkRec(decree, int(decree*7919%3000))
}

// TestCrashChild is the child process of TestCrashKill. It appends until it is killed and
// prints "ack <decree>" once a record is acknowledged.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashKill")
	}
	l, err := Open(Options{Dir: dir, FileSizeBytes: 64 << 10, MaxPendingBytes: 256 << 10})
	if err != nil {
		fmt.Fprintf(os.Stderr, "open: %v\n", err)
		os.Exit(2)
	}
	next := l.MaxDecree() + 1
	fmt.Fprintf(os.Stdout, "ready %d\n", next)
	var mu sync.Mutex // decrees are appended in order, as the replica does
	for range 8 {
		go func() {
			for {
				mu.Lock()
				d := next
				next++
				l.Append(crashRecord(d), func(err error) {
					if err != nil {
						fmt.Fprintf(os.Stderr, "append %d: %v\n", d, err)
						os.Exit(3)
					}
					// One write(2) per line: a line the parent reads in full was
					// printed after the acknowledgement.
					fmt.Fprintf(os.Stdout, "ack %d\n", d)
				})
				mu.Unlock()
			}
		}()
	}
	// The parent kills us long before this; the timeout only ends an orphan.
	time.Sleep(time.Minute)
	os.Exit(4)
}

// TestCrashKill kills a process that is appending at random moments and checks that every
// acknowledged record survives. ForceFlush is off: a killed process leaves its completed
// writes in the page cache.
func TestCrashKill(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	acked := make(map[int64]bool)
	const rounds = 8
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan struct{})
		lines := make(chan []int64)
		go func() {
			var acks []int64
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				if strings.HasPrefix(line, "ready ") {
					close(ready)
					continue
				}
				if d, ok := strings.CutPrefix(line, "ack "); ok {
					n, err := strconv.ParseInt(d, 10, 64)
					if err == nil {
						acks = append(acks, n)
					}
				}
			}
			// No line can be cut by the kill: each one is a single pipe write
			// shorter than PIPE_BUF, which is atomic.
			lines <- acks
		}()
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child did not start: %s", stderr.String())
		}
		// The kill comes at a random moment of the appends: that moment is what
		// the test varies.
		time.Sleep(time.Duration(10+rng.IntN(250)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		acks := <-lines
		cmd.Wait()
		if strings.Contains(stderr.String(), "append") || strings.Contains(stderr.String(), "open:") {
			t.Fatalf("child failed: %s", stderr.String())
		}
		for _, d := range acks {
			acked[d] = true
		}

		var logBuf bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logBuf, nil))
		l, err := Open(Options{Dir: dir, FileSizeBytes: 64 << 10, Logger: logger})
		if err != nil {
			t.Fatalf("round %d: Open after kill: %v", round, err)
		}
		present := make(map[int64]bool)
		var prev int64
		err = l.Replay(func(r Record) error {
			if r.Decree <= prev {
				return fmt.Errorf("decree %d after %d", r.Decree, prev)
			}
			prev = r.Decree
			if !equalRecords([]Record{r}, []Record{crashRecord(r.Decree)}) {
				return fmt.Errorf("decree %d has the wrong content", r.Decree)
			}
			present[r.Decree] = true
			return nil
		})
		if err != nil {
			t.Fatalf("round %d: Replay: %v", round, err)
		}
		l.Close()
		for d := range acked {
			if !present[d] {
				t.Fatalf("round %d: acknowledged decree %d lost", round, d)
			}
		}
		t.Logf("round %d: %d acks this round, %d records in the log; recovery: %q",
			round, len(acks), len(present), strings.TrimSpace(logBuf.String()))
	}
	if len(acked) == 0 {
		t.Fatal("the child never acknowledged a record; the test proved nothing")
	}
}
