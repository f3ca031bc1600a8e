package shell

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/pegasusgo/pegasus/rpc/kv"

	"github.com/pegasusgo/pegasus/shell/opts"
	"github.com/pegasusgo/pegasus/shell/table"
)

// AvailabilityReport is the JSON document the collector serves at
// GET /availability: how available its detect table was over the last
// minute, hour and day, and the latest probe of every partition. Percentages
// and parts per million describe the same ratio, (attempts - failures) /
// attempts; a period without attempts reports 0 attempts and 100 %.
type AvailabilityReport struct {
	Table          string `json:"table"`
	AppID          int32  `json:"app_id"`
	PartitionCount int    `json:"partition_count"`
	// DetectIntervalSeconds is the time between two probes of a partition.
	DetectIntervalSeconds int `json:"detect_interval_seconds"`
	// UpdatedAt is when the report was made, "YYYY-MM-DD HH:MM:SS" local time.
	UpdatedAt string `json:"updated_at"`
	// Minute, Hour and Day are the last complete periods, as upstream's
	// collector publishes them at each period boundary.
	Minute AvailabilityPeriod `json:"minute"`
	Hour   AvailabilityPeriod `json:"hour"`
	Day    AvailabilityPeriod `json:"day"`
	// Partitions holds the latest probe of every partition, by index.
	Partitions []PartitionProbe `json:"partitions"`
	// HistoryTable is the table where the collector keeps the closed
	// periods ([pegasus.collector] available_detect_history_app), empty when
	// it keeps none. History holds the latest periods of each kind it read
	// back from there (minute, then hour, then day, each oldest first), and
	// HistoryError why it could not read them.
	HistoryTable string               `json:"history_table"`
	History      []AvailabilityRecord `json:"history"`
	HistoryError string               `json:"history_error,omitempty"`
}

// AvailabilityRecord is one closed period as the collector keeps it in its
// history table (upstream's detect_available_<kind> rows).
type AvailabilityRecord struct {
	Kind     string `json:"kind"`   // "minute", "hour" or "day"
	Period   string `json:"period"` // as AvailabilityPeriod.Period
	Attempts int64  `json:"attempts"`
	Failures int64  `json:"failures"`
	PPM      int64  `json:"ppm"`
}

// AvailabilityPeriod is the availability over one period.
type AvailabilityPeriod struct {
	// Period names it like upstream's detect-table rows: "YYYY-MM-DD HH:MM",
	// "YYYY-MM-DD HH" or "YYYY-MM-DD".
	Period   string  `json:"period"`
	Attempts int64   `json:"attempts"`
	Failures int64   `json:"failures"`
	Percent  float64 `json:"percent"` // 0..100
	PPM      int64   `json:"ppm"`     // 0..1000000
}

// PartitionProbe is one write-then-read probe of one partition.
type PartitionProbe struct {
	Pidx      int     `json:"pidx"`
	Result    string  `json:"result"`     // "OK" or "FAIL"
	Error     string  `json:"error"`      // why it failed, empty when OK
	LatencyMS float64 `json:"latency_ms"` // write plus read
	Time      string  `json:"time"`       // "YYYY-MM-DD HH:MM:SS" local time
	// ConsecutiveFailures counts the failures in a row up to this probe.
	ConsecutiveFailures int `json:"consecutive_failures"`
}

