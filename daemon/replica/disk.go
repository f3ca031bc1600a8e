package replica

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// DataDir is one data disk: its tag and the directory holding its replicas.
type DataDir struct {
	Tag string
	Dir string // e.g. /home/work/ssd2/pegasus/replica/reps
}

// disk is a data disk in use.
type disk struct {
	tag string
	dir string
}

// openDisks creates and checks every data directory: it must be writable.
func openDisks(dirs []DataDir) ([]*disk, error) {
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
		out = append(out, &disk{tag: d.Tag, dir: d.Dir})
	}
	return out, nil
}

// space returns the capacity and free space of the disk in MB.
func (d *disk) space() (capacityMB, availableMB int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return 0, 0
	}
	bs := int64(st.Bsize)
	return int64(st.Blocks) * bs >> 20, int64(st.Bavail) * bs >> 20
}

// pickDisk chooses the disk for a new replica of appID: the one holding the fewest
// replicas of that table, then the fewest replicas overall.
func pickDisk(disks []*disk, appCount, allCount map[*disk]int) *disk {
	var best *disk
	for _, d := range disks {
		if best == nil || appCount[d] < appCount[best] || (appCount[d] == appCount[best] && allCount[d] < allCount[best]) {
			best = d
		}
	}
	return best
}
