package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
	"github.com/pegasusgo/pegasus/rpc"
)

// DataDir is one data disk: its tag and the directory holding its replicas.
type DataDir struct {
	Tag string
	Dir string // e.g. /home/work/ssd2/pegasus/replica/reps
}

// diskFullHold is how long a write failing for lack of space keeps a disk
// SPACE_INSUFFICIENT while its free space has not grown, even when the ratio is above
// the threshold (a threshold of 0, a quota, no inodes left).
const diskFullHold = time.Minute

// disk is a data disk in use, with its free-space status (upstream's dir_node):
// NORMAL, SPACE_INSUFFICIENT when the available ratio is below
// disk_min_available_space_ratio, IO_ERROR after a write failed with an I/O error.
type disk struct {
	tag string
	dir string
	// space reads the capacity and available space of the disk's filesystem in MB
	// (statfs); tests replace it.
	space func() (capacityMB, availableMB int64, err error)
	// kick asks the disk watcher for a check now; shared by the disks of a server.
	kick chan struct{}

	status  atomic.Int64 // metadata.DiskStatus
	capMB   atomic.Int64 // as of the last check
	availMB atomic.Int64
	full    atomic.Bool // a write failed with ENOSPC since the last check

	mu        sync.Mutex // serialises checks; guards the fields below
	fullAt    time.Time  // the last write that failed with ENOSPC, seen by a check
	fullAvail int64      // the available MB then
	statErr   bool       // the last statfs failed (logged once)
}

func newDisk(tag, dir string, kick chan struct{}) *disk {
	d := &disk{tag: tag, dir: dir, kick: kick}
	d.space = func() (int64, int64, error) { return statfsMB(dir) }
	return d
}

// openDisks creates and checks every data directory: it must be writable.
func openDisks(dirs []DataDir, kick chan struct{}) ([]*disk, error) {
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no data directory configured")
	}
	var out []*disk
	for _, d := range dirs {
		if err := os.MkdirAll(d.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("data dir %s:%s: %w", d.Tag, d.Dir, err)
		}
		probe := filepath.Join(d.Dir, ".write_probe")
		if err := os.WriteFile(probe, []byte("ok"), 0o644); err != nil {
			return nil, fmt.Errorf("data dir %s:%s is not writable: %w", d.Tag, d.Dir, err)
		}
		os.Remove(probe)
		out = append(out, newDisk(d.Tag, d.Dir, kick))
	}
	return out, nil
}

// checkRoomToStart refuses a start while a data disk is full (under 1 MB left):
// opening a store writes a new Pebble MANIFEST, which on a full disk is fatal to the
// process, and the error would be far from plain. Uses the space of the last check.
func checkRoomToStart(disks []*disk) error {
	for _, d := range disks {
		if capMB, availMB, _ := d.snapshot(); capMB > 0 && availMB <= 0 {
			return fmt.Errorf("data dir %s:%s is full (under 1 MB available of %d MB): its replicas cannot be opened; free some space, then start the server", d.tag, d.dir, capMB)
		}
	}
	return nil
}

// statfsMB returns the capacity and the space available to the server of the
// filesystem holding dir, in MB (upstream: statvfs capacity and available >> 20).
func statfsMB(dir string) (capacityMB, availableMB int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bs := int64(st.Bsize)
	return int64(st.Blocks) * bs >> 20, int64(st.Bavail) * bs >> 20, nil
}

// diskStatusOf is upstream's dir_node::update_disk_stat: the available ratio in
// percent, rounded (0 for a capacity of 0), and SPACE_INSUFFICIENT when it is below
// minRatio (so 0 never is).
func diskStatusOf(capacityMB, availableMB int64, minRatio int) (ratio int64, st metadata.DiskStatus) {
	if capacityMB > 0 {
		ratio = int64(math.Round(float64(availableMB) * 100 / float64(capacityMB)))
	}
	if ratio < int64(minRatio) {
		return ratio, metadata.DiskStatus_SPACE_INSUFFICIENT
	}
	return ratio, metadata.DiskStatus_NORMAL
}

// Status returns the disk's status as of the last check.
func (d *disk) Status() metadata.DiskStatus { return metadata.DiskStatus(d.status.Load()) }

// snapshot returns the space and status as of the last check.
func (d *disk) snapshot() (capacityMB, availableMB int64, st metadata.DiskStatus) {
	return d.capMB.Load(), d.availMB.Load(), d.Status()
}

