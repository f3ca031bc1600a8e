// Command pegasus_peers runs the same load on Redis, on a three-member etcd and on
// this project's onebox, one after the other on this machine, and prints throughput,
// latency percentiles and CPU per operation of each, with this project's ratios
// against the peers: ./run.sh bench --peers (see docs/benchmark.md).
//
// It is a module of its own so that the peers' client libraries (go-redis, etcd's
// clientv3 and gRPC under it) stay out of the servers' dependency graph; it drives
// every system through the load generator of cmd/pegasus_bench, so that the three
// are measured by the same closed loop, key layout and histogram.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pegasusgo/pegasus/cmd/pegasus_bench/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the flags.
type options struct {
	cfg          bench.Config
	systems      []string
	runs         int
	root         string
	workDir      string
	jsonOut      string
	pprofDir     string
	rbRequests   int
	redisBinary  string
	etcdBinary   string
	rbBinary     string
	keepWorkDir  bool
	startTimeout time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pegasus_peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	valueSize := fs.Int("value_size", 1024, "value size in bytes")
	keys := fs.Int("keys", 100000, "size of the key space")
	concurrency := fs.Int("concurrency", 64, "concurrent callers")
	duration := fs.Duration("duration", 20*time.Second, "length of the timed write phase and of the read phase")
	seed := fs.Uint64("seed", 1, "seed of the random keys and values")
	systems := fs.String("systems", "redis,etcd,pegasus", "systems to run, in this order")
	fs.IntVar(&o.runs, "runs", 1, "rounds of every system; the medians of the rounds are printed at the end")
	fs.StringVar(&o.root, "root", ".", "the repository root (run.sh starts the onebox)")
	fs.StringVar(&o.workDir, "workdir", "", "directory for the data and pid files of the peers and the onebox (empty: a temporary one, deleted at the end)")
	fs.StringVar(&o.jsonOut, "json", "", "also write every run's figures as JSON to this file")
	fs.StringVar(&o.pprofDir, "pprof_dir", "", "take a CPU profile of replica1 during the onebox's write and read phases of the first run, into this directory")
	fs.IntVar(&o.rbRequests, "redis_benchmark_requests", -1, "requests per redis-benchmark test (SET, then GET); -1: as many as go-redis completed in its write phase, so that each test lasts about -duration; 0 skips redis-benchmark")
	fs.StringVar(&o.redisBinary, "redis_server", "redis-server", "the redis-server binary")
	fs.StringVar(&o.rbBinary, "redis_benchmark", "redis-benchmark", "the redis-benchmark binary")
	fs.StringVar(&o.etcdBinary, "etcd", "etcd", "the etcd binary")
	fs.DurationVar(&o.startTimeout, "start_timeout", 90*time.Second, "how long a system may take to start")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	o.cfg = bench.Config{Workload: bench.Fill, ValueSize: *valueSize, Keys: *keys, Concurrency: *concurrency, Duration: *duration, Seed: *seed}
	o.systems = strings.Split(*systems, ",")
	err := o.cfg.Validate()
	if err == nil && *duration <= 0 {
		err = errors.New("-duration must be positive")
	}
	for _, s := range o.systems {
		if s != "redis" && s != "etcd" && s != "pegasus" {
			err = fmt.Errorf("unknown system %q (want redis, etcd, pegasus)", s)
		}
	}
	if err == nil && o.runs < 1 {
		err = errors.New("-runs must be at least 1")
	}
	if err != nil {
		fmt.Fprintf(stderr, "pegasus_peers: %v\n", err)
		return 2
	}
	if err := o.runAll(ctx, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "pegasus_peers: %v\n", err)
		return 1
	}
	return 0
}

// runAll runs every round and prints each round's table and, for several rounds,
// the medians.
func (o *options) runAll(ctx context.Context, stdout, stderr io.Writer) (err error) {
	if o.root, err = filepath.Abs(o.root); err != nil {
		return fmt.Errorf("root: %w", err)
	}
	if o.workDir == "" {
		if o.workDir, err = os.MkdirTemp("", "pegasus_peers_"); err != nil {
			return fmt.Errorf("work dir: %w", err)
		}
		defer func() { err = errors.Join(err, os.RemoveAll(o.workDir)) }()
	}
	machine, model := bench.ThisMachine()
	fmt.Fprintf(stdout, "machine %s (%s), %s\n", machine, model, memTotal())
	fmt.Fprintf(stdout, "load: %d keys, %d-byte values, %d callers, %s per timed phase, %d run(s)\n\n",
		o.cfg.Keys, o.cfg.ValueSize, o.cfg.Concurrency, o.cfg.Duration, o.runs)
	var rounds []*round
	for i := 1; i <= o.runs; i++ {
		r := &round{N: i}
		for _, s := range o.systems {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("interrupted: %w", err)
			}
			fmt.Fprintf(stderr, "run %d: %s...\n", i, s)
			var res []*result
			switch s {
			case "redis":
				res, err = o.runRedis(ctx, stderr)
			case "etcd":
				res, err = o.runEtcd(ctx, stderr)
			case "pegasus":
				res, err = o.runPegasus(ctx, stderr, i == 1)
			}
			if err != nil {
				return fmt.Errorf("run %d, %s: %w", i, s, err)
			}
			r.Results = append(r.Results, res...)
		}
		rounds = append(rounds, r)
		if err := writeTable(stdout, fmt.Sprintf("RUN %d of %d", i, o.runs), r.Results); err != nil {
			return err
		}
	}
	if o.runs > 1 {
		if err := writeTable(stdout, fmt.Sprintf("MEDIANS OF %d RUNS (each ratio is the median of the runs' own ratios)", o.runs), medians(rounds)); err != nil {
			return err
		}
		if err := writeMedianRatios(stdout, rounds); err != nil {
			return err
		}
	}
	if o.jsonOut != "" {
		data, err := json.MarshalIndent(struct {
			Machine string   `json:"machine"`
			Model   string   `json:"cpu_model"`
			Config  any      `json:"config"`
			Rounds  []*round `json:"runs"`
		}{machine, model, map[string]any{"keys": o.cfg.Keys, "value_size": o.cfg.ValueSize,
			"concurrency": o.cfg.Concurrency, "phase_sec": o.cfg.Duration.Seconds()}, rounds}, "", "  ")
		if err != nil {
			return fmt.Errorf("json: %w", err)
		}
		if err := os.WriteFile(o.jsonOut, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("json: %w", err)
		}
	}
	return nil
}

// memTotal is the MemTotal line of /proc/meminfo, for the machine line.
func memTotal() string {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "memory unknown"
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			return "memory " + strings.Join(strings.Fields(v), " ")
		}
	}
	return "memory unknown"
}
