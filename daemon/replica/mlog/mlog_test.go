package mlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// mkRec builds a record whose content is derived from the decree, so a test can
// recognise a record from its decree alone.
func mkRec(decree int64, size int) Record {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(decree*31 + int64(i)*7)
	}
	return Record{Decree: decree, Ballot: decree/10 + 1, Data: data}
}

func openT(t testing.TB, opts Options) *Log {
	t.Helper()
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// appendAll appends recs and waits until every one is acknowledged.
func appendAll(t testing.TB, l *Log, recs []Record) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(recs))
	for i, r := range recs {
		wg.Add(1)
		l.Append(r, func(err error) { errs[i] = err; wg.Done() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("append decree %d: %v", recs[i].Decree, err)
		}
	}
}

func replayAll(t testing.TB, l *Log) []Record {
	t.Helper()
	var got []Record
	if err := l.Replay(func(r Record) error { got = append(got, r); return nil }); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return got
}

func equalRecords(a, b []Record) bool {
	return slices.EqualFunc(a, b, func(x, y Record) bool {
		return x.Decree == y.Decree && x.Ballot == y.Ballot && bytes.Equal(x.Data, y.Data)
	})
}

func checkRecords(t testing.TB, got, want []Record) {
	t.Helper()
	if equalRecords(got, want) {
		return
	}
	d := func(rs []Record) []int64 {
		var out []int64
		for _, r := range rs {
			out = append(out, r.Decree)
		}
		return out
	}
	t.Fatalf("records differ:\n got %d: %v\nwant %d: %v", len(got), d(got), len(want), d(want))
}

type fileInfo struct {
	name         string
	index, start int64
	size         int64
}

// logFiles lists the log files of dir in index order.
func logFiles(t testing.TB, dir string) []fileInfo {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []fileInfo
	for _, e := range ents {
		idx, start, ok := parseSegmentName(e.Name())
		if !ok {
			t.Fatalf("unexpected file %s in the log dir", e.Name())
		}
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fileInfo{e.Name(), idx, start, fi.Size()})
	}
	slices.SortFunc(out, func(a, b fileInfo) int { return int(a.index - b.index) })
	return out
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
}

// fileRecords returns each file's records, read through the package's own decoder.
func fileRecords(t testing.TB, dir string) [][]Record {
	t.Helper()
	var out [][]Record
	for _, fi := range logFiles(t, dir) {
		f, err := os.Open(filepath.Join(dir, fi.name))
		if err != nil {
			t.Fatal(err)
		}
		rr := newRecordReader(f, segHeaderSize, fi.size)
		var recs []Record
		for {
			r, err := rr.next(true)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", fi.name, err)
			}
			recs = append(recs, r)
		}
		f.Close()
		out = append(out, recs)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		fileSize  int64
		force     bool
		n         int
		sizes     func(i int) int
		wantFiles int // minimum
	}{
		{name: "one file", n: 200, sizes: func(i int) int { return 100 }, wantFiles: 1},
		{name: "many small files", fileSize: 4096, n: 500, sizes: func(i int) int { return (i * 37) % 300 }, wantFiles: 10},
		{name: "file per batch", fileSize: 1, n: 40, sizes: func(i int) int { return 10 }, wantFiles: 2},
		{name: "empty data", fileSize: 1024, n: 300, sizes: func(i int) int { return 0 }, wantFiles: 5},
		{name: "force flush", fileSize: 8192, force: true, n: 200, sizes: func(i int) int { return 150 }, wantFiles: 3},
		{name: "large records", fileSize: 1 << 20, n: 8, sizes: func(i int) int { return 300 << 10 }, wantFiles: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Dir: dir, FileSizeBytes: tc.fileSize, ForceFlush: tc.force}
			l := openT(t, opts)
			var want []Record
			for i := range tc.n {
				want = append(want, mkRec(int64(i+1), tc.sizes(i)))
			}
			half := len(want) / 2
			// Appending one at a time and then in bulk gives both tiny and large batches.
			for _, r := range want[:half] {
				appendAll(t, l, []Record{r})
			}
			appendAll(t, l, want[half:])
			if got := l.MaxDecree(); got != int64(tc.n) {
				t.Errorf("MaxDecree = %d, want %d", got, tc.n)
			}
			size := l.Size()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			files := logFiles(t, dir)
			if len(files) < tc.wantFiles {
				t.Errorf("%d files, want at least %d", len(files), tc.wantFiles)
			}
			var total int64
			for i, f := range files {
				total += f.size
				if i+1 < len(files) && (files[i+1].index != f.index+1 || files[i+1].start != f.start+f.size) {
					t.Errorf("files %s and %s are not contiguous", f.name, files[i+1].name)
				}
			}
			if files[0].name != "log.1.0" {
				t.Errorf("first file is %s, want log.1.0", files[0].name)
			}
			if size != total {
				t.Errorf("Size = %d, files hold %d bytes", size, total)
			}

			l = openT(t, opts)
			if got := l.MaxDecree(); got != int64(tc.n) {
				t.Errorf("MaxDecree after reopen = %d, want %d", got, tc.n)
			}
			if got := l.Size(); got != total {
				t.Errorf("Size after reopen = %d, want %d", got, total)
			}
			checkRecords(t, replayAll(t, l), want)

			// Appends continue the same log after a reopen.
			more := []Record{mkRec(int64(tc.n+1), 10), mkRec(int64(tc.n+2), 0)}
			appendAll(t, l, more)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openT(t, opts)
			defer l.Close()
			checkRecords(t, replayAll(t, l), append(want, more...))
		})
	}
}

