package rpc

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/idl/gen/security"
)

const internalCode = "RPC_TEST_INTERNAL"

// authMux answers internalCode with the caller's proven node, CodeDropApp with
// "dropped", and CodeGet as echoMux does.
func authMux() *Mux {
	mux := echoMux(nil)
	mux.HandleFunc(internalCode, func(ctx context.Context, c *Call) (Value, error) {
		return &String{V: c.Peer().Node}, nil
	})
	mux.HandleFunc(CodeDropApp, func(ctx context.Context, c *Call) (Value, error) {
		return &String{V: "dropped"}, nil
	})
	return mux
}

func keyring(t *testing.T, secrets ...string) *Keyring {
	t.Helper()
	var bs [][]byte
	for _, s := range secrets {
		bs = append(bs, []byte(s))
	}
	k, err := NewKeyring(bs...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	secretA = "0123456789abcdef-secret-A"
	secretB = "0123456789abcdef-secret-B"
)

func callCode(c *Client, code string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out String
	err := c.Call(ctx, Request{Code: code, Args: base.BlobString("x")}, &out)
	return out.V, err
}

func TestClusterAuthentication(t *testing.T) {
	tests := []struct {
		name       string
		server     []string // the server's keyring
		client     []string // the client's keyring; nil: no handshake
		wantAuth   bool     // the handshake succeeds
		wantMember bool     // internal RPCs are served
	}{
		{"member", []string{secretA}, []string{secretA}, true, true},
		{"no credentials", []string{secretA}, nil, true, false},
		{"wrong secret", []string{secretA}, []string{secretB}, false, false},
		{"rotation: server accepts the new secret too", []string{secretA, secretB}, []string{secretB}, true, true},
		{"rotation: client proves with the new, server still on the old", []string{secretA}, []string{secretB, secretA}, false, false},
		{"rotation: server on the new, client still proves with the old", []string{secretB, secretA}, []string{secretA}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, addr := startServer(t, authMux(), ServerOptions{Access: &Access{
				Keys:     keyring(t, tc.server...),
				Internal: func(code string) bool { return code == internalCode },
			}})
			var clientLog bytes.Buffer
			opts := ClientOptions{Logger: slog.New(slog.NewTextHandler(&clientLog, nil))}
			if tc.client != nil {
				opts.Auth = &ClientAuth{Keys: keyring(t, tc.client...), Node: "127.0.0.1:34801"}
			}
			c := NewClient(addr, opts)
			defer c.Close()
			node, err := callCode(c, internalCode)
			switch {
			case !tc.wantAuth:
				if !errors.Is(err, ErrAuth) {
					t.Fatalf("call with a failing handshake: %v, want ErrAuth", err)
				}
				if s.Stats().AuthFailed == 0 {
					t.Error("failed handshake not counted")
				}
				// The server that cannot join must be told why, in its own log.
				if !bytes.Contains(clientLog.Bytes(), []byte("cluster authentication failed")) {
					t.Errorf("the client's log does not report the failed authentication:\n%s", clientLog.String())
				}
				return
			case tc.wantMember:
				if err != nil || node != "127.0.0.1:34801" {
					t.Fatalf("member call: node %q, %v", node, err)
				}
			default:
				var re *Error
				if !errors.As(err, &re) || re.Code != base.ErrUnauthenticated {
					t.Fatalf("internal call without credentials: %v, want ERR_UNAUTHENTICATED", err)
				}
			}
			// Client RPCs are served either way.
			var resp rrdb.ReadResponse
			if err := c.Call(context.Background(), Request{Code: CodeGet, Args: base.BlobString("k")}, &resp); err != nil {
				t.Fatalf("client RPC: %v", err)
			}
		})
	}
}

