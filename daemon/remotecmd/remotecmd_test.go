package remotecmd

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/gen/cmd"
	"github.com/pegasusgo/pegasus/rpc"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// serve serves r on a loopback port; access nil serves without access control.
func serve(t *testing.T, r *Registry, access *rpc.Access) *rpc.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := rpc.NewMux()
	r.Handle(mux)
	srv := rpc.NewServer(mux, rpc.ServerOptions{Access: access})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := rpc.NewClient(ln.Addr().String(), rpc.ClientOptions{})
	t.Cleanup(func() { c.Close() })
	return c
}

func remote(t *testing.T, c *rpc.Client, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out rpc.String
	if err := c.Call(ctx, rpc.Request{Code: rpc.CodeRemoteCommand, Args: &cmd.Command{Cmd: name, Arguments: args}}, &out); err != nil {
		t.Fatal(err)
	}
	return out.V
}

// Commands that change something are served to administrators only; reads, and
// the reading form of a setting, to anyone.
func TestStateChangingCommandsNeedAnAdministrator(t *testing.T) {
	r := New("test", time.Now())
	var logs syncBuffer
	r.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	var mu sync.Mutex
	ran := map[string]int{}
	count := func(name string) Func {
		return func(ctx context.Context, args []string) string {
			mu.Lock()
			defer mu.Unlock()
			ran[name]++
			return OK
		}
	}
	r.Register("info", "info", count("info"))
	r.RegisterAs("setting", "setting [v]", Setting, count("setting"))
	r.RegisterAs("flush", "flush", Admin, count("flush"))

	notAdmin := serve(t, r, &rpc.Access{Admin: func(netip.Addr) bool { return false }})
	admin := serve(t, r, &rpc.Access{Admin: func(ip netip.Addr) bool { return ip.IsLoopback() }})
	open := serve(t, r, nil) // no access control at all (tests, tools' fakes)
	cases := []struct {
		name    string
		client  *rpc.Client
		cmd     string
		args    []string
		refused bool
	}{
		{"read, not an administrator", notAdmin, "info", []string{"x"}, false},
		{"setting read, not an administrator", notAdmin, "setting", nil, false},
		{"setting changed, not an administrator", notAdmin, "setting", []string{"7"}, true},
		{"admin command, not an administrator", notAdmin, "flush", nil, true},
		{"admin command with arguments, not an administrator", notAdmin, "flush", []string{"now"}, true},
		{"setting changed, administrator", admin, "setting", []string{"7"}, false},
		{"admin command, administrator", admin, "flush", nil, false},
		{"admin command, no access control", open, "flush", nil, false},
		{"unknown command, not an administrator", notAdmin, "nosuch", []string{"1"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			before := ran[tc.cmd]
			mu.Unlock()
			reply := remote(t, tc.client, tc.cmd, tc.args...)
			mu.Lock()
			executed := ran[tc.cmd] > before
			mu.Unlock()
			isRefusal := strings.HasPrefix(reply, "ERR: refused: only administrators")
			if isRefusal != tc.refused || executed == tc.refused && tc.cmd != "nosuch" {
				t.Fatalf("reply %q, executed %v; want refused %v", reply, executed, tc.refused)
			}
			if tc.refused && (strings.Contains(reply, "\n") || !strings.Contains(reply, "'"+tc.cmd+"'") ||
				!strings.Contains(reply, "admin_allow_list") || !strings.Contains(reply, "(127.0.0.1)")) {
				t.Errorf("refusal %q: want one line naming the command, the host and admin_allow_list", reply)
			}
		})
	}
	if !strings.Contains(logs.String(), "remote command refused") || !strings.Contains(logs.String(), "remote=127.0.0.1:") {
		t.Errorf("no refusal with the remote address in the log:\n%s", logs.String())
	}
}

func TestAccessMayRun(t *testing.T) {
	cases := []struct {
		access Access
		admin  bool
		args   []string
		want   bool
	}{
		{Open, false, []string{"1"}, true},
		{Setting, false, nil, true},
		{Setting, false, []string{"1"}, false},
		{Setting, true, []string{"1"}, true},
		{Admin, false, nil, false},
		{Admin, true, nil, true},
	}
	for _, tc := range cases {
		if got := tc.access.mayRun(tc.admin, tc.args); got != tc.want {
			t.Errorf("access %d admin %v args %v: %v, want %v", tc.access, tc.admin, tc.args, got, tc.want)
		}
	}
}
