package rpc

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/security"
)

// Cluster membership authentication.
//
// Servers of one cluster share one or more secrets (the keyring). A connection
// between two of them starts with a challenge-response carried by upstream's
// RPC_NEGOTIATION (the hook Kerberos SASL also uses, so a GSSAPI mechanism can be
// added beside this one):
//
//	client: SASL_SELECT_MECHANISMS  msg = ClusterMechanism
//	server: SASL_SELECT_MECHANISMS_RESP  msg = server nonce (32 random bytes)
//	client: SASL_INITIATE  msg = client nonce (32) | node length (u16) | node | MAC
//	        MAC = HMAC-SHA256(secret, "pegasus-cluster-auth/1 client" | sn | cn | node)
//	server: SASL_SUCC  msg = HMAC-SHA256(secret, "pegasus-cluster-auth/1 server" | cn | sn | node)
//	     or SASL_AUTH_FAIL  msg = reason
//
// The secret never crosses the wire and the nonces make every proof single-use.
// The server accepts a proof made with any secret of its keyring, so a secret can
// be rotated without stopping the cluster (docs/security.md). The client checks
// the server's proof too: a connection to a process without the secret fails.
// The node name the client proves ("ip:port") becomes the connection's peer
// identity; handlers read it from Call.Peer, never from a message body.

// ClusterMechanism is the negotiation mechanism of cluster membership.
const ClusterMechanism = "PEGASUS-CLUSTER-HMAC-SHA256"

const (
	authNonceLen = 32
	authLabelC   = "pegasus-cluster-auth/1 client"
	authLabelS   = "pegasus-cluster-auth/1 server"
	// MinSecretLen is the shortest secret a keyring takes (bytes).
	MinSecretLen = 16
)

// ErrAuth marks a failed authentication handshake.
var ErrAuth = errors.New("cluster authentication failed")

// Keyring holds the cluster secrets. The first proves this process to others;
// every secret is accepted from others. It is safe for concurrent use.
type Keyring struct {
	mu      sync.RWMutex
	secrets [][]byte
	path    string
	modTime time.Time
	size    int64
}

// NewKeyring returns a keyring of the given secrets, the first one current.
func NewKeyring(secrets ...[]byte) (*Keyring, error) {
	k := &Keyring{}
	if err := k.set(secrets); err != nil {
		return nil, err
	}
	return k, nil
}

// LoadKeyring reads a secret file: one secret per line, the first current, blank
// lines and lines starting with '#' ignored. Reload reads it again.
func LoadKeyring(path string) (*Keyring, error) {
	k := &Keyring{path: path}
	if _, err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// ParseSecrets parses the content of a secret file.
func ParseSecrets(data []byte) ([][]byte, error) {
	var out [][]byte
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < MinSecretLen {
			return nil, fmt.Errorf("line %d: secret of %d bytes, want at least %d (e.g. openssl rand -hex 32)", i+1, len(line), MinSecretLen)
		}
		out = append(out, []byte(line))
	}
	if len(out) == 0 {
		return nil, errors.New("no secret in the file")
	}
	return out, nil
}

func (k *Keyring) set(secrets [][]byte) error {
	if len(secrets) == 0 {
		return errors.New("keyring: no secret")
	}
	for i, s := range secrets {
		if len(s) < MinSecretLen {
			return fmt.Errorf("keyring: secret %d has %d bytes, want at least %d", i+1, len(s), MinSecretLen)
		}
	}
	k.mu.Lock()
	k.secrets = secrets
	k.mu.Unlock()
	return nil
}

// Reload re-reads the keyring's file when it changed and reports whether it did.
// On error the keyring keeps its secrets.
func (k *Keyring) Reload() (bool, error) {
	if k.path == "" {
		return false, nil
	}
	st, err := os.Stat(k.path)
	if err != nil {
		return false, fmt.Errorf("cluster secret file: %w", err)
	}
	k.mu.RLock()
	same := st.ModTime().Equal(k.modTime) && st.Size() == k.size && k.secrets != nil
	k.mu.RUnlock()
	if same {
		return false, nil
	}
	if st.Mode().Perm()&0o077 != 0 {
		return false, fmt.Errorf("cluster secret file %s is readable by others (mode %v): chmod 600 it", k.path, st.Mode().Perm())
	}
	data, err := os.ReadFile(k.path)
	if err != nil {
		return false, fmt.Errorf("cluster secret file: %w", err)
	}
	secrets, err := ParseSecrets(data)
	if err != nil {
		return false, fmt.Errorf("cluster secret file %s: %w", k.path, err)
	}
	// ParseSecrets checked them; the secrets and the file they came from change
	// together.
	k.mu.Lock()
	k.secrets, k.modTime, k.size = secrets, st.ModTime(), st.Size()
	k.mu.Unlock()
	return true, nil
}

