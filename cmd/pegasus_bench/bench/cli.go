package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"
)

// DefaultMetas are the meta servers of the local onebox.
const DefaultMetas = "127.0.0.1:34601,127.0.0.1:34602,127.0.0.1:34603"

// Main is the pegasus_bench command: it parses args (without the program name), runs
// what they ask and returns the exit status (0, 1 for a failure, 2 for bad usage).
// A missed comparison target is reported, not turned into a failure: the run did
// what it was asked.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pegasus_bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	meta := fs.String("meta", DefaultMetas, "meta servers, ip:port,ip:port...")
	table := fs.String("table", "temp", "table to load")
	workload := fs.String("workload", string(Fill), "fill (every key once), read or mixed")
	readRatio := fs.Float64("read_ratio", 0.5, "share of reads in the mixed workload")
	valueSize := fs.Int("value_size", 1024, "value size in bytes")
	keyCount := fs.Int("keys", 100000, "size of the key space")
	hashKeys := fs.Int("hashkeys", 0, "distinct hash keys; records share them as sort keys \"s<n>\" (0: one hash key \"bench<n>\" per record, sort key \"s\")")
	concurrency := fs.Int("concurrency", 64, "concurrent callers")
	duration := fs.Duration("duration", 30*time.Second, "run time of read and mixed; fill stops at it if not done")
	seed := fs.Uint64("seed", 1, "seed of the random keys and values")
	opTimeout := fs.Duration("op_timeout", 5*time.Second, "timeout of one cluster operation, retries included")
	rawDir := fs.String("raw_pebble", "", "run against a local Pebble database in this directory instead of the cluster (-raw_pebble \"\" for a temporary one)")
	compare := fs.Bool("compare", false, "run fill and read on raw Pebble, then on the cluster, and print the ratios against the targets")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process to this file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: pegasus_bench [flags]\n\nYCSB-style load on a Pegasus table through the data client, or on raw Pebble.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pegasus_bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	raw := false
	fs.Visit(func(f *flag.Flag) { raw = raw || f.Name == "raw_pebble" })

	wl, err := ParseWorkload(*workload)
	if *compare {
		wl, err = Fill, nil
	}
	cfg := Config{Workload: wl, ReadRatio: *readRatio, ValueSize: *valueSize, Keys: *keyCount,
		HashKeys: *hashKeys, Concurrency: *concurrency, Duration: *duration, Seed: *seed}
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil && *compare && *duration <= 0 {
		err = errors.New("-compare needs a positive -duration for its read phases")
	}
	if err != nil {
		fmt.Fprintf(stderr, "pegasus_bench: %v\n", err)
		return 2
	}

	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "pegasus_bench: %v\n", err)
			return 1
		}
		defer stop()
	}

	var out textReport
	switch {
	case raw && !*compare:
		out, err = runRaw(ctx, cfg, *rawDir)
	default:
		out, err = runCluster(ctx, cfg, splitList(*meta), *table, *opTimeout, *compare, *rawDir)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pegasus_bench: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(out)
	} else {
		err = out.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pegasus_bench: write report: %v\n", err)
		return 1
	}
	if r, ok := out.(*Report); ok && r.Interrupted {
		return 1
	}
	return 0
}

func runRaw(ctx context.Context, cfg Config, dir string) (_ *Report, err error) {
	db, err := OpenPebble(dir)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	return Run(ctx, cfg, db)
}

// textReport is a Report or a Comparison; both also marshal to JSON.
type textReport interface{ WriteText(io.Writer) error }

func runCluster(ctx context.Context, cfg Config, metas []string, table string, opTimeout time.Duration, compare bool, rawDir string) (_ textReport, err error) {
	if len(metas) == 0 {
		return nil, errors.New("no meta server given")
	}
	openCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	cl, err := OpenCluster(openCtx, metas, table, opTimeout)
	cancel()
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, cl.Close()) }()
	if compare {
		return Compare(ctx, cfg, rawDir, cl)
	}
	return Run(ctx, cfg, cl)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
