package shell_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/shell"
)

// A refusal for lack of administrator rights, whether the server refuses the RPC
// (a frame-level ERR_ACL_DENY) or answers it with err = ERR_ACL_DENY, is
// explained in one line that says what to do; other failures print as before.
func TestRefusedCommandsAreExplained(t *testing.T) {
	ln := listen(t)
	mux := rpc.NewMux()
	rpc.Handle(mux, rpc.CodeDropApp, func(ctx context.Context, c *rpc.Call, req *admin.ConfigurationDropAppRequest) (*admin.ConfigurationDropAppResponse, error) {
		t.Error("drop reached the handler of a server that refuses non-administrators")
		return &admin.ConfigurationDropAppResponse{Err: base.NewErrorCode(base.ErrOK)}, nil
	})
	rpc.Handle(mux, rpc.CodeControlMeta, func(ctx context.Context, c *rpc.Call, req *admin.ConfigurationMetaControlRequest) (*admin.ConfigurationMetaControlResponse, error) {
		t.Error("set_meta_level reached the handler of a server that refuses non-administrators")
		return &admin.ConfigurationMetaControlResponse{Err: base.NewErrorCode(base.ErrOK)}, nil
	})
	rpc.Handle(mux, rpc.CodeListApps, func(ctx context.Context, c *rpc.Call, req *admin.ConfigurationListAppsRequest) (*admin.ConfigurationListAppsResponse, error) {
		return &admin.ConfigurationListAppsResponse{Err: base.NewErrorCode(base.ErrACLDeny)}, nil
	})
	rpc.Handle(mux, rpc.CodeListNodes, func(ctx context.Context, c *rpc.Call, req *admin.ConfigurationListNodesRequest) (*admin.ConfigurationListNodesResponse, error) {
		return &admin.ConfigurationListNodesResponse{Err: base.NewErrorCode(base.ErrInvalidState)}, nil
	})
	srv := rpc.NewServer(mux, rpc.ServerOptions{Access: &rpc.Access{Admin: func(netip.Addr) bool { return false }}})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	sh := newShell(t, ln.Addr().String(), func(o *shell.Options) { o.MetaTimeout = 20 * time.Second })

	const advice = "run the shell on a cluster host, or add this host to [security] admin_allow_list (docs/security.md)"
	cases := []struct {
		line, command string
		refused       bool
	}{
		{"drop temp", "drop", true},                       // refused by the RPC layer
		{"set_meta_level lively", "set_meta_level", true}, // refused by the RPC layer
		{"ls", "ls", true},                                // answered with err = ERR_ACL_DENY
		{"nodes", "nodes", false},                         // another error
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			_, errOut := runScript(t, sh, tc.line+"\n")
			want := "ERROR: refused (ERR_ACL_DENY): only administrators may run '" + tc.command + "': " + advice + "\n"
			if tc.refused && errOut != want {
				t.Errorf("stderr:\n%q\nwant:\n%q", errOut, want)
			}
			if !tc.refused && (strings.Contains(errOut, "refused") || !strings.Contains(errOut, base.ErrInvalidState)) {
				t.Errorf("stderr: %q, want the error as it is", errOut)
			}
		})
	}
}
