package restore

import (
	"context"
	"reflect"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/pegasusgo/pegasus/idl/base"
)

type value interface {
	Read(ctx context.Context, p thrift.TProtocol) error
	Write(ctx context.Context, p thrift.TProtocol) error
}

func encode(t testing.TB, v value) []byte {
	buf := thrift.NewTMemoryBuffer()
	if err := v.Write(context.Background(), thrift.NewTBinaryProtocolConf(buf, nil)); err != nil {
		t.Fatalf("write %T: %v", v, err)
	}
	return buf.Bytes()
}

func decode(b []byte, v value) error {
	buf := thrift.NewTMemoryBuffer()
	_, _ = buf.Write(b)
	return v.Read(context.Background(), thrift.NewTBinaryProtocolConf(buf, nil))
}

func TestRoundTrip(t *testing.T) {
	reason := "file 000012.sst: md5 mismatch"
	cases := []struct {
		in, out value
	}{
		{&QueryRequest{RestoreAppID: 7}, NewQueryRequest()},
		{&QueryResponse{Err: base.NewErrorCode(base.ErrOK),
			RestoreStatus:   []*base.ErrorCode{base.NewErrorCode(base.ErrOK), base.NewErrorCode(base.ErrIgnoreBadData)},
			RestoreProgress: []int32{1000, 420}}, NewQueryResponse()},
		{&QueryResponse{Err: base.NewErrorCode(base.ErrAppDropped)}, NewQueryResponse()},
		{&ReportRequest{Pid: base.NewGpid(3, 5), RestoreStatus: base.NewErrorCode(base.ErrCorruption), Progress: 12, Reason: &reason, Node: &reason}, NewReportRequest()},
		{&ReportRequest{Pid: base.NewGpid(3, 0), RestoreStatus: base.NewErrorCode(base.ErrOK), Progress: 1000}, NewReportRequest()},
		{&ReportResponse{Err: base.NewErrorCode(base.ErrOK)}, NewReportResponse()},
	}
	for _, tc := range cases {
		if err := decode(encode(t, tc.in), tc.out); err != nil {
			t.Fatalf("%T: %v", tc.in, err)
		}
		if !reflect.DeepEqual(tc.in, tc.out) {
			t.Errorf("%T: got %+v, want %+v", tc.in, tc.out, tc.in)
		}
	}
}

// A response claiming a huge list with no elements fails to decode without
// allocating the claimed length.
func TestHugeListClaim(t *testing.T) {
	b := encode(t, &QueryResponse{Err: base.NewErrorCode(base.ErrOK)})
	// field 2 header: type LIST (15), id 2, then elem type STRING (11) and a length.
	claim := []byte{15, 0, 2, 11, 0x7f, 0xff, 0xff, 0xff}
	b = append(append(append([]byte{}, b[:len(b)-1]...), claim...), 0)
	var r QueryResponse
	if err := decode(b, &r); err == nil {
		t.Fatal("decoded a list shorter than its claimed length")
	}
}

func FuzzDecode(f *testing.F) {
	reason := "x"
	for _, v := range []value{
		&QueryRequest{RestoreAppID: 7},
		&QueryResponse{Err: base.NewErrorCode(base.ErrOK), RestoreStatus: []*base.ErrorCode{base.NewErrorCode(base.ErrOK)}, RestoreProgress: []int32{1000}},
		&ReportRequest{Pid: base.NewGpid(1, 2), RestoreStatus: base.NewErrorCode(base.ErrOK), Progress: 5, Reason: &reason},
		&ReportResponse{Err: base.NewErrorCode(base.ErrOK)},
	} {
		f.Add(encode(f, v))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range []value{NewQueryRequest(), NewQueryResponse(), NewReportRequest(), NewReportResponse()} {
			if decode(b, v) == nil {
				// What decodes re-encodes.
				encode(t, v)
			}
		}
	})
}
