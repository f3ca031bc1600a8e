package replica

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/rpc"
)

// TestMutationEncoderReuse: one encoder used for mutations of every size gives each
// the encoding it would get alone, which decodes back to the mutation; a buffer grown
// past maxKeptEncodeBuffer is not kept.
func TestMutationEncoderReuse(t *testing.T) {
	g := base.Gpid{Appid: 3, PartitionIndex: 5}
	mk := func(decree int64, sizes ...int) *pacifica.Mutation {
		mu := &pacifica.Mutation{Ballot: 7, Decree: decree, LastCommitted: decree - 1, TimestampUS: 1_700_000_000_000_000 + decree, DefaultTTL: 60}
		for i, n := range sizes {
			mu.Updates = append(mu.Updates, pacifica.Update{Code: rpc.CodePut, Data: bytes.Repeat([]byte{byte(i + 1)}, n)})
		}
		return mu
	}
	muts := []*pacifica.Mutation{
		mk(1),                        // an empty write
		mk(2, 1024, 1024, 1024),      // a batch of puts
		mk(3, 10),                    // smaller than the last: the buffer is reused
		mk(4, maxKeptEncodeBuffer+1), // larger than what is kept
		mk(5, 100),
	}
	var enc mutationEncoder
	for _, mu := range muts {
		got, err := enc.encode(g, mu)
		if err != nil {
			t.Fatalf("decree %d: %v", mu.Decree, err)
		}
		var fresh mutationEncoder
		want, err := fresh.encode(g, mu)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("decree %d: a reused encoder gave %d bytes, a fresh one %d", mu.Decree, len(got), len(want))
		}
		back, err := decodeMutation(got)
		if err != nil {
			t.Fatalf("decree %d: decode: %v", mu.Decree, err)
		}
		if len(mu.Updates) == 0 {
			back.Updates = nil // decoded as an empty slice
		}
		if !reflect.DeepEqual(back, mu) {
			t.Fatalf("decree %d: decoded %+v, want %+v", mu.Decree, back, mu)
		}
		if mu.Decree == 4 {
			if _, err := enc.encode(g, muts[0]); err != nil {
				t.Fatal(err)
			}
			if c := enc.buf.Cap(); c > maxKeptEncodeBuffer {
				t.Fatalf("after a large mutation the encoder keeps a %d-byte buffer", c)
			}
		}
	}
}
