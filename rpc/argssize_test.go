package rpc

import (
	"bytes"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
)

// The protocol must see the counter as rich, or it would wrap it and copy every
// single byte through a temporary slice.
var _ thrift.TRichTransport = (*byteCounter)(nil)

func TestArgsSize(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, 3<<20)
	typ := rrdb.UpdateType_UT_PUT
	cases := []struct {
		name string
		v    Value
	}{
		{"put", &rrdb.UpdateRequest{Key: base.NewBlob([]byte("\x00\x02hksk")), Value: base.NewBlob([]byte("v")), ExpireTsSeconds: 7}},
		{"put, large value", &rrdb.UpdateRequest{Key: base.NewBlob([]byte("\x00\x02hk")), Value: base.NewBlob(big)}},
		{"put, optional fields set", &rrdb.UpdateRequest{Key: &base.Blob{}, Value: &base.Blob{}, Type: &typ, CheckValue: base.NewBlob([]byte("c"))}},
		{"remove (a bare blob)", base.NewBlob([]byte("\x00\x02hksk"))},
		{"multi_put", &rrdb.MultiPutRequest{HashKey: base.NewBlob([]byte("hk")), Kvs: []*rrdb.KeyValue{
			{Key: base.NewBlob([]byte("a")), Value: base.NewBlob(big[:1000])}, {Key: &base.Blob{}, Value: &base.Blob{}}}}},
		{"multi_remove", &rrdb.MultiRemoveRequest{HashKey: base.NewBlob([]byte("hk")), SortKeys: []*base.Blob{base.NewBlob([]byte("a")), {}}}},
		{"incr", &rrdb.IncrRequest{Key: base.NewBlob([]byte("\x00\x02hk")), Increment: -5, ExpireTsSeconds: -1}},
		{"check_and_set", &rrdb.CheckAndSetRequest{HashKey: base.NewBlob([]byte("hk")), CheckSortKey: &base.Blob{}, CheckOperand: &base.Blob{},
			SetSortKey: &base.Blob{}, SetValue: base.NewBlob(big[:12345])}},
		{"check_and_mutate", &rrdb.CheckAndMutateRequest{HashKey: base.NewBlob([]byte("hk")), CheckSortKey: &base.Blob{}, CheckOperand: &base.Blob{},
			MutateList: []*rrdb.Mutate{{SortKey: base.NewBlob([]byte("s")), Value: base.NewBlob(big[:99])}}}},
		{"i64", &I64{V: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := EncodeArgs(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ArgsSize(tc.v)
			if err != nil || got != len(enc) {
				t.Fatalf("ArgsSize = %d, %v; want %d (len of EncodeArgs)", got, err, len(enc))
			}
		})
	}
}
