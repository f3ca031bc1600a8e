package storage

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
)

// countingFS counts the writes that reach the files below the buffer.
type countingFS struct {
	vfs.FS
	writes  *int
	failAt  int // the write number that fails (0: none)
	failErr error
}

func (fs countingFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &countingFile{File: f, fs: fs}, nil
}

type countingFile struct {
	vfs.File
	fs countingFS
}

func (f *countingFile) Write(p []byte) (int, error) {
	*f.fs.writes++
	if *f.fs.writes == f.fs.failAt {
		return 0, f.fs.failErr
	}
	return f.File.Write(p)
}

func TestBufferedSSTFS(t *testing.T) {
	tests := []struct {
		name       string
		file       string
		chunks     []int // sizes of the writes
		wantWrites int   // writes that reach the file below
	}{
		{"small writes are gathered", "000001.sst", []int{4101, 4101, 4101, 100}, 1},
		{"a full buffer is written", "000002.sst", []int{200 << 10, 100 << 10}, 2},
		{"a write larger than the buffer goes straight through", "000003.sst", []int{10, sstWriteBufferSize + 1, 10}, 3},
		{"only sstables are buffered", "MANIFEST-000001", []int{10, 20, 30}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			writes := 0
			mem := vfs.NewMem()
			fs := newBufferedSSTFS(countingFS{FS: mem, writes: &writes})
			f, err := fs.Create(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			for i, n := range tc.chunks {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				want = append(want, p...)
				if _, err := f.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			// Stat and ReadAt see every byte written so far.
			st, err := f.Stat()
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() != int64(len(want)) {
				t.Fatalf("size %d before close, want %d", st.Size(), len(want))
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if writes != tc.wantWrites {
				t.Errorf("%d writes reached the file, want %d", writes, tc.wantWrites)
			}
			r, err := mem.Open(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("file holds %d bytes, want %d (or the contents differ)", len(got), len(want))
			}
		})
	}
}

// TestBufferedSSTFSWriteError: a failed write below is reported by the call that
// caused it and by every later one, so Pebble never finishes a short sstable.
func TestBufferedSSTFSWriteError(t *testing.T) {
	boom := errors.New("no space")
	writes := 0
	fs := newBufferedSSTFS(countingFS{FS: vfs.NewMem(), writes: &writes, failAt: 1, failErr: boom})
	f, err := fs.Create("000001.sst")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, 100)); err != nil {
		t.Fatalf("buffered write failed: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, boom) {
		t.Fatalf("Sync = %v, want the write error", err)
	}
	if _, err := f.Write(make([]byte, 100)); !errors.Is(err, boom) {
		t.Fatalf("Write after the failure = %v, want the write error", err)
	}
	if err := f.Close(); !errors.Is(err, boom) {
		t.Fatalf("Close = %v, want the write error", err)
	}
}
