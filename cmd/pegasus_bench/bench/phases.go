package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// RunMetered is Run with the CPU time of the client and of meter's servers measured
// over the run and attached to the report (meter nil: Run alone); with
// meter.Settle, the servers' CPU until they are idle after the run is counted too.
// A server that
// cannot be sampled (it died) leaves the report without CPU figures and says why
// in CPUError; the load figures stand.
func RunMetered(ctx context.Context, cfg Config, target Target, meter *CPUMeter) (*Report, error) {
	if meter == nil {
		return Run(ctx, cfg, target)
	}
	before, berr := meter.sample()
	rep, err := Run(ctx, cfg, target)
	if err != nil {
		return nil, err
	}
	after, aerr := meter.sample()
	settled, settleTime := after, time.Duration(0)
	if aerr == nil && meter.Settle && len(meter.Servers) > 0 {
		settled, settleTime, aerr = meter.settle(ctx, after)
	}
	switch {
	case berr != nil:
		rep.CPUError = berr.Error()
	case aerr != nil:
		rep.CPUError = aerr.Error()
	default:
		var ops int64
		for _, o := range rep.Ops {
			ops += o.Count + o.ErrorCount()
		}
		rep.CPU = meter.usage(before, after, settled, settleTime, ops)
	}
	return rep, nil
}

// Phases are the reports of RunPhases.
type Phases struct {
	// Fill writes every record once so that the later phases find them.
	Fill *Report
	// Write overwrites random records for the configured duration: the write figures.
	Write *Report
	// Read reads random records for the configured duration: the read figures.
	Read *Report
}

// RunPhases runs fill, then write, then read on target, each metered by meter
// (nil: no CPU figures) with settling (see CPUMeter.Settle); cfg's Workload is
// ignored. The fill writes every record
// whatever the time it takes (only ctx ends it early), so that every target
// serves the same data set; cfg.Duration bounds the write and the read phase.
// Write and read draw from the records the fill reached, so that an interrupted
// fill does not turn reads into misses. The timed write phase, not the fill, gives
// the write figures: its length does not depend on how fast the target is, so
// every target is measured over the same time.
func RunPhases(ctx context.Context, cfg Config, target Target, meter *CPUMeter) (*Phases, error) {
	return RunPhasesWith(ctx, cfg, target, meter, nil)
}

// RunPhasesWith is RunPhases calling before (when not nil) just before each phase
// starts, e.g. to profile the servers during it.
func RunPhasesWith(ctx context.Context, cfg Config, target Target, meter *CPUMeter, before func(Workload)) (*Phases, error) {
	if meter != nil {
		// Each phase starts on idle servers and pays for the background work it
		// causes, not for the previous phase's.
		m := *meter
		m.Settle = true
		meter = &m
	}
	var ph Phases
	run := func(w Workload, keys int) (*Report, error) {
		if before != nil {
			before(w)
		}
		c := cfg
		c.Workload, c.Keys = w, keys
		if w == Fill {
			c.Duration = 0
		}
		rep, err := RunMetered(ctx, c, target, meter)
		if err != nil {
			return nil, err
		}
		if rep.Interrupted {
			return nil, fmt.Errorf("bench: %s on %s: %w", w, target.Name(), context.Cause(ctx))
		}
		return rep, nil
	}
	var err error
	if ph.Fill, err = run(Fill, cfg.Keys); err != nil {
		return nil, err
	}
	keys := max(ph.Fill.Filled, 1)
	if ph.Write, err = run(Write, keys); err != nil {
		return nil, err
	}
	if ph.Read, err = run(Read, keys); err != nil {
		return nil, err
	}
	return &ph, nil
}

// WriteText prints the three reports.
func (p *Phases) WriteText(w io.Writer) error {
	var b strings.Builder
	for i, r := range []*Report{p.Fill, p.Write, p.Read} {
		if i > 0 {
			b.WriteString("\n")
		}
		if err := r.WriteText(&b); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// MarshalJSON writes the three reports for machines.
func (p *Phases) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Fill  *Report `json:"fill"`
		Write *Report `json:"write"`
		Read  *Report `json:"read"`
	}{p.Fill, p.Write, p.Read})
}
