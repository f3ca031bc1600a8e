//go:build chaos

package clustertest_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/rpc/kv"
)

// The chaos test runs with `make chaos` (build tag chaos): a local cluster of three
// meta servers and four replica servers with short failure-detector timings takes a
// continuous read/write load while, ten times, a random replica server is killed
// with SIGKILL and restarted after a random delay, and twice the meta leader is
// killed. Afterwards every acknowledged write must read back, the cluster must be
// fully healthy with identical replicas, and the history of a small set of hot keys
// must be linearizable.

const (
	chaosGrace  = 4
	hotKeys     = 4
	writerCount = 6
	hotClients  = 4
	chaosRounds = 10
	opTimeout   = 3 * time.Second
	// failoverLimit bounds how long a partition may stay unwritable after its
	// primary is killed: far above the grace period, so that only a failover that
	// does not happen fails the test.
	failoverLimit = 60 * time.Second
	unknownFinal  = int64(1) << 62
)

// registerInput is one operation on a hot key.
type registerInput struct {
	key   int
	write bool
	value string
}

type registerOutput struct {
	value string
}

// registers is porcupine's model of independent string registers, one per key.
func registers() porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[int][]porcupine.Operation{}
			for _, op := range history {
				k := op.Input.(registerInput).key
				byKey[k] = append(byKey[k], op)
			}
			var out [][]porcupine.Operation
			for _, ops := range byKey {
				out = append(out, ops)
			}
			return out
		},
		Init: func() interface{} { return "" },
		Step: func(state, input, output interface{}) (bool, interface{}) {
			in := input.(registerInput)
			if in.write {
				return true, in.value
			}
			return output.(registerOutput).value == state.(string), state
		},
		DescribeOperation: func(input, output interface{}) string {
			in := input.(registerInput)
			if in.write {
				return fmt.Sprintf("set(%d, %q)", in.key, in.value)
			}
			return fmt.Sprintf("get(%d) -> %q", in.key, output.(registerOutput).value)
		},
	}
}

// writerState tracks, per key of one writer, the last acknowledged sequence number
// and the last attempted one (an unacknowledged write may still have landed).
type writerState struct {
	mu        sync.Mutex
	acked     map[string]int
	attempted map[string]int
}

