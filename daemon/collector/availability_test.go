package collector

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is the injected clock of the pure parts.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var zone = time.FixedZone("UTC+8", 8*3600)

func at(hh, mm, ss int) time.Time { return time.Date(2024, 7, 1, hh, mm, ss, 0, zone) }

func wantPeriod(t *testing.T, what string, got AvailabilityPeriod, name string, attempts, failures, ppm int64) {
	t.Helper()
	if got.Period != name || got.Attempts != attempts || got.Failures != failures || got.PPM != ppm {
		t.Errorf("%s = %+v, want period %q attempts %d failures %d ppm %d", what, got, name, attempts, failures, ppm)
	}
	wantPercent := 100.0
	if attempts > 0 {
		wantPercent = 100 * float64(attempts-failures) / float64(attempts)
	}
	if got.Percent != wantPercent {
		t.Errorf("%s percent = %v, want %v", what, got.Percent, wantPercent)
	}
}

func TestAvailabilityNothingBeforeFirstBoundary(t *testing.T) {
	clk := &fakeClock{t: at(12, 0, 30)}
	b := newAvailabilityBook("temp", clk.Now)
	b.setTable(3, 2)
	b.record(0, time.Millisecond, "")
	b.record(1, time.Millisecond, "write: ERR_TIMEOUT")
	r := b.report(3 * time.Second)
	for _, p := range []AvailabilityPeriod{r.Minute, r.Hour, r.Day} {
		wantPeriod(t, "before the first boundary", p, "", 0, 0, 1_000_000)
	}
	if r.Table != "temp" || r.AppID != 3 || r.PartitionCount != 2 || r.DetectIntervalSeconds != 3 || r.UpdatedAt != "2024-07-01 12:00:30" {
		t.Errorf("report header = %+v", r)
	}
	if len(r.Partitions) != 2 || r.Partitions[0].Result != "OK" || r.Partitions[1].Result != "FAIL" ||
		r.Partitions[1].Error != "write: ERR_TIMEOUT" || r.Partitions[1].ConsecutiveFailures != 1 || r.Partitions[0].LatencyMS != 1 {
		t.Errorf("partitions = %+v", r.Partitions)
	}
}

func TestAvailabilityPeriodsCloseAtBoundaries(t *testing.T) {
	clk := &fakeClock{t: at(12, 58, 10)}
	b := newAvailabilityBook("temp", clk.Now)
	b.setTable(1, 4)
	for i := range 40 {
		fail := ""
		if i == 7 {
			fail = "read: ERR_TIMEOUT"
		}
		b.record(i%4, time.Millisecond, fail)
	}
	clk.Set(at(12, 59, 0))
	r := b.report(time.Second)
	wantPeriod(t, "minute 12:58", r.Minute, "2024-07-01 12:58", 40, 1, 975000)
	wantPeriod(t, "hour still open", r.Hour, "", 0, 0, 1_000_000)

	// The next minute is clean; the hour sums both.
	for i := range 20 {
		b.record(i%4, time.Millisecond, "")
	}
	clk.Set(at(13, 0, 1))
	r = b.report(time.Second)
	wantPeriod(t, "minute 12:59", r.Minute, "2024-07-01 12:59", 20, 0, 1_000_000)
	wantPeriod(t, "hour 12", r.Hour, "2024-07-01 12", 60, 1, 983333)
	wantPeriod(t, "day still open", r.Day, "", 0, 0, 1_000_000)

	// Periods are closed once: tick hands each to the detector one time.
	closed := b.tick()
	if len(closed) != 3 || closed[0].Kind != minutePeriod || closed[1].Kind != minutePeriod || closed[2].Kind != hourPeriod {
		t.Fatalf("closed = %+v", closed)
	}
	if more := b.tick(); len(more) != 0 {
		t.Errorf("closed again: %+v", more)
	}
}