func TestEmptyLog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "plog")
	l := openT(t, Options{Dir: dir})
	if got := replayAll(t, l); len(got) != 0 {
		t.Fatalf("replayed %d records from a new log", len(got))
	}
	if l.MaxDecree() != 0 || l.Size() != segHeaderSize {
		t.Fatalf("MaxDecree %d Size %d", l.MaxDecree(), l.Size())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, Options{Dir: dir})
	defer l.Close()
	if got := replayAll(t, l); len(got) != 0 {
		t.Fatalf("replayed %d records", len(got))
	}
}

func TestGroupCommit(t *testing.T) {
	l := openT(t, Options{Dir: t.TempDir(), FileSizeBytes: 64 << 10})
	// A slow write lets the queue build up, as a slow disk would.
	l.beforeWrite = func() { time.Sleep(200 * time.Microsecond) }

	const appenders, perAppender = 64, 100
	var (
		orderMu  sync.Mutex // makes "append order" observable: seq is taken with the Append
		seq      int64
		doneMu   sync.Mutex
		doneSeq  []int64
		calls    = make(map[int64]int)
		wg       sync.WaitGroup
		finished sync.WaitGroup
	)
	finished.Add(appenders * perAppender)
	for range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perAppender {
				orderMu.Lock()
				seq++
				s := seq
				l.Append(mkRec(s, 64), func(err error) {
					if err != nil {
						t.Errorf("decree %d: %v", s, err)
					}
					doneMu.Lock()
					doneSeq = append(doneSeq, s)
					calls[s]++
					doneMu.Unlock()
					finished.Done()
				})
				orderMu.Unlock()
			}
		}()
	}
	wg.Wait()
	finished.Wait()

	const total = appenders * perAppender
	if len(doneSeq) != total {
		t.Fatalf("%d callbacks, want %d", len(doneSeq), total)
	}
	for i, s := range doneSeq {
		if s != int64(i+1) {
			t.Fatalf("callback %d is for append %d: callbacks out of append order", i+1, s)
		}
		if calls[s] != 1 {
			t.Fatalf("append %d acknowledged %d times", s, calls[s])
		}
	}
	batches := l.batches.Load()
	t.Logf("%d records in %d writes (%.1f per write)", total, batches, float64(total)/float64(batches))
	if batches >= total/4 {
		t.Errorf("%d writes for %d records: appends were not grouped", batches, total)
	}
	dir := l.opts.Dir
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, Options{Dir: dir})
	defer l.Close()
	got := replayAll(t, l)
	if len(got) != total {
		t.Fatalf("replayed %d records, want %d", len(got), total)
	}
	for i, r := range got {
		if !equalRecords([]Record{r}, []Record{mkRec(int64(i+1), 64)}) {
			t.Fatalf("record %d is wrong: decree %d", i, r.Decree)
		}
	}
}

