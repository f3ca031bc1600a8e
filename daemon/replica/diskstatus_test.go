package replica

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

const (
	normal       = metadata.DiskStatus_NORMAL
	insufficient = metadata.DiskStatus_SPACE_INSUFFICIENT
	ioError      = metadata.DiskStatus_IO_ERROR
)

// The status follows upstream's dir_node::update_disk_stat: the rounded available
// ratio against the minimum, strictly below.
func TestDiskStatusOf(t *testing.T) {
	cases := []struct {
		capMB, availMB int64
		minRatio       int
		wantRatio      int64
		want           metadata.DiskStatus
	}{
		{1000, 500, 10, 50, normal},
		{1000, 100, 10, 10, normal},        // at the minimum is enough
		{1000, 95, 10, 10, normal},         // 9.5 rounds to 10
		{1000, 94, 10, 9, insufficient},    // 9.4 rounds to 9
		{64, 6, 10, 9, insufficient},       // a 64 MB disk with 6 MB left
		{64, 7, 10, 11, normal},            // and with 7 MB
		{1000, 0, 10, 0, insufficient},     // full
		{1000, 0, 0, 0, normal},            // a minimum of 0 never triggers
		{0, 0, 10, 0, insufficient},        // no capacity reads as ratio 0
		{1000, 1000, 100, 100, normal},     // empty disk, highest minimum
		{1000, 994, 100, 99, insufficient}, // 99.4 rounds to 99
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d_of_%d_min_%d", tc.availMB, tc.capMB, tc.minRatio), func(t *testing.T) {
			ratio, st := diskStatusOf(tc.capMB, tc.availMB, tc.minRatio)
			if ratio != tc.wantRatio || st != tc.want {
				t.Fatalf("ratio %d status %v, want %d %v", ratio, st, tc.wantRatio, tc.want)
			}
		})
	}
}

// fakeSpace is a settable space function for a disk.
type fakeSpace struct {
	mu             sync.Mutex
	capMB, availMB int64
	err            error
}

func (f *fakeSpace) set(capMB, availMB int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.capMB, f.availMB, f.err = capMB, availMB, err
}

func (f *fakeSpace) space() (int64, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.capMB, f.availMB, f.err
}

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testDisk(fs *fakeSpace) *disk {
	d := newDisk("ssd1", "/data/ssd1", make(chan struct{}, 1))
	d.space = fs.space
	return d
}