func TestAvailabilityGapPublishesTheEmptyPreviousPeriod(t *testing.T) {
	clk := &fakeClock{t: at(10, 0, 5)}
	b := newAvailabilityBook("temp", clk.Now)
	b.setTable(1, 1)
	b.record(0, 0, "write: ERR_TIMEOUT")
	// Nothing for several minutes (the table could not be opened): the
	// published minute is the one just before now, without attempts.
	clk.Set(at(10, 7, 30))
	r := b.report(time.Second)
	wantPeriod(t, "minute after a gap", r.Minute, "2024-07-01 10:06", 0, 0, 1_000_000)
	b.record(0, 0, "")
	clk.Set(at(10, 8, 0))
	wantPeriod(t, "next minute", b.report(time.Second).Minute, "2024-07-01 10:07", 1, 0, 1_000_000)
	// The day rolls at local midnight.
	clk.Set(time.Date(2024, 7, 2, 0, 0, 0, 0, zone))
	r = b.report(time.Second)
	wantPeriod(t, "day", r.Day, "2024-07-01", 2, 1, 500000)
	wantPeriod(t, "hour", r.Hour, "2024-07-01 23", 0, 0, 1_000_000)
}

func TestAvailabilityPPMIsFloored(t *testing.T) {
	for _, c := range []struct {
		attempts, failures, ppm int64
	}{{2400, 1, 999583}, {230400, 4, 999982}, {3, 1, 666666}, {1, 1, 0}, {0, 0, 1_000_000}} {
		if got := newPeriod("p", c.attempts, c.failures).PPM; got != c.ppm {
			t.Errorf("ppm(%d, %d) = %d, want %d", c.attempts, c.failures, got, c.ppm)
		}
	}
}

func TestAvailabilityHourInHalfHourZone(t *testing.T) {
	india := time.FixedZone("IST", 5*3600+1800)
	clk := &fakeClock{t: time.Date(2024, 7, 1, 9, 59, 0, 0, india)}
	b := newAvailabilityBook("temp", clk.Now)
	b.setTable(1, 1)
	b.record(0, 0, "")
	// 10:00 local is 04:30 UTC: a Truncate(time.Hour) would miss it.
	clk.Set(time.Date(2024, 7, 1, 10, 0, 0, 0, india))
	wantPeriod(t, "hour", b.report(time.Second).Hour, "2024-07-01 09", 1, 0, 1_000_000)
}

func TestAvailabilityConsecutiveFailures(t *testing.T) {
	clk := &fakeClock{t: at(8, 0, 0)}
	b := newAvailabilityBook("temp", clk.Now)
	b.setTable(1, 3)
	for i := 1; i <= 3; i++ {
		if p := b.record(2, time.Second, "write: ERR_TIMEOUT"); p.ConsecutiveFailures != i || p.Pidx != 2 {
			t.Fatalf("failure %d: %+v", i, p)
		}
	}
	if p := b.record(2, time.Millisecond, ""); p.ConsecutiveFailures != 0 || p.Result != "OK" || p.Error != "" {
		t.Errorf("after a success: %+v", p)
	}
	r := b.report(time.Second)
	// Only probed partitions are listed, by index.
	if len(r.Partitions) != 1 || r.Partitions[0].Pidx != 2 {
		t.Errorf("partitions = %+v", r.Partitions)
	}
	c := b.counters()
	if c.Attempts != 4 || c.Failures != 3 || c.Partitions[2].attempts != 4 || c.Partitions[2].failures != 3 {
		t.Errorf("counters = %+v", c)
	}
	// The same table again changes nothing; a recreated one starts afresh.
	b.setTable(1, 3)
	if len(b.report(time.Second).Partitions) != 1 {
		t.Error("setTable with the same identity reset the partitions")
	}
	b.setTable(2, 3)
	if r := b.report(time.Second); len(r.Partitions) != 0 || r.AppID != 2 {
		t.Errorf("after the table was recreated: %+v", r)
	}
	// A probe of a partition out of range still counts for the table.
	b.record(7, 0, "")
	if c := b.counters(); c.Attempts != 5 {
		t.Errorf("attempts = %d", c.Attempts)
	}
}
