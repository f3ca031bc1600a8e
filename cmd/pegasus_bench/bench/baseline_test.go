package bench

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMachineKind(t *testing.T) {
	tests := []struct {
		name, cpuinfo string
		nproc         int
		kind, model   string
	}{
		{name: "amd", cpuinfo: "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t: x\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n",
			nproc: 2, kind: "2cpu-amd-epyc", model: "AMD EPYC"},
		{name: "intel punctuation", cpuinfo: "model name\t: Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz\n",
			nproc: 8, kind: "8cpu-intel-r-xeon-r-platinum-8375c-cpu-2-90ghz", model: "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"},
		{name: "no model line (arm)", cpuinfo: "processor\t: 0\nBogoMIPS\t: 50.00\n", nproc: 4, kind: "4cpu-unknown", model: "unknown"},
		{name: "empty model", cpuinfo: "model name\t:   \n", nproc: 1, kind: "1cpu-unknown", model: "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, model := MachineKind([]byte(tc.cpuinfo), tc.nproc)
			if kind != tc.kind || model != tc.model {
				t.Fatalf("got %q %q, want %q %q", kind, model, tc.kind, tc.model)
			}
		})
	}
}

func TestBaselinePath(t *testing.T) {
	if got := BaselinePath("bench", "2cpu-amd-epyc"); got != filepath.Join("bench", "baseline-2cpu-amd-epyc.json") {
		t.Fatalf("dir: %s", got)
	}
	if got := BaselinePath("/x/mine.json", "k"); got != "/x/mine.json" {
		t.Fatalf("file: %s", got)
	}
}

func TestCheckBaseline(t *testing.T) {
	base := &Baseline{WriteServerUSPerOp: 100, ReadServerUSPerOp: 40}
	tests := []struct {
		name        string
		write, read float64
		ok          bool
		fail        string
	}{
		{name: "same", write: 100, read: 40, ok: true},
		{name: "cheaper", write: 50, read: 20, ok: true},
		{name: "just inside", write: 124.9, read: 49.9, ok: true},
		{name: "writes dearer", write: 126, read: 40, fail: "write"},
		{name: "reads dearer", write: 100, read: 51, fail: "read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := CheckBaseline(base, &Baseline{WriteServerUSPerOp: tc.write, ReadServerUSPerOp: tc.read}, 0.25)
			if res.OK != tc.ok {
				t.Fatalf("ok %v, want %v: %v", res.OK, tc.ok, res.Lines)
			}
			for _, l := range res.Lines {
				if strings.HasSuffix(l, "FAIL") != (tc.fail != "" && strings.HasPrefix(l, tc.fail)) {
					t.Fatalf("line %q (failing: %q)", l, tc.fail)
				}
			}
		})
	}
}

func TestBaselineRoundTrip(t *testing.T) {
	proc := fakeProc(t, map[int]string{10: "pegasus_server"}, map[int]int{10: 5})
	meter := &CPUMeter{Servers: []Process{{"replica1", 10}}, ProcDir: proc}
	cfg := baseConfig(Fill)
	ph, err := RunPhases(context.Background(), cfg, newFakeTarget(), meter)
	if err != nil {
		t.Fatal(err)
	}
	if ph.Write.Op(OpSet) == nil || ph.Write.Op(OpGet) != nil || ph.Read.Op(OpGet) == nil || ph.Read.Op(OpGet).NotFound != 0 {
		t.Fatalf("phases: %s / %s / %s", ph.Fill.Summary(), ph.Write.Summary(), ph.Read.Summary())
	}
	// The fake server used no CPU: not a baseline.
	if _, err := NewBaseline(ph, cfg, "k", "m", 2, time.Now()); err == nil {
		t.Fatal("a baseline without server CPU was accepted")
	}
	ph.Write.CPU.Servers[0].CPU = 200 * time.Millisecond
	ph.Read.CPU.Servers[0].CPU = 100 * time.Millisecond
	b, err := NewBaseline(ph, cfg, "k", "m", 2, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "b.json")
	if err := WriteBaseline(path, b); err != nil {
		t.Fatal(err)
	}
	got, err := ReadBaseline(path)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *b || got.Config() != (Config{Keys: cfg.Keys, ValueSize: cfg.ValueSize, Concurrency: cfg.Concurrency, Duration: cfg.Duration, Seed: cfg.Seed}) {
		t.Fatalf("read back %+v, wrote %+v", got, b)
	}
	if res := CheckBaseline(b, got, 0.25); !res.OK {
		t.Fatalf("a baseline against itself: %v", res.Lines)
	}
	if _, err := ReadBaseline(filepath.Join(t.TempDir(), "none.json")); err == nil || !strings.Contains(err.Error(), "make bench-baseline") {
		t.Fatalf("missing baseline: %v", err)
	}
}
