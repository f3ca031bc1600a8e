package replica_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/idl/gen/cmd"
	"github.com/pegasusgo/pegasus/rpc"
)

type digestRow struct {
	Decree int64  `json:"decree"`
	Digest string `json:"digest"`
	Status string `json:"status"`
}

// digests asks every replica server for the digest of each replica it holds.
func digests(t *testing.T, c *clustertest.Cluster) map[string]map[string]digestRow {
	t.Helper()
	out := map[string]map[string]digestRow{}
	for _, addr := range c.ReplicaAddrs() {
		cl := rpc.NewClient(addr, rpc.ClientOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var reply rpc.String
		err := cl.Call(ctx, rpc.Request{Code: rpc.CodeRemoteCommand, Args: &cmd.Command{Cmd: "replica.digest", Arguments: []string{}}}, &reply)
		cancel()
		cl.Close()
		if err != nil {
			t.Fatalf("digest from %s: %v", addr, err)
		}
		rows := map[string]digestRow{}
		if err := json.Unmarshal([]byte(reply.V), &rows); err != nil {
			t.Fatalf("digest from %s: %v: %q", addr, err, reply.V)
		}
		out[addr] = rows
	}
	return out
}

// identicalReplicas waits until, for every partition, its members (primary and
// secondaries) on all servers hold the same decree and the same data; there must be
// at least wantReplicas of them.
func identicalReplicas(t *testing.T, c *clustertest.Cluster, wantReplicas int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		byGpid := map[string][]digestRow{}
		for _, rows := range digests(t, c) {
			for g, r := range rows {
				if r.Status == "PS_PRIMARY" || r.Status == "PS_SECONDARY" {
					byGpid[g] = append(byGpid[g], r)
				}
			}
		}
		ok := len(byGpid) > 0
		last = ""
		for g, rows := range byGpid {
			if len(rows) < wantReplicas {
				ok, last = false, fmt.Sprintf("partition %s has %d replicas", g, len(rows))
				break
			}
			for _, r := range rows[1:] {
				if r != rows[0] && (r.Decree != rows[0].Decree || r.Digest != rows[0].Digest) {
					ok, last = false, fmt.Sprintf("partition %s: %+v vs %+v", g, rows[0], r)
				}
			}
		}
		if ok {
			return len(byGpid)
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("replicas differ: %s", last)
	return 0
}

func TestReplicatedWrites(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3})
	c.WaitHealthy(60 * time.Second)
	tb := c.OpenTable("temp")
	const keys, workers = 20000, 32
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= keys {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := tb.Set(ctx, []byte(fmt.Sprintf("user%05d", i)), []byte("profile"), []byte(fmt.Sprintf("value-%d", i)), 0)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("set %d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every write reads back.
	for i := 0; i < keys; i += 97 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, err := tb.Get(ctx, []byte(fmt.Sprintf("user%05d", i)), []byte("profile"))
		cancel()
		if err != nil || string(v) != fmt.Sprintf("value-%d", i) {
			t.Fatalf("get %d: %q %v", i, v, err)
		}
	}
	n := identicalReplicas(t, c, 3, 30*time.Second)
	if n != 8 {
		t.Fatalf("compared %d partitions, want 8", n)
	}

	// The key estimate (count_data without -c) reaches every record once the
	// checkpoints (every 10 s here) have flushed them: three replicas of each.
	var sum float64
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		sum = 0
		for _, addr := range c.ReplicaAddrs() {
			sum += metricSum(t, addr, "rdb_estimated_keys")
		}
		if sum >= 3*keys {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Besides the records, each sstable holds the replica's decree record.
	if sum < 3*keys || sum > 3*keys+300 {
		t.Fatalf("rdb_estimated_keys over the replicas = %v, want about %d", sum, 3*keys)
	}
}

// metricSum adds up one metric over the replica entities of a server's /metrics.
func metricSum(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics?with_metric_fields=name,value&types=replica&metrics=" + name)
	if err != nil {
		t.Fatalf("metrics of %s: %v", addr, err)
	}
	defer resp.Body.Close()
	var snap metrics.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatalf("metrics of %s: %v", addr, err)
	}
	var sum float64
	for _, e := range snap.Entities {
		for _, m := range e.Metrics {
			if m.Name == name && m.Value != nil {
				sum += *m.Value
			}
		}
	}
	return sum
}

func TestCrashAllReplicaServers(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3, LeaseSeconds: 6, GraceSeconds: 8})
	c.WaitHealthy(60 * time.Second)
	tb := c.OpenTable("temp")

	var mu sync.Mutex
	acked := map[string]string{} // key -> last acknowledged value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%02d-k%03d", w, rng.IntN(200))
				val := fmt.Sprintf("w%02d-v%06d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := tb.Set(ctx, []byte(key), []byte("s"), []byte(val), 0)
				cancel()
				if err == nil {
					// Each key is written by one worker only, so its last
					// acknowledged value is well defined.
					mu.Lock()
					acked[key] = val
					mu.Unlock()
					writes.Add(1)
				}
			}
		}(w)
	}
	// Let the load run, then kill every replica server at once, mid-write.
	deadline := time.Now().Add(20 * time.Second)
	for writes.Load() < 2000 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	c.KillTogether("replica", 1, 2, 3)
	close(stop)
	wg.Wait()
	t.Logf("%d writes acknowledged before the crash, %d distinct keys", writes.Load(), len(acked))
	if len(acked) < 100 {
		t.Fatalf("too few writes before the crash: %d", len(acked))
	}
	for i := 1; i <= 3; i++ {
		c.Start("replica", i)
	}
	// A primary that saw a secondary die before being killed itself has removed it
	// (PacificA never waits for a failed member): its partition comes back with
	// fewer members, which is enough to read everything acknowledged.
	c.WaitReadable(90 * time.Second)
	for key, want := range acked {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		got, err := tb.Get(ctx, []byte(key), []byte("s"))
		cancel()
		if err != nil {
			t.Fatalf("get %s after restart: %v", key, err)
		}
		if string(got) != want {
			// A write that was sent but not acknowledged may have landed after
			// the last acknowledged one; it must then be a later value of the same
			// worker.
			if string(got) < want {
				t.Fatalf("key %s: read %q after restart, but %q had been acknowledged", key, got, want)
			}
		}
	}
	identicalReplicas(t, c, 1, 60*time.Second)
}
