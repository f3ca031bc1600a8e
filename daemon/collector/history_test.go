package collector

import (
	"testing"

	"github.com/pegasusgo/pegasus/rpc/kv"
)

// TestParseRecord checks the reading of upstream's "attempts,successes,ppm"
// history rows: anything else is refused rather than shown wrong.
func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  AvailabilityRecord
		ok    bool
	}{
		{"20,19,950000", AvailabilityRecord{Kind: "hour", Period: "p", Attempts: 20, Failures: 1, PPM: 950000}, true},
		{"0,0,1000000", AvailabilityRecord{Kind: "hour", Period: "p", PPM: 1000000}, true},
		{" 5, 5 ,1000000", AvailabilityRecord{Kind: "hour", Period: "p", Attempts: 5, PPM: 1000000}, true},
		{"20,19", AvailabilityRecord{}, false},
		{"20,19,950000,1", AvailabilityRecord{}, false},
		{"20,x,950000", AvailabilityRecord{}, false},
		{"20,21,1000000", AvailabilityRecord{}, false},
		{"20,-1,0", AvailabilityRecord{}, false},
		{"", AvailabilityRecord{}, false},
	} {
		got, err := parseRecord(hourPeriod, kv.KV{SortKey: []byte("p"), Value: []byte(tc.value)})
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseRecord(%q) = %+v, %v; want %+v, ok %v", tc.value, got, err, tc.want, tc.ok)
		}
	}
}
