package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
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
	workload := fs.String("workload", string(Fill), "fill (every key once), read, write (random overwrites) or mixed")
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
	phases := fs.Bool("phases", false, "run fill, then write (random overwrites) for -duration, then read for -duration, on the cluster")
	serverPIDs := fs.String("server_pids", "", "server processes whose CPU time to account, PID or NAME=PID,... (empty: the pegasus_server processes of the -onebox pid files, unless -meta names another cluster)")
	onebox := fs.String("onebox", "onebox", "the onebox directory whose <name>.pid files name the servers, when -server_pids is empty")
	writeBaseline := fs.String("write_baseline", "", "run the phases and write their server CPU per operation as the baseline of this machine kind: a .json file, or a directory for baseline-<machine kind>.json")
	checkBaseline := fs.String("check_baseline", "", "run the phases with the shape of this machine kind's baseline (a .json file, or a directory holding baseline-<machine kind>.json) and fail when server CPU per write or per read grew by more than -max_growth")
	maxGrowth := fs.Float64("max_growth", 0.25, "allowed growth of server CPU per operation for -check_baseline (0.25: 25%)")
	baselineNote := fs.String("baseline_note", "", "a note stored in the baseline, e.g. the commit")
	checkAttempts := fs.Int("check_attempts", 2, "-check_baseline fails only when this many measurements in a row exceed -max_growth")
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
	raw, metaSet, oneboxSet := false, false, false
	fs.Visit(func(f *flag.Flag) {
		raw = raw || f.Name == "raw_pebble"
		metaSet = metaSet || f.Name == "meta"
		oneboxSet = oneboxSet || f.Name == "onebox"
	})

	wl, err := ParseWorkload(*workload)
	baselineMode := *writeBaseline != "" || *checkBaseline != ""
	if *compare || *phases || baselineMode {
		wl, err = Fill, nil
	}
	cfg := Config{Workload: wl, ReadRatio: *readRatio, ValueSize: *valueSize, Keys: *keyCount,
		HashKeys: *hashKeys, Concurrency: *concurrency, Duration: *duration, Seed: *seed}
	var base *Baseline
	machine, model := ThisMachine()
	if err == nil && *checkBaseline != "" {
		// The check measures the shape the baseline was measured with, whatever
		// the other flags say: only like is compared with like.
		if base, err = ReadBaseline(BaselinePath(*checkBaseline, machine)); err == nil {
			cfg = base.Config()
			cfg.Workload = Fill
		}
	}
	if err == nil {
		err = cfg.Validate()
	}
	switch {
	case err != nil:
	case (*compare || *phases || baselineMode) && *duration <= 0:
		err = errors.New("-compare, -phases and the baselines need a positive -duration for their timed phases")
	case *compare && (*phases || baselineMode), *writeBaseline != "" && *checkBaseline != "":
		err = errors.New("-compare, -phases, -write_baseline and -check_baseline: pick one")
	case raw && (*phases || baselineMode):
		err = errors.New("-phases and the baselines measure a cluster, not -raw_pebble")
	case *maxGrowth < 0:
		err = fmt.Errorf("negative -max_growth %v", *maxGrowth)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pegasus_bench: %v\n", err)
		return 2
	}
	servers, err := ParseServerList(*serverPIDs)
	// The onebox's pid files name the servers only when the run goes to the onebox:
	// another cluster's servers are not the local onebox's processes.
	if err == nil && *serverPIDs == "" && !raw && (!metaSet || oneboxSet) {
		servers, err = OneboxServers("/proc", *onebox)
	}
	if err == nil && baselineMode && len(servers) == 0 {
		err = fmt.Errorf("the baselines need the servers' CPU: no -server_pids and no running server in %s/*.pid", *onebox)
	}
	if err != nil {
		fmt.Fprintf(stderr, "pegasus_bench: %v\n", err)
		return 2
	}
	var meter *CPUMeter
	if !raw {
		meter = &CPUMeter{Servers: servers}
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
	mode := modeRun
	switch {
	case *compare:
		mode = modeCompare
	case *phases || baselineMode:
		mode = modePhases
	}
	code := 0
	// A check measures again before failing: on a shared machine one slow phase
	// is more often a neighbour's load than a change of this project.
	attempts := 1
	if *checkBaseline != "" {
		attempts = max(*checkAttempts, 1)
	}
	for attempt := 1; ; attempt++ {
		switch {
		case raw && !*compare:
			out, err = runRaw(ctx, cfg, *rawDir)
		default:
			out, err = runCluster(ctx, cfg, splitList(*meta), *table, *opTimeout, mode, *rawDir, meter)
		}
		if err != nil {
			fmt.Fprintf(stderr, "pegasus_bench: %v\n", err)
			return 1
		}
		if !baselineMode {
			break
		}
		b, err := NewBaseline(out.(*Phases), cfg, machine, model, runtime.NumCPU(), time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "pegasus_bench: %v\n", err)
			return 1
		}
		b.Note = *baselineNote
		var res CheckResult
		if *writeBaseline != "" {
			path := BaselinePath(*writeBaseline, machine)
			if err := WriteBaseline(path, b); err != nil {
				fmt.Fprintf(stderr, "pegasus_bench: %v\n", err)
				return 1
			}
			res.Lines = []string{fmt.Sprintf("wrote baseline %s: server cpu/op write %.1fus read %.1fus",
				path, b.WriteServerUSPerOp, b.ReadServerUSPerOp)}
		} else {
			res = CheckBaseline(base, b, *maxGrowth)
			res.Lines = append([]string{fmt.Sprintf("BASELINE CHECK attempt %d of at most %d (%s, baseline of %s)",
				attempt, attempts, BaselinePath(*checkBaseline, machine), base.Created)}, res.Lines...)
		}
		out = &checked{Phases: out.(*Phases), lines: res.Lines}
		if *writeBaseline != "" || res.OK {
			break
		}
		if attempt == attempts {
			code = 1
			break
		}
		fmt.Fprintf(stderr, "pegasus_bench: %s\npegasus_bench: measuring again\n", strings.Join(res.Lines, "\npegasus_bench: "))
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
	return code
}

// checked is the phases followed by the lines of a baseline check or write.
type checked struct {
	*Phases
	lines []string
}

func (c *checked) WriteText(w io.Writer) error {
	if err := c.Phases.WriteText(w); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%s\n", strings.Join(c.lines, "\n"))
	return err
}

func (c *checked) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Fill     *Report  `json:"fill"`
		Write    *Report  `json:"write"`
		Read     *Report  `json:"read"`
		Baseline []string `json:"baseline"`
	}{c.Fill, c.Write, c.Read, c.lines})
}

// The kinds of cluster run.
const (
	modeRun = iota
	modeCompare
	modePhases
)

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

func runCluster(ctx context.Context, cfg Config, metas []string, table string, opTimeout time.Duration, mode int, rawDir string, meter *CPUMeter) (_ textReport, err error) {
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
	switch mode {
	case modeCompare:
		return Compare(ctx, cfg, rawDir, cl)
	case modePhases:
		return RunPhases(ctx, cfg, cl, meter)
	}
	return RunMetered(ctx, cfg, cl, meter)
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
