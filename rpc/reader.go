package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/thrift/lib/go/thrift"
)

// byteReader is a read-only thrift transport over an in-memory frame.
type byteReader struct {
	b   []byte
	pos int
}

func (r *byteReader) Read(p []byte) (int, error) {
	if r.pos >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.pos:])
	r.pos += n
	return n, nil
}

func (r *byteReader) ReadByte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, io.EOF
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

var errReadOnly = errors.New("rpc: read-only transport")

func (r *byteReader) Write([]byte) (int, error)       { return 0, errReadOnly }
func (r *byteReader) WriteByte(byte) error            { return errReadOnly }
func (r *byteReader) WriteString(string) (int, error) { return 0, errReadOnly }
func (r *byteReader) Flush(context.Context) error     { return nil }
func (r *byteReader) RemainingBytes() uint64          { return uint64(len(r.b) - r.pos) }
func (r *byteReader) IsOpen() bool                    { return true }
func (r *byteReader) Open() error                     { return nil }
func (r *byteReader) Close() error                    { return nil }

// take returns the next n bytes without copying.
func (r *byteReader) take(n int32) ([]byte, error) {
	if n < 0 {
		return nil, thrift.NewTProtocolExceptionWithType(thrift.NEGATIVE_SIZE, fmt.Errorf("negative length %d", n))
	}
	if int(n) > len(r.b)-r.pos {
		return nil, thrift.NewTProtocolExceptionWithType(thrift.SIZE_LIMIT, fmt.Errorf("length %d exceeds the %d bytes left", n, len(r.b)-r.pos))
	}
	s := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return s, nil
}

// frameProtocol is the binary protocol over one received frame. Strings and binaries
// are cut straight out of the frame: the thrift library would otherwise copy each
// through a growing buffer of at least 512 bytes, which dominated the cost of small
// calls. Binaries alias the frame, which is never reused.
type frameProtocol struct {
	*thrift.TBinaryProtocol
	r *byteReader
}

func (p *frameProtocol) ReadBinary(ctx context.Context) ([]byte, error) {
	n, err := p.ReadI32(ctx)
	if err != nil {
		return nil, err
	}
	return p.r.take(n)
}

func (p *frameProtocol) ReadString(ctx context.Context) (string, error) {
	n, err := p.ReadI32(ctx)
	if err != nil {
		return "", err
	}
	b, err := p.r.take(n)
	return string(b), err
}

// Skip must go through this type so that skipped strings use the methods above.
func (p *frameProtocol) Skip(ctx context.Context, t thrift.TType) error {
	return thrift.SkipDefaultDepth(ctx, p, t)
}

// newReader returns a protocol reading b. Its size limit is len(b), so a container
// header cannot announce more elements than there are bytes, which bounds what a
// hostile frame can make the decoder allocate.
func newReader(b []byte) thrift.TProtocol {
	limit := int32(len(b))
	if limit < 1 {
		limit = 1
	}
	r := &byteReader{b: b}
	return &frameProtocol{
		TBinaryProtocol: thrift.NewTBinaryProtocolConf(r, &thrift.TConfiguration{MaxMessageSize: limit}),
		r:               r,
	}
}
