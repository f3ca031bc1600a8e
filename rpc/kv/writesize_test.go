package kv

import (
	"bytes"
	"context"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/internal/kvtest"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// countingConn counts the bytes a client writes to a server.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// countReplicaBytes makes the client count in *n every byte it sends to a server
// other than the meta server.
func countReplicaBytes(c *kvtest.Cluster, n *atomic.Int64) func(*Config) {
	return func(cfg *Config) {
		cfg.RPC.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", addr)
			if err != nil || addr == c.MetaAddr() {
				return conn, err
			}
			return countingConn{Conn: conn, n: n}, nil
		}
	}
}

// writeOp is one kind of write, built to carry payload bytes of user data.
type writeOp struct {
	name string
	code string
	run  func(ctx context.Context, tbl *Table, payload []byte) error
}

var writeOps = []writeOp{
	{"Set", rpc.CodePut, func(ctx context.Context, tbl *Table, p []byte) error {
		return tbl.Set(ctx, []byte("hk"), []byte("sk"), p, 0)
	}},
	{"MultiSet", rpc.CodeMultiPut, func(ctx context.Context, tbl *Table, p []byte) error {
		half := len(p) / 2
		return tbl.MultiSet(ctx, []byte("hk"), []KV{{[]byte("a"), p[:half]}, {[]byte("b"), p[half:]}}, 0)
	}},
	{"Del", rpc.CodeRemove, func(ctx context.Context, tbl *Table, p []byte) error {
		return tbl.Del(ctx, []byte("hk"), p)
	}},
	{"MultiDel", rpc.CodeMultiRemove, func(ctx context.Context, tbl *Table, p []byte) error {
		half := len(p) / 2
		_, err := tbl.MultiDel(ctx, []byte("hk"), [][]byte{p[:half], p[half:]})
		return err
	}},
	{"Incr", rpc.CodeIncr, func(ctx context.Context, tbl *Table, p []byte) error {
		_, err := tbl.Incr(ctx, []byte("hk"), p, 1, 0)
		return err
	}},
	{"CheckAndSet", rpc.CodeCheckAndSet, func(ctx context.Context, tbl *Table, p []byte) error {
		_, err := tbl.CheckAndSet(ctx, []byte("hk"), []byte("c"), rrdb.CasCheckType_CT_NO_CHECK, nil, []byte("c"), p, CheckAndSetOptions{})
		return err
	}},
	{"CheckAndMutate", rpc.CodeCheckAndMutate, func(ctx context.Context, tbl *Table, p []byte) error {
		half := len(p) / 2
		_, err := tbl.CheckAndMutate(ctx, []byte("hk"), []byte("c"), rrdb.CasCheckType_CT_NO_CHECK, nil,
			[]Mutation{{Op: MutationPut, SortKey: []byte("a"), Value: p[:half]}, {Op: MutationPut, SortKey: []byte("b"), Value: p[half:]}}, false)
		return err
	}},
}

// TestWriteSizeLimit: with the default Config, a write over 1 MiB fails before any
// byte reaches a replica server, with an error that gives its size and the limit.
func TestWriteSizeLimit(t *testing.T) {
	var sent atomic.Int64
	clk := &testClock{}
	c := kvtest.StartClusterWithOptions(t, kvtest.Options{Nodes: 3, Clock: clk.Now})
	c.CreateTable("t", 4)
	e := &env{t: t, c: c, clock: clk}
	e.client = newTestClient(t, c, countReplicaBytes(c, &sent))
	e.tbl = e.open("t")
	ctx, cancel := e.ctx()
	defer cancel()

	big := bytes.Repeat([]byte{'x'}, DefaultMaxWriteSize)
	sizeRE := regexp.MustCompile(`the request is (\d+) bytes, over the limit of 1048576 bytes`)
	for _, op := range writeOps {
		t.Run(op.name, func(t *testing.T) {
			err := op.run(ctx, e.tbl, big)
			var ke *Error
			if !errors.As(err, &ke) || ke.Code != base.ErrInvalidParameters || ke.Op != op.name ||
				!errors.Is(err, ErrWriteTooLarge) || !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrWriteTooLarge with Code ERR_INVALID_PARAMETERS", err)
			}
			m := sizeRE.FindStringSubmatch(err.Error())
			if m == nil || !strings.Contains(err.Error(), "max_allowed_write_size") {
				t.Fatalf("error %q does not give the size, the limit and the server option", err)
			}
			if size, _ := strconv.Atoi(m[1]); size <= len(big) {
				t.Errorf("reported size %d, want more than the %d bytes of payload", size, len(big))
			}
			if n := sent.Load(); n != 0 {
				t.Fatalf("%d bytes sent to replica servers, want none", n)
			}
			if n := c.Calls(op.code); n != 0 {
				t.Fatalf("%d %s calls reached the servers", n, op.code)
			}
		})
	}

	// The limit is inclusive: a request of exactly 1 MiB is sent and served.
	key, _ := keys.EncodeKey([]byte("hk"), []byte("sk"))
	overhead, err := rpc.ArgsSize(&rrdb.UpdateRequest{Key: base.NewBlob(key), Value: &base.Blob{}})
	if err != nil {
		t.Fatal(err)
	}
	exact := big[:DefaultMaxWriteSize-overhead]
	if err := e.tbl.Set(ctx, []byte("hk"), []byte("sk"), exact, 0); err != nil {
		t.Fatalf("set of exactly the limit: %v", err)
	}
	if sent.Load() <= int64(len(exact)) {
		t.Fatalf("%d bytes sent for a write of %d bytes: the counter misses writes", sent.Load(), len(exact))
	}
	if v := e.get("hk", "sk"); len(v) != len(exact) {
		t.Fatalf("read back %d bytes, want %d", len(v), len(exact))
	}
	if err := e.tbl.Set(ctx, []byte("hk"), []byte("sk"), big[:len(exact)+1], 0); !errors.Is(err, ErrWriteTooLarge) {
		t.Fatalf("set of one byte over the limit: %v", err)
	}
}

