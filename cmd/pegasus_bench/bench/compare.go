package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The targets of the replica server issue: replicated writes reach this share of raw
// Pebble Set throughput, reads this share of raw Pebble Get throughput.
const (
	WriteTarget = 0.20
	ReadTarget  = 0.40
)

// Comparison is the outcome of Compare: the same fill and read against raw Pebble
// and against the cluster, and the cluster's throughput as a share of Pebble's.
type Comparison struct {
	RawFill, RawRead, ClusterFill, ClusterRead *Report
	// WriteRatio and ReadRatio are cluster ops/s divided by raw Pebble ops/s.
	WriteRatio, ReadRatio float64
	WriteMet, ReadMet     bool
}

// Compare runs fill then read on a fresh raw Pebble database in rawDir (empty: a
// temporary directory), closes it so that its background work does not steal from
// the cluster, then runs fill then read on the cluster. cfg's Workload is ignored;
// cfg.Duration bounds each phase. Each read phase draws from the records its own fill
// reached, so that a fill stopped by the duration does not turn reads into misses.
func Compare(ctx context.Context, cfg Config, rawDir string, cluster Target) (_ *Comparison, err error) {
	cmp := &Comparison{}
	raw, err := OpenPebble(rawDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if raw != nil {
			err = errors.Join(err, raw.Close())
		}
	}()
	if cmp.RawFill, cmp.RawRead, err = fillThenRead(ctx, cfg, raw); err != nil {
		return nil, err
	}
	cerr := raw.Close()
	raw = nil
	if cerr != nil {
		return nil, cerr
	}
	if cmp.ClusterFill, cmp.ClusterRead, err = fillThenRead(ctx, cfg, cluster); err != nil {
		return nil, err
	}
	cmp.WriteRatio = ratio(cmp.ClusterFill.Op(OpSet), cmp.RawFill.Op(OpSet))
	cmp.ReadRatio = ratio(cmp.ClusterRead.Op(OpGet), cmp.RawRead.Op(OpGet))
	cmp.WriteMet = cmp.WriteRatio >= WriteTarget
	cmp.ReadMet = cmp.ReadRatio >= ReadTarget
	return cmp, nil
}

func fillThenRead(ctx context.Context, cfg Config, t Target) (fill, read *Report, err error) {
	f := cfg
	f.Workload = Fill
	if fill, err = Run(ctx, f, t); err != nil {
		return nil, nil, err
	}
	if fill.Interrupted {
		return nil, nil, fmt.Errorf("bench: fill on %s: %w", t.Name(), context.Cause(ctx))
	}
	r := cfg
	r.Workload = Read
	r.Keys = max(fill.Filled, 1)
	if read, err = Run(ctx, r, t); err != nil {
		return nil, nil, err
	}
	if read.Interrupted {
		return nil, nil, fmt.Errorf("bench: read on %s: %w", t.Name(), context.Cause(ctx))
	}
	return fill, read, nil
}

func ratio(cluster, raw *OpStats) float64 {
	if cluster == nil || raw == nil || raw.OpsPerSec == 0 {
		return 0
	}
	return cluster.OpsPerSec / raw.OpsPerSec
}

func verdict(met bool) string {
	if met {
		return "MET"
	}
	return "MISSED"
}

// Verdicts are the two lines that state each target as met or missed.
func (c *Comparison) Verdicts() []string {
	line := func(what, kind string, cl, raw *Report, r, target float64, met bool) string {
		var cops, rops float64
		if o := cl.Op(kind); o != nil {
			cops = o.OpsPerSec
		}
		if o := raw.Op(kind); o != nil {
			rops = o.OpsPerSec
		}
		return fmt.Sprintf("%s: cluster %.0f ops/s / raw pebble %.0f ops/s = %.1f%% (target >= %.0f%%): %s",
			what, cops, rops, 100*r, 100*target, verdict(met))
	}
	return []string{
		line("writes", OpSet, c.ClusterFill, c.RawFill, c.WriteRatio, WriteTarget, c.WriteMet),
		line("reads ", OpGet, c.ClusterRead, c.RawRead, c.ReadRatio, ReadTarget, c.ReadMet),
	}
}

// WriteText prints the four reports and the verdicts.
func (c *Comparison) WriteText(w io.Writer) error {
	var b strings.Builder
	for i, r := range []*Report{c.RawFill, c.RawRead, c.ClusterFill, c.ClusterRead} {
		if i > 0 {
			b.WriteString("\n")
		}
		if err := r.WriteText(&b); err != nil {
			return err
		}
	}
	b.WriteString("\nCOMPARISON\n")
	for _, v := range c.Verdicts() {
		b.WriteString(v)
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// MarshalJSON writes the comparison for machines.
func (c *Comparison) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		RawFill     *Report  `json:"raw_fill"`
		RawRead     *Report  `json:"raw_read"`
		ClusterFill *Report  `json:"cluster_fill"`
		ClusterRead *Report  `json:"cluster_read"`
		WriteRatio  float64  `json:"write_ratio"`
		ReadRatio   float64  `json:"read_ratio"`
		WriteTarget float64  `json:"write_target"`
		ReadTarget  float64  `json:"read_target"`
		WriteMet    bool     `json:"write_target_met"`
		ReadMet     bool     `json:"read_target_met"`
		Verdicts    []string `json:"verdicts"`
	}{c.RawFill, c.RawRead, c.ClusterFill, c.ClusterRead, c.WriteRatio, c.ReadRatio,
		WriteTarget, ReadTarget, c.WriteMet, c.ReadMet, c.Verdicts()})
}
