package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/rpc/kv"
)

// fakeTarget is an in-memory target that can fail or slow down on demand.
type fakeTarget struct {
	mu      sync.Mutex
	data    map[string][]byte
	writes  map[string]int
	calls   atomic.Int64
	delay   time.Duration
	failNth int64 // every failNth call fails with ERR_BUSY
	block   chan struct{}
}

func newFakeTarget() *fakeTarget {
	return &fakeTarget{data: map[string][]byte{}, writes: map[string]int{}}
}

func (f *fakeTarget) Name() string { return "fake" }

func (f *fakeTarget) op(ctx context.Context) error {
	n := f.calls.Add(1)
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return &kv.Error{Op: "Set", Code: "ERR_TIMEOUT", Err: ctx.Err()}
		}
	}
	if f.delay > 0 {
		time.Sleep(f.delay) // the fake's latency: each operation takes this long, as a slow server's would
	}
	if f.failNth > 0 && n%f.failNth == 0 {
		return &kv.Error{Op: "Set", Code: "ERR_BUSY"}
	}
	return nil
}

func (f *fakeTarget) Set(ctx context.Context, hk, sk, v []byte) error {
	if err := f.op(ctx); err != nil {
		return err
	}
	k := string(hk) + "/" + string(sk)
	f.mu.Lock()
	f.data[k] = bytes.Clone(v)
	f.writes[k]++
	f.mu.Unlock()
	return nil
}

func (f *fakeTarget) Get(ctx context.Context, hk, sk []byte) (bool, error) {
	if err := f.op(ctx); err != nil {
		return false, err
	}
	f.mu.Lock()
	_, ok := f.data[string(hk)+"/"+string(sk)]
	f.mu.Unlock()
	return ok, nil
}

func (f *fakeTarget) ErrorName(err error) string { return kv.ErrorCode(err) }

func baseConfig(w Workload) Config {
	return Config{Workload: w, ReadRatio: 0.5, ValueSize: 100, Keys: 1000, Concurrency: 8, Duration: 200 * time.Millisecond, Seed: 1}
}

func checkOrdered(t *testing.T, o *OpStats) {
	t.Helper()
	if !(o.P50 <= o.P99 && o.P99 <= o.P999 && o.P999 <= o.Max) {
		t.Errorf("%s: percentiles out of order: p50 %v p99 %v p999 %v max %v", o.Kind, o.P50, o.P99, o.P999, o.Max)
	}
}

func TestFillWritesEveryKeyOnce(t *testing.T) {
	f := newFakeTarget()
	cfg := baseConfig(Fill)
	cfg.Duration = 0
	rep, err := Run(context.Background(), cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.writes) != cfg.Keys {
		t.Fatalf("%d distinct keys written, want %d", len(f.writes), cfg.Keys)
	}
	for k, n := range f.writes {
		if n != 1 {
			t.Fatalf("key %s written %d times", k, n)
		}
	}
	if _, ok := f.writes["bench999/s"]; !ok {
		t.Fatalf("key bench999/s missing; layout is %v", f.writes)
	}
	set := rep.Op(OpSet)
	if set == nil || set.Count != int64(cfg.Keys) || rep.Op(OpGet) != nil || !rep.Complete || rep.Filled != cfg.Keys || rep.Errors() != 0 {
		t.Fatalf("report %+v", rep)
	}
	checkOrdered(t, set)
	for _, v := range f.data {
		if len(v) != cfg.ValueSize {
			t.Fatalf("value of %d bytes, want %d", len(v), cfg.ValueSize)
		}
	}
}

func TestFillStopsAtDuration(t *testing.T) {
	f := newFakeTarget()
	f.delay = time.Millisecond
	cfg := baseConfig(Fill)
	cfg.Keys = 1 << 30
	cfg.Duration = 100 * time.Millisecond
	start := time.Now()
	rep, err := Run(context.Background(), cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("fill bounded by 100ms ran %v", took)
	}
	if rep.Complete || rep.Filled == 0 || rep.Filled >= cfg.Keys || rep.Op(OpSet).Count != int64(rep.Filled) {
		t.Fatalf("filled %d complete %v count %d", rep.Filled, rep.Complete, rep.Op(OpSet).Count)
	}
	if !strings.Contains(rep.Summary(), "set") {
		t.Fatalf("summary %q", rep.Summary())
	}
}

