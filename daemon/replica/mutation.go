package replica

import (
	"context"
	"fmt"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage"
)

// toWire converts a mutation to its message form.
func toWire(g base.Gpid, mu *pacifica.Mutation) *consensus.MutationData {
	md := &consensus.MutationData{
		Header: &consensus.MutationHeader{
			Pid:                 base.NewGpid(g.Appid, g.PartitionIndex),
			Ballot:              mu.Ballot,
			Decree:              mu.Decree,
			LastCommittedDecree: mu.LastCommitted,
			TimestampUs:         mu.TimestampUS,
			DefaultTTLSeconds:   mu.DefaultTTL,
		},
		Updates: make([]*consensus.MutationUpdate, len(mu.Updates)),
	}
	for i, u := range mu.Updates {
		md.Updates[i] = &consensus.MutationUpdate{Code: u.Code, Data: base.NewBlob(u.Data)}
	}
	return md
}

// fromWire converts a received or replayed mutation.
func fromWire(md *consensus.MutationData) (*pacifica.Mutation, error) {
	if md == nil || md.Header == nil {
		return nil, fmt.Errorf("mutation without header")
	}
	h := md.Header
	mu := &pacifica.Mutation{
		Ballot:        h.Ballot,
		Decree:        h.Decree,
		LastCommitted: h.LastCommittedDecree,
		TimestampUS:   h.TimestampUs,
		DefaultTTL:    h.DefaultTTLSeconds,
		Updates:       make([]pacifica.Update, 0, len(md.Updates)),
	}
	for _, u := range md.Updates {
		if u == nil {
			return nil, fmt.Errorf("mutation %d: nil update", h.Decree)
		}
		mu.Updates = append(mu.Updates, pacifica.Update{Code: u.Code, Data: u.Data.Bytes()})
	}
	return mu, nil
}

// mutationEncoder serialises mutations for the plog into one buffer that it reuses:
// the log copies a record before Append returns, and a fresh buffer per mutation,
// grown from a guess to the size of its values, cost a few allocations and copies of
// every value. It belongs to one goroutine (the partition's executor).
type mutationEncoder struct {
	buf   *thrift.TMemoryBuffer
	proto *thrift.TBinaryProtocol
}

// maxKeptEncodeBuffer bounds the buffer kept between mutations: a rare large batch
// should not pin its memory for the life of the replica.
const maxKeptEncodeBuffer = 1 << 20

// encode returns the encoding of mu, valid until the next call.
func (e *mutationEncoder) encode(g base.Gpid, mu *pacifica.Mutation) ([]byte, error) {
	if e.buf == nil || e.buf.Cap() > maxKeptEncodeBuffer {
		e.buf = thrift.NewTMemoryBufferLen(256)
		e.proto = thrift.NewTBinaryProtocolConf(e.buf, &thrift.TConfiguration{})
	}
	e.buf.Reset()
	e.buf.Grow(encodedSizeHint(mu))
	if err := toWire(g, mu).Write(context.Background(), e.proto); err != nil {
		return nil, fmt.Errorf("encode mutation %d: %w", mu.Decree, err)
	}
	return e.buf.Bytes(), nil
}

// encodedSizeHint is a little more than the encoded size of mu: the header's fixed
// fields, and per update its code, its data and their field headers.
func encodedSizeHint(mu *pacifica.Mutation) int {
	n := 128
	for _, u := range mu.Updates {
		n += 32 + len(u.Code) + len(u.Data)
	}
	return n
}

// decodeMutation reads a mutation back from the plog.
func decodeMutation(b []byte) (*pacifica.Mutation, error) {
	md := consensus.NewMutationData()
	if err := rpc.DecodeValue(b, md); err != nil {
		return nil, fmt.Errorf("decode mutation: %w", err)
	}
	return fromWire(md)
}

// decodeOp turns a logged client write back into a storage operation.
func decodeOp(u pacifica.Update) (storage.Op, error) {
	var op storage.Op
	var v rpc.Value
	switch u.Code {
	case rpc.CodePut:
		op.Put = rrdb.NewUpdateRequest()
		v = op.Put
	case rpc.CodeMultiPut:
		op.MultiPut = rrdb.NewMultiPutRequest()
		v = op.MultiPut
	case rpc.CodeRemove:
		op.Remove = &base.Blob{}
		v = op.Remove
	case rpc.CodeMultiRemove:
		op.MultiRemove = rrdb.NewMultiRemoveRequest()
		v = op.MultiRemove
	case rpc.CodeIncr:
		op.Incr = rrdb.NewIncrRequest()
		v = op.Incr
	case rpc.CodeCheckAndSet:
		op.CheckAndSet = rrdb.NewCheckAndSetRequest()
		v = op.CheckAndSet
	case rpc.CodeCheckAndMutate:
		op.CheckAndMutate = rrdb.NewCheckAndMutateRequest()
		v = op.CheckAndMutate
	default:
		return op, fmt.Errorf("unknown write %q in a mutation", u.Code)
	}
	if err := rpc.DecodeArgsBytes(u.Data, v); err != nil {
		return op, fmt.Errorf("decode %s: %w", u.Code, err)
	}
	return op, nil
}
