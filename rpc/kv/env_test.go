package kv

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/internal/kvtest"
)

// env is a fake cluster with one table and a client on it.
type env struct {
	t      *testing.T
	c      *kvtest.Cluster
	client *Client
	tbl    *Table
	clock  *testClock
}

// testClock is the cluster's storage clock: real time plus an offset tests advance
// to make records expire.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
func (e *env) ctx() (context.Context, func()) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// newEnv starts a 3-node cluster with table "t" of the given partition count. tweak
// adjusts the client configuration.
func newEnv(t *testing.T, partitions int, tweak func(*Config)) *env {
	t.Helper()
	clk := &testClock{}
	c := kvtest.StartClusterWithOptions(t, kvtest.Options{Nodes: 3, Clock: clk.Now})
	c.CreateTable("t", partitions)
	e := &env{t: t, c: c, clock: clk}
	e.client = newTestClient(t, c, tweak)
	e.tbl = e.open("t")
	return e
}

func newTestClient(t *testing.T, c *kvtest.Cluster, tweak func(*Config)) *Client {
	t.Helper()
	cfg := Config{MetaServers: []string{c.MetaAddr()}}
	if tweak != nil {
		tweak(&cfg)
	}
	client, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := client.Close(); err != nil {
			t.Errorf("close client: %v", err)
		}
	})
	return client
}

func (e *env) open(name string) *Table {
	e.t.Helper()
	ctx, cancel := e.ctx()
	defer cancel()
	tbl, err := e.client.OpenTable(ctx, name)
	if err != nil {
		e.t.Fatalf("open %s: %v", name, err)
	}
	return tbl
}

func (e *env) set(hk, sk, v string) {
	e.t.Helper()
	ctx, cancel := e.ctx()
	defer cancel()
	if err := e.tbl.Set(ctx, []byte(hk), []byte(sk), []byte(v), 0); err != nil {
		e.t.Fatalf("set %s/%s: %v", hk, sk, err)
	}
}

func (e *env) get(hk, sk string) []byte {
	e.t.Helper()
	ctx, cancel := e.ctx()
	defer cancel()
	v, err := e.tbl.Get(ctx, []byte(hk), []byte(sk))
	if err != nil {
		e.t.Fatalf("get %s/%s: %v", hk, sk, err)
	}
	return v
}

func bs(ss ...string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func kvString(kvs []KV) string {
	s := ""
	for i, kv := range kvs {
		if i > 0 {
			s += " "
		}
		s += string(kv.SortKey) + "=" + string(kv.Value)
	}
	return s
}
