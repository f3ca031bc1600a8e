package replica

import (
	"testing"

	"github.com/pegasusgo/pegasus/storage"
)

func TestScenarioOptions(t *testing.T) {
	base := storage.Options{MemTableSize: 64 << 20, MemTableCount: 3, L0CompactionThreshold: 4, L0StopWritesThreshold: 60, LBaseMaxBytes: 640 << 20}
	for _, tc := range []struct {
		envs map[string]string
		want storage.Options
	}{
		{nil, base},
		{map[string]string{envUsageScenario: "normal"}, base},
		{map[string]string{envUsageScenario: "no such"}, base},
		{map[string]string{envUsageScenario: "prefer_write"}, storage.Options{MemTableSize: 128 << 20, MemTableCount: 3,
			L0CompactionThreshold: 5, L0StopWritesThreshold: 60, LBaseMaxBytes: 640 << 20}},
		{map[string]string{envUsageScenario: "bulk_load"}, storage.Options{MemTableSize: 256 << 20, MemTableCount: 6,
			L0CompactionThreshold: bulkLoadL0, L0StopWritesThreshold: bulkLoadL0, LBaseMaxBytes: 640 << 20, DisableAutoCompactions: true}},
	} {
		got := scenarioOptions(base, usageScenario(tc.envs))
		if got.MemTableSize != tc.want.MemTableSize || got.MemTableCount != tc.want.MemTableCount ||
			got.L0CompactionThreshold != tc.want.L0CompactionThreshold || got.L0StopWritesThreshold != tc.want.L0StopWritesThreshold ||
			got.DisableAutoCompactions != tc.want.DisableAutoCompactions || got.LBaseMaxBytes != tc.want.LBaseMaxBytes {
			t.Errorf("%v: %+v, want %+v", tc.envs, got, tc.want)
		}
	}
	// prefer_write never compacts L0 sooner than base does.
	small := storage.Options{MemTableSize: 64 << 20, LBaseMaxBytes: 64 << 20, L0CompactionThreshold: 4}
	if got := scenarioOptions(small, scenarioPreferWrite).L0CompactionThreshold; got != 4 {
		t.Errorf("prefer_write with a small base level: L0 threshold %d, want 4", got)
	}
}
