package clustertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// rawTable sends single requests straight to each partition's primary, without
// the data client's retries, so that every answer (ERR_BUSY included) is seen
// and counted once.
type rawTable struct {
	t       *testing.T
	appID   int32
	hashKey [][]byte      // a hash key of each partition
	primary []*rpc.Client // each partition's primary
}

func openRaw(t *testing.T, c *clustertest.Cluster, table string) *rawTable {
	t.Helper()
	cfg := queryConfig(t, metaClient(t, c), table)
	n := len(cfg.Partitions)
	r := &rawTable{t: t, appID: cfg.AppID, hashKey: make([][]byte, n), primary: make([]*rpc.Client, n)}
	clients := map[string]*rpc.Client{}
	for _, pc := range cfg.Partitions {
		addr := pc.Primary.String()
		if clients[addr] == nil {
			clients[addr] = rpc.NewClient(addr, rpc.ClientOptions{DialTimeout: time.Second})
			t.Cleanup(func() { clients[addr].Close() })
		}
		r.primary[pc.Pid.PartitionIndex] = clients[addr]
	}
	for i, found := 0, 0; found < n; i++ {
		hk := []byte(fmt.Sprintf("hk%d", i))
		if p := rpc.PartitionIndex(rpc.PartitionHash(hk), n); r.hashKey[p] == nil {
			r.hashKey[p] = hk
			found++
		}
	}
	return r
}

func (r *rawTable) request(pidx int, code string, args rpc.Value) rpc.Request {
	return rpc.Request{Code: code, AppID: r.appID, PartitionIndex: int32(pidx), PartitionHash: rpc.PartitionHash(r.hashKey[pidx]), Args: args}
}

// put writes one record of partition pidx and returns the error code of the
// answer ("" for no answer within timeout).
func (r *rawTable) put(pidx int, sortKey string, timeout time.Duration) string {
	key, err := keys.EncodeKey(r.hashKey[pidx], []byte(sortKey))
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var resp rrdb.UpdateResponse
	err = r.primary[pidx].Call(ctx, r.request(pidx, rpc.CodePut, &rrdb.UpdateRequest{Key: base.NewBlob(key), Value: base.BlobString("v")}), &resp)
	return answer(err, resp.Error)
}

// get reads one record of partition pidx, as put.
func (r *rawTable) get(pidx int, sortKey string, timeout time.Duration) string {
	key, err := keys.EncodeKey(r.hashKey[pidx], []byte(sortKey))
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var resp rrdb.ReadResponse
	err = r.primary[pidx].Call(ctx, r.request(pidx, rpc.CodeGet, base.NewBlob(key)), &resp)
	return answer(err, 0)
}

func answer(err error, storageErr int32) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return ""
	case err != nil:
		return rpc.ErrorCode(err)
	case storageErr != 0 && storageErr != 1: // 1: not found, a normal answer
		return fmt.Sprintf("storage error %d", storageErr)
	}
	return base.ErrOK
}