func TestErrorsCountedByName(t *testing.T) {
	f := newFakeTarget()
	f.failNth = 4
	cfg := baseConfig(Fill)
	cfg.Duration = 0
	rep, err := Run(context.Background(), cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	set := rep.Op(OpSet)
	if set.Errors["ERR_BUSY"] != int64(cfg.Keys/4) || len(set.Errors) != 1 || set.Count != int64(cfg.Keys-cfg.Keys/4) {
		t.Fatalf("count %d errors %v", set.Count, set.Errors)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "ERR_BUSY=250") || !strings.Contains(rep.Summary(), "errors 250") {
		t.Fatalf("errors not reported:\n%s", text.String())
	}
}

func TestMixedRatioAndReads(t *testing.T) {
	f := newFakeTarget()
	cfg := baseConfig(Mixed)
	cfg.ReadRatio = 0.8
	cfg.Keys = 100
	rep, err := Run(context.Background(), cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	set, get := rep.Op(OpSet), rep.Op(OpGet)
	if set == nil || get == nil {
		t.Fatalf("ops %+v", rep.Ops)
	}
	share := float64(get.Count) / float64(get.Count+set.Count)
	if math.Abs(share-0.8) > 0.05 {
		t.Fatalf("read share %.3f, want 0.8 (%d gets, %d sets)", share, get.Count, set.Count)
	}
	if get.NotFound == 0 || get.NotFound >= get.Count {
		t.Fatalf("reads before the first writes should miss some records: %d of %d not found", get.NotFound, get.Count)
	}
	checkOrdered(t, set)
	checkOrdered(t, get)

	r := baseConfig(Read)
	r.Keys = 100
	rep, err = Run(context.Background(), r, f)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Op(OpSet) != nil || rep.Op(OpGet).Count == 0 {
		t.Fatalf("read workload ops %+v", rep.Ops)
	}
}

func TestInterruptIsNotAnError(t *testing.T) {
	f := newFakeTarget()
	f.block = make(chan struct{}) // never released: every call waits for cancellation
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	cfg := baseConfig(Read)
	cfg.Duration = time.Minute
	rep, err := Run(ctx, cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || rep.Errors() != 0 {
		t.Fatalf("interrupted %v errors %d", rep.Interrupted, rep.Errors())
	}
}

func TestKeyLayout(t *testing.T) {
	one := Config{Keys: 10}.layout()
	hk, sk := one.key(7, nil, nil)
	if string(hk) != "bench7" || string(sk) != "s" {
		t.Fatalf("one hash key per record: %q %q", hk, sk)
	}
	wide := Config{Keys: 10, HashKeys: 3}.layout()
	seen := map[string]bool{}
	for i := range 10 {
		hk, sk := wide.key(i, nil, nil)
		seen[string(hk)+"/"+string(sk)] = true
	}
	if len(seen) != 10 || !seen["bench0/s3"] || !seen["bench0/s0"] {
		t.Fatalf("wide layout keys %v", seen)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.Workload = "scan" },
		func(c *Config) { c.ReadRatio = 1.5 },
		func(c *Config) { c.Keys = 0 },
		func(c *Config) { c.Concurrency = 0 },
		func(c *Config) { c.ValueSize = -1 },
		func(c *Config) { c.Duration = 0 },
	}
	for i, mut := range bad {
		c := baseConfig(Read)
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("case %d: %+v accepted", i, c)
		}
	}
	c := baseConfig(Fill)
	c.Duration = 0
	if err := c.Validate(); err != nil {
		t.Errorf("unbounded fill refused: %v", err)
	}
}

func TestPebbleTarget(t *testing.T) {
	p, err := OpenPebble(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	}()
	cfg := baseConfig(Fill)
	cfg.Keys, cfg.ValueSize, cfg.Duration = 2000, 1024, 0
	fill, err := Run(context.Background(), cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Workload, cfg.Duration = Read, 200*time.Millisecond
	read, err := Run(context.Background(), cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	if !fill.Complete || fill.Errors() != 0 || read.Errors() != 0 || read.Op(OpGet).NotFound != 0 || read.Op(OpGet).Count == 0 {
		t.Fatalf("fill %s (complete %v, filled %d) / read %s, %d not found", fill.Summary(), fill.Complete, fill.Filled, read.Summary(), read.Op(OpGet).NotFound)
	}
	checkOrdered(t, read.Op(OpGet))
}

func TestMainRawJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{"-raw_pebble", "", "-workload", "fill", "-keys", "500", "-concurrency", "4", "-value_size", "64", "-json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep struct {
		Workload string `json:"workload"`
		Complete bool   `json:"complete"`
		Ops      []struct {
			Kind      string  `json:"kind"`
			Count     int64   `json:"count"`
			OpsPerSec float64 `json:"ops_per_sec"`
			P50US     float64 `json:"p50_us"`
			P999US    float64 `json:"p999_us"`
		} `json:"ops"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if rep.Workload != "fill" || !rep.Complete || len(rep.Ops) != 1 || rep.Ops[0].Count != 500 || rep.Ops[0].OpsPerSec <= 0 || rep.Ops[0].P50US > rep.Ops[0].P999US {
		t.Fatalf("report %+v", rep)
	}

	for _, args := range [][]string{{"-workload", "scan"}, {"-keys", "0"}, {"extra"}, {"-compare", "-duration", "0"},
		{"-phases", "-raw_pebble", ""}, {"-compare", "-phases"}, {"-write_baseline", "a", "-check_baseline", "b"},
		{"-phases", "-max_growth", "-1"}, {"-server_pids", "x"}, {"-phases", "-duration", "0"},
		{"-write_baseline", t.TempDir(), "-onebox", t.TempDir()},     // no server to measure
		{"-check_baseline", filepath.Join(t.TempDir(), "none.json")}, // no baseline
	} {
		if code := Main(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}
