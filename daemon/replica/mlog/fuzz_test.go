package mlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func encodeRecords(recs ...Record) []byte {
	var b []byte
	for _, r := range recs {
		h := encodeRecHeader(r)
		b = append(b, h[:]...)
		b = append(b, r.Data...)
	}
	return b
}

// fixChecksums makes the record checksums in b valid wherever a record's extent can be
// followed. Random bytes almost never pass a CRC, so without this the fuzzer would explore
// little beyond the bad-checksum paths.
func fixChecksums(b []byte) {
	for p := 0; p+recHeaderSize <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[p+4 : p+8]))
		end := p + recHeaderSize + n
		fits := n <= MaxRecordBytes && end <= len(b)
		if fits {
			binary.LittleEndian.PutUint32(b[p+8:p+12], checksum(b[p+recHeaderSize:end]))
		}
		binary.LittleEndian.PutUint32(b[p:p+4], checksum(b[p+4:p+recHeaderSize]))
		if !fits {
			return
		}
		p = end
	}
}

// FuzzReplay feeds arbitrary bytes as the records of a log's only file, with or without
// valid checksums. Whatever the bytes, Open and Replay must not panic or allocate beyond
// the file size. When Open accepts the file, the replayed records must be exactly what the
// file starts with, the file must have been cut right after them, and appends must
// continue from there.
func FuzzReplay(f *testing.F) {
	valid := encodeRecords(mkRec(1, 0), mkRec(2, 10), mkRec(3, 100), Record{Decree: -1, Ballot: 7})
	f.Add([]byte{}, false)
	f.Add(valid, false)
	f.Add(valid[:len(valid)-1], false)
	f.Add(valid[:recHeaderSize+5], false)
	f.Add(append(slices.Clone(valid), make([]byte, 100)...), false)
	flipped := slices.Clone(valid)
	flipped[recHeaderSize+3] ^= 1
	f.Add(flipped, false)
	// A record whose data holds another valid record.
	f.Add(encodeRecords(Record{Decree: 5, Data: encodeRecords(mkRec(6, 8))}), false)

	f.Add(make([]byte, 3*recHeaderSize), true)
	f.Add(append(make([]byte, recHeaderSize+4), 0xff, 0xff, 0xff, 0xff), true)

	f.Fuzz(func(t *testing.T, body []byte, fix bool) {
		if fix {
			fixChecksums(body)
		}
		dir := t.TempDir()
		seg := newSegment(dir, 1, 0, 0, flagFirst)
		h := seg.header()
		if err := os.WriteFile(seg.path, append(h[:], body...), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := Open(Options{Dir: dir})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open failed without ErrCorrupt: %v", err)
			}
			return
		}
		got := replayAll(t, l)
		enc := encodeRecords(got...)
		if !bytes.HasPrefix(body, enc) {
			t.Fatalf("replayed records are not a prefix of the file")
		}
		fi, err := os.Stat(seg.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != int64(segHeaderSize+len(enc)) {
			t.Fatalf("file is %d bytes after Open, replayed records end at %d", fi.Size(), segHeaderSize+len(enc))
		}
		extra := mkRec(1<<40, 33)
		appendAll(t, l, []Record{extra})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = openT(t, Options{Dir: filepath.Clean(dir)})
		defer l.Close()
		checkRecords(t, replayAll(t, l), append(got, extra))
	})
}

func TestFindValidRecord(t *testing.T) {
	rec := encodeRecords(mkRec(9, 20))
	tests := []struct {
		name string
		b    []byte
		want int
	}{
		{"empty", nil, -1},
		{"zeroes", make([]byte, 200), -1},
		{"record at 0", rec, 0},
		{"record after garbage", append(bytes.Repeat([]byte{0xff}, 13), rec...), 13},
		{"incomplete record", rec[:len(rec)-1], -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := findValidRecord(tc.b); got != tc.want {
				t.Fatalf("findValidRecord = %d, want %d", got, tc.want)
			}
		})
	}
}
