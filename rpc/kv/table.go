package kv

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/rpc"
)

// Table is an opened table. It keeps the table's routing table and refreshes it from
// the meta servers when a replica says it is not (or no longer) the primary. All
// methods are safe for concurrent use.
type Table struct {
	c     *Client
	name  string
	route atomic.Pointer[routing]

	mu        sync.Mutex
	inflight  chan struct{} // closed when the running routing query ends; nil if none
	lastQuery time.Time     // start of the last routing query
	gone      bool          // the last routing query said the table does not exist
}

// Name returns the table name.
func (t *Table) Name() string { return t.name }

// AppID returns the table id.
func (t *Table) AppID() int32 { return t.route.Load().appID }

// PartitionCount returns the number of partitions.
func (t *Table) PartitionCount() int { return t.route.Load().count }

// PartitionOf returns the partition a hash key belongs to.
func (t *Table) PartitionOf(hashKey []byte) int {
	return rpc.PartitionIndex(rpc.PartitionHash(hashKey), t.route.Load().count)
}

// Primary returns the address of the primary of partition pidx as last learned from
// the meta servers, "" when there is none or pidx is out of range.
func (t *Table) Primary(pidx int) string {
	r := t.route.Load()
	if pidx < 0 || pidx >= r.count {
		return ""
	}
	return r.parts[pidx].primary
}

// HashKeyForPartition returns a hash key that routes to partition pidx: prefix
// followed by the smallest decimal number that makes it land there. The result is
// deterministic, so probes write the same keys every time. It returns nil when pidx
// is out of range.
func (t *Table) HashKeyForPartition(pidx int, prefix string) []byte {
	count := t.PartitionCount()
	if pidx < 0 || pidx >= count {
		return nil
	}
	buf := []byte(prefix)
	for i := 0; ; i++ {
		hk := strconv.AppendInt(buf[:len(prefix):len(prefix)], int64(i), 10)
		if rpc.PartitionIndex(rpc.PartitionHash(hk), count) == pidx {
			return hk
		}
	}
}

// refresh starts a routing query unless one is running or the last one started less
// than RefreshInterval ago. It returns a channel closed when the running query ends,
// or nil when none runs.
func (t *Table) refresh() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inflight != nil {
		return t.inflight
	}
	if time.Since(t.lastQuery) < t.c.cfg.RefreshInterval {
		return nil
	}
	c := t.c
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	// Added under c.mu so that Close, which sets closed under it, waits for us.
	c.bg.Add(1)
	c.mu.Unlock()
	done := make(chan struct{})
	t.inflight = done
	t.lastQuery = time.Now()
	go func() {
		defer c.bg.Done()
		// Detached from the operation that asked: its deadline must not cut short
		// a query every other caller of the table is waiting for.
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.OperationTimeout)
		r, err := c.queryConfig(ctx, t.name)
		cancel()
		t.mu.Lock()
		switch {
		case err == nil:
			t.route.Store(r)
			t.gone = false
		case errors.Is(err, ErrTableNotFound):
			t.gone = true
		}
		t.inflight = nil
		t.mu.Unlock()
		close(done)
		if err != nil {
			c.log.Debug("routing refresh failed, keeping the old routing table", "table", t.name, "err", err)
		} else {
			c.log.Debug("routing refreshed", "table", t.name, "app_id", r.appID, "partitions", r.count)
		}
	}()
	return done
}

func (t *Table) isGone() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gone
}

// target picks the partition of one attempt from the current routing table.
type target func(r *routing) (pidx int, hash uint64, err error)

// byHashKey routes by the partition hash of a hash key.
func byHashKey(hashKey []byte) target {
	hash := rpc.PartitionHash(hashKey)
	return func(r *routing) (int, uint64, error) {
		return rpc.PartitionIndex(hash, r.count), hash, nil
	}
}

// byPartition routes to a fixed partition with a given header partition hash.
func byPartition(pidx int, hash uint64) target {
	return func(r *routing) (int, uint64, error) {
		if pidx < 0 || pidx >= r.count {
			return 0, 0, fmt.Errorf("%w: partition %d of %d", ErrInvalidArgument, pidx, r.count)
		}
		return pidx, hash, nil
	}
}

// opSpec describes an operation for the retry loop.
type opSpec struct {
	name string
	code string
	// safeOnly: the operation must not be executed twice, so it is retried only
	// after errors proving the replica did not execute it.
	safeOnly bool
	// write: the request is a write, which a replica server refuses when it is
	// larger than its max_allowed_write_size.
	write bool
}

// call runs one rrdb RPC with routing, retries and back-off, and decodes the reply
// into a fresh *R. Only frame-level and transport errors are handled here; the rrdb
// error field is for the caller to interpret.
func call[R any, PR interface {
	*R
	rpc.Value
}](ctx context.Context, t *Table, op opSpec, to target, args rpc.Value) (PR, error) {
	v, err := t.do(ctx, op, to, args, func() rpc.Value { return PR(new(R)) })
	if err != nil {
		return nil, err
	}
	return v.(PR), nil
}

