package clustertest_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/internal/waitfor"
)

// scenarios reads replica.query-app-envs of every replica server: each
// replica of appID and the usage scenario its store runs with.
func scenarios(t *testing.T, c *clustertest.Cluster, appID int32) map[string]string {
	t.Helper()
	out := map[string]string{}
	for who, envs := range replicaLines(t, c, "replica.query-app-envs", fmt.Sprint(appID)) {
		_, rest, found := strings.Cut(envs, "rocksdb.usage_scenario=")
		if !found {
			t.Fatalf("replica.query-app-envs: %s: %q", who, envs)
		}
		out[who], _, _ = strings.Cut(rest, ",")
	}
	return out
}

// TestUsageScenarioSwitchUnderLoad switches a table to bulk_load and back
// while it is written: every replica's store reopens with the scenario's
// options, and every acknowledged write is read back.
func TestUsageScenarioSwitchUnderLoad(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3,
		Tables: []clustertest.Table{{Name: "us", Partitions: 4, Replicas: 3}}})
	c.WaitHealthy(60 * time.Second)
	tb := c.OpenTable("us")
	appID := tb.AppID()
	ctx, cancel := c.Context(3 * time.Minute)
	defer cancel()

	// Writers run through both switches; each keeps its acknowledged keys.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	acked := make([][]string, 4)
	for w := range acked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("w%d-%d", w, i)
				if err := tb.Set(ctx, []byte(k), []byte("s"), []byte(k), 0); err == nil {
					acked[w] = append(acked[w], k)
				}
			}
		}()
	}
	switchTo := func(scenario string) {
		setEnv(t, c, "us", admin.AppEnvOperation_APP_ENV_OP_SET, "rocksdb.usage_scenario", scenario)
		waitfor.Until(t, 60*time.Second, 500*time.Millisecond, "every replica on "+scenario, func() (bool, string) {
			got := scenarios(t, c, appID)
			for _, s := range got {
				if s != scenario {
					return false, fmt.Sprint(got)
				}
			}
			return len(got) == 12, fmt.Sprint(got)
		})
	}
	if got := scenarios(t, c, appID); len(got) != 12 {
		t.Fatalf("replica.query-app-envs lists %d replicas, want 12: %v", len(got), got)
	}
	switchTo("bulk_load")
	switchTo("normal")
	close(stop)
	wg.Wait()

	total := 0
	for _, keys := range acked {
		total += len(keys)
		for _, k := range keys {
			v, err := tb.Get(ctx, []byte(k), []byte("s"))
			if err != nil || string(v) != k {
				t.Fatalf("acknowledged write %s read back as %q, %v", k, v, err)
			}
		}
	}
	if total < 100 {
		t.Errorf("only %d writes acknowledged during the switches", total)
	}
	t.Logf("%d acknowledged writes read back", total)
}
