package shell

import (
	"testing"

	"github.com/pegasusgo/pegasus/idl/gen/metadata"
	"github.com/pegasusgo/pegasus/idl/gen/radmin"
)

// query_disk_info's reply has no status: the shell shows the one the server reports
// in /metrics, or derives it from the space with the default minimum ratio.
func TestDiskStatus(t *testing.T) {
	cases := []struct {
		name     string
		reported map[string]metadata.DiskStatus
		availMB  int64 // of 1000
		want     metadata.DiskStatus
	}{
		{"reported normal", map[string]metadata.DiskStatus{"ssd1": metadata.DiskStatus_NORMAL}, 50, metadata.DiskStatus_NORMAL},
		{"reported io error", map[string]metadata.DiskStatus{"ssd1": metadata.DiskStatus_IO_ERROR}, 500, metadata.DiskStatus_IO_ERROR},
		{"reported insufficient", map[string]metadata.DiskStatus{"ssd1": metadata.DiskStatus_SPACE_INSUFFICIENT}, 500, metadata.DiskStatus_SPACE_INSUFFICIENT},
		{"not reported, room", nil, 95, metadata.DiskStatus_NORMAL},
		{"not reported, below 10 %", nil, 94, metadata.DiskStatus_SPACE_INSUFFICIENT},
		{"another disk reported", map[string]metadata.DiskStatus{"ssd2": metadata.DiskStatus_IO_ERROR}, 500, metadata.DiskStatus_NORMAL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &radmin.DiskInfo{Tag: "ssd1", DiskCapacityMb: 1000, DiskAvailableMb: tc.availMB}
			if got := diskStatus(tc.reported, d); got != tc.want {
				t.Fatalf("status %v, want %v", got, tc.want)
			}
		})
	}
}
