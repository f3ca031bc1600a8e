package bench

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
)

// TestAgainstCluster runs the comparison and a mixed load on a real three-replica
// cluster, small enough to last seconds: the point is that the figures are sound
// (every operation counted, no error, ordered percentiles), not how large they are.
func TestAgainstCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3})
	c.WaitHealthy(60 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := OpenCluster(ctx, c.MetaAddrs(), "temp", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	cfg := Config{ValueSize: 1024, Keys: 1000, Concurrency: 8, Duration: 2 * time.Second, Seed: 42}
	cmp, err := Compare(ctx, cfg, "", cl)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := cmp.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("comparison:\n%s", text.String())

	if f := cmp.ClusterFill; !f.Complete || f.Errors() != 0 || f.Op(OpSet).Count != int64(cfg.Keys) {
		t.Fatalf("cluster fill: complete %v, %s", f.Complete, f.Summary())
	}
	for _, r := range []*Report{cmp.RawFill, cmp.RawRead, cmp.ClusterFill, cmp.ClusterRead} {
		if r.Errors() != 0 || len(r.Ops) != 1 || r.Ops[0].Count == 0 || r.Ops[0].OpsPerSec <= 0 {
			t.Errorf("%s", r.Summary())
		}
		checkOrdered(t, &r.Ops[0])
	}
	if get := cmp.ClusterRead.Op(OpGet); get.NotFound != 0 {
		t.Errorf("cluster read after a complete fill missed %d records", get.NotFound)
	}
	if cmp.WriteRatio <= 0 || cmp.ReadRatio <= 0 {
		t.Errorf("ratios %v %v", cmp.WriteRatio, cmp.ReadRatio)
	}
	if v := strings.Join(cmp.Verdicts(), "\n"); !strings.Contains(v, "writes: cluster") || !strings.Contains(v, "reads ") {
		t.Errorf("verdicts %q", v)
	}

	mixed := cfg
	mixed.Workload, mixed.ReadRatio, mixed.HashKeys = Mixed, 0.5, 100
	rep, err := Run(ctx, mixed, cl)
	if err != nil {
		t.Fatal(err)
	}
	set, get := rep.Op(OpSet), rep.Op(OpGet)
	if set == nil || get == nil || set.Count == 0 || get.Count == 0 || rep.Errors() != 0 {
		t.Fatalf("mixed: %s", rep.Summary())
	}
	checkOrdered(t, set)
	checkOrdered(t, get)

	testBaselineCommands(t, c)
}

// testBaselineCommands writes a baseline with the cluster's server processes
// measured, checks against it, and checks against one no real run can meet.
func testBaselineCommands(t *testing.T, c *clustertest.Cluster) {
	var pids []string
	for i := 1; i <= 3; i++ {
		pids = append(pids, fmt.Sprintf("replica%d=%d", i, c.Pid("replica", i)))
	}
	pids = append(pids, fmt.Sprintf("meta1=%d", c.Pid("meta", 1)))
	common := []string{"-meta", strings.Join(c.MetaAddrs(), ","), "-server_pids", strings.Join(pids, ","),
		"-keys", "300", "-concurrency", "4", "-duration", "1s", "-op_timeout", "20s"}
	path := filepath.Join(t.TempDir(), "baseline.json")
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), append(append([]string{}, common...), args...), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := run("-write_baseline", path); code != 0 {
		t.Fatalf("write baseline: exit %d\n%s", code, out)
	}
	b, err := ReadBaseline(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.Keys != 300 || b.PhaseSec != 1 || b.WriteOpsPerSec <= 0 || b.ReadOpsPerSec <= 0 {
		t.Fatalf("baseline %+v", b)
	}
	// Timing must not make this test fail: the check may take 100 times the CPU.
	if code, out := run("-check_baseline", path, "-max_growth", "100"); code != 0 || !strings.Contains(out, "BASELINE CHECK") {
		t.Fatalf("check against itself: exit %d\n%s", code, out)
	}
	b.WriteServerUSPerOp, b.ReadServerUSPerOp = 0.001, 0.001
	if err := WriteBaseline(path, b); err != nil {
		t.Fatal(err)
	}
	code, out := run("-check_baseline", path, "-check_attempts", "2")
	if code != 1 || strings.Count(out, "BASELINE CHECK attempt") != 2 || !strings.Contains(out, "FAIL") {
		t.Fatalf("check against an impossible baseline: exit %d\n%s", code, out)
	}
}