func TestAuthProofIsSingleUse(t *testing.T) {
	a := &Access{Keys: keyring(t, secretA)}
	st := &connAuth{}
	sel, _ := a.negotiate(st, negotiation(t, "SELECT", []byte(ClusterMechanism)))
	sn := sel.GetMsg().Bytes()
	cn := newNonce()
	node := "10.0.0.1:34801"
	proof := append(append(append([]byte{}, cn...), 0, byte(len(node))), node...)
	proof = append(proof, authMAC([]byte(secretA), authLabelC, sn, cn, node)...)
	if _, err := a.negotiate(st, negotiation(t, "INITIATE", proof)); err != nil || st.peer.Node != node {
		t.Fatalf("first use of the proof: %v (node %q)", err, st.peer.Node)
	}
	// The same proof on a new connection (a new challenge) is refused.
	st2 := &connAuth{}
	if _, err := a.negotiate(st2, negotiation(t, "SELECT", []byte(ClusterMechanism))); err != nil {
		t.Fatal(err)
	}
	if _, err := a.negotiate(st2, negotiation(t, "INITIATE", proof)); !errors.Is(err, ErrAuth) || st2.peer.Node != "" {
		t.Fatalf("replayed proof: %v (node %q), want refused", err, st2.peer.Node)
	}
	// And on the same connection once used.
	if _, err := a.negotiate(st, negotiation(t, "INITIATE", proof)); !errors.Is(err, ErrAuth) {
		t.Fatalf("proof reused on its connection: %v, want refused", err)
	}
}

func TestAdministratorsOnly(t *testing.T) {
	admin := func(ip netip.Addr) bool { return ip == netip.MustParseAddr("127.0.0.1") }
	s, addr := startServer(t, authMux(), ServerOptions{Access: &Access{Keys: keyring(t, secretA), Admin: admin}})
	// From an allowed address, no credentials needed.
	c := NewClient(addr, ClientOptions{})
	defer c.Close()
	if got, err := callCode(c, CodeDropApp); err != nil || got != "dropped" {
		t.Fatalf("drop from an allowed address: %q, %v", got, err)
	}
	// From another address: refused, unless it authenticates.
	from2 := func(ctx context.Context, a string) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
		return d.DialContext(ctx, "tcp", a)
	}
	other := NewClient(addr, ClientOptions{Dial: from2})
	defer other.Close()
	_, err := callCode(other, CodeDropApp)
	var re *Error
	if !errors.As(err, &re) || re.Code != base.ErrACLDeny {
		t.Fatalf("drop from another address: %v, want ERR_ACL_DENY", err)
	}
	if s.Stats().Denied == 0 {
		t.Error("refusal not counted")
	}
	member := NewClient(addr, ClientOptions{Dial: from2, Auth: &ClientAuth{Keys: keyring(t, secretA), Node: "127.0.0.2:34801"}})
	defer member.Close()
	if got, err := callCode(member, CodeDropApp); err != nil || got != "dropped" {
		t.Fatalf("drop by an authenticated member: %q, %v", got, err)
	}
}

func TestKeyringFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	write := func(content string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("# cluster secret\n"+secretA+"\n", 0o600)
	k, err := LoadKeyring(path)
	if err != nil || k.Len() != 1 || string(k.current()) != secretA {
		t.Fatalf("load: %v", err)
	}
	// Rotation: the file gains the new secret in front; Reload picks it up.
	loaded, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	write(secretB+"\n"+secretA+"\n", 0o600)
	// A distinct modification time, as a later edit has, however coarse the
	// file system's clock.
	if err := os.Chtimes(path, time.Time{}, loaded.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if changed, err := k.Reload(); err != nil || !changed || k.Len() != 2 || string(k.current()) != secretB {
		t.Fatalf("reload: changed %v, %v, %d secrets", changed, err, k.Len())
	}
	if changed, err := k.Reload(); err != nil || changed {
		t.Fatalf("reload of an unchanged file: changed %v, %v", changed, err)
	}
	for _, bad := range []struct {
		content string
		mode    os.FileMode
	}{
		{secretA + "\n", 0o644}, // readable by others
		{"short\n", 0o600},
		{"# only a comment\n", 0o600},
	} {
		write(bad.content, bad.mode)
		if _, err := LoadKeyring(path); err == nil {
			t.Errorf("secret file %q (mode %v) accepted", bad.content, bad.mode)
		}
	}
}

func negotiation(t *testing.T, step string, msg []byte) *security.NegotiationRequest {
	t.Helper()
	st := map[string]security.NegotiationStatus{
		"SELECT":   security.NegotiationStatus_SASL_SELECT_MECHANISMS,
		"INITIATE": security.NegotiationStatus_SASL_INITIATE,
	}[step]
	return &security.NegotiationRequest{Status: st, Msg: base.NewBlob(msg)}
}
