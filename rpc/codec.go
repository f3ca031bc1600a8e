package rpc

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/pegasusgo/pegasus/idl/base"
)

// Value is anything that encodes itself with a thrift protocol: every generated
// struct and the placeholder types of idl/base.
type Value interface {
	Read(ctx context.Context, p thrift.TProtocol) error
	Write(ctx context.Context, p thrift.TProtocol) error
}

// typedValue is implemented by values that are not announced as STRUCT on the wire.
type typedValue interface {
	ThriftType() thrift.TType
}

func wireType(v Value) thrift.TType {
	if t, ok := v.(typedValue); ok {
		return t.ThriftType()
	}
	// Generated structs and the raw placeholder types both travel under STRUCT.
	return thrift.STRUCT
}

// String is a bare thrift string used as a request or result value (the reply of
// RPC_CLI_CLI_CALL is one).
type String struct{ V string }

func (s *String) Read(ctx context.Context, p thrift.TProtocol) error {
	v, err := p.ReadString(ctx)
	s.V = v
	return err
}

func (s *String) Write(ctx context.Context, p thrift.TProtocol) error {
	return p.WriteString(ctx, s.V)
}

// ThriftType implements typedValue.
func (*String) ThriftType() thrift.TType { return thrift.STRING }

// I64 is a bare thrift i64 used as a request value (RPC_RRDB_RRDB_CLEAR_SCANNER
// carries one).
type I64 struct{ V int64 }

func (i *I64) Read(ctx context.Context, p thrift.TProtocol) error {
	v, err := p.ReadI64(ctx)
	i.V = v
	return err
}

func (i *I64) Write(ctx context.Context, p thrift.TProtocol) error {
	return p.WriteI64(ctx, i.V)
}

// ThriftType implements typedValue.
func (*I64) ThriftType() thrift.TType { return thrift.I64 }

// encoder writes thrift data into a reusable buffer.
type encoder struct {
	buf   *thrift.TMemoryBuffer
	proto *thrift.TBinaryProtocol
}

func newWriter(capacity int) *encoder {
	buf := thrift.NewTMemoryBufferLen(capacity)
	return &encoder{buf: buf, proto: thrift.NewTBinaryProtocolConf(buf, &thrift.TConfiguration{})}
}

func (e *encoder) bytes() []byte { return e.buf.Bytes() }

func (e *encoder) reset() { e.buf.Reset() }

// writeCall writes a CALL message whose args struct holds args as field 1.
func (e *encoder) writeCall(ctx context.Context, name string, seqID int32, args Value) error {
	p := e.proto
	if err := p.WriteMessageBegin(ctx, name, thrift.CALL, seqID); err != nil {
		return err
	}
	if err := p.WriteStructBegin(ctx, "args"); err != nil {
		return err
	}
	if args != nil {
		if err := p.WriteFieldBegin(ctx, "req", wireType(args), 1); err != nil {
			return err
		}
		if err := args.Write(ctx, p); err != nil {
			return fmt.Errorf("encode %s args: %w", name, err)
		}
		if err := p.WriteFieldEnd(ctx); err != nil {
			return err
		}
	}
	if err := p.WriteFieldStop(ctx); err != nil {
		return err
	}
	if err := p.WriteStructEnd(ctx); err != nil {
		return err
	}
	return p.WriteMessageEnd(ctx)
}

// EncodeCall returns the thrift message of a request: a CALL named name whose args
// struct carries args as field 1.
func EncodeCall(name string, seqID int32, args Value) ([]byte, error) {
	e := newWriter(128)
	if err := e.writeCall(context.Background(), name, seqID, args); err != nil {
		return nil, err
	}
	return e.bytes(), nil
}

// appendRequest encodes a whole v0 request frame into e.
func (e *encoder) appendRequest(ctx context.Context, h Header, name string, seqID int32, args Value) error {
	var hdr [headerV0Len]byte
	if _, err := e.buf.Write(hdr[:]); err != nil {
		return err
	}
	if err := e.writeCall(ctx, name, seqID, args); err != nil {
		return err
	}
	b := e.buf.Bytes()
	body := len(b) - headerV0Len
	copy(b[0:4], magicTHFT)
	binary.BigEndian.PutUint32(b[8:12], headerV0Len)
	binary.BigEndian.PutUint32(b[16:20], uint32(body))
	binary.BigEndian.PutUint32(b[24:28], uint32(h.AppID))
	binary.BigEndian.PutUint32(b[28:32], uint32(h.PartitionIndex))
	binary.BigEndian.PutUint32(b[32:36], uint32(h.ClientTimeoutMS))
	binary.BigEndian.PutUint32(b[36:40], uint32(h.ThreadHash))
	binary.BigEndian.PutUint64(b[40:48], h.PartitionHash)
	return nil
}

