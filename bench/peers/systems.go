package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/pegasusgo/pegasus/cmd/pegasus_bench/bench"
)

// Loopback ports of the peers, away from the onebox's (34601.., 34801..) and from
// the peers' defaults, so that an instance someone runs is not driven by mistake.
const (
	redisPort      = 36379
	etcdClientPort = 23791 // members 1..3 on 23791..23793
	etcdPeerPort   = 23801 // and 23801..23803
)

// opTimeout bounds one operation of a peer, as the Pegasus client's operation
// timeout bounds one of the onebox's.
const opTimeout = 5 * time.Second

// key is the record's key on a peer: hash key and sort key joined.
func key(hashKey, sortKey []byte) string {
	return string(hashKey) + "/" + string(sortKey)
}

// errorName names a peer's error in the report's error counts.
func errorName(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// ---------------------------------------------------------------- Redis

type redisTarget struct{ c *redis.Client }

func (t *redisTarget) Name() string { return "redis 127.0.0.1:" + strconv.Itoa(redisPort) }

func (t *redisTarget) Set(ctx context.Context, hk, sk, v []byte) error {
	return t.c.Set(ctx, key(hk, sk), v, 0).Err()
}

func (t *redisTarget) Get(ctx context.Context, hk, sk []byte) (bool, error) {
	err := t.c.Get(ctx, key(hk, sk)).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return err == nil, err
}

func (t *redisTarget) ErrorName(err error) string { return errorName(err) }

// runRedis starts one redis-server without persistence (no RDB snapshots, no AOF:
// the closest to a cache, which is what Redis is mostly run as), drives it with the
// load generator through go-redis, then with redis-benchmark.
func (o *options) runRedis(ctx context.Context, stderr io.Writer) (_ []*result, err error) {
	if err := checkPortsFree(redisPort); err != nil {
		return nil, err
	}
	dir := filepath.Join(o.workDir, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redis dir: %w", err)
	}
	defer os.RemoveAll(dir)
	srv, err := startProc("redis-server", dir, o.redisBinary, "--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--protected-mode", "no")
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	client := redis.NewClient(&redis.Options{
		Addr: "127.0.0.1:" + strconv.Itoa(redisPort),
		// One connection per caller, as each caller has one request in flight.
		PoolSize: o.cfg.Concurrency, MinIdleConns: o.cfg.Concurrency,
		// Redis 7.0 does not know CLIENT SETINFO.
		DisableIdentity: true,
		ReadTimeout:     opTimeout, WriteTimeout: opTimeout,
	})
	defer client.Close()
	if err := waitFor(ctx, o.startTimeout, "redis ping", srv.exited, func(ctx context.Context) error {
		return client.Ping(ctx).Err()
	}); err != nil {
		return nil, err
	}
	meter := &bench.CPUMeter{Servers: []bench.Process{{Name: "redis-server", PID: srv.pid()}}}
	ph, err := bench.RunPhases(ctx, o.cfg, &redisTarget{client}, meter)
	if err != nil {
		return nil, err
	}
	out := []*result{resultOf("redis (go-redis)", ph)}
	if o.rbRequests != 0 {
		n := o.rbRequests
		if n < 0 {
			n = 10000
			if w := ph.Write.Op(bench.OpSet); w != nil {
				n = max(int(w.Count), n)
			}
		}
		r, err := o.runRedisBenchmark(ctx, srv, n)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// runRedisBenchmark runs redis-benchmark's SET test, then its GET test, each of
// requests operations, with the same callers (-c), value size (-d) and key space
// (-r).
func (o *options) runRedisBenchmark(ctx context.Context, srv *proc, requests int) (*result, error) {
	r := &result{System: "redis (redis-benchmark)"}
	for _, test := range []struct {
		name string
		fig  *phaseFig
	}{{"set", &r.Write}, {"get", &r.Read}} {
		before, err := bench.ReadProcStat("/proc", srv.pid())
		if err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, o.rbBinary, "-h", "127.0.0.1", "-p", strconv.Itoa(redisPort),
			"-c", strconv.Itoa(o.cfg.Concurrency), "-n", strconv.Itoa(requests), "-d", strconv.Itoa(o.cfg.ValueSize),
			"-r", strconv.Itoa(o.cfg.Keys), "-t", test.name, "--csv")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("redis-benchmark -t %s: %w: %s", test.name, err, strings.TrimSpace(stderr.String()))
		}
		after, err := bench.ReadProcStat("/proc", srv.pid())
		if err != nil {
			return nil, err
		}
		f, err := parseRedisBenchmarkCSV(stdout.Bytes(), test.name)
		if err != nil {
			return nil, err
		}
		n := float64(requests)
		f.ServerUS = float64(after.CPU()-before.CPU()) / float64(time.Microsecond) / n
		f.ClientUS = float64(cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()) / float64(time.Microsecond) / n
		*test.fig = f
	}
	return r, nil
}

// parseRedisBenchmarkCSV reads the row of test (e.g. "set" for the "SET" row) of
// redis-benchmark --csv: throughput and latency percentiles in milliseconds,
// located by the header's column names. The CSV has no 99.9th percentile.
func parseRedisBenchmarkCSV(data []byte, test string) (phaseFig, error) {
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		return phaseFig{}, fmt.Errorf("redis-benchmark csv: %w", err)
	}
	if len(rows) < 2 {
		return phaseFig{}, errors.New("redis-benchmark csv: no result row")
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, need := range []string{"test", "rps", "p50_latency_ms", "p99_latency_ms"} {
		if _, ok := col[need]; !ok {
			return phaseFig{}, fmt.Errorf("redis-benchmark csv: no column %q in %v", need, rows[0])
		}
	}
	for _, row := range rows[1:] {
		if len(row) != len(rows[0]) || !strings.EqualFold(row[col["test"]], test) {
			continue
		}
		num := func(name string) (float64, error) {
			v, err := strconv.ParseFloat(row[col[name]], 64)
			if err != nil {
				return 0, fmt.Errorf("redis-benchmark csv: %s: %w", name, err)
			}
			return v, nil
		}
		var f phaseFig
		if f.OpsPerSec, err = num("rps"); err != nil {
			return phaseFig{}, err
		}
		p50, err := num("p50_latency_ms")
		if err != nil {
			return phaseFig{}, err
		}
		p99, err := num("p99_latency_ms")
		if err != nil {
			return phaseFig{}, err
		}
		f.P50US, f.P99US = 1000*p50, 1000*p99
		return f, nil
	}
	return phaseFig{}, fmt.Errorf("redis-benchmark csv: no %s row", test)
}

// ---------------------------------------------------------------- etcd

type etcdTarget struct{ c *clientv3.Client }

func (t *etcdTarget) Name() string { return "etcd 3 members" }

func (t *etcdTarget) Set(ctx context.Context, hk, sk, v []byte) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err := t.c.Put(ctx, key(hk, sk), string(v))
	return err
}

