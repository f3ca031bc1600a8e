package kvtest

import (
	"testing"

	"github.com/pegasusgo/pegasus/idl/base"
)

func TestClusterPlacesTables(t *testing.T) {
	c := StartCluster(t, 3)
	id := c.CreateTable("t1", 4)
	primaries := 0
	for pidx := range 4 {
		p := c.Primary("t1", pidx)
		if p == nil {
			t.Fatalf("partition %d has no primary", pidx)
		}
		if !p.IsPrimary(base.Gpid{Appid: id, PartitionIndex: int32(pidx)}) {
			t.Fatalf("node %s does not know it is primary of %d.%d", p.Addr(), id, pidx)
		}
		primaries++
	}
	// Moving a primary is visible to the nodes when MovePrimary returns.
	old := c.Primary("t1", 0)
	var to *Node
	for _, n := range c.Nodes() {
		if n != old {
			to = n
			break
		}
	}
	c.MovePrimary("t1", 0, to)
	gpid := base.Gpid{Appid: id, PartitionIndex: 0}
	if !to.IsPrimary(gpid) || old.IsPrimary(gpid) || c.Primary("t1", 0) != to {
		t.Fatalf("primary did not move")
	}

	// A stopped node restarts on its address and learns its partitions again.
	to.Stop()
	if to.Running() || to.IsPrimary(gpid) {
		t.Fatal("a stopped node still serves")
	}
	addr := to.Addr()
	if err := to.Start(); err != nil {
		t.Fatal(err)
	}
	if to.Addr() != addr || !to.Running() {
		t.Fatalf("restarted on %s, was %s", to.Addr(), addr)
	}
	c.Sync()
	if !to.IsPrimary(gpid) {
		t.Fatal("the restarted node does not know its partition")
	}
}
