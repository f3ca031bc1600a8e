package clustertest_test

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/shell"
)

// TestCapacityUnits checks the read and write capacity units against the
// sizes of the operations, with a read unit of 1 KB from the config and the
// default write unit of 4 KB: a put of a 5000-byte value costs 2 write units, a
// get that finds it 5 read units, a get that finds nothing 1. It reads them
// from /metrics after a known set of operations, then from app_stat while the
// same pattern runs.
func TestCapacityUnits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := clustertest.Start(t, clustertest.Options{
		Metas: 1, Replicas: 3,
		Tables:      []clustertest.Table{{Name: "cu", Partitions: 4, Replicas: 3}},
		ExtraConfig: "[pegasus.server]\nperf_counter_read_capacity_unit_size = 1024\n",
	})
	c.WaitHealthy(90 * time.Second)
	tb := c.OpenTable("cu")
	value := []byte(strings.Repeat("v", 5000))
	round := func(i int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h := []byte(fmt.Sprintf("user%05d", i))
		if err := tb.Set(ctx, h, []byte("s"), value, 0); err != nil {
			t.Errorf("set %d: %v", i, err)
			return
		}
		if v, err := tb.Get(ctx, h, []byte("s")); err != nil || len(v) != len(value) {
			t.Errorf("get %d: %d bytes, %v", i, len(v), err)
		}
		if v, err := tb.Get(ctx, h, []byte("missing")); err != nil || v != nil {
			t.Errorf("get missing %d: %q, %v", i, v, err)
		}
	}
	sum := func(name string) float64 {
		var n float64
		for _, addr := range c.ReplicaAddrs() {
			for _, e := range replicaMetrics(t, addr) {
				if e.Attributes["table_name"] == "cu" {
					n += e.ValueOf(name)
				}
			}
		}
		return n
	}
	const rounds = 20
	for i := range rounds {
		round(i)
	}
	if got, want := sum("write_capacity_units"), float64(2*rounds); got != want {
		t.Errorf("write_capacity_units = %v, want %v (2 per put of %d bytes)", got, want, len(value))
	}
	if got, want := sum("read_capacity_units"), float64(6*rounds); got != want {
		t.Errorf("read_capacity_units = %v, want %v (5 per get found, 1 per get missing)", got, want)
	}

	// app_stat counts the increase over its sampling interval, under load.
	stop := make(chan struct{})
	written := rounds // rows written, read after wg.Wait
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := rounds; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			round(i)
			written = i + 1
		}
	}()
	out := runShellScript(t, c, "app_stat -i 2000")
	close(stop)
	wg.Wait()
	var header []string
	cols := map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == "app_name" {
			header = f
		}
		if len(f) > 0 && f[0] == "cu" && len(f) == len(header) {
			for i, name := range header {
				cols[name], _ = strconv.ParseFloat(f[i], 64)
			}
		}
	}
	rcu, wcu := cols["RCU"], cols["WCU"]
	// The interval holds a run of the put, get, get-missing pattern: n puts
	// cost 2n write units, and the gets about 6n read units, give or take the
	// rounds cut at either end. A round's operations share a hash key, so one
	// node serves them; app_stat samples each node at its own instant, so each
	// of the three nodes may cut a round at either end: up to 6 units off each.
	n := wcu / 2
	t.Logf("app_stat over 2 s: RCU %v WCU %v", rcu, wcu)
	if wcu <= 0 || n != float64(int(n)) || rcu < 6*n-18 || rcu > 6*n+18 {
		t.Errorf("app_stat RCU %v WCU %v: want 2n write units and about 6n read units for n > 0 rounds\n%s", rcu, wcu, out)
	}

	// count_data without -c: the primaries' key estimates, which count the
	// records still in memtables (the replicas reuse an estimate for up to 10 s).
	waitUntil(t, 30*time.Second, fmt.Sprintf("count_data to estimate about %d rows", written), func() (bool, string) {
		// "use" says OK on stderr, which runShellScript would take for an error.
		out := runShellScript(t, c, "use cu\ncount_data", func(o *shell.Options) { o.Stderr = io.Discard })
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 2 && strings.HasPrefix(f[0], "(total:") {
				n, _ := strconv.ParseFloat(f[1], 64)
				return n >= 0.9*float64(written) && n <= 1.1*float64(written), out
			}
		}
		return false, out
	})
}
