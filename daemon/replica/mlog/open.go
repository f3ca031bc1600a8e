package mlog

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
)

// loadSegments lists the log files in dir and checks their headers and continuity. It
// removes leftovers of a crash during file creation or during Reset.
func loadSegments(dir string, logger *slog.Logger) ([]segment, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list log dir %s: %w", dir, err)
	}
	var segs []segment
	for _, e := range entries {
		index, start, ok := parseSegmentName(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		segs = append(segs, newSegment(dir, index, start, 0, 0))
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmp.Compare(a.index, b.index) })

	for i := range segs {
		err := readSegmentHeader(&segs[i])
		if err == nil {
			continue
		}
		last := i == len(segs)-1
		if last && errors.Is(err, ErrCorrupt) && segs[i].size <= segHeaderSize {
			// A file is created by writing its header before any record, so a
			// damaged header with nothing after it means a crash during creation. The
			// previous file becomes current again.
			logger.Warn("removing log file with a torn header", "file", segs[i].path, "size", segs[i].size, "err", err)
			if err := os.Remove(segs[i].path); err != nil {
				return nil, fmt.Errorf("remove torn log file %s: %w", segs[i].path, err)
			}
			segs = segs[:i]
			break
		}
		return nil, fmt.Errorf("read header of %s: %w", segs[i].path, err)
	}

	// Reset writes a new flagged file before removing the old ones. Anything older
	// than the newest flagged file therefore belongs to a discarded log.
	for i := len(segs) - 1; i > 0; i-- {
		if segs[i].flags&flagFirst == 0 {
			continue
		}
		for _, s := range segs[:i] {
			logger.Warn("removing log file left by an interrupted reset", "file", s.path)
			if err := os.Remove(s.path); err != nil {
				return nil, fmt.Errorf("remove discarded log file %s: %w", s.path, err)
			}
		}
		segs = slices.Clone(segs[i:])
		break
	}

	for i := 0; i+1 < len(segs); i++ {
		cur, next := segs[i], segs[i+1]
		if next.index != cur.index+1 {
			return nil, fmt.Errorf("%w: log files %s and %s are not consecutive (a file is missing)",
				ErrCorrupt, cur.path, next.path)
		}
		if cur.start+cur.size != next.start {
			return nil, fmt.Errorf("%w: %s is %d bytes but %s starts at offset %d, want %d",
				ErrCorrupt, cur.path, cur.size, next.path, next.start, cur.start+cur.size)
		}
	}
	return segs, nil
}

// recoverTail scans the current file and truncates a torn or corrupt tail. It returns
// the clean end and the highest decree in the file.
func recoverTail(f *os.File, s segment, logger *slog.Logger) (end, maxDecree int64, err error) {
	rr := newRecordReader(f, segHeaderSize, s.size)
	var reason error
	for {
		rec, err := rr.next(false)
		if err == io.EOF {
			return s.size, maxDecree, nil
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				return 0, 0, fmt.Errorf("read %s at offset %d: %w", s.path, rr.off, err)
			}
			reason = err
			break
		}
		maxDecree = max(maxDecree, rec.Decree)
	}

	bad := rr.off
	// A record whose header checksum holds has a trustworthy length, so its own data
	// cannot hide a valid-looking record. That matters because user values can contain
	// anything, including bytes that decode as a record.
	from := bad + 1
	if rr.hdrOK {
		from = bad + recHeaderSize + int64(rr.hdr.length)
	}
	if from < s.size {
		tail := make([]byte, s.size-from)
		if _, err := f.ReadAt(tail, from); err != nil {
			return 0, 0, fmt.Errorf("read %s at offset %d: %w", s.path, from, err)
		}
		if p := findValidRecord(tail); p >= 0 {
			return 0, 0, fmt.Errorf("%w: %s: bad record at offset %d is followed by a valid record at offset %d",
				ErrCorrupt, s.path, bad, from+int64(p))
		}
	}
	logger.Warn("truncating torn tail of the log", "file", s.path, "offset", bad,
		"dropped_bytes", s.size-bad, "reason", reason)
	if err := f.Truncate(bad); err != nil {
		return 0, 0, fmt.Errorf("truncate %s to %d: %w", s.path, bad, err)
	}
	// No fsync here. If the old tail came back after a machine crash, the next Open
	// would cut it again. It cannot come back behind records acknowledged with
	// ForceFlush, because fsyncing those records also persists the new file size.
	return bad, maxDecree, nil
}

// createSegment creates s with its header. With sync, the header and the directory
// entry are durable on return, which ForceFlush needs before records land in the file
// and Reset needs for its commit point.
func createSegment(dir string, s segment, sync bool) (*os.File, error) {
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create log file: %w", err)
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		os.Remove(s.path)
		return nil, err
	}
	h := s.header()
	if _, err := f.Write(h[:]); err != nil {
		return fail(fmt.Errorf("write header of %s: %w", s.path, err))
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fail(fmt.Errorf("sync %s: %w", s.path, err))
		}
		if err := syncDir(dir); err != nil {
			return fail(err)
		}
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open log dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync log dir %s: %w", dir, err)
	}
	return nil
}
