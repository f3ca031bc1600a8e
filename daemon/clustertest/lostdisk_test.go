package clustertest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
)

// A replica server restarted, within the failure detector's grace, without the
// replicas it held (its disk was replaced or taken out of data_dirs) must not
// leave those partitions waiting for it: the meta still lists it as a member,
// and it looks alive. As primary it hands the role back; as secondary its
// primary's group check drops it. Every partition must serve again with the
// data the other replicas kept.
func TestRestartWithoutItsReplicas(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3, LeaseSeconds: 4, GraceSeconds: 8, AssignDelay: 2 * time.Second})
	c.WaitHealthy(60 * time.Second)
	tb := c.OpenTable("temp")
	const keys = 64
	for i := 0; i < keys; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := tb.Set(ctx, []byte(fmt.Sprint("hk", i)), []byte("s"), []byte(fmt.Sprint("v", i)), 0); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	const victim = 1
	primaries := 0
	for i := 0; i < tb.PartitionCount(); i++ {
		if tb.Primary(i) == c.Addr("replica", victim) {
			primaries++
		}
	}
	if primaries == 0 {
		t.Fatal("setup: the victim holds no primary")
	}
	c.Kill("replica", victim)
	reps := filepath.Join(c.Dir(), "data", fmt.Sprint("replica", victim), "reps")
	if err := os.Rename(reps, reps+".lost"); err != nil {
		t.Fatal(err)
	}
	c.Start("replica", victim)
	t.Logf("restarted replica%d without its %d primaries' data", victim, primaries)

	c.WaitHealthy(180 * time.Second) // a replica replaced after its data loss may wait for the 100 s empty-write timer under load
	for i := 0; i < keys; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := tb.Get(ctx, []byte(fmt.Sprint("hk", i)), []byte("s"))
		cancel()
		if err != nil || string(v) != fmt.Sprint("v", i) {
			t.Fatalf("hk%d after the restart: %q %v", i, v, err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		err = tb.Set(ctx, []byte(fmt.Sprint("hk", i)), []byte("after"), []byte("x"), 0)
		cancel()
		if err != nil {
			t.Fatalf("write to hk%d after the restart: %v", i, err)
		}
	}
	sameData(t, c, 60*time.Second)
	if log := c.Log("replica", victim); !strings.Contains(log, "asking the meta server to replace it") {
		t.Error("the restarted server never handed back its primaries")
	}
}