// gate blocks the writer goroutine at its next write until released.
type gate struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate(l *Log) *gate {
	g := &gate{entered: make(chan struct{}, 1), release: make(chan struct{})}
	l.beforeWrite = func() {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		<-g.release
	}
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

func TestBackPressure(t *testing.T) {
	l := openT(t, Options{Dir: t.TempDir(), MaxPendingBytes: 1024})
	defer l.Close()
	g := newGate(l)
	defer g.open()

	var mu sync.Mutex
	var order []int64
	ack := func(d int64) func(error) {
		return func(err error) {
			if err != nil {
				t.Errorf("decree %d: %v", d, err)
			}
			mu.Lock()
			order = append(order, d)
			mu.Unlock()
		}
	}
	l.Append(mkRec(1, 100), ack(1))
	<-g.entered // the writer holds record 1; everything below queues behind it

	// 8 records of 28+100 bytes fill the 1024-byte queue exactly.
	for d := int64(2); d <= 9; d++ {
		l.Append(mkRec(d, 100), ack(d))
	}
	returned := make(chan struct{})
	go func() {
		l.Append(mkRec(10, 100), ack(10))
		close(returned)
	}()
	select {
	case <-returned:
		t.Fatal("Append returned although the queue was full")
	case <-time.After(100 * time.Millisecond):
	}
	g.open()
	<-returned
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(order, want) {
		t.Fatalf("acknowledged %v, want %v", order, want)
	}
}

func TestCloseWithPendingAppends(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, Options{Dir: dir})
	g := newGate(l)

	const n = 50
	var acked []int64
	var mu sync.Mutex
	var want []Record
	for d := int64(1); d <= n; d++ {
		want = append(want, mkRec(d, 20))
		l.Append(want[d-1], func(err error) {
			if err != nil {
				t.Errorf("decree %d: %v", d, err)
			}
			mu.Lock()
			acked = append(acked, d)
			mu.Unlock()
		})
	}
	<-g.entered
	closed := make(chan error)
	go func() { closed <- l.Close() }()
	select {
	case <-closed:
		t.Fatal("Close returned while appends were still pending")
	case <-time.After(50 * time.Millisecond):
	}
	g.open()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(acked) != n {
		t.Fatalf("%d appends acknowledged before Close returned, want %d", len(acked), n)
	}
	mu.Unlock()

	var lateErr error
	called := false
	l.Append(mkRec(n+1, 1), func(err error) { called, lateErr = true, err })
	if !called || !errors.Is(lateErr, ErrClosed) {
		t.Fatalf("Append after Close: called %v, err %v", called, lateErr)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := l.Replay(func(Record) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Replay after Close: %v", err)
	}
	if err := l.Reset(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reset after Close: %v", err)
	}

	l = openT(t, Options{Dir: dir})
	defer l.Close()
	checkRecords(t, replayAll(t, l), want)
}

func TestWriteErrorIsSticky(t *testing.T) {
	l := openT(t, Options{Dir: t.TempDir()})
	// Closing the file under the writer makes its next write fail like a dead disk would.
	l.beforeWrite = func() { l.cur.Close() }

	errs := make(chan error, 3)
	l.Append(mkRec(1, 10), func(err error) { errs <- err })
	first := <-errs
	if first == nil || !strings.Contains(first.Error(), "append to ") {
		t.Fatalf("first append: %v, want a write error naming the file", first)
	}
	l.Append(mkRec(2, 10), func(err error) { errs <- err })
	l.Append(mkRec(3, 10), func(err error) { errs <- err })
	for range 2 {
		if err := <-errs; err == nil || err.Error() != first.Error() {
			t.Fatalf("later append: %v, want the first error %v", err, first)
		}
	}
	if err := l.Reset(); err == nil {
		t.Fatal("Reset on a failed log succeeded")
	}
	l.Close() // the file is already closed; only check that Close does not hang
}

func TestRecordTooLarge(t *testing.T) {
	l := openT(t, Options{Dir: t.TempDir()})
	defer l.Close()
	errs := make(chan error, 2)
	l.Append(Record{Decree: 1, Data: make([]byte, MaxRecordBytes+1)}, func(err error) { errs <- err })
	l.Append(mkRec(2, 10), func(err error) { errs <- err })
	if err := <-errs; err == nil {
		t.Fatal("oversized record accepted")
	}
	if err := <-errs; err != nil {
		t.Fatalf("a rejected record failed the log: %v", err)
	}
}

func TestReplayAfterAppendRefused(t *testing.T) {
	l := openT(t, Options{Dir: t.TempDir()})
	defer l.Close()
	appendAll(t, l, []Record{mkRec(1, 1)})
	if err := l.Replay(func(Record) error { return nil }); err == nil {
		t.Fatal("Replay after Append succeeded")
	}
}

func TestReplayCallbackError(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, Options{Dir: dir})
	appendAll(t, l, []Record{mkRec(1, 1), mkRec(2, 1), mkRec(3, 1)})
	l.Close()
	l = openT(t, Options{Dir: dir})
	defer l.Close()
	stop := errors.New("stop")
	n := 0
	err := l.Replay(func(r Record) error {
		n++
		if r.Decree == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("Replay = %v after %d records, want the callback's error after 2", err, n)
	}
}

// buildLog writes records 1..n of dataSize bytes with the given file size and returns
// them.
func buildLog(t testing.TB, dir string, fileSize int64, n, dataSize int) []Record {
	t.Helper()
	l := openT(t, Options{Dir: dir, FileSizeBytes: fileSize})
	var recs []Record
	for d := 1; d <= n; d++ {
		recs = append(recs, mkRec(int64(d), dataSize))
	}
	// One append at a time so that rolls happen at predictable points.
	for _, r := range recs {
		appendAll(t, l, []Record{r})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestTornTail(t *testing.T) {
	const dataSize = 40
	src := t.TempDir()
	// 1000-byte files hold 14 records of 68 bytes each, so the last file holds a few.
	recs := buildLog(t, src, 1000, 33, dataSize)
	files := logFiles(t, src)
	if len(files) < 3 {
		t.Fatalf("only %d files", len(files))
	}
	last := files[len(files)-1]
	recLen := int64(recHeaderSize + dataSize)
	lastRec := last.size - recLen
	if lastRec < segHeaderSize {
		t.Fatalf("last file %s holds no record", last.name)
	}
	prefix := recs[:len(recs)-1]

	check := func(t *testing.T, damage func(path string)) {
		t.Helper()
		dir := t.TempDir()
		copyDir(t, src, dir)
		damage(filepath.Join(dir, last.name))
		l, err := Open(Options{Dir: dir, FileSizeBytes: 1000})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if got := l.MaxDecree(); got != prefix[len(prefix)-1].Decree {
			t.Errorf("MaxDecree = %d, want %d", got, prefix[len(prefix)-1].Decree)
		}
		checkRecords(t, replayAll(t, l), prefix)
		if fi, err := os.Stat(filepath.Join(dir, last.name)); err != nil || fi.Size() != lastRec {
			t.Fatalf("last file not truncated to %d: %v %v", lastRec, fi.Size(), err)
		}
		more := []Record{mkRec(1000, 5), mkRec(1001, 500)}
		appendAll(t, l, more)
		l.Close()
		l = openT(t, Options{Dir: dir, FileSizeBytes: 1000})
		defer l.Close()
		checkRecords(t, replayAll(t, l), append(slices.Clone(prefix), more...))
	}

	for cut := lastRec; cut < last.size; cut++ {
		t.Run(fmt.Sprintf("truncate at %d", cut), func(t *testing.T) {
			check(t, func(path string) {
				if err := os.Truncate(path, cut); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
	for off := lastRec; off < last.size; off++ {
		t.Run(fmt.Sprintf("flip byte %d", off), func(t *testing.T) {
			check(t, func(path string) { flipByte(t, path, off) })
		})
	}
	t.Run("zeroes after the last record", func(t *testing.T) {
		// What a machine crash leaves when the size reached disk but the data did not.
		check(t, func(path string) {
			if err := os.Truncate(path, lastRec); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, lastRec+4096); err != nil {
				t.Fatal(err)
			}
		})
	})
}

func flipByte(t testing.TB, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestCorruption(t *testing.T) {
	const dataSize = 40
	recLen := int64(recHeaderSize + dataSize)
	src := t.TempDir()
	buildLog(t, src, 1000, 40, dataSize)
	files := logFiles(t, src)
	if len(files) < 3 {
		t.Fatalf("only %d files", len(files))
	}
	mid, last := files[1], files[len(files)-1]
	if last.size < segHeaderSize+2*recLen {
		t.Fatalf("last file %s holds fewer than 2 records", last.name)
	}

	tests := []struct {
		name       string
		damage     func(t *testing.T, dir string)
		openFails  bool   // else Replay fails
		wantInErr  string // file name and offset must be reported
		notCorrupt bool
	}{
		{
			name: "record data in a middle file",
			damage: func(t *testing.T, dir string) {
				flipByte(t, filepath.Join(dir, mid.name), segHeaderSize+recLen+recHeaderSize+3)
			},
			wantInErr: fmt.Sprintf("%s: record at offset %d", mid.name, segHeaderSize+recLen),
		},
		{
			name:      "record header in a middle file",
			damage:    func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, mid.name), segHeaderSize+2*recLen+13) },
			wantInErr: fmt.Sprintf("%s: record at offset %d", mid.name, segHeaderSize+2*recLen),
		},
		{
			name:      "last record of the first file",
			damage:    func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, files[0].name), files[0].size-1) },
			wantInErr: files[0].name + ": record at offset",
		},
		{
			name:      "header of a middle file",
			damage:    func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, mid.name), 30) },
			openFails: true,
			wantInErr: mid.name,
		},
		{
			name: "middle file truncated",
			damage: func(t *testing.T, dir string) {
				if err := os.Truncate(filepath.Join(dir, mid.name), mid.size-1); err != nil {
					t.Fatal(err)
				}
			},
			openFails: true,
			wantInErr: mid.name,
		},
		{
			name: "middle file missing",
			damage: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, mid.name)); err != nil {
					t.Fatal(err)
				}
			},
			openFails: true,
			wantInErr: "not consecutive",
		},
		{
			name: "early record in the last file, valid records after it",
			damage: func(t *testing.T, dir string) {
				flipByte(t, filepath.Join(dir, last.name), segHeaderSize+recHeaderSize+1)
			},
			openFails: true,
			wantInErr: fmt.Sprintf("%s: bad record at offset %d is followed by a valid record at offset %d",
				last.name, segHeaderSize, segHeaderSize+recLen),
		},
		{
			name:      "early record header in the last file",
			damage:    func(t *testing.T, dir string) { flipByte(t, filepath.Join(dir, last.name), segHeaderSize+5) },
			openFails: true,
			wantInErr: fmt.Sprintf("%s: bad record at offset %d", last.name, segHeaderSize),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, src, dir)
			tc.damage(t, dir)
			l, err := Open(Options{Dir: dir, FileSizeBytes: 1000})
			if err == nil {
				defer l.Close()
				err = l.Replay(func(Record) error { return nil })
				if tc.openFails {
					t.Fatalf("Open succeeded, want an error")
				}
			} else if !tc.openFails {
				t.Fatalf("Open: %v, want Replay to fail instead", err)
			}
			if err == nil {
				t.Fatal("damage went unnoticed")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v does not wrap ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantInErr)
			}
		})
	}
}

