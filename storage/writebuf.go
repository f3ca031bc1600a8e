package storage

import (
	"os"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/vfs"
)

// sstWriteBufferSize is how many bytes of a new sstable are gathered before one
// write(2). Pebble hands its writable a block at a time (4 KiB by default) through a
// 4 KiB bufio.Writer, so every block of a flush or a compaction cost a system call;
// on the benchmark machine that was 7-8% of a replica's CPU during a write load.
const sstWriteBufferSize = 256 << 10

// bufferedSSTFS gathers the writes to new sstables into large writes. Only files
// created with a ".sst" name are buffered: Pebble writes those front to back and
// reads them only after Sync and Close, which flush the buffer. Every other file (the
// manifest, OPTIONS, markers) goes straight through.
type bufferedSSTFS struct {
	vfs.FS
	// bufs recycles the buffers of closed files: a flush writes one sstable after
	// another, and a fresh 256 KiB every time would also cost its page faults.
	bufs sync.Pool
}

func newBufferedSSTFS(fs vfs.FS) *bufferedSSTFS {
	b := &bufferedSSTFS{FS: fs}
	b.bufs.New = func() any {
		buf := make([]byte, 0, sstWriteBufferSize)
		return &buf
	}
	return b
}

// Create wraps a new sstable.
func (fs *bufferedSSTFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil || !strings.HasSuffix(name, ".sst") {
		return f, err
	}
	return &bufferedFile{File: f, fs: fs, buf: fs.bufs.Get().(*[]byte)}, nil
}

// bufferedFile is a new sstable whose writes are gathered in buf. Any method other
// than Write writes the buffer out first, so that whatever it does (sync, stat,
// read back, close) sees every byte written so far.
type bufferedFile struct {
	vfs.File
	fs  *bufferedSSTFS
	buf *[]byte // nil once closed
	err error   // a failed write: every later call reports it
}

func (f *bufferedFile) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.buf == nil {
		return 0, os.ErrClosed
	}
	b := *f.buf
	if len(b)+len(p) > cap(b) {
		if err := f.flush(); err != nil {
			return 0, err
		}
		b = *f.buf
		if len(p) >= cap(b) {
			// Larger than the buffer: no point copying it.
			n, err := f.File.Write(p)
			if err != nil {
				f.err = err
			}
			return n, err
		}
	}
	*f.buf = append(b, p...)
	return len(p), nil
}

// flush writes the buffered bytes.
func (f *bufferedFile) flush() error {
	if f.err != nil {
		return f.err
	}
	if f.buf == nil || len(*f.buf) == 0 {
		return nil
	}
	_, err := f.File.Write(*f.buf)
	*f.buf = (*f.buf)[:0]
	if err != nil {
		f.err = err
	}
	return err
}

func (f *bufferedFile) Close() error {
	err := f.flush()
	if f.buf != nil {
		*f.buf = (*f.buf)[:0]
		f.fs.bufs.Put(f.buf)
		f.buf = nil
	}
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	return err
}

func (f *bufferedFile) Sync() error {
	if err := f.flush(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *bufferedFile) SyncData() error {
	if err := f.flush(); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *bufferedFile) SyncTo(length int64) (bool, error) {
	if err := f.flush(); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}

func (f *bufferedFile) Stat() (os.FileInfo, error) {
	if err := f.flush(); err != nil {
		return nil, err
	}
	return f.File.Stat()
}

func (f *bufferedFile) Read(p []byte) (int, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.File.Read(p)
}

func (f *bufferedFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *bufferedFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *bufferedFile) Preallocate(off, length int64) error {
	if err := f.flush(); err != nil {
		return err
	}
	return f.File.Preallocate(off, length)
}