func TestChaos(t *testing.T) {
	// CI shows only the end of a failed test's output, which is the instances' logs;
	// this cleanup, registered before the cluster's, runs after the log dump and
	// repeats the test's own findings last.
	var sumMu sync.Mutex
	var summary []string
	logf := func(format string, args ...any) {
		t.Helper()
		line := fmt.Sprintf(format, args...)
		t.Log(line)
		sumMu.Lock()
		summary = append(summary, line)
		sumMu.Unlock()
	}
	errorf := func(format string, args ...any) {
		t.Helper()
		logf("ERROR: "+format, args...)
		t.Fail()
	}
	fatalf := func(format string, args ...any) {
		t.Helper()
		errorf(format, args...)
		t.FailNow()
	}
	t.Cleanup(func() {
		if t.Failed() {
			sumMu.Lock()
			defer sumMu.Unlock()
			t.Logf("==== chaos summary (the failure is among these) ====\n%s", strings.Join(summary, "\n"))
		}
	})
	c := clustertest.Start(t, clustertest.Options{
		Metas: 3, Replicas: 4, LeaseSeconds: chaosGrace - 1, GraceSeconds: chaosGrace,
		AssignDelay: 5 * time.Second,
		// PEGASUS_CHAOS_ZK=1 keeps the metadata in a real ZooKeeper (the production
		// path) instead of the embedded store.
		UseZK: os.Getenv("PEGASUS_CHAOS_ZK") == "1",
	})
	logf("metadata in ZooKeeper: %v", os.Getenv("PEGASUS_CHAOS_ZK") == "1")
	c.WaitHealthy(90 * time.Second)
	tb := c.OpenTable("temp")
	mc := metaClient(t, c)
	seed := uint64(time.Now().UnixNano())
	logf("chaos seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }

	stop := make(chan struct{})
	var wg sync.WaitGroup

	// Writers: each owns its keys and writes increasing sequence numbers.
	writers := make([]*writerState, writerCount)
	for w := range writers {
		ws := &writerState{acked: map[string]int{}, attempted: map[string]int{}}
		writers[w] = ws
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)+10))
			for seq := 1; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%03d", w, r.IntN(300))
				ws.mu.Lock()
				ws.attempted[key] = seq
				ws.mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				err := tb.Set(ctx, []byte(key), []byte("s"), []byte(strconv.Itoa(seq)), 0)
				cancel()
				if err == nil {
					ws.mu.Lock()
					ws.acked[key] = seq
					ws.mu.Unlock()
				}
			}
		}(w)
	}

	// Hot keys: concurrent reads and writes for the linearizability check.
	var histMu sync.Mutex
	var history []porcupine.Operation
	for cl := 0; cl < hotClients; cl++ {
		wg.Add(1)
		go func(cl int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(cl)+100))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := r.IntN(hotKeys)
				hk := []byte(fmt.Sprintf("hot-%d", key))
				in := registerInput{key: key, write: r.IntN(2) == 0, value: fmt.Sprintf("c%d-%d", cl, i)}
				call := now()
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				var out registerOutput
				var err error
				if in.write {
					err = tb.Set(ctx, hk, []byte("v"), []byte(in.value), 0)
				} else {
					var v []byte
					v, err = tb.Get(ctx, hk, []byte("v"))
					out.value = string(v)
				}
				cancel()
				ret := now()
				if err != nil {
					if !in.write {
						continue // a failed read says nothing
					}
					// A failed write may have taken effect at any later time.
					ret = unknownFinal
				}
				histMu.Lock()
				history = append(history, porcupine.Operation{ClientId: cl, Input: in, Call: call, Output: out, Return: ret})
				histMu.Unlock()
			}
		}(cl)
	}

	// The cluster secret is rotated while the chaos goes on, in the three steps
	// docs/security.md prescribes, each given time to reach every server (they
	// re-read the file every 10 s; restarted ones read it at start): accept the
	// new secret beside the old, prove with the new, drop the old.
	wg.Add(1)
	go func() {
		defer wg.Done()
		const oldSecret, newSecret = "clustertest-secret-0123456789abcdef", "chaos-rotated-secret-fedcba9876543210"
		steps := [][]string{{oldSecret, newSecret}, {newSecret, oldSecret}, {newSecret}}
		for i, secrets := range steps {
			select {
			case <-stop:
				return
			case <-time.After(map[bool]time.Duration{true: 5 * time.Second, false: 15 * time.Second}[i == 0]):
			}
			c.WriteSecrets(secrets...)
			logf("secret rotation step %d of %d: the secret file now holds %d secret(s), the %s one first", i+1, len(steps), len(secrets), map[bool]string{true: "old", false: "new"}[secrets[0] == oldSecret])
		}
	}()

	// Chaos: kill replica servers (and twice the meta leader); measure how long the
	// partitions whose primary was on the killed node take to accept a write.
	var failovers []time.Duration
	for round := 0; round < chaosRounds; round++ {
		// Pacing: the load runs 1 to 4 s between faults, a random time so that
		// kills fall at various points of the servers' work.
		time.Sleep(time.Duration(1000+rng.IntN(3000)) * time.Millisecond)
		// The victim is a node holding a primary when there is one, so that every
		// round measures a failover (a restarted node holds none until the
		// balancer moves some back).
		victim, probe := 1+rng.IntN(4), -1
		cfg := queryConfig(t, mc, "temp")
		for _, i := range rng.Perm(len(cfg.Partitions)) {
			if pc := cfg.Partitions[i]; pc.Primary.IsValid() {
				if v := replicaIndex(c, pc.Primary.String()); v > 0 {
					victim, probe = v, int(pc.Pid.PartitionIndex)
					break
				}
			}
		}
		addr := c.Addr("replica", victim)
		killedMeta := 0
		if round == 3 || round == 7 {
			killedMeta = c.Leader()
			if killedMeta > 0 {
				c.Kill("meta", killedMeta)
			}
		}
		killed := time.Now()
		c.Kill("replica", victim)
		logf("round %d at %s: killed replica%d (%s)%s", round, killed.UTC().Format("15:04:05.000"), victim, addr, map[bool]string{true: fmt.Sprintf(" and meta%d", killedMeta), false: ""}[killedMeta > 0])
		if probe >= 0 {
			hk := tb.HashKeyForPartition(probe, "probe")
			writable := false
			for time.Since(killed) < failoverLimit {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err := tb.Set(ctx, hk, []byte("p"), []byte("x"), 0)
				cancel()
				if err == nil {
					failovers = append(failovers, time.Since(killed))
					logf("round %d: partition %d writable again after %v", round, probe, time.Since(killed))
					writable = true
					break
				}
			}
			if !writable {
				errorf("round %d: partition %d still not writable %v after its primary was killed", round, probe, failoverLimit)
			}
		}
		// Pacing: the victims stay down a random 0 to 5 s (the cluster works
		// without them) before they restart.
		time.Sleep(time.Duration(rng.IntN(5000)) * time.Millisecond)
		if killedMeta > 0 {
			c.Start("meta", killedMeta)
		}
		c.Start("replica", victim)
	}
	time.Sleep(3 * time.Second) // pacing: the load runs on across the last restarts before it stops
	close(stop)
	wg.Wait()

	// Failover times are reported, not asserted: on a shared machine they measure
	// the machine as much as the code (the test asserts that writes resume).
	if len(failovers) > 0 {
		sorted := slices.Clone(failovers)
		slices.Sort(sorted)
		logf("failover times over %d primary kills: median %v, max %v (grace %ds)", len(sorted), sorted[len(sorted)/2], sorted[len(sorted)-1], chaosGrace)
	}

	logf("load stopped; waiting up to 180 s for a healthy cluster")
	c.WaitHealthy(180 * time.Second)
	logf("healthy; reading back every acknowledged write")

	// Every acknowledged write reads back: the value is the last acknowledged one or
	// a later attempted one whose outcome was unknown.
	checked := 0
	for w, ws := range writers {
		for key, acked := range ws.acked {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			v, err := tb.Get(ctx, []byte(key), []byte("s"))
			cancel()
			if err != nil {
				fatalf("read %s: %v", key, err)
			}
			got, _ := strconv.Atoi(string(v))
			if got < acked || got > ws.attempted[key] {
				fatalf("writer %d key %s: read %q, last acknowledged %d, last attempted %d", w, key, v, acked, ws.attempted[key])
			}
			checked++
		}
	}
	logf("%d keys checked, %d hot-key operations", checked, len(history))

	res := porcupine.CheckOperationsTimeout(registers(), history, 2*time.Minute)
	switch res {
	case porcupine.Illegal:
		fatalf("the hot-key history is not linearizable")
	case porcupine.Unknown:
		logf("linearizability check timed out (history of %d operations)", len(history))
	}
	logf("comparing the replicas of every partition")
	sameData(t, c, 120*time.Second)
	if t.Failed() {
		return
	}
	for i := 1; i <= 4; i++ {
		if strings.Contains(c.Output("replica", i), "panic:") {
			errorf("replica%d panicked", i)
		}
	}
	_ = kv.ErrTableNotFound
}
