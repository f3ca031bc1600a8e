package kv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
)

// DefaultMaxWriteSize is the default Config.MaxWriteSize: 1 MiB, the default
// max_allowed_write_size of the replica servers.
const DefaultMaxWriteSize = 1 << 20

// Config configures a Client. Zero values pick the defaults.
type Config struct {
	// MetaServers lists the meta servers, "ip:port" each.
	MetaServers []string
	// Logger receives routing refreshes and retries at debug level; nil discards.
	Logger *slog.Logger
	// OperationTimeout bounds every operation, retries included (default 5 s). A
	// context deadline that comes earlier wins.
	OperationTimeout time.Duration
	// AttemptTimeout bounds one attempt of an operation, so that a primary that
	// hangs is retried (after a routing refresh) within the operation deadline.
	// 0 (the default) lets an attempt use the whole remaining time, as the official
	// clients do. Incr and the check-and-* operations are not retried after an
	// attempt timed out, since they may have been executed.
	AttemptTimeout time.Duration
	// MinBackoff and MaxBackoff bound the pause between attempts: it starts at
	// MinBackoff and doubles up to MaxBackoff (defaults 10 ms and 1 s).
	MinBackoff, MaxBackoff time.Duration
	// RefreshInterval is the minimum time between two routing queries of one table
	// (default 100 ms).
	RefreshInterval time.Duration
	// MaxWriteSize bounds the encoded size of a write request (the args struct a
	// replica server measures against its [replication] max_allowed_write_size):
	// a larger write fails with ErrWriteTooLarge before anything is sent, instead of
	// being shipped to a server that refuses it. The default is DefaultMaxWriteSize,
	// the servers' default; a negative value disables the check.
	MaxWriteSize int
	// RPC configures the connections to replica and meta servers.
	RPC rpc.ClientOptions
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.OperationTimeout, 5*time.Second)
	def(&c.MinBackoff, 10*time.Millisecond)
	def(&c.MaxBackoff, time.Second)
	def(&c.RefreshInterval, 100*time.Millisecond)
	if c.MaxWriteSize == 0 {
		c.MaxWriteSize = DefaultMaxWriteSize
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RPC.Logger == nil {
		c.RPC.Logger = c.Logger
	}
}

// Client is a Pegasus data client: it resolves tables through the meta servers and
// sends data operations to the primary replica of each partition. Connections to
// replica servers are shared by every table opened from the client. All methods are
// safe for concurrent use.
type Client struct {
	cfg  Config
	log  *slog.Logger
	meta *rpc.MetaClient

	// ctx ends when the client is closed; background refreshes run under it.
	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*rpc.Client
	closed   bool

	// queries counts routing queries sent to the meta servers (for tests).
	queries atomic.Int64
}

// NewClient returns a client for the meta servers of cfg. It does not connect until
// the first call.
func NewClient(cfg Config) (*Client, error) {
	cfg.setDefaults()
	meta, err := rpc.NewMetaClient(cfg.MetaServers, rpc.MetaClientOptions{ClientOptions: cfg.RPC})
	if err != nil {
		return nil, fmt.Errorf("kv: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{
		cfg:      cfg,
		log:      cfg.Logger,
		meta:     meta,
		ctx:      ctx,
		cancel:   cancel,
		sessions: map[string]*rpc.Client{},
	}, nil
}

// Meta returns the meta server client, for admin calls that share the client's
// connections. It is closed by Close.
func (c *Client) Meta() *rpc.MetaClient { return c.meta }

// Close closes every connection and waits for background routing queries to end.
// Operations in flight fail; later ones fail with ErrClientClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	sessions := c.sessions
	c.sessions = map[string]*rpc.Client{}
	c.mu.Unlock()
	c.cancel()
	c.bg.Wait()
	for _, s := range sessions {
		s.Close()
	}
	return c.meta.Close()
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// session returns the pooled connection to a replica server; nil once closed.
func (c *Client) session(addr string) *rpc.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	s, ok := c.sessions[addr]
	if !ok {
		s = rpc.NewClient(addr, c.cfg.RPC)
		c.sessions[addr] = s
	}
	return s
}

// opContext bounds an operation by the operation timeout.
func (c *Client) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.OperationTimeout)
}

