package mlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	segHeaderSize = 40
	recHeaderSize = 28
	segVersion    = 1
	segMagic      = "PLOG"

	// flagFirst marks the first file of a log. Files with a smaller index are left over
	// from an interrupted Reset: creating the flagged file is Reset's commit point.
	flagFirst uint32 = 1

	// MaxRecordBytes is the largest Record.Data accepted. Upstream rejects client writes
	// over 1 MiB, and the replica batches only a few of them into one mutation. The limit
	// keeps a corrupt length from ever looking plausible.
	MaxRecordBytes = 64 << 20

	// readBufferSize is large enough that replay does few syscalls per file.
	readBufferSize = 256 << 10
)

// ErrCorrupt is wrapped by every error that reports on-disk damage: a bad checksum,
// a torn record not at the tail of the last file, or missing or resized files.
var ErrCorrupt = errors.New("mlog: corrupt log")

var (
	errBadHeader = fmt.Errorf("%w: bad record header", ErrCorrupt)
	errBadData   = fmt.Errorf("%w: record data checksum mismatch", ErrCorrupt)
	errTruncated = fmt.Errorf("%w: record extends past the end of the file", ErrCorrupt)
)

func checksum(b []byte) uint32 {
	// MakeTable returns the shared Castagnoli table (and with it the hardware path), so
	// nothing package-level is needed.
	return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
}

// segment describes one log file.
type segment struct {
	index   int64
	start   int64 // global offset of the file's first byte
	prevMax int64 // highest decree in all earlier files
	flags   uint32
	path    string
	size    int64 // only meaningful while Open checks the files
}

func segmentName(index, start int64) string {
	return "log." + strconv.FormatInt(index, 10) + "." + strconv.FormatInt(start, 10)
}

// parseSegmentName accepts only the canonical form so that a file can never be listed
// under two different (index, start) spellings.
func parseSegmentName(name string) (index, start int64, ok bool) {
	rest, found := strings.CutPrefix(name, "log.")
	if !found {
		return 0, 0, false
	}
	is, ss, found := strings.Cut(rest, ".")
	if !found {
		return 0, 0, false
	}
	index, err1 := strconv.ParseInt(is, 10, 64)
	start, err2 := strconv.ParseInt(ss, 10, 64)
	if err1 != nil || err2 != nil || index < 1 || start < 0 || segmentName(index, start) != name {
		return 0, 0, false
	}
	return index, start, true
}

func newSegment(dir string, index, start, prevMax int64, flags uint32) segment {
	return segment{
		index:   index,
		start:   start,
		prevMax: prevMax,
		flags:   flags,
		path:    filepath.Join(dir, segmentName(index, start)),
	}
}

func (s segment) header() [segHeaderSize]byte {
	var b [segHeaderSize]byte
	copy(b[0:4], segMagic)
	binary.LittleEndian.PutUint32(b[4:8], segVersion)
	binary.LittleEndian.PutUint32(b[8:12], s.flags)
	binary.LittleEndian.PutUint64(b[12:20], uint64(s.index))
	binary.LittleEndian.PutUint64(b[20:28], uint64(s.start))
	binary.LittleEndian.PutUint64(b[28:36], uint64(s.prevMax))
	binary.LittleEndian.PutUint32(b[36:40], checksum(b[:36]))
	return b
}

// parseSegmentHeader fills the header fields of s from b and checks them against the
// file name (already in s).
func parseSegmentHeader(s *segment, b []byte) error {
	if len(b) < segHeaderSize {
		return fmt.Errorf("%w: file header is %d bytes, want %d", ErrCorrupt, len(b), segHeaderSize)
	}
	if string(b[0:4]) != segMagic {
		return fmt.Errorf("%w: bad file magic %q", ErrCorrupt, b[0:4])
	}
	if got, want := binary.LittleEndian.Uint32(b[36:40]), checksum(b[:36]); got != want {
		return fmt.Errorf("%w: file header checksum %#x, computed %#x", ErrCorrupt, got, want)
	}
	if v := binary.LittleEndian.Uint32(b[4:8]); v != segVersion {
		return fmt.Errorf("unsupported log file version %d", v)
	}
	index := int64(binary.LittleEndian.Uint64(b[12:20]))
	start := int64(binary.LittleEndian.Uint64(b[20:28]))
	if index != s.index || start != s.start {
		return fmt.Errorf("%w: header says index %d start %d, the name says index %d start %d",
			ErrCorrupt, index, start, s.index, s.start)
	}
	s.flags = binary.LittleEndian.Uint32(b[8:12])
	s.prevMax = int64(binary.LittleEndian.Uint64(b[28:36]))
	return nil
}

