package meta

import (
	"slices"
	"testing"
	"time"
)

// The failure detector is driven by explicit times: no sockets, no sleeps.

var fdT0 = time.Unix(1_800_000_000, 0)

func fdAt(d time.Duration) time.Time { return fdT0.Add(d) }

// A node is alive from its first beacon (or a leader's register) until grace has
// passed without a beacon; exactly grace is not yet dead; a beacon revives it.
func TestFailureDetectorGrace(t *testing.T) {
	const grace = 10 * time.Second
	type ev struct {
		at       time.Duration
		op       string // "beacon", "register", "check"
		node     string
		accepted bool     // beacon
		became   bool     // beacon
		dead     []string // check
	}
	for _, tc := range []struct {
		name string
		evs  []ev
	}{
		{"first beacon makes alive, later ones do not", []ev{
			{0, "beacon", "a", true, true, nil},
			{time.Second, "beacon", "a", true, false, nil},
			{time.Second, "check", "", false, false, nil},
		}},
		{"dead only strictly after grace", []ev{
			{0, "beacon", "a", true, true, nil},
			{grace, "check", "", false, false, nil},
			{grace + time.Millisecond, "check", "", false, false, []string{"a"}},
			{grace + 2*time.Millisecond, "check", "", false, false, nil}, // reported once
		}},
		{"a beacon pushes the deadline", []ev{
			{0, "beacon", "a", true, true, nil},
			{8 * time.Second, "beacon", "a", true, false, nil},
			{15 * time.Second, "check", "", false, false, nil},
			{18*time.Second + time.Millisecond, "check", "", false, false, []string{"a"}},
		}},
		{"a dead node comes back with a beacon", []ev{
			{0, "beacon", "a", true, true, nil},
			{11 * time.Second, "check", "", false, false, []string{"a"}},
			{12 * time.Second, "beacon", "a", true, true, nil},
			{13 * time.Second, "check", "", false, false, nil},
		}},
		{"register without beacon dies one grace later; dead list sorted", []ev{
			{0, "register", "c", false, false, nil},
			{0, "beacon", "b", true, true, nil},
			{time.Second, "register", "a", false, false, nil},
			{11 * time.Second, "check", "", false, false, []string{"b", "c"}},
			{11*time.Second + time.Millisecond, "check", "", false, false, []string{"a"}},
		}},
		{"register refreshes a known node", []ev{
			{0, "beacon", "a", true, true, nil},
			{9 * time.Second, "register", "a", false, false, nil},
			{15 * time.Second, "check", "", false, false, nil},
			{19*time.Second + time.Millisecond, "check", "", false, false, []string{"a"}},
		}},
		{"a registered node's first beacon is not a revival", []ev{
			{0, "register", "a", false, false, nil},
			{time.Second, "beacon", "a", true, false, nil},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFailureDetector(grace, 0, 0)
			for i, e := range tc.evs {
				now := fdAt(e.at)
				switch e.op {
				case "beacon":
					acc, became := f.beacon(e.node, 0, now)
					if acc != e.accepted || became != e.became {
						t.Fatalf("event %d: beacon(%s) = %v,%v, want %v,%v", i, e.node, acc, became, e.accepted, e.became)
					}
					if !f.isAlive(e.node) {
						t.Fatalf("event %d: %s not alive after an accepted beacon", i, e.node)
					}
				case "register":
					f.register(e.node, now)
					if !f.isAlive(e.node) {
						t.Fatalf("event %d: %s not alive after register", i, e.node)
					}
				case "check":
					dead := f.check(now)
					if !slices.Equal(dead, e.dead) {
						t.Fatalf("event %d: check at %v = %v, want %v", i, e.at, dead, e.dead)
					}
					for _, d := range dead {
						if f.isAlive(d) {
							t.Fatalf("event %d: %s reported dead but isAlive", i, d)
						}
					}
				}
			}
		})
	}
}

