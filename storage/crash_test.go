package storage

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/storage/keys"
)

// The crash test runs a child process (this test binary, re-executed into
// TestCrashChild) that applies a deterministic stream of mutations to a store and
// reports its flush points, kills it with SIGKILL at a random moment, reopens the store
// and checks that it holds exactly mutations 1..LastDurableDecree(). The child is
// restarted on the same directory a few times, resuming after the recovered decree, as
// a replica replaying its log would.

const (
	crashEnvDir  = "PEGASUS_CRASH_CHILD_DIR"
	crashEnvSeed = "PEGASUS_CRASH_CHILD_SEED"
	crashBaseTS  = int64(1748736000) * 1_000_000 // mutation timestamps start here
)

// crashMutation returns mutation d of the stream: a pure function of (seed, d), so that
// parent and child agree without talking. Values are large enough that the memtables
// fill and Pebble flushes on its own too.
func crashMutation(seed uint64, d int64) *Mutation {
	rng := rand.New(rand.NewPCG(seed, uint64(d)))
	ts := crashBaseTS + d*50_000 // 20 mutations per simulated second: TTLs expire mid-stream
	g := &opGen{rng: rng, now: keys.Epoch2016FromUnixMicros(ts), values: crashValues}
	ops := make([]Op, rng.IntN(4))
	for i := range ops {
		ops[i] = g.randOp()
	}
	return &Mutation{Decree: d, TimestampUS: ts, Ops: ops}
}

var crashValues = append(slices.Clone(modelValues), strings.Repeat("v", 300), strings.Repeat("w", 1000))

func crashOptions() Options {
	o := testOptions(nil)
	o.MemTableSize = 64 << 10
	o.Clock = func() time.Time { return time.Unix(0, crashBaseTS*1000) }
	return o
}

// TestCrashChild is the child side; it does nothing unless started by TestCrash.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnvDir)
	if dir == "" {
		t.Skip("only runs as the child of TestCrash")
	}
	seed, err := strconv.ParseUint(os.Getenv(crashEnvSeed), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, crashOptions())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	fmt.Printf("CRASHTEST start %d\n", s.LastAppliedDecree())
	for d := s.LastAppliedDecree() + 1; ; d++ {
		if _, err := s.Apply(crashMutation(seed, d)); err != nil {
			fmt.Printf("CRASHTEST error %v\n", err)
			os.Exit(2)
		}
		if rng.IntN(5000) == 0 {
			if err := s.Flush(t.Context()); err != nil {
				fmt.Printf("CRASHTEST error %v\n", err)
				os.Exit(2)
			}
			// Everything up to d is now durable: the parent holds us to it.
			fmt.Printf("CRASHTEST flushed %d\n", d)
		}
	}
}

func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PEGASUS_CRASH_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (rerun with PEGASUS_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := filepath.Join(t.TempDir(), "db")
	m := &model{recs: map[mkey]mrec{}}
	modelDecree := int64(0)
	const rounds = 4
	for round := range rounds {
		flushed := runCrashChild(t, dir, seed, time.Duration(300+rng.IntN(1200))*time.Millisecond)
		s, err := Open(dir, crashOptions())
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		applied, durable := s.LastAppliedDecree(), s.LastDurableDecree()
		if applied != durable {
			t.Fatalf("round %d: after reopen applied %d != durable %d", round, applied, durable)
		}
		if durable < flushed {
			t.Fatalf("round %d: durable decree %d below the reported flush point %d", round, durable, flushed)
		}
		if durable < modelDecree {
			t.Fatalf("round %d: durable decree went back from %d to %d", round, modelDecree, durable)
		}
		for d := modelDecree + 1; d <= durable; d++ {
			mu := crashMutation(seed, d)
			now := keys.Epoch2016FromUnixMicros(mu.TimestampUS)
			for i := range mu.Ops {
				m.applyOp(&mu.Ops[i], now)
			}
		}
		modelDecree = durable
		var got []string
		err = s.ForEach(t.Context(), func(r *Record) error {
			got = append(got, fmt.Sprintf("%q/%q=%q@%d", r.HashKey, r.SortKey, r.Value, r.ExpireTS))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, k := range m.sortedKeys() {
			r := m.recs[k]
			want = append(want, fmt.Sprintf("%q/%q=%q@%d", k.h, k.s, r.value, r.expire))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: state at decree %d differs from the model:\n got %d records\nwant %d records\nfirst diff: %s",
				round, durable, len(got), len(want), firstDiff(got, want))
		}
		t.Logf("round %d: killed child; recovered decree %d (last reported flush %d), %d records", round, durable, flushed, len(got))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// runCrashChild starts the child on dir, kills it with SIGKILL after d (once it has
// started), and returns the last flush point it reported.
func runCrashChild(t *testing.T, dir string, seed uint64, d time.Duration) int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), crashEnvDir+"="+dir, crashEnvSeed+"="+strconv.FormatUint(seed, 10))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var flushed int64
	var timer <-chan time.Time
	killed := false
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				err := cmd.Wait()
				if !killed {
					t.Fatalf("child exited on its own: %v", err)
				}
				return flushed
			}
			f := strings.Fields(line)
			if len(f) < 3 || f[0] != "CRASHTEST" {
				continue
			}
			switch f[1] {
			case "start":
				timer = time.After(d)
			case "flushed":
				n, _ := strconv.ParseInt(f[2], 10, 64)
				flushed = n
			case "error":
				t.Fatalf("child: %s", line)
			}
		case <-timer:
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed, timer = true, nil
		}
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("#%d got %s want %s", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}