func TestWriteSizeLimitOptions(t *testing.T) {
	cases := []struct {
		name    string
		limit   int
		payload int
		refused bool
	}{
		{"small limit refuses", 4096, 5000, true},
		{"small limit passes small writes", 4096, 3000, false},
		{"negative disables the check", -1, 2 << 20, false},
	}
	e := newEnv(t, 4, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			client := newTestClient(t, e.c, func(cfg *Config) { cfg.MaxWriteSize = tc.limit })
			ctx, cancel := e.ctx()
			defer cancel()
			tbl, err := client.OpenTable(ctx, "t")
			if err != nil {
				t.Fatal(err)
			}
			before := e.c.Calls(rpc.CodePut)
			err = tbl.Set(ctx, []byte("opt"), []byte(tc.name), bytes.Repeat([]byte{'y'}, tc.payload), 0)
			if got := errors.Is(err, ErrWriteTooLarge); got != tc.refused || (!tc.refused && err != nil) {
				t.Fatalf("set of %d bytes with limit %d: %v", tc.payload, tc.limit, err)
			}
			if tc.refused && !strings.Contains(err.Error(), "limit of "+strconv.Itoa(tc.limit)+" bytes") {
				t.Errorf("error %q does not give the limit", err)
			}
			wantCalls := 1
			if tc.refused {
				wantCalls = 0
			}
			if n := e.c.Calls(rpc.CodePut) - before; n != wantCalls {
				t.Fatalf("%d PUT calls, want %d", n, wantCalls)
			}
		})
	}
}

// TestInvalidDataNotRetried: a write the server answers ERR_INVALID_DATA (what a
// replica server says to a write over its max_allowed_write_size) is sent once, and
// the error says why the server may have refused it and how large the request was.
func TestInvalidDataNotRetried(t *testing.T) {
	e := newEnv(t, 4, nil)
	ctx, cancel := e.ctx()
	defer cancel()
	e.setFault(func(code string, _ base.Gpid) kvtest.Fault { return kvtest.Fault{Err: base.ErrInvalidData} })
	defer e.setFault(nil)
	payload := []byte("a value the server pretends is too large")
	sizeRE := regexp.MustCompile(`the server refused the write as invalid or too large \(the request is (\d+) bytes; .*max_allowed_write_size`)
	for _, op := range writeOps {
		t.Run(op.name, func(t *testing.T) {
			before := e.c.Calls(op.code)
			err := op.run(ctx, e.tbl, payload)
			var ke *Error
			if !errors.As(err, &ke) || ke.Code != base.ErrInvalidData || ke.Op != op.name {
				t.Fatalf("err = %v, want Code ERR_INVALID_DATA", err)
			}
			m := sizeRE.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("error %q does not explain the refusal", err)
			}
			if op.name == "Set" {
				key, _ := keys.EncodeKey([]byte("hk"), []byte("sk"))
				want, _ := rpc.ArgsSize(&rrdb.UpdateRequest{Key: base.NewBlob(key), Value: base.NewBlob(payload)})
				if m[1] != strconv.Itoa(want) {
					t.Errorf("reported size %s, want %d", m[1], want)
				}
			}
			if n := e.c.Calls(op.code) - before; n != 1 {
				t.Fatalf("%d %s calls, want 1 (ERR_INVALID_DATA is final)", n, op.code)
			}
		})
	}
	// A read answered ERR_INVALID_DATA (a request the server could not decode) is
	// final too, but is not explained as a write.
	_, err := e.tbl.Get(ctx, []byte("hk"), []byte("sk"))
	if ErrorCode(err) != base.ErrInvalidData || strings.Contains(err.Error(), "max_allowed_write_size") {
		t.Fatalf("get: %v", err)
	}
}