// Restarts (a new start time) within stableRun of the previous start count as
// unstable; maxUnstable of them in a row blacklist the node, whose beacons are then
// ignored (so it dies after grace) until it restarts after a stable run.
func TestFailureDetectorUnstableRestarts(t *testing.T) {
	const (
		grace     = 10 * time.Second
		stableRun = time.Minute
	)
	ms := func(d time.Duration) int64 { return fdT0.Add(d).UnixMilli() }
	type bc struct {
		at       time.Duration
		start    int64
		accepted bool
		became   bool
	}
	for _, tc := range []struct {
		name        string
		maxUnstable int
		stableRun   time.Duration
		beacons     []bc
		unstable    int
		blacklisted bool
	}{
		{"same start time is not a restart", 2, stableRun, []bc{
			{0, ms(0), true, true}, {time.Second, ms(0), true, false}, {2 * time.Second, ms(0), true, false},
		}, 0, false},
		{"one quick restart counts but is below the limit", 2, stableRun, []bc{
			{0, ms(0), true, true}, {10 * time.Second, ms(10 * time.Second), true, false},
		}, 1, false},
		{"maxUnstable quick restarts blacklist", 2, stableRun, []bc{
			{0, ms(0), true, true},
			{10 * time.Second, ms(10 * time.Second), true, false},
			{20 * time.Second, ms(20 * time.Second), false, false},
			{21 * time.Second, ms(20 * time.Second), false, false}, // still ignored
		}, 2, true},
		{"a stable run resets the count", 2, stableRun, []bc{
			{0, ms(0), true, true},
			{10 * time.Second, ms(10 * time.Second), true, false},
			{80 * time.Second, ms(80 * time.Second), true, false}, // 70s after the previous start
			{90 * time.Second, ms(90 * time.Second), true, false},
		}, 1, false},
		{"a stable restart lifts the blacklist", 2, stableRun, []bc{
			{0, ms(0), true, true},
			{5 * time.Second, ms(5 * time.Second), true, false},
			{6 * time.Second, ms(6 * time.Second), false, false},
			{300 * time.Second, ms(300 * time.Second), true, false}, // alive flag kept: no check ran
		}, 0, false},
		{"start time 0 is ignored", 1, stableRun, []bc{
			{0, ms(0), true, true}, {time.Second, 0, true, false}, {2 * time.Second, ms(0), true, false},
		}, 0, false},
		{"maxUnstable 0 never blacklists", 0, stableRun, []bc{
			{0, ms(0), true, true}, {time.Second, ms(time.Second), true, false},
			{2 * time.Second, ms(2 * time.Second), true, false}, {3 * time.Second, ms(3 * time.Second), true, false},
		}, 3, false},
		{"stableRun 0 never counts restarts", 1, 0, []bc{
			{0, ms(0), true, true}, {time.Second, ms(time.Second), true, false},
		}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFailureDetector(grace, tc.stableRun, tc.maxUnstable)
			for i, b := range tc.beacons {
				acc, became := f.beacon("n", b.start, fdAt(b.at))
				if acc != b.accepted || became != b.became {
					t.Fatalf("beacon %d: = %v,%v, want %v,%v", i, acc, became, b.accepted, b.became)
				}
			}
			n := f.nodes["n"]
			if n.unstable != tc.unstable || n.blacklisted != tc.blacklisted {
				t.Fatalf("unstable=%d blacklisted=%v, want %d %v", n.unstable, n.blacklisted, tc.unstable, tc.blacklisted)
			}
		})
	}
}

// A blacklisted node's beacons do not keep it alive, and a dead blacklisted node is
// not revived by them.
func TestFailureDetectorBlacklistedDies(t *testing.T) {
	f := newFailureDetector(10*time.Second, time.Minute, 1)
	ms := func(d time.Duration) int64 { return fdT0.Add(d).UnixMilli() }
	f.beacon("n", ms(0), fdAt(0))
	if acc, _ := f.beacon("n", ms(time.Second), fdAt(time.Second)); acc {
		t.Fatal("quick restart with maxUnstable=1 accepted")
	}
	for s := 2; s <= 10; s++ {
		f.beacon("n", ms(time.Second), fdAt(time.Duration(s)*time.Second))
	}
	if dead := f.check(fdAt(11 * time.Second)); !slices.Equal(dead, []string{"n"}) {
		t.Fatalf("check = %v, want [n]: ignored beacons refreshed the lease", dead)
	}
	if acc, became := f.beacon("n", ms(time.Second), fdAt(12*time.Second)); acc || became || f.isAlive("n") {
		t.Fatalf("blacklisted dead node revived: accepted=%v became=%v", acc, became)
	}
}

// forget drops only dead nodes; snapshot lists every node sorted by address.
func TestFailureDetectorForgetAndSnapshot(t *testing.T) {
	f := newFailureDetector(10*time.Second, 0, 0)
	f.beacon("c", 0, fdAt(0))
	f.beacon("a", 0, fdAt(5*time.Second))
	f.register("b", fdAt(0))
	if dead := f.check(fdAt(11 * time.Second)); !slices.Equal(dead, []string{"b", "c"}) {
		t.Fatalf("check = %v", dead)
	}
	want := []nodeLiveness{{"a", true}, {"b", false}, {"c", false}}
	if got := f.snapshot(); !slices.Equal(got, want) {
		t.Fatalf("snapshot = %v, want %v", got, want)
	}
	f.forget("a") // alive: kept
	f.forget("b")
	f.forget("zz") // unknown: no-op
	want = []nodeLiveness{{"a", true}, {"c", false}}
	if got := f.snapshot(); !slices.Equal(got, want) {
		t.Fatalf("after forget: snapshot = %v, want %v", got, want)
	}
	if f.isAlive("b") || f.isAlive("zz") {
		t.Fatal("forgotten or unknown node reported alive")
	}
}

// A late beacon of an earlier run (an older start time) is no restart: it must
// not count towards the unstable limit, nor make the current run look restarted.
func TestFailureDetectorOlderStartTimeIsNoRestart(t *testing.T) {
	f := newFailureDetector(10*time.Second, time.Minute, 1)
	const run1, run2 = int64(1_000_000), int64(5_000_000) // ms, far apart: a stable restart
	if ok, _ := f.beacon("a", run1, fdAt(0)); !ok {
		t.Fatal("first beacon refused")
	}
	if ok, _ := f.beacon("a", run2, fdAt(time.Second)); !ok {
		t.Fatal("beacon of a stable restart refused")
	}
	for i, start := range []int64{run1, run2, run2} {
		if ok, _ := f.beacon("a", start, fdAt(time.Duration(2+i)*time.Second)); !ok {
			t.Fatalf("beacon %d (start %d) refused: a late beacon of the old run counted as an unstable restart", i, start)
		}
	}
}
