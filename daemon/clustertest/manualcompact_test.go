package clustertest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/cmd"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

// sstBytes sums the SST files of the live stores of table appID on every
// replica server of the cluster (checkpoints and learner copies left out).
func sstBytes(t *testing.T, c *clustertest.Cluster, appID int32) (total int64, files int) {
	t.Helper()
	dirRE := regexp.MustCompile(fmt.Sprintf(`/%d\.\d+\.pegasus/data$`, appID))
	err := filepath.WalkDir(c.Dir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a file removed by a compaction while we walk
		}
		if d.IsDir() || !strings.HasSuffix(path, ".sst") || !dirRE.MatchString(filepath.Dir(path)) {
			return nil
		}
		if info, err := d.Info(); err == nil {
			total += info.Size()
			files++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total, files
}

func compactProgress(t *testing.T, c *clustertest.Cluster, table string) (string, int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := rpc.CallMeta[admin.QueryAppManualCompactResponse](ctx, metaClient(t, c), rpc.CodeQueryManualCompactStatus, &admin.QueryAppManualCompactRequest{AppName: table})
	if err != nil {
		t.Fatalf("query manual compaction: %v", err)
	}
	return r.Err.Name(), r.GetProgress()
}

// replicaLines runs a per-replica remote command (upstream's "<n> processed"
// shape) on every replica server and returns each replica line split at
// " : " into who ("<gpid>@<addr>...") and what.
func replicaLines(t *testing.T, c *clustertest.Cluster, command string, args ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, addr := range c.ReplicaAddrs() {
		cl := rpc.NewClient(addr, rpc.ClientOptions{DialTimeout: time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var reply rpc.String
		err := cl.Call(ctx, rpc.Request{Code: rpc.CodeRemoteCommand, Args: &cmd.Command{Cmd: command, Arguments: args}}, &reply)
		cancel()
		cl.Close()
		if err != nil {
			t.Fatalf("%s on %s: %v", command, addr, err)
		}
		for _, line := range strings.Split(reply.V, "\n")[1:] {
			who, what, ok := strings.Cut(strings.TrimSpace(line), " : ")
			if !ok {
				t.Fatalf("%s on %s: line %q", command, addr, line)
			}
			out[who] = what
		}
	}
	return out
}

// lastFinishes reads replica.query-compact of every replica server: each
// replica of appID and its last manual compaction finish ("-" for never).
func lastFinishes(t *testing.T, c *clustertest.Cluster, appID int32) map[string]string {
	t.Helper()
	out := map[string]string{}
	for who, js := range replicaLines(t, c, "replica.query-compact", fmt.Sprint(appID)) {
		var r struct {
			LastFinish string `json:"last_finish"`
		}
		if err := json.Unmarshal([]byte(js), &r); err != nil {
			t.Fatalf("replica.query-compact: %s: %q: %v", who, js, err)
		}
		out[who] = r.LastFinish
	}
	return out
}

// TestManualCompaction runs a once-compaction started through the meta server
// on a table with many overwrites and deletes: its on-disk size shrinks, the
// data stays, and query_manual_compact reaches 100%. Then a periodic one
// fires at its time.
func TestManualCompaction(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3,
		Tables: []clustertest.Table{{Name: "mc", Partitions: 4, Replicas: 3}},
		// Flush often, and keep Pebble from compacting by itself, so that
		// the overwritten versions and tombstones are all on disk.
		ExtraConfig: "[replication]\ncheckpoint_interval_seconds = 1\n\n[pegasus.server]\nrocksdb_level0_file_num_compaction_trigger = 25\n",
	})
	c.WaitHealthy(60 * time.Second)
	tb := c.OpenTable("mc")
	appID := tb.AppID()
	value := []byte(strings.Repeat("v", 1000))
	ctx, cancel := c.Context(5 * time.Minute)
	defer cancel()

	// Each round rewrites every record; a flush after each keeps every
	// version in its own SST files.
	const hashKeys, sortKeys = 50, 20
	flushed := func(files int) {
		waitfor.Until(t, 30*time.Second, 200*time.Millisecond, "a flush of every replica", func() (bool, string) {
			_, n := sstBytes(t, c, appID)
			return n >= files, fmt.Sprintf("%d SST files, want %d", n, files)
		})
	}
	for round := range 3 {
		for h := range hashKeys {
			for s := range sortKeys {
				if err := tb.Set(ctx, []byte(fmt.Sprint("h", h)), []byte(fmt.Sprint("s", s)), append(value, byte('0'+round)), 0); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
		}
		flushed(12 * (round + 1)) // 4 partitions x 3 replicas
	}
	for h := range hashKeys * 4 / 5 {
		for s := range sortKeys {
			if err := tb.Del(ctx, []byte(fmt.Sprint("h", h)), []byte(fmt.Sprint("s", s))); err != nil {
				t.Fatal(err)
			}
		}
	}
	flushed(48)
	before, _ := sstBytes(t, c, appID)

	if code, _ := compactProgress(t, c, "mc"); code != base.ErrInvalidState {
		t.Errorf("query before any compaction: %s, want ERR_INVALID_STATE", code)
	}
	start, cancelStart := context.WithTimeout(context.Background(), 10*time.Second)
	r, err := rpc.CallMeta[admin.StartAppManualCompactResponse](start, metaClient(t, c), rpc.CodeStartManualCompact, &admin.StartAppManualCompactRequest{AppName: "mc"})
	cancelStart()
	if err != nil || !r.Err.OK() {
		t.Fatalf("start manual compaction: %v %+v", err, r)
	}
	waitfor.Until(t, 60*time.Second, 500*time.Millisecond, "query_manual_compact at 100%", func() (bool, string) {
		code, progress := compactProgress(t, c, "mc")
		return code == base.ErrOK && progress == 100, fmt.Sprintf("%s %d%%", code, progress)
	})
	after, _ := sstBytes(t, c, appID)
	if after*4 > before {
		t.Errorf("SST bytes %d -> %d: want at most a quarter left (a fifth of the records, one version each)", before, after)
	}
	t.Logf("SST bytes of the table: %d before, %d after the manual compaction", before, after)
	for h := range hashKeys {
		for s := range sortKeys {
			v, err := tb.Get(ctx, []byte(fmt.Sprint("h", h)), []byte(fmt.Sprint("s", s)))
			switch {
			case err != nil:
				t.Fatal(err)
			case h < hashKeys*4/5 && v != nil:
				t.Fatalf("h%d s%d deleted but read back", h, s)
			case h >= hashKeys*4/5 && string(v) != string(append(value, '2')):
				t.Fatalf("h%d s%d read %d bytes, want the last round's value", h, s, len(v))
			}
		}
	}

	// Periodic: a time of day just past fires on every replica once.
	once := lastFinishes(t, c, appID)
	if len(once) != 12 {
		t.Fatalf("replica.query-compact lists %d replicas, want 12: %v", len(once), once)
	}
	next := time.Now().Truncate(time.Minute).Add(time.Minute)
	if next.Day() != time.Now().Day() {
		t.Skip("too close to midnight for a periodic trigger today")
	}
	setEnv(t, c, "mc", admin.AppEnvOperation_APP_ENV_OP_SET, "manual_compact.periodic.trigger_time", next.Format("15:04"))
	waitfor.Until(t, 2*time.Minute, time.Second, "the periodic compaction on every replica", func() (bool, string) {
		now := lastFinishes(t, c, appID)
		for who, at := range now {
			if at == once[who] || at < next.Local().Format("2006-01-02 15:04:05") {
				return false, fmt.Sprintf("%s last finished at %s (trigger %s)", who, at, next.Format("15:04"))
			}
		}
		return len(now) == 12, fmt.Sprint(now)
	})
}
