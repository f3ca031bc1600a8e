package storage

import (
	"sync"
	"time"

	"github.com/cockroachdb/pebble/vfs"
)

// Bounds of the pause after a write of the engine failed because the disk is full.
const (
	diskFullMinBackoff = 50 * time.Millisecond
	diskFullMaxBackoff = time.Second
)

// diskFullBackoff slows the engine down while its disk is full. Pebble (v1.1.5)
// retries a failed flush at once and forever, and a compaction as soon as it is
// picked again: on a full disk that loop burns a core. Pebble's vfs.OnDiskFull calls
// onDiskFull when a write of the store's files fails with ENOSPC, holds the store's
// other file writes while it runs, then retries the failed write once; pausing there
// turns the loop into one attempt per pause. The pause doubles with each failure
// that follows the previous one closely, up to diskFullMaxBackoff, so that a Close
// waiting for the flush in progress is held up by at most that much. The callback
// runs in the goroutine whose write failed: a flush or compaction, which do their
// I/O without Pebble's DB mutex, or a MANIFEST write, which releases it too.
type diskFullBackoff struct {
	notify func() // Options.OnDiskFull; must not block
	sleep  func(time.Duration)

	mu    sync.Mutex
	delay time.Duration // the next pause
	last  time.Time     // when the previous pause ended
}

func newDiskFullBackoff(notify func()) *diskFullBackoff {
	return &diskFullBackoff{notify: notify, sleep: time.Sleep}
}

// wrap returns fs with the backoff applied to its ENOSPC errors.
func (b *diskFullBackoff) wrap(fs vfs.FS) vfs.FS { return vfs.OnDiskFull(fs, b.onDiskFull) }

func (b *diskFullBackoff) onDiskFull() {
	if b.notify != nil {
		b.notify()
	}
	b.sleep(b.next(time.Now()))
	b.mu.Lock()
	b.last = time.Now()
	b.mu.Unlock()
}

// next returns the pause for a failure at now: it starts over when the previous
// failure is long past (the disk had room again meanwhile).
func (b *diskFullBackoff) next(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.delay == 0 || now.Sub(b.last) > 2*diskFullMaxBackoff {
		b.delay = diskFullMinBackoff
	}
	d := b.delay
	b.delay = min(2*b.delay, diskFullMaxBackoff)
	return d
}
