package rpc

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// Frame layout constants of the THFT framing.
const (
	magicTHFT       = "THFT"
	headerV0Len     = 48
	headerV1Prefix  = 16
	maxRequestMeta  = 64 << 10
	DefaultMaxFrame = 64 << 20
)

// ErrMalformed marks a frame that cannot be parsed; the connection carrying it is
// closed because the stream can no longer be resynchronised.
var ErrMalformed = errors.New("malformed frame")

// ErrFrameTooLarge marks a frame whose declared length exceeds the configured limit.
var ErrFrameTooLarge = errors.New("frame too large")

// Header is the routing information of a request frame.
type Header struct {
	Version         uint32 // 0 (go, python, node clients) or 1 (java client)
	AppID           int32  // > 0 for partition-targeted requests
	PartitionIndex  int32
	ClientTimeoutMS int32 // advisory only: the go client sends garbage above ~4.29 s
	ThreadHash      int32
	PartitionHash   uint64
	IsBackupRequest bool // v1 only: a read may be served by a secondary
}

// RequestFrame is one request as read off a connection: its header and the thrift
// message that follows it.
type RequestFrame struct {
	Header Header
	Body   []byte
}

// ReadRequest reads one THFT request frame. maxFrame bounds the body (and request
// meta) size; 0 means DefaultMaxFrame. Errors wrapping ErrMalformed or
// ErrFrameTooLarge mean the stream is unusable; io.EOF means a clean end between frames.
// Memory for the body grows with the bytes that actually arrive, never with the
// length the header declares.
func ReadRequest(r *bufio.Reader, maxFrame int) (*RequestFrame, error) {
	return readRequest(r, maxFrame, nil)
}

// readRequest is ReadRequest charging every body buffer to reserve (nil: no budget)
// while the frame is incomplete.
func readRequest(r *bufio.Reader, maxFrame int, reserve reserveFunc) (*RequestFrame, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: truncated header", ErrMalformed)
		}
		return nil, err
	}
	if string(pre[:4]) != magicTHFT {
		return nil, fmt.Errorf("%w: bad magic %q", ErrMalformed, pre[:4])
	}
	f := &RequestFrame{}
	f.Header.Version = binary.BigEndian.Uint32(pre[4:8])
	switch f.Header.Version {
	case 0:
		var h [headerV0Len - 8]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return nil, fmt.Errorf("%w: truncated v0 header: %w", ErrMalformed, err)
		}
		if hl := binary.BigEndian.Uint32(h[0:4]); hl != headerV0Len {
			return nil, fmt.Errorf("%w: v0 header length %d, want %d", ErrMalformed, hl, headerV0Len)
		}
		bodyLen := binary.BigEndian.Uint32(h[8:12])
		if uint64(bodyLen) > uint64(maxFrame) {
			return nil, fmt.Errorf("%w: body of %d bytes exceeds the limit of %d", ErrFrameTooLarge, bodyLen, maxFrame)
		}
		f.Header.AppID = int32(binary.BigEndian.Uint32(h[16:20]))
		f.Header.PartitionIndex = int32(binary.BigEndian.Uint32(h[20:24]))
		f.Header.ClientTimeoutMS = int32(binary.BigEndian.Uint32(h[24:28]))
		f.Header.ThreadHash = int32(binary.BigEndian.Uint32(h[28:32]))
		f.Header.PartitionHash = binary.BigEndian.Uint64(h[32:40])
		body, err := readBody(r, int(bodyLen), reserve)
		if err != nil {
			return nil, err
		}
		f.Body = body
	case 1:
		var h [8]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return nil, fmt.Errorf("%w: truncated v1 header: %w", ErrMalformed, err)
		}
		metaLen := binary.BigEndian.Uint32(h[0:4])
		bodyLen := binary.BigEndian.Uint32(h[4:8])
		if metaLen > maxRequestMeta {
			return nil, fmt.Errorf("%w: request meta of %d bytes", ErrMalformed, metaLen)
		}
		if uint64(bodyLen)+uint64(metaLen) > uint64(maxFrame) {
			return nil, fmt.Errorf("%w: body of %d bytes exceeds the limit of %d", ErrFrameTooLarge, bodyLen, maxFrame)
		}
		metaBytes, err := readBody(r, int(metaLen), reserve)
		if err != nil {
			return nil, err
		}
		meta := layer2.NewRequestMeta()
		if err := meta.Read(context.Background(), newReader(metaBytes)); err != nil {
			return nil, fmt.Errorf("%w: request meta: %v", ErrMalformed, err)
		}
		f.Header.AppID = meta.AppID
		f.Header.PartitionIndex = meta.PartitionIndex
		f.Header.ClientTimeoutMS = meta.ClientTimeout
		f.Header.PartitionHash = uint64(meta.ClientPartitionHash)
		f.Header.IsBackupRequest = meta.IsBackupRequest
		f.Header.ThreadHash = meta.AppID*7919 + meta.PartitionIndex
		body, err := readBody(r, int(bodyLen), reserve)
		if err != nil {
			return nil, err
		}
		f.Body = body
	default:
		return nil, fmt.Errorf("%w: unknown header version %d", ErrMalformed, f.Header.Version)
	}
	return f, nil
}

// frameBuffered reports whether r's buffer holds the whole request frame at its
// head. A header it cannot make sense of reports false: readRequest says why.
func frameBuffered(r *bufio.Reader) bool {
	n := r.Buffered()
	if n < headerV1Prefix {
		return false
	}
	b, err := r.Peek(min(n, headerV0Len))
	if err != nil || string(b[:4]) != magicTHFT {
		return false
	}
	switch binary.BigEndian.Uint32(b[4:8]) {
	case 0:
		if len(b) < headerV0Len {
			return false
		}
		return uint64(n) >= headerV0Len+uint64(binary.BigEndian.Uint32(b[16:20]))
	case 1:
		return uint64(n) >= headerV1Prefix+uint64(binary.BigEndian.Uint32(b[8:12]))+uint64(binary.BigEndian.Uint32(b[12:16]))
	}
	return false
}

