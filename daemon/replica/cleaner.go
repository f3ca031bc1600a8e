package replica

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cleanDisks deletes what was moved aside long enough ago: replica directories
// garbage-collected by the meta or replaced by learning (".gar"), and replicas that
// failed to load (".err"). Data is never deleted the moment it is given up: an
// operator has the retention time to look at it.
func (s *Stub) cleanDisks(now time.Time) {
	for _, d := range s.disks {
		s.cleanDir(d.dir, now, true)
		entries, err := os.ReadDir(d.dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() && isReplicaDirName(e.Name()) {
				// Inside a live replica: old data replaced by a learned checkpoint.
				s.cleanDir(filepath.Join(d.dir, e.Name()), now, false)
			}
		}
	}
}

func (s *Stub) cleanDir(dir string, now time.Time, replicas bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		var keep time.Duration
		switch {
		case strings.HasSuffix(name, ".gar"):
			keep = s.opts.GarbageRetention
		case replicas && strings.HasSuffix(name, ".err"):
			keep = s.opts.ErrorRetention
		default:
			continue
		}
		// Names end in ".<unix microseconds>.gar" (or .err).
		parts := strings.Split(name, ".")
		if len(parts) < 3 {
			continue
		}
		us, err := strconv.ParseInt(parts[len(parts)-2], 10, 64)
		if err != nil || now.Sub(time.UnixMicro(us)) < keep {
			continue
		}
		path := filepath.Join(dir, name)
		if err := os.RemoveAll(path); err != nil {
			s.log.Warn("deleting old garbage failed", "path", path, "err", err)
			continue
		}
		s.log.Info("deleted old garbage", "path", path)
	}
}