func TestTornFileHeader(t *testing.T) {
	src := t.TempDir()
	recs := buildLog(t, src, 1000, 20, 40)
	files := logFiles(t, src)
	last := files[len(files)-1]
	next := newSegment(src, last.index+1, last.start+last.size, 0, 0)
	for _, n := range []int{0, 1, 17, segHeaderSize - 1} {
		t.Run(fmt.Sprint(n, " header bytes"), func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, src, dir)
			h := next.header()
			name := filepath.Join(dir, segmentName(next.index, next.start))
			if err := os.WriteFile(name, h[:n], 0o644); err != nil {
				t.Fatal(err)
			}
			l := openT(t, Options{Dir: dir, FileSizeBytes: 1000})
			checkRecords(t, replayAll(t, l), recs)
			more := make([]Record, 30)
			for i := range more {
				more[i] = mkRec(int64(100+i), 40)
			}
			appendAll(t, l, more)
			l.Close()
			l = openT(t, Options{Dir: dir, FileSizeBytes: 1000})
			defer l.Close()
			checkRecords(t, replayAll(t, l), append(slices.Clone(recs), more...))
		})
	}
}

func TestGC(t *testing.T) {
	seq := func(from, to int64) []int64 {
		var out []int64
		for d := from; d <= to; d++ {
			out = append(out, d)
		}
		return out
	}
	tests := []struct {
		name    string
		decrees []int64
		gcs     []int64 // successive GC calls
	}{
		{name: "increasing", decrees: seq(1, 120), gcs: []int64{0, 5, 30, 31, 60, 119, 120, 1000}},
		{
			// A new primary re-prepares 50..70 under a higher ballot after 80 was logged.
			name:    "decrees going back",
			decrees: append(seq(1, 80), seq(50, 130)...),
			gcs:     []int64{40, 70, 79, 80, 100, 200},
		},
		{name: "one file only", decrees: seq(1, 3), gcs: []int64{100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, reopen := range []bool{false, true} {
				t.Run(fmt.Sprint("reopen=", reopen), func(t *testing.T) {
					dir := t.TempDir()
					opts := Options{Dir: dir, FileSizeBytes: 600}
					l := openT(t, opts)
					for _, d := range tc.decrees {
						appendAll(t, l, []Record{mkRec(d, 30)})
					}
					if reopen {
						// GC must then work from the file headers alone.
						l.Close()
						l = openT(t, opts)
					}
					defer l.Close()
					perFile := fileRecords(t, dir)
					names := logFiles(t, dir)
					for _, durable := range tc.gcs {
						// Expected: the longest prefix of non-current files whose
						// records are all <= durable.
						want := 0
						for want < len(perFile)-1 && !slices.ContainsFunc(perFile[want], func(r Record) bool { return r.Decree > durable }) {
							want++
						}
						removed, err := l.GC(durable)
						if err != nil {
							t.Fatal(err)
						}
						if removed != want {
							t.Fatalf("GC(%d) removed %d files, want %d", durable, removed, want)
						}
						perFile, names = perFile[removed:], names[removed:]
						if got := logFiles(t, dir); !slices.Equal(got, names) {
							t.Fatalf("GC(%d) left %v, want %v", durable, got, names)
						}
						var size int64
						for _, f := range names {
							size += f.size
						}
						if l.Size() != size {
							t.Fatalf("Size = %d after GC, files hold %d", l.Size(), size)
						}
					}
					if len(names) == 0 {
						t.Fatal("GC removed the current file")
					}
					l.Close()
					l = openT(t, opts)
					checkRecords(t, replayAll(t, l), slices.Concat(perFile...))
				})
			}
		})
	}
}