// firstChunk is the most a frame body gets before its bytes arrive: a header
// declaring a large body costs nothing until the peer actually sends it.
const firstChunk = 64 << 10

// reserveFunc charges n bytes (negative: returns them) to a budget shared by the
// frames being read. It fails when the bytes cannot be had in time.
type reserveFunc func(n int64) error

// readBody reads an n-byte body. The buffer starts at what is already buffered or
// firstChunk and doubles as the bytes come in, so what it holds is at most about
// twice what the peer sent. Buffers are charged to reserve while the read is in
// progress and returned to it when the read ends (the complete body then belongs
// to the caller).
func readBody(r *bufio.Reader, n int, reserve reserveFunc) ([]byte, error) {
	if n == 0 {
		return []byte{}, nil
	}
	size := n
	if b := r.Buffered(); n <= b {
		// The whole body is already in the connection's buffer: copying it out
		// waits for nothing, so it need not take from the shared budget.
		reserve = nil
	} else if n > firstChunk {
		size = max(b, firstChunk)
	}
	var held int64
	charge := func(delta int) error {
		if reserve == nil {
			return nil
		}
		if err := reserve(int64(delta)); err != nil {
			return err
		}
		held += int64(delta)
		return nil
	}
	defer func() {
		if reserve != nil && held > 0 {
			_ = reserve(-held)
		}
	}()
	if err := charge(size); err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	got := 0
	for {
		m, err := io.ReadFull(r, buf[got:])
		got += m
		if err != nil {
			return nil, fmt.Errorf("%w: truncated body (%d of %d bytes declared): %w", ErrMalformed, got, n, err)
		}
		if got == n {
			return buf, nil
		}
		// Grow only once more bytes are actually there.
		if _, err := r.Peek(1); err != nil {
			return nil, fmt.Errorf("%w: truncated body (%d of %d bytes declared): %w", ErrMalformed, got, n, err)
		}
		next := min(n, 2*len(buf))
		if err := charge(next); err != nil {
			return nil, err
		}
		grown := make([]byte, next)
		copy(grown, buf)
		old := len(buf)
		buf = grown
		_ = charge(-old)
	}
}

// AppendRequestV0 appends a version 0 request frame carrying body to dst.
func AppendRequestV0(dst []byte, h Header, body []byte) []byte {
	var hdr [headerV0Len]byte
	copy(hdr[0:4], magicTHFT)
	binary.BigEndian.PutUint32(hdr[4:8], 0)
	binary.BigEndian.PutUint32(hdr[8:12], headerV0Len)
	binary.BigEndian.PutUint32(hdr[16:20], uint32(len(body)))
	binary.BigEndian.PutUint32(hdr[24:28], uint32(h.AppID))
	binary.BigEndian.PutUint32(hdr[28:32], uint32(h.PartitionIndex))
	binary.BigEndian.PutUint32(hdr[32:36], uint32(h.ClientTimeoutMS))
	binary.BigEndian.PutUint32(hdr[36:40], uint32(h.ThreadHash))
	binary.BigEndian.PutUint64(hdr[40:48], h.PartitionHash)
	dst = append(dst, hdr[:]...)
	return append(dst, body...)
}

// AppendRequestV1 appends a version 1 (java client) request frame carrying body to dst.
func AppendRequestV1(dst []byte, h Header, body []byte) ([]byte, error) {
	meta := &layer2.RequestMeta{
		AppID:               h.AppID,
		PartitionIndex:      h.PartitionIndex,
		ClientTimeout:       h.ClientTimeoutMS,
		ClientPartitionHash: int64(h.PartitionHash),
		IsBackupRequest:     h.IsBackupRequest,
	}
	w := newWriter(64)
	if err := meta.Write(context.Background(), w.proto); err != nil {
		return nil, fmt.Errorf("encode request meta: %w", err)
	}
	metaBytes := w.bytes()
	var pre [headerV1Prefix]byte
	copy(pre[0:4], magicTHFT)
	binary.BigEndian.PutUint32(pre[4:8], 1)
	binary.BigEndian.PutUint32(pre[8:12], uint32(len(metaBytes)))
	binary.BigEndian.PutUint32(pre[12:16], uint32(len(body)))
	dst = append(dst, pre[:]...)
	dst = append(dst, metaBytes...)
	return append(dst, body...), nil
}

// ReadResponse reads one response frame (u32 total length counting itself, then the
// rest) and returns the bytes after the length prefix.
func ReadResponse(r *bufio.Reader, maxFrame int) ([]byte, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	var pre [4]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: truncated length", ErrMalformed)
		}
		return nil, err
	}
	total := binary.BigEndian.Uint32(pre[:])
	if total < 4 {
		return nil, fmt.Errorf("%w: response length %d", ErrMalformed, total)
	}
	if uint64(total-4) > uint64(maxFrame) {
		return nil, fmt.Errorf("%w: response of %d bytes exceeds the limit of %d", ErrFrameTooLarge, total, maxFrame)
	}
	return readBody(r, int(total-4), nil)
}

// MessageBegin is the envelope of a thrift message.
type MessageBegin struct {
	Name  string
	Type  thrift.TMessageType
	SeqID int32
}

// ResponseHead is the part of a response frame before its result struct.
type ResponseHead struct {
	ErrorName string
	MessageBegin
}
