package clustertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/cmd"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

func metaClient(t *testing.T, c *clustertest.Cluster) *rpc.MetaClient {
	t.Helper()
	mc, err := rpc.NewMetaClient(c.MetaAddrs(), rpc.MetaClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	return mc
}

func setLevel(t *testing.T, mc *rpc.MetaClient, level admin.MetaFunctionLevel) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rpc.CallMeta[admin.ConfigurationMetaControlResponse](ctx, mc, rpc.CodeControlMeta, &admin.ConfigurationMetaControlRequest{Level: level})
	if err != nil || !r.Err.OK() {
		t.Fatalf("set meta level: %v %v", err, r)
	}
}

func queryConfig(t *testing.T, mc *rpc.MetaClient, table string) *layer2.QueryCfgResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rpc.CallMeta[layer2.QueryCfgResponse](ctx, mc, rpc.CodeQueryConfig, &layer2.QueryCfgRequest{AppName: table})
	if err != nil || !r.Err.OK() {
		t.Fatalf("query config: %v %v", err, r)
	}
	return r
}

type digestRow struct {
	Decree int64  `json:"decree"`
	Digest string `json:"digest"`
	Status string `json:"status"`
}

// sameData waits until every partition's members hold the same decree and data.
func sameData(t *testing.T, c *clustertest.Cluster, timeout time.Duration) {
	t.Helper()
	waitfor.Until(t, timeout, 500*time.Millisecond, "identical replicas", func() (bool, string) {
		byGpid := map[string][]digestRow{}
		for _, addr := range c.ReplicaAddrs() {
			cl := rpc.NewClient(addr, rpc.ClientOptions{DialTimeout: time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			var out rpc.String
			err := cl.Call(ctx, rpc.Request{Code: rpc.CodeRemoteCommand, Args: &cmd.Command{Cmd: "replica.digest", Arguments: []string{}}}, &out)
			cancel()
			cl.Close()
			if err != nil {
				continue
			}
			rows := map[string]digestRow{}
			if json.Unmarshal([]byte(out.V), &rows) != nil {
				continue
			}
			for g, r := range rows {
				if r.Status == "PS_PRIMARY" || r.Status == "PS_SECONDARY" {
					byGpid[g] = append(byGpid[g], r)
				}
			}
		}
		ok, last := len(byGpid) > 0, "no partition has members"
		for g, rows := range byGpid {
			if len(rows) < 3 {
				ok, last = false, fmt.Sprintf("partition %s: %d members", g, len(rows))
				continue
			}
			for _, r := range rows[1:] {
				if r.Decree != rows[0].Decree || r.Digest != rows[0].Digest {
					ok, last = false, fmt.Sprintf("partition %s: %+v vs %+v", g, rows[0], r)
				}
			}
		}
		return ok, last
	})
}

// TestLearnFromCheckpoint takes a replica server down while 50,000 writes go to
// the table, brings it back while writes continue, and checks that it catches up
// (a checkpoint copy: far more than the primary keeps in memory) and ends
// identical.
func TestLearnFromCheckpoint(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3, LeaseSeconds: 3, GraceSeconds: 4,
		Tables: []clustertest.Table{{Name: "temp", Partitions: 4, Replicas: 3}}})
	c.WaitHealthy(60 * time.Second)
	tb := c.OpenTable("temp")
	c.Kill("replica", 3)
	write := func(from, to int64, workers int) error {
		var next atomic.Int64
		next.Store(from)
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= to {
						return
					}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					err := tb.Set(ctx, []byte(fmt.Sprintf("k%06d", i)), []byte("s"), []byte(fmt.Sprintf("value-%06d-%0100d", i, 0)), 0)
					cancel()
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		return <-errs
	}
	start := time.Now()
	if err := write(0, 50000, 32); err != nil {
		t.Fatal(err)
	}
	t.Logf("50000 writes while replica3 was down: %v", time.Since(start))
	// Bring it back while more writes keep coming.
	done := make(chan error, 1)
	go func() { done <- write(50000, 60000, 4) }()
	c.Start("replica", 3)
	c.WaitHealthy(120 * time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sameData(t, c, 60*time.Second)
	if log := c.Log("replica", 3); !strings.Contains(log, "installed the primary's checkpoint") {
		t.Errorf("replica3 did not learn from a checkpoint")
	}
	for i := int64(0); i < 60000; i += 997 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := tb.Get(ctx, []byte(fmt.Sprintf("k%06d", i)), []byte("s"))
		cancel()
		if err != nil || string(v) != fmt.Sprintf("value-%06d-%0100d", i, 0) {
			t.Fatalf("k%06d: %q %v", i, v, err)
		}
	}
}