// check reads the disk's space and updates its status, logging a change. A disk in
// IO_ERROR stays so (upstream never re-evaluates it), its space is still reported;
// a statfs error keeps the previous status (upstream too).
func (d *disk) check(now time.Time, minRatio int, log *slog.Logger) {
	d.mu.Lock()
	defer d.mu.Unlock()
	capMB, availMB, err := d.space()
	if err != nil {
		if !d.statErr {
			log.Error("reading the free space of a data disk failed; its status is kept", "tag", d.tag, "dir", d.dir, "err", err)
			d.statErr = true
		}
		return
	}
	if d.statErr {
		log.Info("reading the free space of a data disk works again", "tag", d.tag, "dir", d.dir)
		d.statErr = false
	}
	d.capMB.Store(capMB)
	d.availMB.Store(availMB)
	if d.Status() == metadata.DiskStatus_IO_ERROR {
		return
	}
	if d.full.Swap(false) {
		d.fullAt, d.fullAvail = now, availMB
	}
	ratio, st := diskStatusOf(capMB, availMB, minRatio)
	held := false
	if st == metadata.DiskStatus_NORMAL && !d.fullAt.IsZero() && now.Sub(d.fullAt) < diskFullHold && availMB <= d.fullAvail {
		st, held = metadata.DiskStatus_SPACE_INSUFFICIENT, true
	}
	old := d.Status()
	if st == old {
		return
	}
	d.status.Store(int64(st))
	attrs := []any{"tag", d.tag, "dir", d.dir, "from", old.String(), "to", st.String(),
		"available_mb", availMB, "capacity_mb", capMB, "available_ratio", ratio, "min_available_ratio", minRatio}
	switch {
	case st == metadata.DiskStatus_NORMAL:
		log.Info("data disk status changed: writes accepted again", attrs...)
	case held:
		log.Warn("data disk status changed: a write found it full", attrs...)
	default:
		log.Warn("data disk status changed: available space below the minimum", attrs...)
	}
}

// noteWriteError reacts to a failed write on the disk: no space makes the watcher
// check the disk now (and hold it SPACE_INSUFFICIENT while its free space does not
// grow); an I/O error marks it IO_ERROR for good. Anything else is not the disk's.
func (d *disk) noteWriteError(err error, log *slog.Logger) {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		d.noteFull()
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.EROFS):
		d.mu.Lock()
		defer d.mu.Unlock()
		if old := metadata.DiskStatus(d.status.Swap(int64(metadata.DiskStatus_IO_ERROR))); old != metadata.DiskStatus_IO_ERROR {
			log.Error("data disk status changed: a write failed with an I/O error; it stays so until the server restarts",
				"tag", d.tag, "dir", d.dir, "from", old.String(), "to", metadata.DiskStatus_IO_ERROR.String(), "err", err)
		}
	}
}

// noteFull records that a write found the disk full and asks for a check. It never
// blocks: the storage engine calls it with its locks held.
func (d *disk) noteFull() {
	d.full.Store(true)
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// watchDisks checks every disk each DiskCheckInterval, and at once when a write
// found one full, until ctx ends.
func (s *Stub) watchDisks(ctx context.Context) {
	t := time.NewTicker(s.opts.DiskCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.diskKick:
		}
		s.checkDisks(time.Now())
	}
}

func (s *Stub) checkDisks(now time.Time) {
	for _, d := range s.disks {
		d.check(now, s.opts.DiskMinAvailableSpaceRatio, s.log)
	}
}

// diskRefusal is the error a primary answers a client write with when its disk is
// not NORMAL and reject_write_when_disk_insufficient is on (upstream's
// replica::on_client_write); nil lets the write through. Writes that reach a
// replica that is not primary go on and are refused as such, so that the client
// looks for the primary. Reads are never refused for the disk.
func (s *Stub) diskRefusal(p *partition) error {
	if !s.opts.RejectWriteWhenDiskInsufficient || pacifica.Status(p.status.Load()) != pacifica.StatusPrimary {
		return nil
	}
	var code string
	switch p.disk.Status() {
	case metadata.DiskStatus_NORMAL:
		return nil
	case metadata.DiskStatus_SPACE_INSUFFICIENT:
		code = base.ErrDiskInsufficient
	default:
		code = base.ErrDiskIOError
	}
	s.metrics.writeFailed.Inc()
	s.metrics.writeDiskRejected.Inc()
	return rpc.NewError(code)
}

// pickDisk chooses the disk for a new replica of appID among the NORMAL ones (all of
// them when none is): the one holding the fewest replicas of that table, then the
// fewest replicas overall.
func pickDisk(disks []*disk, appCount, allCount map[*disk]int) *disk {
	var best *disk
	for _, normalOnly := range []bool{true, false} {
		for _, d := range disks {
			if normalOnly && d.Status() != metadata.DiskStatus_NORMAL {
				continue
			}
			if best == nil || appCount[d] < appCount[best] || (appCount[d] == appCount[best] && allCount[d] < allCount[best]) {
				best = d
			}
		}
		if best != nil {
			return best
		}
	}
	return best
}
