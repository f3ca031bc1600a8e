package rpc

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
)

func TestSameNode(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{"10.0.0.1:34801", "10.0.0.1:34801", true},
		{"[::ffff:10.0.0.1]:34801", "10.0.0.1:34801", true},
		{"10.0.0.1:34801", "10.0.0.1:34802", false},
		{"10.0.0.1:34801", "10.0.0.2:34801", false},
		{"10.0.0.1:34801", "", false},
		{"", "", true},
		{"host:1", "host:1", true},
		{"host:1", "10.0.0.1:1", false},
	}
	for _, tc := range cases {
		if got := SameNode(tc.a, tc.b); got != tc.want {
			t.Errorf("SameNode(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	if (Peer{}).Is("") || (Peer{}).Authenticated() {
		t.Error("an unauthenticated peer is somebody")
	}
	if p := (Peer{Node: "10.0.0.1:34801"}); !p.Is("[::ffff:10.0.0.1]:34801") || p.Is("10.0.0.1:34802") || !p.Authenticated() {
		t.Error("an authenticated peer is not who it proved to be")
	}
}

// A meta server that refuses the caller is not retried on the others until the
// deadline: they would refuse it too. The refusal reaches the caller.
func TestCallMetaRefusedIsFinal(t *testing.T) {
	var addrs []string
	for i := 0; i < 2; i++ {
		mux := NewMux()
		Handle(mux, CodeDropApp, func(ctx context.Context, call *Call, req *admin.ConfigurationDropAppRequest) (*admin.ConfigurationDropAppResponse, error) {
			t.Error("an administrative RPC reached its handler")
			return &admin.ConfigurationDropAppResponse{Err: base.NewErrorCode(base.ErrOK)}, nil
		})
		_, addr := startServer(t, mux, ServerOptions{Access: &Access{Admin: func(netip.Addr) bool { return false }}})
		addrs = append(addrs, addr)
	}
	mc, err := NewMetaClient(addrs, MetaClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = CallMeta[admin.ConfigurationDropAppResponse](ctx, mc, CodeDropApp, &admin.ConfigurationDropAppRequest{AppName: "t", Options: &admin.DropAppOptions{}})
	var fe *Error
	if !errors.As(err, &fe) || fe.Code != base.ErrACLDeny {
		t.Fatalf("CallMeta: %v, want ERR_ACL_DENY", err)
	}
	if ctx.Err() != nil {
		t.Fatal("CallMeta retried the refusal until its deadline")
	}
}