func cmdAvailability(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	if r.Bool("probe") {
		return s.probeAvailability(ctx, r)
	}
	if r.Has("app_name") || r.Has("timeout_ms") {
		return badUsage("--app_name and --timeout_ms only apply with --probe")
	}
	addr := r.String("collector", s.opts.Collector)
	var rep AvailabilityReport
	if err := s.getJSON(ctx, "http://"+addr+"/availability", &rep); err != nil {
		return fmt.Errorf("query availability from the collector at %s failed: %v (try \"availability --probe\")", addr, err)
	}
	general := table.NewKV("general").
		KV("table", rep.Table).
		KV("app_id", rep.AppID).
		KV("partition_count", rep.PartitionCount).
		KV("detect_interval_seconds", rep.DetectIntervalSeconds).
		KV("updated_at", rep.UpdatedAt)
	periods := table.New("availability", table.L("period"), table.L("time"), table.R("attempts"), table.R("failures"),
		table.R("availability(%)"), table.R("availability(ppm)"))
	for _, p := range []struct {
		name string
		v    AvailabilityPeriod
	}{{"minute", rep.Minute}, {"hour", rep.Hour}, {"day", rep.Day}} {
		periods.Row(p.name, dashIfEmpty(p.v.Period), p.v.Attempts, p.v.Failures, table.Float(p.v.Percent, 3), p.v.PPM)
	}
	parts := table.New("partitions", table.L("pidx"), table.L("result"), table.L("latency_ms"), table.L("time"),
		table.L("consecutive_failures"), table.L("error"))
	for _, p := range rep.Partitions {
		parts.Row(p.Pidx, p.Result, table.Float(p.LatencyMS, 3), dashIfEmpty(p.Time), p.ConsecutiveFailures, dashIfEmpty(p.Error))
	}
	general.KV("history_table", dashIfEmpty(rep.HistoryTable))
	if rep.HistoryError != "" {
		general.KV("history_error", rep.HistoryError)
	}
	// The columns of [availability], with time first: the JSON form keys
	// the rows by their first cell, and the period kind repeats.
	history := table.New("history", table.L("time"), table.L("period"), table.R("attempts"), table.R("failures"),
		table.R("availability(%)"), table.R("availability(ppm)"))
	for _, h := range rep.History {
		percent := 100.0
		if h.Attempts > 0 {
			percent = 100 * float64(h.Attempts-h.Failures) / float64(h.Attempts)
		}
		history.Row(h.Period, h.Kind, h.Attempts, h.Failures, table.Float(percent, 3), h.PPM)
	}
	return table.Multi(s.out, r.Bool("json"), general, periods, parts, history)
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// probeAvailability writes then reads one key in every partition of the detect
// table now, like the collector's detector, and reports each partition.
func (s *Shell) probeAvailability(ctx context.Context, r *opts.Result) error {
	app := r.String("app_name", "temp")
	ms, err := r.Int("timeout_ms", 1000)
	if err != nil || ms <= 0 {
		return badUsage("invalid --timeout_ms")
	}
	timeout := time.Duration(ms) * time.Millisecond
	t, err := s.openTable(ctx, app)
	if err != nil {
		return err
	}
	probes := table.New("probe", table.L("pidx"), table.L("primary"), table.L("result"), table.L("write_ms"),
		table.L("read_ms"), table.L("error"))
	ok := 0
	n := t.PartitionCount()
	for pidx := 0; pidx < n; pidx++ {
		hk := t.HashKeyForPartition(pidx, fmt.Sprintf("detect_available_p%d_", pidx))
		value := []byte("detect_value_" + strconv.FormatInt(time.Now().Unix(), 10))
		writeMS, readMS := "-", "-"
		result, why := "FAIL", ""
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, timeout)
		// With a TTL, as the collector's probes: a safety net should the
		// delete below fail.
		err := t.Set(wctx, hk, nil, value, time.Hour)
		cancel()
		if err != nil {
			why = "write: " + kv.ErrorCode(err)
		} else {
			writeMS = table.Float(float64(time.Since(start).Microseconds())/1000, 3)
			start = time.Now()
			rctx, cancel := context.WithTimeout(ctx, timeout)
			got, err := t.Get(rctx, hk, nil)
			cancel()
			switch {
			case err != nil:
				why = "read: " + kv.ErrorCode(err)
			case !bytes.Equal(got, value):
				why = "read back a different value"
			default:
				readMS = table.Float(float64(time.Since(start).Microseconds())/1000, 3)
				result = "OK"
				ok++
			}
			// The detect table (temp) must stay empty between probes. The
			// delete is not part of the probe's result.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
			_ = t.Del(dctx, hk, nil)
			cancel()
		}
		probes.Row(pidx, dashIfEmpty(t.Primary(pidx)), result, writeMS, readMS, dashIfEmpty(why))
	}
	percent := 0.0
	if n > 0 {
		percent = 100 * float64(ok) / float64(n)
	}
	summary := table.NewKV("summary").
		KV("app_name", app).
		KV("partition_count", n).
		KV("succeed_count", ok).
		KV("failed_count", n-ok).
		KV("availability(%)", table.Float(percent, 3))
	return table.Multi(s.out, r.Bool("json"), probes, summary)
}
