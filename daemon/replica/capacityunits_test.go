package replica

import (
	"testing"

	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/storage"
)

func TestCapacityUnitRules(t *testing.T) {
	for _, tc := range []struct{ n, size, want int64 }{
		{0, 4096, 1}, {1, 4096, 1}, {4096, 4096, 1}, {4097, 4096, 2}, {5006, 1024, 5}, {-1, 4096, 1},
	} {
		if got := capacityUnits(tc.n, tc.size); got != tc.want {
			t.Errorf("capacityUnits(%d, %d) = %d, want %d", tc.n, tc.size, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		resp any
		code int32
		want bool
	}{
		{"get found", &rrdb.ReadResponse{}, storage.CodeOK, true},
		{"get not found", &rrdb.ReadResponse{}, storage.CodeNotFound, true},
		{"get invalid", &rrdb.ReadResponse{}, storage.CodeInvalidArgument, false},
		{"multi_get incomplete", &rrdb.MultiGetResponse{}, storage.CodeIncomplete, true},
		{"multi_get invalid", &rrdb.MultiGetResponse{}, storage.CodeInvalidArgument, true},
		{"scan incomplete", &rrdb.ScanResponse{}, storage.CodeIncomplete, true},
		{"scan corruption", &rrdb.ScanResponse{}, storage.CodeCorruption, false},
		{"ttl io error", &rrdb.TTLResponse{}, storage.CodeIOError, false},
	} {
		if got := readCharged(tc.resp, tc.code); got != tc.want {
			t.Errorf("%s: charged %v, want %v", tc.name, got, tc.want)
		}
	}
}
