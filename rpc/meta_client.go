package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// MetaResult is a meta server response: it carries an application-level error code.
type MetaResult interface {
	Value
	GetErr() *base.ErrorCode
}

// MetaClientOptions configure a MetaClient.
type MetaClientOptions struct {
	ClientOptions
	// AttemptTimeout bounds one attempt on one meta server (default 5 s), so that a
	// hung meta does not eat the whole deadline of a call.
	AttemptTimeout time.Duration
	// RetryInterval is the pause after every meta server failed or said it is not
	// ready (default 200 ms).
	RetryInterval time.Duration
}

// MetaClient calls the leader of a set of meta servers. It remembers which server
// answered last and, when a server answers ERR_FORWARD_TO_OTHERS, follows the hint
// it gives (query_cfg replies name the leader) or tries the others in turn.
type MetaClient struct {
	opts MetaClientOptions

	mu      sync.Mutex
	clients []*Client
	leader  int
}

// NewMetaClient returns a client for the meta servers at addrs ("ip:port" each).
func NewMetaClient(addrs []string, opts MetaClientOptions) (*MetaClient, error) {
	if len(addrs) == 0 {
		return nil, errors.New("meta client: empty meta server list")
	}
	opts.ClientOptions.setDefaults()
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 5 * time.Second
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = 200 * time.Millisecond
	}
	m := &MetaClient{opts: opts}
	seen := map[string]bool{}
	for _, a := range addrs {
		if _, err := base.ParseRPCAddress(a); err != nil {
			return nil, fmt.Errorf("meta client: %w", err)
		}
		if !seen[a] {
			seen[a] = true
			m.clients = append(m.clients, NewClient(a, opts.ClientOptions))
		}
	}
	return m, nil
}

// Addrs returns the meta server addresses known to the client.
func (m *MetaClient) Addrs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, len(m.clients))
	for i, c := range m.clients {
		out[i] = c.Addr()
	}
	return out
}

// Leader returns the address of the meta server that answered last.
func (m *MetaClient) Leader() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clients[m.leader].Addr()
}

// Close closes every connection.
func (m *MetaClient) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.clients {
		c.Close()
	}
	return nil
}

func (m *MetaClient) client(i int) *Client {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clients[i%len(m.clients)]
}

func (m *MetaClient) size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.clients)
}

// indexOf returns the index of addr, adding a client for an unknown address (a
// leader hint may name a meta server missing from the configured list).
func (m *MetaClient) indexOf(addr string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, c := range m.clients {
		if c.Addr() == addr {
			return i
		}
	}
	m.clients = append(m.clients, NewClient(addr, m.opts.ClientOptions))
	return len(m.clients) - 1
}

func (m *MetaClient) setLeader(i int) {
	m.mu.Lock()
	m.leader = i
	m.mu.Unlock()
}

func (m *MetaClient) currentLeader() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leader
}

// CallMeta sends a meta RPC to the leader and returns its reply. It returns an error
// only when no meta server gave a final answer before ctx ended, or at once when a
// meta server refused the caller (ERR_ACL_DENY, ERR_UNAUTHENTICATED: the others
// would too); an answer whose err field is not ERR_OK is returned as is (callers
// check GetErr).
func CallMeta[R any, PR interface {
	*R
	MetaResult
}](ctx context.Context, m *MetaClient, code string, args Value) (PR, error) {
	var lastErr error
	next := m.currentLeader()
	for {
		n := m.size()
		for tries := 0; tries < n; tries++ {
			i := next % n
			next = i + 1
			resp := PR(new(R))
			actx, cancel := context.WithTimeout(ctx, m.opts.AttemptTimeout)
			err := m.client(i).Call(actx, Request{Code: code, Args: args}, resp)
			cancel()
			if err != nil {
				var fe *Error
				if errors.As(err, &fe) && (fe.Code == base.ErrACLDeny || fe.Code == base.ErrUnauthenticated) {
					return nil, fmt.Errorf("meta call %s: %s: %w", code, m.client(i).Addr(), err)
				}
				lastErr = fmt.Errorf("%s: %w", m.client(i).Addr(), err)
				if ctx.Err() != nil {
					return nil, fmt.Errorf("meta call %s: %w (last error: %v)", code, ctx.Err(), lastErr)
				}
				continue
			}
			switch resp.GetErr().Name() {
			case base.ErrForwardToOthers:
				lastErr = fmt.Errorf("%s is not the leader", m.client(i).Addr())
				if hint := forwardHint(resp); hint != "" {
					next = m.indexOf(hint)
					n = m.size()
				}
				continue
			case base.ErrServiceNotActive, base.ErrUnderRecovery:
				if resp.GetErr().Name() == base.ErrServiceNotActive && coldBackupCall(code) {
					return resp, nil
				}
				lastErr = fmt.Errorf("%s: %s", m.client(i).Addr(), resp.GetErr().Name())
				continue
			}
			m.setLeader(i)
			return resp, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("meta call %s: %w (last error: %v)", code, ctx.Err(), lastErr)
		case <-time.After(m.opts.RetryInterval):
		}
	}
}

// coldBackupCall reports the calls to which ERR_SERVICE_NOT_ACTIVE is an
// answer rather than a meta server still starting: every meta server with cold
// backup disabled ([meta_server] cold_backup_disabled, the default) gives it to
// every backup and restore call, and waiting for that to change would only end
// at the caller's deadline with a misleading "cannot reach".
func coldBackupCall(code string) bool {
	switch code {
	case CodeAddBackupPolicy, CodeQueryBackupPolicy, CodeModifyBackupPolicy,
		CodeStartBackupApp, CodeQueryBackupStatus, CodeStartRestore, CodeQueryRestoreStatus:
		return true
	}
	return false
}

// forwardHint extracts the leader named by a non-leader's query_cfg reply.
func forwardHint(v Value) string {
	r, ok := v.(*layer2.QueryCfgResponse)
	if !ok || len(r.Partitions) == 0 || r.Partitions[0] == nil {
		return ""
	}
	if p := r.Partitions[0].Primary; p.IsValid() {
		return p.String()
	}
	return ""
}