// do is the retry loop: it sends the request until it gets an answer, a final error,
// or the operation deadline passes. Retried errors trigger a (rate-limited) routing
// refresh; the pause between attempts doubles from MinBackoff to MaxBackoff but ends
// early when a refresh completes.
func (t *Table) do(ctx context.Context, op opSpec, to target, args rpc.Value, newResp func() rpc.Value) (rpc.Value, error) {
	c := t.c
	size := -1 // encoded size of a write, when measured
	if op.write && c.cfg.MaxWriteSize > 0 {
		var err error
		if size, err = rpc.ArgsSize(args); err != nil {
			return nil, &Error{Op: op.name, Table: t.name, Code: base.ErrInvalidParameters, Err: fmt.Errorf("%w: encode the request: %w", ErrInvalidArgument, err)}
		}
		if size > c.cfg.MaxWriteSize {
			return nil, &Error{Op: op.name, Table: t.name, Code: base.ErrInvalidParameters,
				Err: fmt.Errorf("%w: %w: the request is %d bytes, over the limit of %d bytes (Config.MaxWriteSize; replica servers refuse writes over their [replication] max_allowed_write_size, 1 MiB by default)",
					ErrInvalidArgument, ErrWriteTooLarge, size, c.cfg.MaxWriteSize)}
		}
	}
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	backoff := c.cfg.MinBackoff
	var answered error // the last attempt a replica answered with an error
	for attempt := 1; ; attempt++ {
		resp := newResp()
		err := t.attempt(ctx, op, to, args, resp)
		if err == nil {
			return resp, nil
		}
		var fe *rpc.Error
		switch {
		case errors.As(err, &fe):
			answered = err
		case ctx.Err() != nil && answered != nil:
			// The deadline cut short an attempt that had no answer yet: what
			// the replica answered before says more than ERR_TIMEOUT.
			err = fmt.Errorf("%w; the attempt before was answered: %w", err, answered)
		}
		if !retryable(err, op.safeOnly) || ctx.Err() != nil {
			if op.write && rpc.ErrorCode(err) == base.ErrInvalidData {
				err = refusedWrite(args, size, err)
			}
			return nil, t.fail(ctx, op, attempt, err)
		}
		c.log.Debug("retrying", "op", op.name, "table", t.name, "attempt", attempt, "err", err)
		wake := t.refresh()
		if !sleep(ctx, backoff, wake) {
			return nil, t.fail(ctx, op, attempt, err)
		}
		if wake != nil && t.isGone() {
			return nil, &Error{Op: op.name, Table: t.name, Code: base.ErrObjectNotFound,
				Err: fmt.Errorf("%w (dropped?); last error: %w", ErrTableNotFound, err)}
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

// refusedWrite explains a write the server answered with ERR_INVALID_DATA: the frame
// error carries no message, and the likely cause, a request over the server's
// max_allowed_write_size, is only visible from here. size is the request's encoded
// size, or -1 when it was not measured yet.
func refusedWrite(args rpc.Value, size int, err error) error {
	if size < 0 {
		var serr error
		if size, serr = rpc.ArgsSize(args); serr != nil {
			return err
		}
	}
	return fmt.Errorf("the server refused the write as invalid or too large (the request is %d bytes; replica servers refuse writes over their [replication] max_allowed_write_size, 1 MiB by default): %w", size, err)
}

// attempt sends one request to the primary the current routing table names.
func (t *Table) attempt(ctx context.Context, op opSpec, to target, args, resp rpc.Value) error {
	r := t.route.Load()
	pidx, hash, err := to(r)
	if err != nil {
		return err
	}
	// A split child that is not ready yet (ballot < 0) is still served by its parent.
	if r.parts[pidx].ballot < 0 && r.count >= 2 && pidx >= r.count/2 {
		pidx -= r.count / 2
	}
	p := r.parts[pidx]
	if p.session == nil {
		return fmt.Errorf("%w: %d.%d", ErrNoPrimary, r.appID, pidx)
	}
	actx := ctx
	if d := t.c.cfg.AttemptTimeout; d > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	err = p.session.Call(actx, rpc.Request{Code: op.code, AppID: r.appID, PartitionIndex: int32(pidx), PartitionHash: hash, Args: args}, resp)
	if err != nil {
		if actx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w after %v: %w", errAttemptTimeout, t.c.cfg.AttemptTimeout, err)
		}
		return fmt.Errorf("%s to %s (gpid %d.%d): %w", op.code, p.primary, r.appID, pidx, err)
	}
	return nil
}

// fail builds the error of an operation that stops retrying.
func (t *Table) fail(ctx context.Context, op opSpec, attempts int, last error) error {
	if errors.Is(last, rpc.ErrClientClosed) || t.c.isClosed() {
		return &Error{Op: op.name, Table: t.name, Code: base.ErrSessionReset, Err: fmt.Errorf("%w: %w", ErrClientClosed, last)}
	}
	if errors.Is(last, ErrInvalidArgument) {
		return &Error{Op: op.name, Table: t.name, Code: base.ErrInvalidParameters, Err: last}
	}
	code := rpc.ErrorCode(last)
	if errors.Is(last, ErrNoPrimary) {
		code = base.ErrObjectNotFound
	}
	if ctx.Err() != nil && !errors.Is(last, ctx.Err()) {
		last = fmt.Errorf("gave up after %d attempts: %w; last error: %w", attempts, ctx.Err(), last)
	}
	return &Error{Op: op.name, Table: t.name, Code: code, Err: last}
}
