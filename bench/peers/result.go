package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pegasusgo/pegasus/cmd/pegasus_bench/bench"
)

// phaseFig are the figures of one phase (write or read) of one system.
type phaseFig struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	P50US     float64 `json:"p50_us"`
	P99US     float64 `json:"p99_us"`
	// P999US is 0 when the driver does not report it (redis-benchmark's CSV).
	P999US float64 `json:"p999_us"`
	Errors int64   `json:"errors"`
	// ClientUS and ServerUS are CPU microseconds per operation; -1 when unknown.
	ClientUS float64 `json:"client_cpu_us_per_op"`
	ServerUS float64 `json:"server_cpu_us_per_op"`
}

// result is one system's figures in one run.
type result struct {
	// System names the system and its driver, e.g. "redis (go-redis)".
	System string   `json:"system"`
	Write  phaseFig `json:"write"`
	Read   phaseFig `json:"read"`
	// Fill is the throughput of the initial fill (every key once), for reference.
	FillOpsPerSec float64 `json:"fill_ops_per_sec"`
}

type round struct {
	N       int       `json:"run"`
	Results []*result `json:"results"`
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// figOf takes one operation kind's figures from a report.
func figOf(rep *bench.Report, kind string) phaseFig {
	f := phaseFig{ClientUS: -1, ServerUS: -1}
	if o := rep.Op(kind); o != nil {
		f.OpsPerSec, f.P50US, f.P99US, f.P999US = o.OpsPerSec, us(o.P50), us(o.P99), us(o.P999)
	}
	f.Errors = rep.Errors()
	if rep.CPU != nil {
		f.ClientUS = rep.CPU.ClientUSPerOp()
		if len(rep.CPU.Servers) > 0 {
			f.ServerUS = rep.CPU.ServerUSPerOp()
		}
	}
	return f
}

// resultOf makes a result of RunPhases' reports.
func resultOf(system string, ph *bench.Phases) *result {
	r := &result{System: system, Write: figOf(ph.Write, bench.OpSet), Read: figOf(ph.Read, bench.OpGet)}
	if o := ph.Fill.Op(bench.OpSet); o != nil {
		r.FillOpsPerSec = o.OpsPerSec
	}
	return r
}

func fmtUS(v float64) string {
	switch {
	case v <= 0:
		return "-"
	case v < 1000:
		return fmt.Sprintf("%.0fus", v)
	}
	return fmt.Sprintf("%.2fms", v/1000)
}

func fmtCPU(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}

// isPegasus tells this project's result from the peers'.
func isPegasus(r *result) bool { return strings.HasPrefix(r.System, "pegasus") }

// writeTable prints one table of results and this project's ratios against each peer.
func writeTable(w io.Writer, title string, results []*result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", title)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system\twrites/s\tp50\tp99\tp999\tcpu/write client\tserver\treads/s\tp50\tp99\tp999\tcpu/read client\tserver\terrors\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t\n", r.System,
			r.Write.OpsPerSec, fmtUS(r.Write.P50US), fmtUS(r.Write.P99US), fmtUS(r.Write.P999US),
			fmtCPU(r.Write.ClientUS), fmtCPU(r.Write.ServerUS),
			r.Read.OpsPerSec, fmtUS(r.Read.P50US), fmtUS(r.Read.P99US), fmtUS(r.Read.P999US),
			fmtCPU(r.Read.ClientUS), fmtCPU(r.Read.ServerUS), r.Write.Errors+r.Read.Errors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("(cpu: microseconds of process CPU time per operation, user+system; server: summed over the system's server processes)\n")
	for _, l := range ratioLines(results) {
		b.WriteString(l)
		b.WriteString("\n")
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// ratio is this project's figure over a peer's (0 when the peer's is 0).
type ratio struct {
	peer                  string
	writes, reads         float64
	srvWrite, srvRead     float64 // server CPU per op, pegasus over peer; 0 unknown
	hasSrvWrite, hasSrvRd bool
}

func ratios(results []*result) []ratio {
	i := slices.IndexFunc(results, isPegasus)
	if i < 0 {
		return nil
	}
	p := results[i]
	var out []ratio
	div := func(a, b float64) float64 {
		if b <= 0 {
			return 0
		}
		return a / b
	}
	for _, r := range results {
		if isPegasus(r) {
			continue
		}
		x := ratio{peer: r.System, writes: div(p.Write.OpsPerSec, r.Write.OpsPerSec), reads: div(p.Read.OpsPerSec, r.Read.OpsPerSec)}
		if p.Write.ServerUS > 0 && r.Write.ServerUS > 0 {
			x.srvWrite, x.hasSrvWrite = p.Write.ServerUS/r.Write.ServerUS, true
		}
		if p.Read.ServerUS > 0 && r.Read.ServerUS > 0 {
			x.srvRead, x.hasSrvRd = p.Read.ServerUS/r.Read.ServerUS, true
		}
		out = append(out, x)
	}
	return out
}

func (x ratio) line() string {
	s := fmt.Sprintf("pegasus / %s: writes %.2fx (%.0f%%), reads %.2fx (%.0f%%)", x.peer, x.writes, 100*x.writes, x.reads, 100*x.reads)
	if x.hasSrvWrite || x.hasSrvRd {
		s += fmt.Sprintf("; server cpu per write %.2fx, per read %.2fx", x.srvWrite, x.srvRead)
	}
	return s
}

func ratioLines(results []*result) []string {
	var out []string
	for _, x := range ratios(results) {
		out = append(out, x.line())
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// medianFig is the median of each figure separately.
func medianFig(fs []phaseFig) phaseFig {
	pick := func(get func(phaseFig) float64) float64 {
		var v []float64
		for _, f := range fs {
			v = append(v, get(f))
		}
		return median(v)
	}
	var errs int64
	for _, f := range fs {
		errs += f.Errors
	}
	return phaseFig{
		OpsPerSec: pick(func(f phaseFig) float64 { return f.OpsPerSec }),
		P50US:     pick(func(f phaseFig) float64 { return f.P50US }),
		P99US:     pick(func(f phaseFig) float64 { return f.P99US }),
		P999US:    pick(func(f phaseFig) float64 { return f.P999US }),
		ClientUS:  pick(func(f phaseFig) float64 { return f.ClientUS }),
		ServerUS:  pick(func(f phaseFig) float64 { return f.ServerUS }),
		Errors:    errs,
	}
}

// medians is one result per system with the median of each figure over the rounds
// (errors are summed).
func medians(rounds []*round) []*result {
	var order []string
	by := map[string][]*result{}
	for _, r := range rounds {
		for _, x := range r.Results {
			if _, ok := by[x.System]; !ok {
				order = append(order, x.System)
			}
			by[x.System] = append(by[x.System], x)
		}
	}
	var out []*result
	for _, sys := range order {
		var w, rd []phaseFig
		var fill []float64
		for _, x := range by[sys] {
			w, rd, fill = append(w, x.Write), append(rd, x.Read), append(fill, x.FillOpsPerSec)
		}
		out = append(out, &result{System: sys, Write: medianFig(w), Read: medianFig(rd), FillOpsPerSec: median(fill)})
	}
	return out
}

// writeMedianRatios prints, per peer, the median over the rounds of the ratios
// each round measured: a ratio of one run compares systems that ran minutes apart
// on the same machine, which is fairer on a shared machine than comparing medians.
func writeMedianRatios(w io.Writer, rounds []*round) error {
	var order []string
	wr, rd, sw, sr := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
	for _, r := range rounds {
		for _, x := range ratios(r.Results) {
			if _, ok := wr[x.peer]; !ok {
				order = append(order, x.peer)
			}
			wr[x.peer], rd[x.peer] = append(wr[x.peer], x.writes), append(rd[x.peer], x.reads)
			if x.hasSrvWrite {
				sw[x.peer] = append(sw[x.peer], x.srvWrite)
			}
			if x.hasSrvRd {
				sr[x.peer] = append(sr[x.peer], x.srvRead)
			}
		}
	}
	var b strings.Builder
	b.WriteString("MEDIAN RATIOS\n")
	for _, p := range order {
		x := ratio{peer: p, writes: median(wr[p]), reads: median(rd[p]), srvWrite: median(sw[p]), srvRead: median(sr[p]),
			hasSrvWrite: len(sw[p]) > 0, hasSrvRd: len(sr[p]) > 0}
		b.WriteString(x.line())
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