func setEnv(t *testing.T, c *clustertest.Cluster, table string, op admin.AppEnvOperation, kv ...string) {
	t.Helper()
	req := &admin.ConfigurationUpdateAppEnvRequest{AppName: table, Op: op}
	switch op {
	case admin.AppEnvOperation_APP_ENV_OP_SET:
		for i := 0; i+1 < len(kv); i += 2 {
			req.Keys = append(req.Keys, kv[i])
			req.Values = append(req.Values, kv[i+1])
		}
	case admin.AppEnvOperation_APP_ENV_OP_DEL:
		req.Keys = kv
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rpc.CallMeta[admin.ConfigurationUpdateAppEnvResponse](ctx, metaClient(t, c), rpc.CodeUpdateAppEnv, req)
	if err != nil || !r.Err.OK() {
		t.Fatalf("update envs %v: %v %+v", kv, err, r)
	}
}

// paceLoad sends perPartition requests a second to every partition, paced
// (not waiting for answers, so a slow answer does not slow the load), for
// about seconds whole wall-clock seconds. It returns the count of each answer
// and how many requests each partition sent in each wall-clock second, which
// is what a fixed-window throttle counts (a loaded machine may stretch the
// pacing into one more second).
func paceLoad(r *rawTable, perPartition, seconds int, send func(pidx int, i int) string) (answers map[string]int, sent map[int]map[int64]int) {
	// Start on a second boundary: the servers count in wall-clock seconds.
	start := time.Now().Truncate(time.Second).Add(time.Second)
	<-time.NewTimer(time.Until(start)).C
	var mu sync.Mutex
	answers, sent = map[string]int{}, map[int]map[int64]int{}
	for p := range r.hashKey {
		sent[p] = map[int64]int{}
	}
	var wg sync.WaitGroup
	for p := range r.hashKey {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var inflight sync.WaitGroup
			tick := time.NewTicker(time.Second / time.Duration(perPartition))
			defer tick.Stop()
			for i := range perPartition * seconds {
				if i > 0 {
					<-tick.C
				}
				mu.Lock()
				sent[p][time.Now().Unix()]++
				mu.Unlock()
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					a := send(p, i)
					mu.Lock()
					answers[a]++
					mu.Unlock()
				}()
			}
			inflight.Wait()
		}()
	}
	wg.Wait()
	return answers, sent
}

// partitionMetric sums one counter of the replica entities of appID over the
// replica servers' /metrics.
func partitionMetric(t *testing.T, c *clustertest.Cluster, appID int32, name string) float64 {
	t.Helper()
	sum := 0.0
	for _, addr := range c.ReplicaAddrs() {
		resp, err := http.Get("http://" + addr + "/metrics?types=replica")
		if err != nil {
			t.Fatalf("/metrics of %s: %v", addr, err)
		}
		var snap metrics.Snapshot
		err = json.NewDecoder(resp.Body).Decode(&snap)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("/metrics of %s: %v", addr, err)
		}
		for _, e := range snap.Entities {
			if e.Attributes["table_id"] != fmt.Sprint(appID) {
				continue
			}
			if m, ok := e.Find(name); ok && m.Value != nil {
				sum += *m.Value
			}
		}
	}
	return sum
}