// Get is a linearizable read (etcd's default), the guarantee a Pegasus read from
// the primary gives.
func (t *etcdTarget) Get(ctx context.Context, hk, sk []byte) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	resp, err := t.c.Get(ctx, key(hk, sk))
	if err != nil {
		return false, err
	}
	return len(resp.Kvs) > 0, nil
}

func (t *etcdTarget) ErrorName(err error) string { return errorName(err) }

// runEtcd starts a three-member etcd on loopback without fsync (--unsafe-no-fsync:
// the onebox's replicas do not fsync their logs per write either, so both
// replicate to three members and neither waits for the disk) and drives it through
// clientv3 with every member as an endpoint.
func (o *options) runEtcd(ctx context.Context, stderr io.Writer) (_ []*result, err error) {
	const members = 3
	var ports []int
	var cluster, endpoints []string
	for i := range members {
		ports = append(ports, etcdClientPort+i, etcdPeerPort+i)
		cluster = append(cluster, fmt.Sprintf("m%d=http://127.0.0.1:%d", i+1, etcdPeerPort+i))
		endpoints = append(endpoints, fmt.Sprintf("127.0.0.1:%d", etcdClientPort+i))
	}
	if err := checkPortsFree(ports...); err != nil {
		return nil, err
	}
	dir := filepath.Join(o.workDir, "etcd")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("etcd dir: %w", err)
	}
	defer os.RemoveAll(dir)
	var procs []*proc
	defer func() { stopAll(procs) }()
	for i := range members {
		name := fmt.Sprintf("m%d", i+1)
		client := fmt.Sprintf("http://127.0.0.1:%d", etcdClientPort+i)
		peer := fmt.Sprintf("http://127.0.0.1:%d", etcdPeerPort+i)
		p, err := startProc("etcd-"+name, dir, o.etcdBinary, "--name", name, "--data-dir", filepath.Join(dir, name),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(cluster, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "pegasus-peers", "--unsafe-no-fsync",
			"--logger", "zap", "--log-level", "error")
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	anyDead := func() bool {
		for _, p := range procs {
			if p.exited() {
				return true
			}
		}
		return false
	}
	if err := waitFor(ctx, o.startTimeout, "etcd quorum", anyDead, func(ctx context.Context) error {
		_, err := cli.Put(ctx, "pegasus-peers-ready", "1")
		return err
	}); err != nil {
		return nil, err
	}
	meter := &bench.CPUMeter{}
	for i, p := range procs {
		meter.Servers = append(meter.Servers, bench.Process{Name: fmt.Sprintf("etcd-m%d", i+1), PID: p.pid()})
	}
	ph, err := bench.RunPhases(ctx, o.cfg, &etcdTarget{cli}, meter)
	if err != nil {
		return nil, err
	}
	return []*result{resultOf("etcd 3 members (clientv3)", ph)}, nil
}

// ---------------------------------------------------------------- this project

// The onebox's fixed ports: run.sh start_onebox puts the metas at 34601.. and the
// replicas at 34801...
var (
	oneboxMetas    = []string{"127.0.0.1:34601", "127.0.0.1:34602", "127.0.0.1:34603"}
	oneboxPorts    = []int{34601, 34602, 34603, 34801, 34802, 34803}
	profiledServer = "127.0.0.1:34801" // replica1
)

// runPegasus starts the default onebox without collector (3 metas, 3 replicas) in
// a directory of its own through run.sh, drives its temp table with the Pegasus
// client, and clears it. With profile set and -pprof_dir given, replica1 is
// profiled during the write and the read phase.
func (o *options) runPegasus(ctx context.Context, stderr io.Writer, profile bool) (_ []*result, err error) {
	if err := checkPortsFree(oneboxPorts...); err != nil {
		return nil, err
	}
	dir := filepath.Join(o.workDir, "onebox")
	runSh := func(args ...string) error {
		// Not bound to ctx: the onebox must be cleared after an interrupt too.
		cmd := exec.Command(filepath.Join(o.root, "run.sh"), args...)
		cmd.Dir = o.root
		cmd.Env = append(os.Environ(), "PEGASUS_ONEBOX_DIR="+dir)
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("run.sh %s: %w", strings.Join(args, " "), err)
		}
		return nil
	}
	defer func() { err = errors.Join(err, runSh("clear_onebox")) }()
	if err := runSh("start_onebox", "--no_collector", "--pprof"); err != nil {
		return nil, err
	}
	servers, err := bench.OneboxServers("/proc", dir)
	if err != nil {
		return nil, err
	}
	if len(servers) != 6 {
		return nil, fmt.Errorf("onebox: %d servers running, want 3 metas and 3 replicas (see %s/*.out)", len(servers), dir)
	}
	var cl *bench.Cluster
	if err := waitFor(ctx, o.startTimeout, "onebox temp table", nil, func(ctx context.Context) error {
		var err error
		cl, err = bench.OpenCluster(ctx, oneboxMetas, "temp", opTimeout)
		return err
	}); err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, cl.Close()) }()

	var prof sync.WaitGroup
	var profErr error
	before := func(w bench.Workload) {
		prof.Wait() // one CPU profile at a time
		if !profile || o.pprofDir == "" || (w != bench.Write && w != bench.Read) {
			return
		}
		prof.Add(1)
		go func() {
			defer prof.Done()
			if err := o.takeProfile(ctx, w); err != nil {
				profErr = errors.Join(profErr, err)
			}
		}()
	}
	ph, err := bench.RunPhasesWith(ctx, o.cfg, cl, &bench.CPUMeter{Servers: servers}, before)
	prof.Wait()
	if profErr != nil {
		fmt.Fprintf(stderr, "pegasus_peers: profile: %v\n", profErr)
	}
	if err != nil {
		return nil, err
	}
	return []*result{resultOf("pegasus onebox 3 meta + 3 replica", ph)}, nil
}

// takeProfile takes a CPU profile of replica1 over the middle of a phase: it
// starts a second in and ends a few seconds before the phase does.
func (o *options) takeProfile(ctx context.Context, w bench.Workload) error {
	sec := max(int(o.cfg.Duration.Seconds())-3, 1)
	sec = min(sec, 60) // the server refuses longer profiles
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second):
	}
	if err := os.MkdirAll(o.pprofDir, 0o755); err != nil {
		return fmt.Errorf("pprof dir: %w", err)
	}
	url := fmt.Sprintf("http://%s/pprof/profile?seconds=%d", profiledServer, sec)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("profile %s: %w", w, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", w, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("profile %s: %w", w, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s: %s", w, resp.Status, bytes.TrimSpace(body))
	}
	path := filepath.Join(o.pprofDir, "replica1-"+string(w)+".pb.gz")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		return fmt.Errorf("profile %s: %w", w, err)
	}
	return nil
}