// A sequence of checks: the status follows the space, each change is logged once,
// a statfs failure keeps the status, a write that found the disk full holds it
// SPACE_INSUFFICIENT until its free space grows (or the hold ends), and IO_ERROR
// stays.
func TestDiskCheckTransitions(t *testing.T) {
	type step struct {
		name    string
		availMB int64 // of 1000 MB
		statErr bool
		full    bool // a write failed with ENOSPC before the check
		ioErr   bool // a write failed with EIO before the check
		after   time.Duration
		want    metadata.DiskStatus
		logs    []string // the lines logged by this step
	}
	steps := []step{
		{name: "plenty", availMB: 500, want: normal},
		{name: "still plenty", availMB: 300, want: normal},
		{name: "below the minimum", availMB: 90, want: insufficient, logs: []string{"available space below the minimum"}},
		{name: "stays low", availMB: 80, want: insufficient},
		{name: "statfs fails: kept", statErr: true, want: insufficient, logs: []string{"reading the free space of a data disk failed"}},
		{name: "statfs fails again: not logged again", statErr: true, want: insufficient},
		{name: "space back", availMB: 400, want: normal, logs: []string{"reading the free space of a data disk works again", "writes accepted again"}},
		{name: "a write finds it full above the minimum", availMB: 400, full: true, want: insufficient, logs: []string{"a write found it full"}},
		{name: "held while space does not grow", availMB: 400, after: 10 * time.Second, want: insufficient},
		{name: "released when space grows", availMB: 450, after: time.Second, want: normal, logs: []string{"writes accepted again"}},
		{name: "full again", availMB: 450, full: true, want: insufficient, logs: []string{"a write found it full"}},
		{name: "released when the hold ends", availMB: 450, after: diskFullHold, want: normal, logs: []string{"writes accepted again"}},
		{name: "an I/O error", availMB: 450, ioErr: true, want: ioError, logs: []string{"failed with an I/O error"}},
		{name: "IO_ERROR is never re-evaluated", availMB: 900, want: ioError},
	}
	fs := &fakeSpace{}
	d := testDisk(fs)
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	now := time.Unix(1000, 0)
	seen := 0
	for _, st := range steps {
		var err error
		if st.statErr {
			err = errors.New("statfs: boom")
		}
		fs.set(1000, st.availMB, err)
		if st.full {
			d.noteWriteError(fmt.Errorf("plog: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), log)
		}
		if st.ioErr {
			d.noteWriteError(fmt.Errorf("plog: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.EIO}), log)
		}
		now = now.Add(st.after)
		d.check(now, 10, log)
		if got := d.Status(); got != st.want {
			t.Fatalf("%s: status %v, want %v", st.name, got, st.want)
		}
		out := buf.String()
		added := out[seen:]
		seen = len(out)
		lines := strings.Split(strings.TrimSuffix(added, "\n"), "\n")
		if added == "" {
			lines = nil
		}
		if len(lines) != len(st.logs) {
			t.Fatalf("%s: logged %q, want lines with %q", st.name, added, st.logs)
		}
		for i, want := range st.logs {
			if !strings.Contains(lines[i], want) {
				t.Fatalf("%s: logged %q, want lines with %q", st.name, added, st.logs)
			}
		}
	}
	if c, a, st := d.snapshot(); c != 1000 || a != 900 || st != ioError {
		t.Fatalf("snapshot %d %d %v", c, a, st)
	}
}

// Errors that are not the disk's leave it alone.
func TestDiskIgnoresOtherWriteErrors(t *testing.T) {
	fs := &fakeSpace{}
	fs.set(1000, 500, nil)
	d := testDisk(fs)
	log := slog.New(slog.DiscardHandler)
	d.noteWriteError(errors.New("storage: mutation decree is not the next one"), log)
	d.noteWriteError(&os.PathError{Op: "open", Path: "x", Err: syscall.ENOENT}, log)
	d.check(time.Now(), 10, log)
	if d.Status() != normal || d.full.Load() {
		t.Fatalf("status %v after unrelated errors", d.Status())
	}
	select {
	case <-d.kick:
		t.Fatal("an unrelated error asked for a check")
	default:
	}
}

// The disk watcher checks periodically and at once when a write found a disk full,
// and ends with the server.
func TestDiskWatcher(t *testing.T) {
	stub, err := Open(Options{
		Self:                       "127.0.0.1:1",
		ClusterName:                "onebox",
		MetaServers:                []string{"127.0.0.1:2"},
		DataDirs:                   []DataDir{{Tag: "ssd1", Dir: t.TempDir()}},
		DiskMinAvailableSpaceRatio: 10,
		DiskCheckInterval:          time.Hour, // only the kick can trigger a check
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()
	d := stub.disks[0]
	if capMB, _, st := d.snapshot(); capMB <= 0 || st != normal {
		t.Fatalf("after Open: capacity %d MB, status %v: the disks are not checked before serving", capMB, st)
	}
	fs := &fakeSpace{}
	fs.set(1000, 50, nil)
	d.mu.Lock()
	d.space = fs.space
	d.mu.Unlock()
	d.noteFull()
	waitStatus(t, d, insufficient)
	// A write refused now, for the primary only.
	p := &partition{disk: d}
	p.status.Store(int32(pacifica.StatusPrimary))
	stub.opts.RejectWriteWhenDiskInsufficient = true
	if err := stub.diskRefusal(p); rpc.ErrorCode(err) != base.ErrDiskInsufficient {
		t.Fatalf("write on a full primary: %v", err)
	}
	fs.set(1000, 500, nil)
	select { // a kick without a new ENOSPC; the hold ends as space has grown
	case d.kick <- struct{}{}:
	default:
	}
	waitStatus(t, d, normal)
	if err := stub.diskRefusal(p); err != nil {
		t.Fatalf("write once there is room: %v", err)
	}
}

func waitStatus(t *testing.T, d *disk, want metadata.DiskStatus) {
	t.Helper()
	waitfor.Until(t, 5*time.Second, 5*time.Millisecond, fmt.Sprintf("disk status %v", want), func() (bool, string) {
		st := d.Status()
		return st == want, fmt.Sprintf("disk status %v", st)
	})
}

func TestDiskRefusal(t *testing.T) {
	cases := []struct {
		name   string
		reject bool
		role   pacifica.Status
		disk   metadata.DiskStatus
		want   string // "" = let through
	}{
		{"normal disk", true, pacifica.StatusPrimary, normal, ""},
		{"insufficient", true, pacifica.StatusPrimary, insufficient, base.ErrDiskInsufficient},
		{"io error", true, pacifica.StatusPrimary, ioError, base.ErrDiskIOError},
		{"rejection off", false, pacifica.StatusPrimary, insufficient, ""},
		{"not primary: refused as such further on", true, pacifica.StatusSecondary, insufficient, ""},
		{"inactive", true, pacifica.StatusInactive, ioError, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &Stub{opts: Options{Self: "127.0.0.1:1", RejectWriteWhenDiskInsufficient: tc.reject}, partitions: map[base.Gpid]*partition{}}
			s.metrics = newServerMetrics(s)
			d := testDisk(&fakeSpace{})
			d.status.Store(int64(tc.disk))
			p := &partition{disk: d}
			p.status.Store(int32(tc.role))
			err := s.diskRefusal(p)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if rpc.ErrorCode(err) != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
			if s.metrics.writeDiskRejected.Load() != 1 || s.metrics.writeFailed.Load() != 1 {
				t.Fatal("the refusal is not counted")
			}
		})
	}
}

// New replicas go to NORMAL disks while there is one.
func TestPickDiskSkipsDisksNotNormal(t *testing.T) {
	a, b := testDisk(&fakeSpace{}), testDisk(&fakeSpace{})
	a.status.Store(int64(insufficient))
	none := map[*disk]int{}
	if got := pickDisk([]*disk{a, b}, none, none); got != b {
		t.Fatal("picked the insufficient disk over a normal one")
	}
	b.status.Store(int64(ioError))
	if got := pickDisk([]*disk{a, b}, none, none); got != a {
		t.Fatal("with no normal disk, the first least-loaded one is used")
	}
}

// A server does not start on a full disk: opening its stores would crash it.
func TestCheckRoomToStart(t *testing.T) {
	cases := []struct {
		capMB, availMB int64
		ok             bool
	}{
		{1000, 500, true},
		{1000, 1, true},
		{1000, 0, false},
		{0, 0, true}, // never read: nothing known
	}
	for _, tc := range cases {
		d := testDisk(&fakeSpace{})
		d.capMB.Store(tc.capMB)
		d.availMB.Store(tc.availMB)
		err := checkRoomToStart([]*disk{testDisk(&fakeSpace{}), d})
		if (err == nil) != tc.ok {
			t.Errorf("%d of %d MB available: %v", tc.availMB, tc.capMB, err)
		}
	}
}