// TestTableThrottlingAndDeny checks the request controls of table envs on real
// servers: a throttled table serves its limit under twice the load and rejects
// the rest with ERR_BUSY; replica.deny_client_request answers as upstream
// documents, and lifting it restores service.
func TestTableThrottlingAndDeny(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3,
		Tables: []clustertest.Table{{Name: "ctl", Partitions: 4, Replicas: 3}}})
	c.WaitHealthy(60 * time.Second)
	r := openRaw(t, c, "ctl")
	const partitions = 4

	// The env reaches each replica server with its next config sync: wait
	// until a burst past the limit meets ERR_BUSY on every partition.
	busyWithin := func(what string, send func(pidx, i int) string) {
		waitfor.Until(t, 30*time.Second, 200*time.Millisecond, what, func() (bool, string) {
			for p := range partitions {
				busy := false
				for i := 0; i < 60 && !busy; i++ {
					busy = send(p, i) == base.ErrBusy
				}
				if !busy {
					return false, fmt.Sprintf("no ERR_BUSY on partition %d in a burst of 60", p)
				}
			}
			return true, ""
		})
	}
	checkLimit := func(what string, perPartitionLimit int, send func(pidx, i int) string) {
		t.Helper()
		const seconds = 4
		counts, sent := paceLoad(r, 2*perPartitionLimit, seconds, send)
		// Each partition serves at most its limit in each second it was sent to.
		want := 0
		for _, bySecond := range sent {
			for _, n := range bySecond {
				want += min(n, perPartitionLimit)
			}
		}
		ok := counts[base.ErrOK]
		if ok < want*9/10 || ok > want*11/10 || want < perPartitionLimit*partitions*seconds {
			t.Errorf("%s: %d requests served, want %d within 10%% (answers %v, sent per second %v)", what, ok, want, counts, sent)
		}
		if counts[base.ErrBusy] == 0 || counts[base.ErrOK]+counts[base.ErrBusy] != 2*perPartitionLimit*partitions*seconds {
			t.Errorf("%s: answers %v, want only ERR_OK and ERR_BUSY", what, counts)
		}
	}
	put := func(timeout time.Duration) func(pidx, i int) string {
		return func(pidx, i int) string { return r.put(pidx, fmt.Sprint("s", i), timeout) }
	}
	get := func(timeout time.Duration) func(pidx, i int) string {
		return func(pidx, i int) string { return r.get(pidx, fmt.Sprint("s", i), timeout) }
	}

	// 200 writes a second for the table: 200/4+1 = 51 per partition.
	setEnv(t, c, "ctl", admin.AppEnvOperation_APP_ENV_OP_SET, "replica.write_throttling", "200*reject*0")
	busyWithin("write throttling in effect", put(5*time.Second))
	checkLimit("write throttling", 51, put(5*time.Second))
	if n := partitionMetric(t, c, r.appID, "throttling_rejected_write_requests"); n == 0 {
		t.Error("throttling_rejected_write_requests stayed 0")
	}
	setEnv(t, c, "ctl", admin.AppEnvOperation_APP_ENV_OP_DEL, "replica.write_throttling")

	setEnv(t, c, "ctl", admin.AppEnvOperation_APP_ENV_OP_SET, "replica.read_throttling", "200*reject*0")
	busyWithin("read throttling in effect", get(5*time.Second))
	checkLimit("read throttling", 51, get(5*time.Second))
	setEnv(t, c, "ctl", admin.AppEnvOperation_APP_ENV_OP_DEL, "replica.read_throttling")
	waitfor.Until(t, 30*time.Second, 200*time.Millisecond, "read throttling lifted", func() (bool, string) {
		var busy atomic.Int32
		for i := range 100 {
			if get(5*time.Second)(0, i) == base.ErrBusy {
				busy.Add(1)
			}
		}
		return busy.Load() == 0, fmt.Sprintf("%d of 100 reads busy", busy.Load())
	})

	// Deny: reconfig*write answers writes with ERR_INVALID_STATE, reads pass.
	setEnv(t, c, "ctl", admin.AppEnvOperation_APP_ENV_OP_SET, "replica.deny_client_request", "reconfig*write")
	waitfor.Until(t, 30*time.Second, 200*time.Millisecond, "writes denied", func() (bool, string) {
		a := r.put(1, "d", 5*time.Second)
		return a == base.ErrInvalidState, "put: " + a
	})
	if a := r.get(1, "d", 5*time.Second); a != base.ErrOK {
		t.Errorf("a read while writes are denied: %q", a)
	}
	// timeout*read leaves reads unanswered; writes pass again.
	setEnv(t, c, "ctl", admin.AppEnvOperation_APP_ENV_OP_SET, "replica.deny_client_request", "timeout*read")
	waitfor.Until(t, 30*time.Second, 200*time.Millisecond, "reads dropped", func() (bool, string) {
		a := r.get(1, "d", 500*time.Millisecond)
		return a == "", "get: " + a
	})
	if a := r.put(1, "d", 5*time.Second); a != base.ErrOK {
		t.Errorf("a write while reads are dropped: %q", a)
	}
	// Lifting the deny restores reads.
	setEnv(t, c, "ctl", admin.AppEnvOperation_APP_ENV_OP_DEL, "replica.deny_client_request")
	waitfor.Until(t, 30*time.Second, 200*time.Millisecond, "reads served again", func() (bool, string) {
		a := r.get(1, "d", 2*time.Second)
		return a == base.ErrOK, "get: " + a
	})
}