// appendResponse encodes a whole response frame into e. The result is written only
// when errName is ERR_OK and result is not nil.
func (e *encoder) appendResponse(ctx context.Context, errName, reqName string, seqID int32, result Value) error {
	var pre [4]byte
	if _, err := e.buf.Write(pre[:]); err != nil {
		return err
	}
	p := e.proto
	if err := p.WriteString(ctx, errName); err != nil {
		return err
	}
	if err := p.WriteMessageBegin(ctx, reqName+"_ACK", thrift.REPLY, seqID); err != nil {
		return err
	}
	if errName == base.ErrOK && result != nil {
		if err := p.WriteStructBegin(ctx, "result"); err != nil {
			return err
		}
		if err := p.WriteFieldBegin(ctx, "success", wireType(result), 0); err != nil {
			return err
		}
		if err := result.Write(ctx, p); err != nil {
			return fmt.Errorf("encode %s result: %w", reqName, err)
		}
		if err := p.WriteFieldEnd(ctx); err != nil {
			return err
		}
		if err := p.WriteFieldStop(ctx); err != nil {
			return err
		}
		if err := p.WriteStructEnd(ctx); err != nil {
			return err
		}
	}
	if err := p.WriteMessageEnd(ctx); err != nil {
		return err
	}
	b := e.buf.Bytes()
	binary.BigEndian.PutUint32(b[0:4], uint32(len(b)))
	return nil
}

// EncodeResponse returns a whole response frame for the request named reqName.
func EncodeResponse(errName, reqName string, seqID int32, result Value) ([]byte, error) {
	e := newWriter(128)
	if err := e.appendResponse(context.Background(), errName, reqName, seqID, result); err != nil {
		return nil, err
	}
	return e.bytes(), nil
}

// ParseCall reads the message envelope of a request body and returns a protocol
// positioned at the args struct.
func ParseCall(body []byte) (MessageBegin, thrift.TProtocol, error) {
	p := newReader(body)
	name, typ, seq, err := p.ReadMessageBegin(context.Background())
	if err != nil {
		return MessageBegin{}, nil, fmt.Errorf("%w: message begin: %v", ErrMalformed, err)
	}
	if name == "" {
		return MessageBegin{}, nil, fmt.Errorf("%w: empty message name", ErrMalformed)
	}
	return MessageBegin{Name: name, Type: typ, SeqID: seq}, p, nil
}

// DecodeArgs reads an args struct and decodes its first field into v. The field id is
// not checked (the reference server reads "the first field" whatever its id), but its
// wire type must match v. Further fields are skipped.
func DecodeArgs(ctx context.Context, p thrift.TProtocol, v Value) error {
	if _, err := p.ReadStructBegin(ctx); err != nil {
		return fmt.Errorf("args struct: %w", err)
	}
	_, typ, _, err := p.ReadFieldBegin(ctx)
	if err != nil {
		return fmt.Errorf("args field: %w", err)
	}
	if typ == thrift.STOP {
		return fmt.Errorf("args struct has no field")
	}
	if want := wireType(v); typ != want {
		return fmt.Errorf("args field has wire type %d, want %d", typ, want)
	}
	if err := v.Read(ctx, p); err != nil {
		return fmt.Errorf("args value: %w", err)
	}
	if err := p.ReadFieldEnd(ctx); err != nil {
		return err
	}
	return skipToStop(ctx, p)
}

// DecodeValue decodes a bare value (no args struct around it) from b.
func DecodeValue(b []byte, v Value) error {
	return v.Read(context.Background(), newReader(b))
}

// DecodeArgsBytes decodes an args struct held in b (see Call.RawArgs) into v.
func DecodeArgsBytes(b []byte, v Value) error {
	return DecodeArgs(context.Background(), newReader(b), v)
}

// EncodeArgs encodes an args struct carrying v as field 1, the form RawArgs returns.
func EncodeArgs(v Value) ([]byte, error) {
	e := newWriter(64)
	if err := writeArgs(context.Background(), e.proto, v); err != nil {
		return nil, err
	}
	return e.bytes(), nil
}

