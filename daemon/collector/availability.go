package collector

import (
	"sync"
	"time"
)

// AvailabilityReport is the document served at GET /availability. It is the
// contract of the shell's availability command (shell.AvailabilityReport,
// docs/shell.md): the same fields, names and meanings.
type AvailabilityReport struct {
	Table                 string             `json:"table"`
	AppID                 int32              `json:"app_id"`
	PartitionCount        int                `json:"partition_count"`
	DetectIntervalSeconds int                `json:"detect_interval_seconds"`
	UpdatedAt             string             `json:"updated_at"`
	Minute                AvailabilityPeriod `json:"minute"`
	Hour                  AvailabilityPeriod `json:"hour"`
	Day                   AvailabilityPeriod `json:"day"`
	Partitions            []PartitionProbe   `json:"partitions"`
	// HistoryTable is where the closed periods are kept, empty when no
	// history is kept; History the latest HistoryRows periods of each kind
	// read from it, and HistoryError why they could not be read.
	HistoryTable string               `json:"history_table"`
	History      []AvailabilityRecord `json:"history"`
	HistoryError string               `json:"history_error,omitempty"`
}

// AvailabilityPeriod is the availability over one complete period.
type AvailabilityPeriod struct {
	Period   string  `json:"period"` // "YYYY-MM-DD HH:MM", "YYYY-MM-DD HH" or "YYYY-MM-DD"
	Attempts int64   `json:"attempts"`
	Failures int64   `json:"failures"`
	Percent  float64 `json:"percent"` // 0..100
	PPM      int64   `json:"ppm"`     // 0..1000000
}

// PartitionProbe is the latest probe of one partition.
type PartitionProbe struct {
	Pidx                int     `json:"pidx"`
	Result              string  `json:"result"` // "OK" or "FAIL"
	Error               string  `json:"error"`
	LatencyMS           float64 `json:"latency_ms"`
	Time                string  `json:"time"`
	ConsecutiveFailures int     `json:"consecutive_failures"`
}

// periodKind is one of the three availability periods.
type periodKind int

const (
	minutePeriod periodKind = iota
	hourPeriod
	dayPeriod
	numPeriods
)

func (k periodKind) String() string {
	return [...]string{"minute", "hour", "day"}[k]
}

// timeLayout is how the report and the detect-table rows print instants.
const timeLayout = "2006-01-02 15:04:05"

// periodStart returns the start of the period of kind k containing t, in t's
// location. It is built from the calendar fields, not Truncate, because
// Truncate works on absolute time and would misplace hour and day boundaries
// in zones whose offset is not a whole number of hours.
func periodStart(k periodKind, t time.Time) time.Time {
	y, m, d := t.Date()
	switch k {
	case minutePeriod:
		return time.Date(y, m, d, t.Hour(), t.Minute(), 0, 0, t.Location())
	case hourPeriod:
		return time.Date(y, m, d, t.Hour(), 0, 0, 0, t.Location())
	default:
		return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
	}
}

// periodName names the period of kind k containing t like upstream's
// detect-table rows.
func periodName(k periodKind, t time.Time) string {
	switch k {
	case minutePeriod:
		return t.Format("2006-01-02 15:04")
	case hourPeriod:
		return t.Format("2006-01-02 15")
	default:
		return t.Format("2006-01-02")
	}
}

// previousPeriodName names the period just before the one containing t.
func previousPeriodName(k periodKind, t time.Time) string {
	return periodName(k, periodStart(k, t).Add(-time.Nanosecond))
}

// newPeriod computes the figures of a period. A period without attempts is
// fully available, as upstream reports it.
func newPeriod(name string, attempts, failures int64) AvailabilityPeriod {
	p := AvailabilityPeriod{Period: name, Attempts: attempts, Failures: failures, Percent: 100, PPM: 1_000_000}
	if attempts > 0 {
		ok := attempts - failures
		p.Percent = 100 * float64(ok) / float64(attempts)
		// Integer division, as upstream computes its ppm gauges.
		p.PPM = ok * 1_000_000 / attempts
	}
	return p
}

// closedPeriod is a period that has just ended.
type closedPeriod struct {
	Kind periodKind
	AvailabilityPeriod
}

type periodCounts struct {
	name               string
	attempts, failures int64
}

// partitionState is what the book keeps per partition.
type partitionState struct {
	probe              PartitionProbe
	probed             bool
	attempts, failures int64 // since the collector started
}

