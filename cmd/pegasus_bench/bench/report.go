package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one Run.
type Report struct {
	Target   string
	Workload Workload
	Config   Config
	// Elapsed runs from the first operation to the end of the last.
	Elapsed time.Duration
	// Interrupted is set when the caller's context ended the run early.
	Interrupted bool
	// Filled (fill only): records [0, Filled) were written or attempted.
	Filled int
	// Complete (fill only): every record of the key space was attempted.
	Complete bool
	// Ops has one entry per operation kind the run issued, set before get.
	Ops []OpStats
	// CPU is the CPU time of the client and the servers during the run; nil when the
	// run was not metered. CPUError says why a metered run has none (a server gone).
	CPU      *CPUUsage
	CPUError string
}

// OpStats are the figures of one operation kind.
type OpStats struct {
	Kind string
	// Count is the number of successful operations; latencies are theirs.
	Count int64
	// NotFound counts the successful reads of records that did not exist.
	NotFound int64
	// Errors counts the failed operations by error name.
	Errors map[string]int64
	// OpsPerSec is Count over the run's elapsed time.
	OpsPerSec                 float64
	Mean, P50, P99, P999, Max time.Duration
	histogram                 *Histogram
}

func newOpStats(kind string, k *kindStats, elapsed time.Duration) OpStats {
	h := k.latency
	s := OpStats{
		Kind:      kind,
		Count:     h.Count(),
		NotFound:  k.notFound,
		Errors:    maps.Clone(k.errors),
		Mean:      time.Duration(h.Mean()),
		P50:       h.QuantileDuration(0.50),
		P99:       h.QuantileDuration(0.99),
		P999:      h.QuantileDuration(0.999),
		Max:       time.Duration(h.Max()),
		histogram: h,
	}
	if elapsed > 0 {
		s.OpsPerSec = float64(s.Count) / elapsed.Seconds()
	}
	return s
}

// ErrorCount is the number of failed operations.
func (s OpStats) ErrorCount() int64 {
	var n int64
	for _, c := range s.Errors {
		n += c
	}
	return n
}

// Histogram returns the merged latency histogram of the successful operations.
func (s OpStats) Histogram() *Histogram { return s.histogram }

// Op returns the figures of one kind, nil when the run issued none.
func (r *Report) Op(kind string) *OpStats {
	for i := range r.Ops {
		if r.Ops[i].Kind == kind {
			return &r.Ops[i]
		}
	}
	return nil
}

// Errors is the number of failed operations of every kind.
func (r *Report) Errors() int64 {
	var n int64
	for _, o := range r.Ops {
		n += o.ErrorCount()
	}
	return n
}

// Summary is the report on one line, for logs and scripts that grep.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "SUMMARY %s on %s:", r.Workload, r.Target)
	for i, o := range r.Ops {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s %.0f ops/s p50 %s p99 %s p999 %s errors %d",
			o.Kind, o.OpsPerSec, fmtDur(o.P50), fmtDur(o.P99), fmtDur(o.P999), o.ErrorCount())
	}
	if len(r.Ops) == 0 {
		b.WriteString(" no operation")
	}
	if r.CPU != nil {
		fmt.Fprintf(&b, "; cpu/op client %.1fus", r.CPU.ClientUSPerOp())
		if len(r.CPU.Servers) > 0 {
			fmt.Fprintf(&b, " servers %.1fus", r.CPU.ServerUSPerOp())
		}
	}
	if r.Interrupted {
		b.WriteString(" (interrupted)")
	}
	return b.String()
}

// WriteText prints the report as a table followed by the summary line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	c := r.Config
	fmt.Fprintf(&b, "%s on %s\n", r.Workload, r.Target)
	fmt.Fprintf(&b, "  %d callers, %d keys, %d-byte values", c.Concurrency, c.Keys, c.ValueSize)
	if c.Workload == Mixed {
		fmt.Fprintf(&b, ", read ratio %.2f", c.ReadRatio)
	}
	fmt.Fprintf(&b, ", ran %s", r.Elapsed.Round(time.Millisecond))
	if c.Workload == Fill {
		if r.Complete {
			b.WriteString(", every key written")
		} else {
			fmt.Fprintf(&b, ", stopped after %d of %d keys", r.Filled, c.Keys)
		}
	}
	if r.Interrupted {
		b.WriteString(", INTERRUPTED")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tops\tops/s\tmean\tp50\tp99\tp999\tmax\terrors\tnot found\t")
	for _, o := range r.Ops {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n", o.Kind, o.Count, o.OpsPerSec,
			fmtDur(o.Mean), fmtDur(o.P50), fmtDur(o.P99), fmtDur(o.P999), fmtDur(o.Max), o.ErrorCount(), o.NotFound)
	}
	tw.Flush()
	switch {
	case r.CPU != nil:
		fmt.Fprintf(&b, "  %s\n", r.CPU.text())
	case r.CPUError != "":
		fmt.Fprintf(&b, "  cpu per op: unknown: %s\n", r.CPUError)
	}
	for _, o := range r.Ops {
		if len(o.Errors) == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %s errors:", o.Kind)
		for _, name := range slices.Sorted(maps.Keys(o.Errors)) {
			fmt.Fprintf(&b, " %s=%d", name, o.Errors[name])
		}
		b.WriteString("\n")
	}
	b.WriteString(r.Summary())
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// fmtDur prints a latency with three significant digits in a unit that suits it.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3gus", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.3gms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.3gs", d.Seconds())
}

