package clustertest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
)

// replicaIndex returns the instance index of a replica server address.
func replicaIndex(c *clustertest.Cluster, addr string) int {
	for i, a := range c.ReplicaAddrs() {
		if a == addr {
			return i + 1
		}
	}
	return 0
}

// TestPrimaryFailoverAndRejoin kills the replica server holding a primary, measures
// how long until that partition takes writes again, then restarts the server and
// checks that it rejoins (by learning) and the cluster is fully healthy again.
func TestPrimaryFailoverAndRejoin(t *testing.T) {
	const grace = 5
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3, LeaseSeconds: 4, GraceSeconds: grace})
	c.WaitHealthy(60 * time.Second)
	tb := c.OpenTable("temp")
	hk := []byte("failover-key")
	pidx := tb.PartitionOf(hk)
	victim := replicaIndex(c, tb.Primary(pidx))
	for i := 0; i < 200; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := tb.Set(ctx, hk, []byte(fmt.Sprint(i)), []byte(fmt.Sprint("v", i)), 0); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	killed := time.Now()
	c.Kill("replica", victim)
	var first time.Time
	for i := 0; time.Since(killed) < time.Duration(grace+30)*time.Second; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := tb.Set(ctx, hk, []byte("after"), []byte(fmt.Sprint(i)), 0)
		cancel()
		if err == nil {
			first = time.Now()
			break
		}
	}
	if first.IsZero() {
		t.Fatal("the partition never took writes after its primary died")
	}
	took := first.Sub(killed)
	t.Logf("failover: first successful write %v after SIGKILL of the primary's node (grace %ds)", took, grace)
	if took > time.Duration(grace+5)*time.Second {
		t.Errorf("failover took %v, want under grace + 5 s", took)
	}
	for i := 0; i < 200; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := tb.Get(ctx, hk, []byte(fmt.Sprint(i)))
		cancel()
		if err != nil || string(v) != fmt.Sprint("v", i) {
			t.Fatalf("acknowledged write %d after failover: %q %v", i, v, err)
		}
	}
	c.Start("replica", victim)
	c.WaitHealthy(90 * time.Second)
	if out := c.Output("replica", victim); strings.Contains(out, "panic") {
		t.Fatalf("replica output: %s", out)
	}
}