// availabilityBook accounts probes into minute, hour and day periods. It does no
// I/O: time comes from the injected clock, and every method is safe for
// concurrent use.
type availabilityBook struct {
	now func() time.Time

	mu         sync.Mutex
	table      string
	appID      int32
	cur        [numPeriods]periodCounts
	last       [numPeriods]AvailabilityPeriod
	partitions []partitionState
	attempts   int64 // since the collector started
	failures   int64
	// closed are the periods closed since the last tick, for the detector to
	// log and record whichever call noticed the boundary.
	closed []closedPeriod
}

func newAvailabilityBook(table string, now func() time.Time) *availabilityBook {
	b := &availabilityBook{now: now, table: table}
	t := now()
	for k := range numPeriods {
		b.cur[k].name = periodName(k, t)
		// Before the first boundary nothing is published: an empty name, and
		// the figures of a period without attempts.
		b.last[k] = newPeriod("", 0, 0)
	}
	return b
}

// setTable records the identity of the probed table. A different app id (the
// table was dropped and created again) or partition count starts the partition
// list afresh; the period counters go on, since they measure the table name the
// operators watch.
func (b *availabilityBook) setTable(appID int32, partitions int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.appID == appID && len(b.partitions) == partitions {
		return
	}
	b.appID = appID
	b.partitions = make([]partitionState, partitions)
}

// roll closes every period that ended before t. A gap longer than a period (no
// probe and no report in between) closes the period just before t's as an
// empty one, so the published figure is never older than one period.
func (b *availabilityBook) roll(t time.Time) {
	for k := range numPeriods {
		name := periodName(k, t)
		c := &b.cur[k]
		if c.name == name {
			continue
		}
		prev := previousPeriodName(k, t)
		p := newPeriod(prev, 0, 0)
		if c.name == prev {
			p = newPeriod(c.name, c.attempts, c.failures)
		}
		b.last[k] = p
		b.closed = append(b.closed, closedPeriod{Kind: k, AvailabilityPeriod: p})
		*c = periodCounts{name: name}
	}
}

// tick closes the periods that ended by now and returns every period closed
// since the previous tick, oldest first.
func (b *availabilityBook) tick() []closedPeriod {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(b.now())
	closed := b.closed
	b.closed = nil
	return closed
}

// record accounts one probe of partition pidx that took latency and failed
// for the reason failure ("" when it succeeded). The probe belongs to the period in which it ended.
// It returns the probe as reported.
func (b *availabilityBook) record(pidx int, latency time.Duration, failure string) PartitionProbe {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	b.roll(t)
	b.attempts++
	for k := range numPeriods {
		b.cur[k].attempts++
	}
	probe := PartitionProbe{Pidx: pidx, Result: "OK", LatencyMS: float64(latency.Microseconds()) / 1000, Time: t.Format(timeLayout)}
	if failure != "" {
		b.failures++
		for k := range numPeriods {
			b.cur[k].failures++
		}
		probe.Result, probe.Error = "FAIL", failure
	}
	if pidx < 0 || pidx >= len(b.partitions) {
		return probe
	}
	ps := &b.partitions[pidx]
	ps.attempts++
	if failure != "" {
		ps.failures++
		probe.ConsecutiveFailures = ps.probe.ConsecutiveFailures + 1
	}
	ps.probe, ps.probed = probe, true
	return probe
}

// report returns the availability document as of now.
func (b *availabilityBook) report(detectInterval time.Duration) AvailabilityReport {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	b.roll(t)
	r := AvailabilityReport{
		Table:                 b.table,
		AppID:                 b.appID,
		PartitionCount:        len(b.partitions),
		DetectIntervalSeconds: int(detectInterval / time.Second),
		UpdatedAt:             t.Format(timeLayout),
		Minute:                b.last[minutePeriod],
		Hour:                  b.last[hourPeriod],
		Day:                   b.last[dayPeriod],
		Partitions:            []PartitionProbe{},
	}
	for _, ps := range b.partitions {
		if ps.probed {
			r.Partitions = append(r.Partitions, ps.probe)
		}
	}
	return r
}

// availabilityCounters are the running totals exported to Prometheus.
type availabilityCounters struct {
	Table              string
	Attempts, Failures int64
	Last               [numPeriods]AvailabilityPeriod
	Partitions         []partitionState
}

func (b *availabilityBook) counters() availabilityCounters {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll(b.now())
	return availabilityCounters{
		Table:      b.table,
		Attempts:   b.attempts,
		Failures:   b.failures,
		Last:       b.last,
		Partitions: append([]partitionState(nil), b.partitions...),
	}
}
