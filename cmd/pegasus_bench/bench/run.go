package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Operation kinds, as named in reports.
const (
	OpSet = "set"
	OpGet = "get"
)

// kindStats is one caller's (and, merged, the run's) record of one operation kind.
type kindStats struct {
	latency  *Histogram
	notFound int64
	errors   map[string]int64
}

func newKindStats() *kindStats {
	return &kindStats{latency: NewHistogram(), errors: map[string]int64{}}
}

func (k *kindStats) merge(o *kindStats) {
	k.latency.Merge(o.latency)
	k.notFound += o.notFound
	for name, n := range o.errors {
		k.errors[name] += n
	}
}

func (k *kindStats) attempted() bool { return k.latency.Count() > 0 || len(k.errors) > 0 }

// caller is the state of one concurrent caller; only its goroutine touches it until
// the run ends.
type caller struct {
	set, get *kindStats
	rng      *rand.Rand
	value    []byte
	hk, sk   []byte
}

// Run drives target with cfg's workload from cfg.Concurrency callers and returns
// what was measured. When ctx ends first, Run stops every caller, ignores the
// operations the cancellation cut short, and returns the partial report marked
// Interrupted; the error is only for a configuration that cannot run.
func Run(ctx context.Context, cfg Config, target Target) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	lay := cfg.layout()
	callers := make([]*caller, cfg.Concurrency)
	for i := range callers {
		// A PCG stream per caller keeps a run reproducible from its seed whatever the
		// scheduling, and needs no lock.
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		value := make([]byte, cfg.ValueSize)
		for j := range value {
			value[j] = byte(rng.Uint32())
		}
		callers[i] = &caller{set: newKindStats(), get: newKindStats(), rng: rng, value: value}
	}

	// stop is polled by the callers before every operation: one flag raised by one
	// watcher is cheaper than a select or a clock read per operation.
	var stop atomic.Bool
	var next atomic.Int64 // the next record to write, for fill
	done := make(chan struct{})
	var timedOut, interrupted atomic.Bool
	go func() {
		var expire <-chan time.Time
		if cfg.Duration > 0 {
			t := time.NewTimer(cfg.Duration)
			defer t.Stop()
			expire = t.C
		}
		select {
		case <-done:
		case <-expire:
			timedOut.Store(true)
		case <-ctx.Done():
			interrupted.Store(true)
		}
		stop.Store(true)
	}()

	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.loop(ctx, cfg, lay, target, &stop, &next)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(done)

	set, get := newKindStats(), newKindStats()
	for _, c := range callers {
		set.merge(c.set)
		get.merge(c.get)
	}
	rep := &Report{
		Target:      target.Name(),
		Workload:    cfg.Workload,
		Config:      cfg,
		Elapsed:     elapsed,
		Interrupted: interrupted.Load(),
	}
	if cfg.Workload == Fill {
		rep.Filled = int(min(next.Load(), int64(cfg.Keys)))
		rep.Complete = rep.Filled == cfg.Keys && !timedOut.Load() && !rep.Interrupted
	}
	for _, k := range []struct {
		name  string
		stats *kindStats
	}{{OpSet, set}, {OpGet, get}} {
		if k.stats.attempted() {
			rep.Ops = append(rep.Ops, newOpStats(k.name, k.stats, elapsed))
		}
	}
	return rep, nil
}

// loop runs one caller until the run stops or, for fill, the key space is used up.
func (c *caller) loop(ctx context.Context, cfg Config, lay layout, target Target, stop *atomic.Bool, next *atomic.Int64) {
	for !stop.Load() {
		var i int
		write := true
		switch cfg.Workload {
		case Fill:
			n := next.Add(1) - 1
			if n >= int64(cfg.Keys) {
				return
			}
			i = int(n)
		case Read:
			i, write = c.rng.IntN(cfg.Keys), false
		case Write:
			i = c.rng.IntN(cfg.Keys)
		case Mixed:
			i = c.rng.IntN(cfg.Keys)
			write = c.rng.Float64() >= cfg.ReadRatio
		}
		c.hk, c.sk = lay.key(i, c.hk, c.sk)
		c.do(ctx, target, write)
	}
}

// do runs and records one operation.
func (c *caller) do(ctx context.Context, target Target, write bool) {
	var (
		stats = c.get
		found = true
		err   error
	)
	begin := time.Now()
	if write {
		stats = c.set
		err = target.Set(ctx, c.hk, c.sk, c.value)
	} else {
		found, err = target.Get(ctx, c.hk, c.sk)
	}
	lat := time.Since(begin)
	switch {
	case err != nil && ctx.Err() != nil:
		// Cut short by the caller's cancellation: not a failure of the target.
	case err != nil:
		stats.errors[target.ErrorName(err)]++
	default:
		stats.latency.RecordDuration(lat)
		if !found {
			stats.notFound++
		}
	}
}
