package replica_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/cmd"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/rpc/kv"
	"github.com/pegasusgo/pegasus/storage/keys"
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
	compared := 0
	waitfor.Until(t, timeout, 300*time.Millisecond, "identical replicas", func() (bool, string) {
		byGpid := map[string][]digestRow{}
		for _, rows := range digests(t, c) {
			for g, r := range rows {
				if r.Status == "PS_PRIMARY" || r.Status == "PS_SECONDARY" {
					byGpid[g] = append(byGpid[g], r)
				}
			}
		}
		ok := len(byGpid) > 0
		last := "no partition has members"
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
		compared = len(byGpid)
		return ok, last
	})
	return compared
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
	_ = waitfor.Within(45*time.Second, 500*time.Millisecond, func() (bool, string) {
		sum = 0
		for _, addr := range c.ReplicaAddrs() {
			sum += metricSum(t, addr, "rdb_estimated_keys")
		}
		return sum >= 3*keys, ""
	})
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
	_ = waitfor.Within(20*time.Second, 50*time.Millisecond, func() (bool, string) { return writes.Load() >= 2000, "" })
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

// TestWriteGuards: the replica server refuses a write over max_allowed_write_size
// (ERR_INVALID_DATA, counted and logged) and a write whose hash key belongs to
// another partition (ERR_PARENT_PARTITION_MISUSED), while the official clients'
// traffic and reads go on as before.
func TestWriteGuards(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3, Tables: []clustertest.Table{{Name: "temp", Partitions: 4, Replicas: 3}}})
	c.WaitHealthy(60 * time.Second)
	tb := c.OpenTable("temp")
	exceeded := func() float64 {
		var sum float64
		for _, addr := range c.ReplicaAddrs() {
			sum += metricSum(t, addr, "write_size_exceed_threshold_requests")
		}
		return sum
	}
	// A client without the client-side size check, as the official ones.
	cl, err := kv.NewClient(kv.Config{MetaServers: c.MetaAddrs(), OperationTimeout: 30 * time.Second, MaxWriteSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	unchecked, err := cl.OpenTable(ctx, "temp")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("oversized", func(t *testing.T) {
		big := bytes.Repeat([]byte{'x'}, 1<<20) // plus the key and the encoding: over 1 MiB
		writes := []struct {
			name string
			run  func() error
		}{
			{"set", func() error { return unchecked.Set(ctx, []byte("big"), []byte("s"), big, 0) }},
			{"multi_set", func() error {
				return unchecked.MultiSet(ctx, []byte("big"), []kv.KV{{SortKey: []byte("a"), Value: big[:600<<10]}, {SortKey: []byte("b"), Value: big[:600<<10]}}, 0)
			}},
			{"check_and_set", func() error {
				_, err := unchecked.CheckAndSet(ctx, []byte("big"), []byte("s"), rrdb.CasCheckType_CT_NO_CHECK, nil, []byte("s"), big, kv.CheckAndSetOptions{})
				return err
			}},
		}
		for i, w := range writes {
			err := w.run()
			if kv.ErrorCode(err) != base.ErrInvalidData || !strings.Contains(err.Error(), "max_allowed_write_size") {
				t.Fatalf("%s: err = %v, want ERR_INVALID_DATA explained", w.name, err)
			}
			// Counted once per write: the client did not resend it.
			if got := exceeded(); got != float64(i+1) {
				t.Fatalf("after %s: write_size_exceed_threshold_requests = %v, want %d", w.name, got, i+1)
			}
		}
		// Nothing was written, and the same write under the limit goes through.
		if v, err := tb.Get(ctx, []byte("big"), []byte("s")); err != nil || v != nil {
			t.Fatalf("get after the refused writes: %q, %v", v, err)
		}
		if err := tb.Set(ctx, []byte("big"), []byte("s"), big[:1<<19], 0); err != nil {
			t.Fatalf("set of 512 KiB: %v", err)
		}
		// The first refusal is logged (the next ones within 10 s are held back).
		var line string
		_ = waitfor.Within(10*time.Second, 100*time.Millisecond, func() (bool, string) {
			for i := range c.ReplicaAddrs() {
				for _, l := range strings.Split(c.Log("replica", i+1), "\n") {
					if strings.Contains(l, "larger than [replication] max_allowed_write_size") {
						line = l
					}
				}
			}
			return line != "", ""
		})
		for _, part := range []string{"size=", "limit=1048576", "table=temp", "gpid=1.", "remote=127.0.0.1:"} {
			if !strings.Contains(line, part) {
				t.Fatalf("log line %q does not say %q", line, part)
			}
		}
	})

	t.Run("wrong partition", func(t *testing.T) {
		const count = 4
		clients := map[string]*rpc.Client{}
		defer func() {
			for _, rc := range clients {
				rc.Close()
			}
		}()
		appID := tb.AppID()
		// send calls the primary of partition pidx directly, with the header
		// partition hash given.
		send := func(code string, pidx int, headerHash uint64, args, result rpc.Value) error {
			addr := tb.Primary(pidx)
			rc := clients[addr]
			if rc == nil {
				rc = rpc.NewClient(addr, rpc.ClientOptions{})
				clients[addr] = rc
			}
			return rc.Call(ctx, rpc.Request{Code: code, AppID: appID, PartitionIndex: int32(pidx), PartitionHash: headerHash, Args: args}, result)
		}
		requests := func(hk []byte) []struct {
			code   string
			args   rpc.Value
			result rpc.Value
		} {
			ck, _ := keys.EncodeKey(hk, []byte("s"))
			one := []*base.Blob{base.NewBlob([]byte("s"))}
			return []struct {
				code   string
				args   rpc.Value
				result rpc.Value
			}{
				{rpc.CodePut, &rrdb.UpdateRequest{Key: base.NewBlob(ck), Value: base.NewBlob([]byte("v"))}, &rrdb.UpdateResponse{}},
				{rpc.CodeMultiPut, &rrdb.MultiPutRequest{HashKey: base.NewBlob(hk), Kvs: []*rrdb.KeyValue{{Key: one[0], Value: base.NewBlob([]byte("v"))}}}, &rrdb.UpdateResponse{}},
				{rpc.CodeRemove, base.NewBlob(ck), &rrdb.UpdateResponse{}},
				{rpc.CodeMultiRemove, &rrdb.MultiRemoveRequest{HashKey: base.NewBlob(hk), SortKeys: one}, &rrdb.MultiRemoveResponse{}},
				{rpc.CodeIncr, &rrdb.IncrRequest{Key: base.NewBlob(ck), Increment: 1}, &rrdb.IncrResponse{}},
				{rpc.CodeCheckAndSet, &rrdb.CheckAndSetRequest{HashKey: base.NewBlob(hk), CheckSortKey: one[0], CheckType: rrdb.CasCheckType_CT_NO_CHECK,
					CheckOperand: &base.Blob{}, SetSortKey: one[0], SetValue: base.NewBlob([]byte("1"))}, &rrdb.CheckAndSetResponse{}},
				{rpc.CodeCheckAndMutate, &rrdb.CheckAndMutateRequest{HashKey: base.NewBlob(hk), CheckSortKey: one[0], CheckType: rrdb.CasCheckType_CT_NO_CHECK,
					CheckOperand: &base.Blob{}, MutateList: []*rrdb.Mutate{{Operation: rrdb.MutateOperation_MO_PUT, SortKey: one[0], Value: base.NewBlob([]byte("2"))}}},
					&rrdb.CheckAndMutateResponse{}},
			}
		}
		for pidx := range count {
			own := tb.HashKeyForPartition(pidx, "own")
			other := tb.HashKeyForPartition((pidx+1)%count, "other")
			cases := []struct {
				name       string
				hk         []byte
				headerHash uint64
				want       string // frame error
			}{
				{"own key", own, rpc.PartitionHash(own), base.ErrOK},
				{"own key, header hash 0", own, 0, base.ErrOK},
				{"own key, header hash of another partition", own, rpc.PartitionHash(other), base.ErrOK},
				{"other key", other, rpc.PartitionHash(other), base.ErrParentPartitionMisused},
				{"other key, header hash 0", other, 0, base.ErrParentPartitionMisused},
				{"other key, header hash of this partition", other, rpc.PartitionHash(own), base.ErrParentPartitionMisused},
			}
			for _, tc := range cases {
				for _, r := range requests(tc.hk) {
					err := send(r.code, pidx, tc.headerHash, r.args, r.result)
					if got := rpc.ErrorCode(err); got != tc.want {
						t.Errorf("partition %d, %s, %s: %v, want %s", pidx, tc.name, r.code, err, tc.want)
					}
				}
			}
			// Reads are not checked: a key of another partition is simply absent.
			var resp rrdb.ReadResponse
			ck, _ := keys.EncodeKey(other, []byte("s"))
			if err := send(rpc.CodeGet, pidx, 0, base.NewBlob(ck), &resp); err != nil || resp.Error != 1 {
				t.Errorf("partition %d: get of another partition's key: %+v, %v", pidx, resp, err)
			}
		}
		// The data client's normal traffic is unaffected.
		for i := range 200 {
			hk := []byte(fmt.Sprintf("user%03d", i))
			if err := tb.Set(ctx, hk, []byte("s"), hk, 0); err != nil {
				t.Fatalf("set %s: %v", hk, err)
			}
			if v, err := tb.Get(ctx, hk, []byte("s")); err != nil || !bytes.Equal(v, hk) {
				t.Fatalf("get %s: %q, %v", hk, v, err)
			}
		}
	})
}