func TestReset(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Dir: dir, FileSizeBytes: 1000}
	buildLog(t, dir, 1000, 40, 40)
	old := t.TempDir()
	copyDir(t, dir, old)
	oldFiles := logFiles(t, dir)

	l := openT(t, opts)
	if err := l.Reset(); err != nil {
		t.Fatal(err)
	}
	if l.MaxDecree() != 0 || l.Size() != segHeaderSize {
		t.Fatalf("after Reset: MaxDecree %d Size %d", l.MaxDecree(), l.Size())
	}
	if got := replayAll(t, l); len(got) != 0 {
		t.Fatalf("replayed %d records after Reset", len(got))
	}
	fresh := []Record{mkRec(500, 40), mkRec(501, 40)}
	appendAll(t, l, fresh)
	if l.MaxDecree() != 501 {
		t.Fatalf("MaxDecree = %d", l.MaxDecree())
	}
	// Appends queued before a Reset are acknowledged, then discarded.
	g := newGate(l)
	done := make(chan error, 1)
	l.Append(mkRec(600, 10), func(err error) { done <- err })
	<-g.entered
	resetDone := make(chan error)
	go func() { resetDone <- l.Reset() }()
	g.open()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-resetDone; err != nil {
		t.Fatal(err)
	}
	appendAll(t, l, fresh)
	l.Close()

	files := logFiles(t, dir)
	if len(files) != 1 || files[0].index <= oldFiles[len(oldFiles)-1].index {
		t.Fatalf("after Reset the dir holds %v", files)
	}
	l = openT(t, opts)
	checkRecords(t, replayAll(t, l), fresh)
	l.Close()

	// A crash in the middle of Reset leaves old files behind the new first file.
	for _, f := range oldFiles[1:] {
		data, err := os.ReadFile(filepath.Join(old, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l = openT(t, opts)
	defer l.Close()
	checkRecords(t, replayAll(t, l), fresh)
	if got := logFiles(t, dir); len(got) != 1 {
		t.Fatalf("Open kept files of the discarded log: %v", got)
	}
}

// A user value may contain bytes that decode as a valid record. When the record holding
// it is torn, recovery must still see a torn tail, not a valid record after damage.
func TestTornRecordContainingARecord(t *testing.T) {
	inner := encodeRecords(mkRec(77, 30))
	outer := Record{Decree: 3, Ballot: 1, Data: append(slices.Clone(inner), make([]byte, 50)...)}
	dir := t.TempDir()
	l := openT(t, Options{Dir: dir})
	first := []Record{mkRec(1, 10), mkRec(2, 10)}
	appendAll(t, l, first)
	appendAll(t, l, []Record{outer})
	l.Close()

	path := filepath.Join(dir, "log.1.0")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Cut inside the outer record's padding, so its embedded record is complete.
	if err := os.Truncate(path, fi.Size()-20); err != nil {
		t.Fatal(err)
	}
	l = openT(t, Options{Dir: dir})
	defer l.Close()
	checkRecords(t, replayAll(t, l), first)
}
