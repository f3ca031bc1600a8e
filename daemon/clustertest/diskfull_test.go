package clustertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc/kv"
)

// A replica server whose data disk fills up: its primaries refuse writes with
// ERR_DISK_INSUFFICIENT once the available ratio is below
// disk_min_available_space_ratio (10 %) and accept them again when space comes
// back; reads go on; when the disk is completely full the failing flushes cost
// little CPU and log; SIGTERM ends the process within the shutdown bound although
// its stores cannot flush; it refuses to start while the disk is full; and
// restarted once there is room it has lost no acknowledged write.
//
// Only replica1's directory is a 64 MB tmpfs: data_dirs names one path for every
// instance, each in its own <path>/<instance> subdirectory.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a 64 MB tmpfs as a replica server's data disk")
	}
	disks := t.TempDir()
	mnt := filepath.Join(disks, "replica1")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs on %s: %v: %s", mnt, err, out)
	}
	// Registered before the cluster's own cleanup, so it runs after the processes
	// are killed.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3, AssignDelay: 2 * time.Second,
		ExtraConfig: fmt.Sprintf("[replication]\ndata_dirs = tmpfs:%s\n", disks)})
	c.WaitHealthy(60 * time.Second)
	tb := c.OpenTable("temp")
	victim := c.Addr("replica", 1)

	acked := map[string]string{} // hash key -> value of every acknowledged write
	set := func(hk, v string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := tb.Set(ctx, []byte(hk), []byte("s"), []byte(v), 0)
		if err == nil {
			acked[hk] = v
		}
		return err
	}
	// keyOn returns a new hash key of partition pidx.
	n := 0
	keyOn := func(pidx int) string {
		n++
		return string(tb.HashKeyForPartition(pidx, fmt.Sprintf("k%d-", n)))
	}
	for i := 0; i < 80; i++ {
		if err := set(keyOn(i%tb.PartitionCount()), fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	var onVictim, elsewhere []int
	for i := 0; i < tb.PartitionCount(); i++ {
		if tb.Primary(i) == victim {
			onVictim = append(onVictim, i)
		} else {
			elsewhere = append(elsewhere, i)
		}
	}
	if len(onVictim) == 0 || len(elsewhere) == 0 {
		t.Fatalf("setup: replica1 is primary of partitions %v, the others of %v", onVictim, elsewhere)
	}
	readAll := func(when string) {
		t.Helper()
		for hk, want := range acked {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			v, err := tb.Get(ctx, []byte(hk), []byte("s"))
			cancel()
			if err != nil || string(v) != want {
				t.Fatalf("%s: %s reads %q, %v; want %q", when, hk, v, err, want)
			}
		}
	}
	// waitWrite writes to a partition of replica1 until the write's error is want
	// (nil: it succeeds).
	waitWrite := func(want string, timeout time.Duration) {
		t.Helper()
		waitfor.Until(t, timeout, 200*time.Millisecond, fmt.Sprintf("a write to replica1's partition %d to end in %s", onVictim[0], want), func() (bool, string) {
			err := set(keyOn(onVictim[0]), "w")
			code := base.ErrOK
			var ke *kv.Error
			if errors.As(err, &ke) {
				code = ke.Code
			} else if err != nil {
				code = err.Error()
			}
			return code == want, fmt.Sprint(err)
		})
	}

	// 1. Below the minimum ratio, not full: 3 MB of 64 left.
	filler := filepath.Join(mnt, "filler")
	fill(t, filler, availableBytes(t, mnt)-3<<20)
	waitWrite(base.ErrDiskInsufficient, 10*time.Second)
	for _, p := range onVictim {
		if err := set(keyOn(p), "x"); !isCode(err, base.ErrDiskInsufficient) {
			t.Fatalf("write to partition %d of replica1: %v, want %s", p, err, base.ErrDiskInsufficient)
		}
	}
	for _, p := range elsewhere {
		if err := set(keyOn(p), "y"); err != nil {
			t.Fatalf("write to partition %d, primary on a disk with room: %v", p, err)
		}
	}
	readAll("disk below the minimum")
	if st := diskStatus(t, victim, "tmpfs"); st != 1 {
		t.Fatalf("replica1's disk_status metric is %v, want 1 (SPACE_INSUFFICIENT)", st)
	}

	// 2. Space comes back: writes resume by themselves.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitWrite(base.ErrOK, 10*time.Second)
	if st := diskStatus(t, victim, "tmpfs"); st != 0 {
		t.Fatalf("replica1's disk_status metric is %v after space came back, want 0", st)
	}
	log := c.Log("replica", 1)
	if k, b := strings.Count(log, "data disk status changed: available space below the minimum"), strings.Count(log, "data disk status changed: writes accepted again"); k != 1 || b != 1 {
		t.Fatalf("status changes logged %d and %d times, want once each", k, b)
	}

	// 3. Completely full, with writes still in the memtables: flushes fail. The
	// writes stop first (below the minimum), as they do when a disk fills up slowly:
	// a write that finds the disk full fails its replica, which the meta server
	// then replaces elsewhere.
	for _, p := range onVictim {
		if err := set(keyOn(p), "z"); err != nil {
			t.Fatal(err)
		}
	}
	fill(t, filler, availableBytes(t, mnt)-3<<20)
	waitWrite(base.ErrDiskInsufficient, 10*time.Second)
	fill(t, filler, -1)
	pid := c.Pid("replica", 1)
	const window = 12 * time.Second // more than checkpoint_interval_seconds: a flush is tried
	logPath := filepath.Join(c.Dir(), "data", "log", "pegasus.replica1.log")
	log0, cpu0 := fileSize(t, logPath), cpuTicks(t, pid)
	time.Sleep(window) // the period measured: what the server does on a full disk while left alone
	logGrowth, cpu := fileSize(t, logPath)-log0, float64(cpuTicks(t, pid)-cpu0)/100/window.Seconds()
	t.Logf("replica1 on a full disk: log +%d bytes, %.1f%% of a core over %v", logGrowth, 100*cpu, window)
	if logGrowth > 1<<20 {
		t.Errorf("the log grew by %d bytes in %v on a full disk", logGrowth, window)
	}
	if cpu > 0.5 {
		t.Errorf("replica1 used %.0f%% of a core in %v on a full disk", 100*cpu, window)
	}
	if !strings.Contains(c.Log("replica", 1), "pebble background error") {
		t.Error("no flush failed on the full disk: the test did not exercise the failing flush")
	}
	readAll("full disk")

	// 4. SIGTERM: the stores cannot flush; the process must still end within the
	// shutdown bound ([core] shutdown_timeout_seconds, 30 s), and cleanly.
	took, err := c.StopTimed("replica", 1, 45*time.Second)
	t.Logf("SIGTERM on a full disk: exited after %v: %v", took.Round(time.Millisecond), err)
	if err != nil || took > 30*time.Second {
		t.Fatalf("SIGTERM on a full disk: %v after %v, want a clean exit within 30 s", err, took)
	}

	// 5. It does not start while the disk is full, and says why.
	c.Start("replica", 1)
	if err := c.WaitExit("replica", 1, 20*time.Second); err == nil || !strings.Contains(c.Output("replica", 1), "no space left on device") {
		t.Fatalf("started on a full disk: %v\n%s", err, c.Output("replica", 1))
	}

	// 6. Restarted with room: nothing acknowledged is lost, the replicas agree, and
	// every partition takes writes.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.Start("replica", 1)
	c.WaitHealthy(90 * time.Second)
	readAll("after the restart")
	for p := 0; p < tb.PartitionCount(); p++ {
		if err := set(keyOn(p), "after"); err != nil {
			t.Fatalf("write to partition %d after the restart: %v", p, err)
		}
	}
	sameData(t, c, 60*time.Second)
}

func isCode(err error, code string) bool {
	var ke *kv.Error
	return errors.As(err, &ke) && ke.Code == code
}

func availableBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// fill makes path size bytes long (allocated), or fills the disk when size < 0.
func fill(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if size >= 0 {
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, max(size, 1)); err != nil {
			t.Fatalf("allocate %d bytes: %v", size, err)
		}
		return
	}
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

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// cpuTicks returns the user and system time of a process, in clock ticks (1/100 s).
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command name, which is in parentheses: utime and stime
	// are the 14th and 15th fields of the line.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}

// diskStatus reads the disk_status metric of a data disk from a replica server.
func diskStatus(t *testing.T, addr, tag string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics?with_metric_fields=name,value&types=disk&metrics=disk_status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap metrics.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	for i := range snap.Entities {
		if e := &snap.Entities[i]; e.Type == "disk" && e.ID == tag {
			if m, ok := e.Find("disk_status"); ok && m.Value != nil {
				return *m.Value
			}
		}
	}
	t.Fatalf("no disk_status for disk %s at %s", tag, addr)
	return -1
}
