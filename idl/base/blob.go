package base

import (
	"bytes"
	"context"
	"fmt"

	"github.com/apache/thrift/lib/go/thrift"
)

// Blob is a byte string encoded as thrift binary (i32 length ++ bytes).
type Blob struct {
	Data []byte
}

// NewBlob wraps b without copying it.
func NewBlob(b []byte) *Blob { return &Blob{Data: b} }

// BlobString wraps the bytes of s.
func BlobString(s string) *Blob { return &Blob{Data: []byte(s)} }

// Bytes returns the payload; nil for a nil Blob.
func (b *Blob) Bytes() []byte {
	if b == nil {
		return nil
	}
	return b.Data
}

// Len returns the payload length; 0 for a nil Blob.
func (b *Blob) Len() int { return len(b.Bytes()) }

func (b *Blob) Read(ctx context.Context, iprot thrift.TProtocol) error {
	data, err := iprot.ReadBinary(ctx)
	if err != nil {
		return fmt.Errorf("read blob: %w", err)
	}
	b.Data = data
	return nil
}

func (b *Blob) Write(ctx context.Context, oprot thrift.TProtocol) error {
	return oprot.WriteBinary(ctx, b.Bytes())
}

// Equals compares payloads; a nil Blob equals an empty one.
func (b *Blob) Equals(o *Blob) bool { return bytes.Equal(b.Bytes(), o.Bytes()) }

func (b *Blob) String() string {
	if b == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q", b.Data)
}