// Path is the file the keyring was loaded from ("" if none).
func (k *Keyring) Path() string { return k.path }

// Len is the number of secrets accepted.
func (k *Keyring) Len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.secrets)
}

func (k *Keyring) current() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.secrets[0]
}

func (k *Keyring) all() [][]byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.secrets
}

func authMAC(secret []byte, label string, a, b []byte, node string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(label))
	m.Write(a)
	m.Write(b)
	m.Write([]byte(node))
	return m.Sum(nil)
}

func newNonce() []byte {
	b := make([]byte, authNonceLen)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the runtime's source does not fail
	}
	return b
}

// Peer is what a server knows of the other end of a connection.
type Peer struct {
	// Node is the cluster member the connection proved to be ("ip:port"), empty
	// when it did not authenticate.
	Node string
	// Addr is the connection's remote IP address.
	Addr netip.Addr
	// Admin is whether the connection may change the cluster: a cluster member,
	// or an address of the administrators' allow list; anyone on a server
	// without ServerOptions.Access.
	Admin bool
}

// Access configures who may do what on a server.
type Access struct {
	// Keys authenticates cluster members; nil runs without membership checks
	// (the explicit insecure mode): then cluster RPCs are served to anyone.
	Keys *Keyring
	// Admin tells whether a remote address may run administrative RPCs without
	// authenticating (the allow list); nil allows loopback only.
	Admin func(netip.Addr) bool
	// Internal tells whether an RPC code is reserved to cluster members; nil
	// reserves every code outside the client catalogue.
	Internal func(code string) bool
}

// connAuth is a server connection's authentication state; only the reader
// goroutine changes it.
type connAuth struct {
	serverNonce []byte
	peer        Peer
}

// negotiate answers one RPC_NEGOTIATION request on a server connection.
func (a *Access) negotiate(st *connAuth, req *security.NegotiationRequest) (*security.NegotiationResponse, error) {
	fail := func(reason string) (*security.NegotiationResponse, error) {
		return &security.NegotiationResponse{Status: security.NegotiationStatus_SASL_AUTH_FAIL, Msg: base.BlobString(reason)}, fmt.Errorf("%w: %s", ErrAuth, reason)
	}
	if a.Keys == nil {
		return &security.NegotiationResponse{Status: security.NegotiationStatus_SASL_AUTH_DISABLE, Msg: base.BlobString("")}, nil
	}
	msg := req.GetMsg().Bytes()
	switch req.Status {
	case security.NegotiationStatus_SASL_LIST_MECHANISMS:
		return &security.NegotiationResponse{Status: security.NegotiationStatus_SASL_LIST_MECHANISMS_RESP, Msg: base.BlobString(ClusterMechanism)}, nil
	case security.NegotiationStatus_SASL_SELECT_MECHANISMS:
		if string(msg) != ClusterMechanism {
			return fail(fmt.Sprintf("mechanism %q is not supported; this cluster authenticates its members with %s", msg, ClusterMechanism))
		}
		st.serverNonce = newNonce()
		return &security.NegotiationResponse{Status: security.NegotiationStatus_SASL_SELECT_MECHANISMS_RESP, Msg: base.NewBlob(st.serverNonce)}, nil
	case security.NegotiationStatus_SASL_INITIATE:
		sn := st.serverNonce
		st.serverNonce = nil // one proof per challenge
		if sn == nil {
			return fail("no challenge: select the mechanism first")
		}
		if len(msg) < authNonceLen+2 {
			return fail("short proof")
		}
		cn := msg[:authNonceLen]
		n := int(binary.BigEndian.Uint16(msg[authNonceLen:]))
		rest := msg[authNonceLen+2:]
		if len(rest) != n+sha256.Size {
			return fail("malformed proof")
		}
		node, mac := string(rest[:n]), rest[n:]
		if _, err := netip.ParseAddrPort(node); err != nil {
			return fail(fmt.Sprintf("node %q is not ip:port", node))
		}
		for _, secret := range a.Keys.all() {
			if hmac.Equal(mac, authMAC(secret, authLabelC, sn, cn, node)) {
				st.peer.Node = node
				st.peer.Admin = true
				return &security.NegotiationResponse{Status: security.NegotiationStatus_SASL_SUCC, Msg: base.NewBlob(authMAC(secret, authLabelS, cn, sn, node))}, nil
			}
		}
		return fail("wrong cluster secret")
	default:
		return fail(fmt.Sprintf("unexpected negotiation status %v", req.Status))
	}
}

// internal reports whether code is reserved to cluster members.
func (a *Access) internal(code string) bool {
	if a.Internal != nil {
		return a.Internal(code)
	}
	return !clientCodes[code]
}