// ArgsSize returns len(EncodeArgs(v)) without building the encoding: the size a
// replica server compares with its max_allowed_write_size, which a client checks
// before sending a write (for a value of many megabytes, encoding it twice would cost
// more than the check saves).
func ArgsSize(v Value) (int, error) {
	var c byteCounter
	if err := writeArgs(context.Background(), thrift.NewTBinaryProtocolConf(&c, &thrift.TConfiguration{}), v); err != nil {
		return 0, err
	}
	return c.n, nil
}

func writeArgs(ctx context.Context, p thrift.TProtocol, v Value) error {
	if err := p.WriteStructBegin(ctx, "args"); err != nil {
		return err
	}
	if err := p.WriteFieldBegin(ctx, "req", wireType(v), 1); err != nil {
		return err
	}
	if err := v.Write(ctx, p); err != nil {
		return err
	}
	if err := p.WriteFieldEnd(ctx); err != nil {
		return err
	}
	if err := p.WriteFieldStop(ctx); err != nil {
		return err
	}
	return p.WriteStructEnd(ctx)
}

// byteCounter is a write-only thrift transport that counts what is written to it.
// It implements thrift.TRichTransport so that the protocol writes single bytes
// straight to it.
type byteCounter struct{ n int }

func (c *byteCounter) Write(p []byte) (int, error)       { c.n += len(p); return len(p), nil }
func (c *byteCounter) WriteByte(byte) error              { c.n++; return nil }
func (c *byteCounter) WriteString(s string) (int, error) { c.n += len(s); return len(s), nil }
func (c *byteCounter) Read([]byte) (int, error)          { return 0, io.EOF }
func (c *byteCounter) ReadByte() (byte, error)           { return 0, io.EOF }
func (c *byteCounter) Flush(context.Context) error       { return nil }
func (c *byteCounter) RemainingBytes() uint64            { return 0 }
func (c *byteCounter) Open() error                       { return nil }
func (c *byteCounter) IsOpen() bool                      { return true }
func (c *byteCounter) Close() error                      { return nil }

// skipToStop skips the remaining fields of a struct up to and including its STOP.
func skipToStop(ctx context.Context, p thrift.TProtocol) error {
	for {
		_, typ, _, err := p.ReadFieldBegin(ctx)
		if err != nil {
			return err
		}
		if typ == thrift.STOP {
			return p.ReadStructEnd(ctx)
		}
		if err := p.Skip(ctx, typ); err != nil {
			return err
		}
		if err := p.ReadFieldEnd(ctx); err != nil {
			return err
		}
	}
}

// ParseResponse parses a response frame (without its length prefix) up to its result
// struct and returns a protocol positioned there. The result is present only when
// ErrorName is ERR_OK.
func ParseResponse(frame []byte) (ResponseHead, thrift.TProtocol, error) {
	p := newReader(frame)
	ctx := context.Background()
	errName, err := p.ReadString(ctx)
	if err != nil {
		return ResponseHead{}, nil, fmt.Errorf("%w: error name: %v", ErrMalformed, err)
	}
	name, typ, seq, err := p.ReadMessageBegin(ctx)
	if err != nil {
		return ResponseHead{}, nil, fmt.Errorf("%w: message begin: %v", ErrMalformed, err)
	}
	return ResponseHead{ErrorName: errName, MessageBegin: MessageBegin{Name: name, Type: typ, SeqID: seq}}, p, nil
}

// DecodeResult reads a result struct and decodes its field 0 into v.
func DecodeResult(ctx context.Context, p thrift.TProtocol, v Value) error {
	if _, err := p.ReadStructBegin(ctx); err != nil {
		return fmt.Errorf("result struct: %w", err)
	}
	_, typ, id, err := p.ReadFieldBegin(ctx)
	if err != nil {
		return fmt.Errorf("result field: %w", err)
	}
	if typ == thrift.STOP {
		return fmt.Errorf("result struct is empty")
	}
	if id != 0 {
		return fmt.Errorf("result field id %d, want 0", id)
	}
	if want := wireType(v); typ != want {
		return fmt.Errorf("result field has wire type %d, want %d", typ, want)
	}
	if err := v.Read(ctx, p); err != nil {
		return fmt.Errorf("result value: %w", err)
	}
	if err := p.ReadFieldEnd(ctx); err != nil {
		return err
	}
	return skipToStop(ctx, p)
}
