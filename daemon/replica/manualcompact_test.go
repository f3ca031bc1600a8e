package replica

import (
	"fmt"
	"testing"
	"time"
)

func TestCompactDue(t *testing.T) {
	loc := time.FixedZone("UTC+8", 8*3600)
	now := time.Date(2026, 12, 7, 14, 30, 0, 0, loc)
	never := time.Time{}
	earlier := now.Add(-2 * time.Hour) // 12:30
	sec := func(t time.Time) string { return fmt.Sprint(t.Unix()) }
	for _, tc := range []struct {
		name       string
		envs       map[string]string
		lastFinish time.Time
		rule       string
	}{
		{"no envs", nil, never, ""},
		{"once, never compacted", map[string]string{envCompactOnceTrigger: sec(now)}, never, "once"},
		{"once, a future trigger fires at once", map[string]string{envCompactOnceTrigger: sec(now.Add(time.Hour))}, never, "once"},
		{"once, finished after the trigger", map[string]string{envCompactOnceTrigger: sec(earlier)}, earlier.Add(time.Minute), ""},
		{"once, finished in the trigger's second", map[string]string{envCompactOnceTrigger: sec(earlier)}, earlier.Add(500 * time.Millisecond), ""},
		{"once, trigger 0", map[string]string{envCompactOnceTrigger: "0"}, never, ""},
		{"once, bad trigger", map[string]string{envCompactOnceTrigger: "soon"}, never, ""},
		{"disabled", map[string]string{envCompactOnceTrigger: sec(now), envCompactDisabled: "true"}, never, ""},
		{"disabled only by exactly true", map[string]string{envCompactOnceTrigger: sec(now), envCompactDisabled: "TRUE"}, never, "once"},
		{"max running 0", map[string]string{envCompactOnceTrigger: sec(now), envCompactMaxRunning: "0"}, never, ""},
		{"max running unparsable is no cap", map[string]string{envCompactOnceTrigger: sec(now), envCompactMaxRunning: "x"}, never, "once"},
		{"periodic, time passed today", map[string]string{envCompactPeriodicTimes: "3:00,13:15"}, earlier, "periodic"},
		{"periodic, already done since", map[string]string{envCompactPeriodicTimes: "3:00,13:15"}, now.Add(-time.Minute), ""},
		{"periodic, not yet", map[string]string{envCompactPeriodicTimes: "15:00"}, earlier, ""},
		{"periodic, local time", map[string]string{envCompactPeriodicTimes: "14:29"}, earlier, "periodic"},
		{"periodic, bad items skipped", map[string]string{envCompactPeriodicTimes: "25:00, x ,14:61,13:00"}, earlier, "periodic"},
		{"periodic, all bad", map[string]string{envCompactPeriodicTimes: "25:00,abc"}, never, ""},
		{"once wins over periodic", map[string]string{envCompactOnceTrigger: sec(now), envCompactPeriodicTimes: "13:00"}, earlier, "once"},
	} {
		rule, due := compactDue(tc.envs, tc.lastFinish, now)
		if rule != tc.rule || due != (tc.rule != "") {
			t.Errorf("%s: compactDue = %q %v, want %q", tc.name, rule, due, tc.rule)
		}
	}
}

func TestCompactorCapsPerTable(t *testing.T) {
	c := newCompactor(nil)
	if !c.claim(1, 2) || !c.claim(1, 2) {
		t.Fatal("two compactions of a table capped at 2 refused")
	}
	if c.claim(1, 2) {
		t.Error("a third compaction of a table capped at 2 allowed")
	}
	if !c.claim(2, 1) {
		t.Error("another table's compaction held back")
	}
	c.unclaim(1)
	if !c.claim(1, 2) {
		t.Error("a compaction refused after one ended")
	}
	for range 5 {
		if !c.claim(3, 0) {
			t.Fatal("an uncapped table's compaction refused")
		}
	}
}