// TestBalancerSpreadsOntoNewNode starts with three replica servers, adds a fourth
// at level lively, and checks that primaries and replicas end within one of even
// per node, while no partition ever has fewer than two members.
func TestBalancerSpreadsOntoNewNode(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 4, Deferred: 1})
	c.WaitHealthy(60 * time.Second)
	mc := metaClient(t, c)
	setLevel(t, mc, admin.MetaFunctionLevel_fl_lively)
	c.Start("replica", 4)
	minMembers := 3
	waitfor.Until(t, 150*time.Second, 100*time.Millisecond, "balanced", func() (bool, string) {
		cfg := queryConfig(t, mc, "temp")
		prim, reps := map[string]int{}, map[string]int{}
		for _, a := range c.ReplicaAddrs() {
			prim[a], reps[a] = 0, 0
		}
		for _, pc := range cfg.Partitions {
			n := len(pc.Secondaries)
			if pc.Primary.IsValid() {
				n++
				prim[pc.Primary.String()]++
				reps[pc.Primary.String()]++
			}
			for _, s := range pc.Secondaries {
				reps[s.String()]++
			}
			minMembers = min(minMembers, n)
		}
		if minMembers < 2 {
			t.Fatalf("a partition dropped to %d members during the moves: %+v", minMembers, cfg.Partitions)
		}
		spread := func(m map[string]int) int {
			lo, hi := 1<<30, 0
			for _, v := range m {
				lo, hi = min(lo, v), max(hi, v)
			}
			return hi - lo
		}
		if spread(prim) <= 1 && spread(reps) <= 1 {
			if ok, _ := c.Healthy(); ok {
				t.Logf("balanced: primaries %v replicas %v", prim, reps)
				return true, ""
			}
		}
		return false, fmt.Sprintf("primaries %v replicas %v", prim, reps)
	})
	c.WaitHealthy(60 * time.Second)
	sameData(t, c, 60*time.Second)
}

// TestDrainNode takes a replica server out of service at level lively: the
// balancer moves every replica away from it, never leaving a partition with fewer
// than two members, and the node ends holding nothing.
func TestDrainNode(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 4})
	c.WaitHealthy(60 * time.Second)
	mc := metaClient(t, c)
	setLevel(t, mc, admin.MetaFunctionLevel_fl_lively)
	out := c.Addr("replica", 4)
	leader := rpc.NewClient(c.MetaAddrs()[0], rpc.ClientOptions{})
	defer leader.Close()
	var reply rpc.String
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := leader.Call(ctx, rpc.Request{Code: rpc.CodeRemoteCommand, Args: &cmd.Command{Cmd: "meta.lb.assign_secondary_black_list", Arguments: []string{out}}}, &reply)
	cancel()
	if err != nil || reply.V != "OK" {
		t.Fatalf("exclude %s: %q %v", out, reply.V, err)
	}
	waitfor.Until(t, 150*time.Second, 100*time.Millisecond, "the node drained", func() (bool, string) {
		cfg := queryConfig(t, mc, "temp")
		held := 0
		for _, pc := range cfg.Partitions {
			n := len(pc.Secondaries)
			if pc.Primary.IsValid() {
				n++
				if pc.Primary.String() == out {
					held++
				}
			}
			for _, s := range pc.Secondaries {
				if s.String() == out {
					held++
				}
			}
			if n < 2 {
				t.Fatalf("partition %s dropped to %d members while draining", pc.Pid, n)
			}
		}
		if held == 0 {
			if ok, _ := c.Healthy(); ok {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%s still holds %d replicas", out, held)
	})
	// The node can now be stopped without any partition noticing.
	c.Stop("replica", 4)
	tb := c.OpenTable("temp")
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tb.Set(ctx, []byte("after-drain"), []byte("s"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
}