// isAdminAddr reports whether an unauthenticated address may administer.
func (a *Access) isAdminAddr(ip netip.Addr) bool {
	if a.Admin != nil {
		return a.Admin(ip)
	}
	return ip.IsLoopback()
}

// clientCodes are the RPCs that clients and tools send: everything else a server
// serves is between cluster members.
var clientCodes = func() map[string]bool {
	m := map[string]bool{}
	for code := range Catalogue() {
		m[code] = true
	}
	return m
}()

// adminCodes are the client RPCs that change the cluster: only administrators
// (cluster members, allowed addresses) may send them.
var adminCodes = map[string]bool{
	CodeCreateApp: true, CodeDropApp: true, CodeRecallApp: true, CodeRenameApp: true,
	CodeUpdateAppEnv: true, CodeControlMeta: true, CodeProposeBalancer: true,
	CodeSetMaxReplicaCount: true, CodeSetAtomicIdempotent: true, CodeStartRecovery: true,
	CodeAddDuplication: true, CodeModifyDuplication: true,
	CodeStartBackupApp: true, CodeStartRestore: true, CodeAddBackupPolicy: true, CodeModifyBackupPolicy: true,
	CodeStartPartitionSplit: true, CodeControlPartitionSplit: true,
	CodeStartBulkLoad: true, CodeControlBulkLoad: true, CodeClearBulkLoad: true,
	CodeStartManualCompact: true, CodeDiskMigrate: true, CodeAddNewDisk: true, CodeDetectHotkey: true,
}

// ToolNode is the node an administration tool (the shell) authenticates as: it
// holds the cluster secret but is no server, and the unspecified address never
// names one.
const ToolNode = "0.0.0.0:0"

// ClientAuth is what a client proves itself with: the cluster keyring and the
// node name it claims.
type ClientAuth struct {
	Keys *Keyring
	Node string
}

// handshake authenticates a new connection before any call is made on it.
func (a *ClientAuth) handshake(ctx context.Context, nc net.Conn, maxFrame int) error {
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
		defer nc.SetDeadline(time.Time{})
	}
	br := bufio.NewReaderSize(nc, 512)
	ask := func(seq int32, status security.NegotiationStatus, msg []byte) (*security.NegotiationResponse, error) {
		body, err := EncodeCall(CodeNegotiation, seq, &security.NegotiationRequest{Status: status, Msg: base.NewBlob(msg)})
		if err != nil {
			return nil, err
		}
		if _, err := nc.Write(AppendRequestV0(nil, Header{}, body)); err != nil {
			return nil, err
		}
		frame, err := ReadResponse(br, maxFrame)
		if err != nil {
			return nil, err
		}
		head, p, err := ParseResponse(frame)
		if err != nil {
			return nil, err
		}
		if head.ErrorName != base.ErrOK {
			return nil, fmt.Errorf("%w: server answered %s", ErrAuth, head.ErrorName)
		}
		resp := security.NewNegotiationResponse()
		if err := DecodeResult(ctx, p, resp); err != nil {
			return nil, err
		}
		if resp.Status == security.NegotiationStatus_SASL_AUTH_FAIL {
			return nil, fmt.Errorf("%w: %s", ErrAuth, resp.GetMsg().Bytes())
		}
		return resp, nil
	}
	resp, err := ask(1, security.NegotiationStatus_SASL_SELECT_MECHANISMS, []byte(ClusterMechanism))
	if err != nil {
		return err
	}
	if resp.Status == security.NegotiationStatus_SASL_AUTH_DISABLE {
		// A server without the secret cannot prove it belongs to the cluster.
		return fmt.Errorf("%w: the server runs without cluster authentication", ErrAuth)
	}
	sn := resp.GetMsg().Bytes()
	if resp.Status != security.NegotiationStatus_SASL_SELECT_MECHANISMS_RESP || len(sn) != authNonceLen {
		return fmt.Errorf("%w: unexpected answer %v to the mechanism selection", ErrAuth, resp.Status)
	}
	secret := a.Keys.current()
	cn := newNonce()
	msg := append([]byte{}, cn...)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(a.Node)))
	msg = append(msg, a.Node...)
	msg = append(msg, authMAC(secret, authLabelC, sn, cn, a.Node)...)
	resp, err = ask(2, security.NegotiationStatus_SASL_INITIATE, msg)
	if err != nil {
		return err
	}
	if resp.Status != security.NegotiationStatus_SASL_SUCC {
		return fmt.Errorf("%w: unexpected answer %v to the proof", ErrAuth, resp.Status)
	}
	// The server may have matched another secret of ours: accept a proof by any.
	for _, s := range a.Keys.all() {
		if hmac.Equal(resp.GetMsg().Bytes(), authMAC(s, authLabelS, cn, sn, a.Node)) {
			return nil
		}
	}
	return fmt.Errorf("%w: the server did not prove it knows the cluster secret", ErrAuth)
}
