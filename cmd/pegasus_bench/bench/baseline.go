package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// MachineKind names the kind of machine a CPU baseline holds for: the number of
// CPUs this process may use and the CPU model of /proc/cpuinfo, lower case with
// every run of other characters turned into one '-', e.g. "2cpu-amd-epyc". CPU
// time per operation depends on the core (its speed and caches) and, through how
// much the servers batch under contention, on how many cores there are; memory
// size and the kernel matter much less, so they are left out of the name.
func MachineKind(cpuinfo []byte, nproc int) (kind, model string) {
	model = "unknown"
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			if v = strings.TrimSpace(v); v != "" {
				model = v
			}
			break
		}
	}
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(model) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
			continue
		}
		dash = true
	}
	return fmt.Sprintf("%dcpu-%s", nproc, b.String()), model
}

// ThisMachine is MachineKind of the machine this runs on.
func ThisMachine() (kind, model string) {
	info, _ := os.ReadFile("/proc/cpuinfo") // unreadable: the model is "unknown"
	return MachineKind(info, runtime.NumCPU())
}

// Baseline is the CPU cost per operation of one machine kind, committed so that
// `make bench-check` notices when a change makes operations dearer.
type Baseline struct {
	Machine  string `json:"machine"`
	CPUModel string `json:"cpu_model"`
	NProc    int    `json:"nproc"`
	Created  string `json:"created"`
	Note     string `json:"note,omitempty"`
	// The run's shape: a check runs the same.
	Keys        int     `json:"keys"`
	ValueSize   int     `json:"value_size"`
	Concurrency int     `json:"concurrency"`
	PhaseSec    float64 `json:"phase_sec"`
	Seed        uint64  `json:"seed"`
	// What was measured: server CPU per operation is what a check compares; the
	// client's CPU and the throughput are kept for the reader.
	WriteServerUSPerOp float64 `json:"write_server_us_per_op"`
	ReadServerUSPerOp  float64 `json:"read_server_us_per_op"`
	WriteClientUSPerOp float64 `json:"write_client_us_per_op"`
	ReadClientUSPerOp  float64 `json:"read_client_us_per_op"`
	WriteOpsPerSec     float64 `json:"write_ops_per_sec"`
	ReadOpsPerSec      float64 `json:"read_ops_per_sec"`
}

// Config is the run shape the baseline was measured with.
func (b *Baseline) Config() Config {
	return Config{Keys: b.Keys, ValueSize: b.ValueSize, Concurrency: b.Concurrency,
		Duration: time.Duration(b.PhaseSec * float64(time.Second)), Seed: b.Seed}
}

// NewBaseline takes the figures of a RunPhases measured with the servers' CPU.
func NewBaseline(ph *Phases, cfg Config, machine, model string, nproc int, now time.Time) (*Baseline, error) {
	for _, r := range []*Report{ph.Write, ph.Read} {
		if r.CPU == nil || r.CPU.ServerTotal() <= 0 || r.CPU.Ops == 0 {
			return nil, fmt.Errorf("bench: the %s phase has no server CPU figures %s", r.Workload, r.CPUError)
		}
		if n := r.Errors(); n > 0 {
			return nil, fmt.Errorf("bench: the %s phase had %d failed operations: not a baseline", r.Workload, n)
		}
	}
	b := &Baseline{Machine: machine, CPUModel: model, NProc: nproc, Created: now.UTC().Format(time.RFC3339),
		Keys: cfg.Keys, ValueSize: cfg.ValueSize, Concurrency: cfg.Concurrency,
		PhaseSec: cfg.Duration.Seconds(), Seed: cfg.Seed,
		WriteServerUSPerOp: ph.Write.CPU.ServerUSPerOp(), ReadServerUSPerOp: ph.Read.CPU.ServerUSPerOp(),
		WriteClientUSPerOp: ph.Write.CPU.ClientUSPerOp(), ReadClientUSPerOp: ph.Read.CPU.ClientUSPerOp()}
	if o := ph.Write.Op(OpSet); o != nil {
		b.WriteOpsPerSec = o.OpsPerSec
	}
	if o := ph.Read.Op(OpGet); o != nil {
		b.ReadOpsPerSec = o.OpsPerSec
	}
	return b, nil
}

// BaselinePath is where the baseline of machine lives: path itself when it names a
// .json file, else the file baseline-<machine>.json in the directory path.
func BaselinePath(path, machine string) string {
	if strings.HasSuffix(path, ".json") {
		return path
	}
	return filepath.Join(path, "baseline-"+machine+".json")
}

// ReadBaseline reads a baseline file.
func ReadBaseline(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("bench: no baseline %s for this machine kind (make bench-baseline writes one): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bench: read baseline: %w", err)
	}
	var b Baseline
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("bench: baseline %s: %w", path, err)
	}
	if b.Keys <= 0 || b.Concurrency <= 0 || b.PhaseSec <= 0 || b.WriteServerUSPerOp <= 0 || b.ReadServerUSPerOp <= 0 {
		return nil, fmt.Errorf("bench: baseline %s is incomplete (keys, concurrency, phase_sec and both server figures must be positive)", path)
	}
	return &b, nil
}

// WriteBaseline writes b to path, replacing the file whole.
func WriteBaseline(path string, b *Baseline) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encode baseline: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: write baseline: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("bench: write baseline: %w", err)
	}
	return nil
}

// CheckResult is the outcome of comparing a run with a baseline.
type CheckResult struct {
	Lines []string
	OK    bool
}

// CheckBaseline compares the server CPU per operation of got with base and fails
// when either the write or the read figure grew by more than maxGrowth (0.25: 25%).
// A figure that shrank passes; the lines say by how much, so that a lasting gain
// can be recorded with make bench-baseline.
func CheckBaseline(base, got *Baseline, maxGrowth float64) CheckResult {
	res := CheckResult{OK: true}
	for _, c := range []struct {
		what      string
		base, got float64
	}{
		{"write", base.WriteServerUSPerOp, got.WriteServerUSPerOp},
		{"read ", base.ReadServerUSPerOp, got.ReadServerUSPerOp},
	} {
		growth := c.got/c.base - 1
		verdict := "ok"
		if growth > maxGrowth {
			verdict, res.OK = "FAIL", false
		}
		res.Lines = append(res.Lines, fmt.Sprintf("%s server cpu/op %.1fus, baseline %.1fus: %+.1f%% (limit +%.0f%%): %s",
			c.what, c.got, c.base, 100*growth, 100*maxGrowth, verdict))
	}
	res.Lines = append(res.Lines, fmt.Sprintf("client cpu/op write %.1fus (baseline %.1fus), read %.1fus (baseline %.1fus); not checked",
		got.WriteClientUSPerOp, base.WriteClientUSPerOp, got.ReadClientUSPerOp, base.ReadClientUSPerOp))
	return res
}