// readSegmentHeader reads and checks the header of s.path, and records the file size.
func readSegmentHeader(s *segment) error {
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	s.size = fi.Size()
	b := make([]byte, segHeaderSize)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return parseSegmentHeader(s, b[:n])
}

type recHeader struct {
	length  uint32
	dataCRC uint32
	decree  int64
	ballot  int64
}

func encodeRecHeader(r Record) [recHeaderSize]byte {
	var b [recHeaderSize]byte
	binary.LittleEndian.PutUint32(b[4:8], uint32(len(r.Data)))
	binary.LittleEndian.PutUint32(b[8:12], checksum(r.Data))
	binary.LittleEndian.PutUint64(b[12:20], uint64(r.Decree))
	binary.LittleEndian.PutUint64(b[20:28], uint64(r.Ballot))
	binary.LittleEndian.PutUint32(b[0:4], checksum(b[4:]))
	return b
}

// parseRecHeader trusts nothing in b until the header checksum matches.
func parseRecHeader(b []byte) (recHeader, error) {
	if binary.LittleEndian.Uint32(b[0:4]) != checksum(b[4:recHeaderSize]) {
		return recHeader{}, errBadHeader
	}
	h := recHeader{
		length:  binary.LittleEndian.Uint32(b[4:8]),
		dataCRC: binary.LittleEndian.Uint32(b[8:12]),
		decree:  int64(binary.LittleEndian.Uint64(b[12:20])),
		ballot:  int64(binary.LittleEndian.Uint64(b[20:28])),
	}
	if h.length > MaxRecordBytes {
		return recHeader{}, errBadHeader
	}
	return h, nil
}

// recordReader decodes the records of one file sequentially.
type recordReader struct {
	r   *bufio.Reader
	off int64 // file offset of the next record
	end int64 // file offset where the records end

	// hdr is the last header that passed its checksum. After an error it tells
	// recovery whether the bad record's extent can be trusted.
	hdr     recHeader
	hdrOK   bool
	scratch []byte
}

func newRecordReader(f io.ReaderAt, start, end int64) *recordReader {
	return &recordReader{
		r:   bufio.NewReaderSize(io.NewSectionReader(f, start, end-start), readBufferSize),
		off: start,
		end: end,
	}
}

// next decodes the record at rr.off. It returns io.EOF exactly at the end. With keep
// false, Data aliases a buffer that the next call reuses. No allocation is ever sized from
// a length that has not passed the header checksum and the remaining file size.
func (rr *recordReader) next(keep bool) (Record, error) {
	rr.hdrOK = false
	left := rr.end - rr.off
	if left == 0 {
		return Record{}, io.EOF
	}
	if left < recHeaderSize {
		return Record{}, errTruncated
	}
	var b [recHeaderSize]byte
	if _, err := io.ReadFull(rr.r, b[:]); err != nil {
		return Record{}, err
	}
	h, err := parseRecHeader(b[:])
	if err != nil {
		return Record{}, err
	}
	rr.hdr, rr.hdrOK = h, true
	if int64(h.length) > left-recHeaderSize {
		return Record{}, errTruncated
	}
	var data []byte
	if keep {
		data = make([]byte, h.length)
	} else {
		if cap(rr.scratch) < int(h.length) {
			rr.scratch = make([]byte, h.length)
		}
		data = rr.scratch[:h.length]
	}
	if _, err := io.ReadFull(rr.r, data); err != nil {
		return Record{}, err
	}
	if checksum(data) != h.dataCRC {
		return Record{}, errBadData
	}
	rr.off += recHeaderSize + int64(h.length)
	return Record{Decree: h.decree, Ballot: h.ballot, Data: data}, nil
}

// findValidRecord returns the position of the first complete, checksum-valid record
// that starts anywhere in b, or -1 if there is none. Recovery uses it to tell a torn tail
// (nothing valid after the damage) from damage in the middle of the file. Checking a
// position costs one 24-byte checksum, so a scan is linear in len(b).
func findValidRecord(b []byte) int {
	for p := 0; p+recHeaderSize <= len(b); p++ {
		h, err := parseRecHeader(b[p : p+recHeaderSize])
		if err != nil {
			continue
		}
		end := p + recHeaderSize + int(h.length)
		if end > len(b) {
			continue
		}
		if checksum(b[p+recHeaderSize:end]) == h.dataCRC {
			return p
		}
	}
	return -1
}