// jsonOp is the machine form of OpStats: latencies in microseconds.
type jsonOp struct {
	Kind      string           `json:"kind"`
	Count     int64            `json:"count"`
	NotFound  int64            `json:"not_found"`
	OpsPerSec float64          `json:"ops_per_sec"`
	MeanUS    float64          `json:"mean_us"`
	P50US     float64          `json:"p50_us"`
	P99US     float64          `json:"p99_us"`
	P999US    float64          `json:"p999_us"`
	MaxUS     float64          `json:"max_us"`
	Errors    map[string]int64 `json:"errors"`
}

type jsonReport struct {
	Target      string   `json:"target"`
	Workload    Workload `json:"workload"`
	Concurrency int      `json:"concurrency"`
	Keys        int      `json:"keys"`
	HashKeys    int      `json:"hash_keys"`
	ValueSize   int      `json:"value_size"`
	ReadRatio   float64  `json:"read_ratio,omitempty"`
	Seed        uint64   `json:"seed"`
	ElapsedSec  float64  `json:"elapsed_sec"`
	Interrupted bool     `json:"interrupted"`
	Filled      *int     `json:"filled,omitempty"`
	Complete    *bool    `json:"complete,omitempty"`
	Ops         []jsonOp `json:"ops"`
	CPU         *jsonCPU `json:"cpu,omitempty"`
	CPUError    string   `json:"cpu_error,omitempty"`
	Summary     string   `json:"summary"`
}

// jsonCPU is the machine form of CPUUsage: seconds in total, microseconds per op.
type jsonCPU struct {
	Ops           int64   `json:"ops"`
	ClientSec     float64 `json:"client_sec"`
	ClientUSPerOp float64 `json:"client_us_per_op"`
	ServerSec     float64 `json:"server_sec"`
	ServerUSPerOp float64 `json:"server_us_per_op"`
	// ServerAfterSec is the part of ServerSec spent after the run, in the
	// SettleSec it took the servers to become idle.
	ServerAfterSec float64      `json:"server_after_sec"`
	SettleSec      float64      `json:"settle_sec"`
	Servers        []jsonServer `json:"servers"`
}

type jsonServer struct {
	Name    string  `json:"name"`
	PID     int     `json:"pid"`
	Sec     float64 `json:"sec"`
	USPerOp float64 `json:"us_per_op"`
}

func newJSONCPU(u *CPUUsage) *jsonCPU {
	j := &jsonCPU{Ops: u.Ops, ClientSec: u.Client.Seconds(), ClientUSPerOp: u.ClientUSPerOp(),
		ServerSec: u.ServerTotal().Seconds(), ServerUSPerOp: u.ServerUSPerOp(), Servers: []jsonServer{},
		ServerAfterSec: u.AfterTotal().Seconds(), SettleSec: u.Settle.Seconds()}
	for _, s := range u.Servers {
		j.Servers = append(j.Servers, jsonServer{Name: s.Name, PID: s.PID, Sec: s.Total().Seconds(), USPerOp: u.perOp(s.Total())})
	}
	return j
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// MarshalJSON writes the report for machines, latencies in microseconds.
func (r *Report) MarshalJSON() ([]byte, error) {
	c := r.Config
	j := jsonReport{
		Target: r.Target, Workload: r.Workload, Concurrency: c.Concurrency, Keys: c.Keys,
		HashKeys: c.layout().hashKeys, ValueSize: c.ValueSize, Seed: c.Seed,
		ElapsedSec: r.Elapsed.Seconds(), Interrupted: r.Interrupted, Ops: []jsonOp{}, Summary: r.Summary(),
		CPUError: r.CPUError,
	}
	if r.CPU != nil {
		j.CPU = newJSONCPU(r.CPU)
	}
	if c.Workload == Mixed {
		j.ReadRatio = c.ReadRatio
	}
	if c.Workload == Fill {
		j.Filled, j.Complete = &r.Filled, &r.Complete
	}
	for _, o := range r.Ops {
		errs := o.Errors
		if errs == nil {
			errs = map[string]int64{}
		}
		j.Ops = append(j.Ops, jsonOp{Kind: o.Kind, Count: o.Count, NotFound: o.NotFound, OpsPerSec: o.OpsPerSec,
			MeanUS: us(o.Mean), P50US: us(o.P50), P99US: us(o.P99), P999US: us(o.P999), MaxUS: us(o.Max), Errors: errs})
	}
	return json.Marshal(j)
}
