package cluster

import (
	"flag"
	"os"
	"strconv"
	"testing"
)

// TestMain lets four transcripts (two under the race detector) run at once
// unless -parallel is given: the
// clusters spend their time waiting on timers (beacons, grace, syncs), not on
// the CPU, so the default of GOMAXPROCS at a time would mostly add up their
// waits. More at once starves the 100 ms beacons on a small machine, and the
// 1.5 s failure-detector grace then declares live servers dead.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", strconv.Itoa(4/slow+1))
	}
	os.Exit(m.Run())
}