// OpenTable resolves a table through the meta servers. An unknown table fails at once
// with an error matching ErrTableNotFound. A table some of whose partitions have no
// primary yet (being created, or a primary just failed) is retried until the
// operation deadline.
func (c *Client) OpenTable(ctx context.Context, name string) (*Table, error) {
	const op = "OpenTable"
	if name == "" {
		return nil, invalidArg(op, name, "empty table name")
	}
	if c.isClosed() {
		return nil, &Error{Op: op, Table: name, Code: base.ErrSessionReset, Err: ErrClientClosed}
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	backoff := c.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		r, err := c.queryConfig(ctx, name)
		if err == nil && len(r.noPrimary) == 0 {
			t := &Table{c: c, name: name}
			t.route.Store(r)
			return t, nil
		}
		if err == nil {
			err = &Error{Op: op, Table: name, Code: base.ErrInvalidState,
				Err: fmt.Errorf("%w: partitions %v", ErrNoPrimary, r.noPrimary)}
		}
		var ke *Error
		if !errors.As(err, &ke) {
			return nil, err
		}
		ke.Op = op
		if ke.Code != base.ErrInvalidState && ke.Code != base.ErrBusyCreating {
			return nil, err
		}
		if !sleep(ctx, backoff, nil) {
			return nil, &Error{Op: op, Table: name, Code: ke.Code,
				Err: fmt.Errorf("gave up after %d attempts: %w; last error: %w", attempt, ctx.Err(), ke.Err)}
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

// sleep waits d, or until wake is closed; it reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// routing is one immutable routing table of a table.
type routing struct {
	appID     int32
	count     int
	parts     []partRoute
	noPrimary []int // partitions without a primary
}

type partRoute struct {
	ballot  int64
	primary string      // "" when there is none
	session *rpc.Client // nil when there is no primary
}

// queryConfig asks the meta servers for the routing table of name.
func (c *Client) queryConfig(ctx context.Context, name string) (*routing, error) {
	const op = "QueryConfig"
	c.queries.Add(1)
	resp, err := rpc.CallMeta[layer2.QueryCfgResponse](ctx, c.meta, rpc.CodeQueryConfig, &layer2.QueryCfgRequest{AppName: name})
	if err != nil {
		return nil, &Error{Op: op, Table: name, Code: rpc.ErrorCode(err), Err: err}
	}
	switch code := resp.Err.Name(); code {
	case base.ErrOK:
	case base.ErrObjectNotFound, base.ErrAppNotExist:
		return nil, &Error{Op: op, Table: name, Code: code, Err: ErrTableNotFound}
	default:
		return nil, &Error{Op: op, Table: name, Code: code, Err: errors.New("meta server refused the routing query")}
	}
	return c.buildRouting(name, resp)
}

// buildRouting validates a query_cfg answer the way the go-client does (partition
// count a power of two, one entry per partition), except that it accepts one
// partition. A serving partition (ballot >= 1) without a primary is listed in
// noPrimary: OpenTable refuses such a table for now, a refresh accepts it and routes
// nothing to that partition until a later refresh names a primary.
func (c *Client) buildRouting(name string, resp *layer2.QueryCfgResponse) (*routing, error) {
	bad := func(format string, args ...any) error {
		return &Error{Op: "QueryConfig", Table: name, Code: base.ErrInvalidData,
			Err: fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))}
	}
	n := int(resp.PartitionCount)
	if n < 1 || n&(n-1) != 0 {
		return nil, bad("partition count %d is not a power of two", n)
	}
	if len(resp.Partitions) != n {
		return nil, bad("%d partition entries for %d partitions", len(resp.Partitions), n)
	}
	r := &routing{appID: resp.AppID, count: n, parts: make([]partRoute, n)}
	seen := make([]bool, n)
	for _, pc := range resp.Partitions {
		if pc == nil || pc.Pid == nil {
			return nil, bad("partition entry without pid")
		}
		i := int(pc.Pid.PartitionIndex)
		if i < 0 || i >= n || seen[i] {
			return nil, bad("partition index %d repeated or out of range", i)
		}
		seen[i] = true
		p := partRoute{ballot: pc.Ballot}
		if pc.Primary.IsValid() {
			p.primary = pc.Primary.String()
			p.session = c.session(p.primary)
			if p.session == nil {
				return nil, &Error{Op: "QueryConfig", Table: name, Code: base.ErrSessionReset, Err: ErrClientClosed}
			}
		} else if pc.Ballot >= 1 {
			r.noPrimary = append(r.noPrimary, i)
		}
		r.parts[i] = p
	}
	return r, nil
}
