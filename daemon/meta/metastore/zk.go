package metastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// ZKStore is the ZooKeeper Store: one ZooKeeper session, shared by the store
// operations and the electors made from it.
//
// go-zookeeper calls take no context, so each call runs in its own goroutine and
// the caller stops waiting when its ctx ends; the goroutine itself ends when
// ZooKeeper answers or the connection fails, and at the latest when the store is
// closed. Calls that fail because the connection was lost are retried until the
// caller's deadline (or, without one, for one session timeout, after which the
// session may be gone and retrying blindly would hide the outage).
type ZKStore struct {
	conn           *zk.Conn
	log            *slog.Logger
	sessionTimeout time.Duration

	// ctx ends when the store is closed; background work derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	sess    sessionInfo
	changed chan struct{} // closed and replaced whenever sess changes
	calls   sync.WaitGroup
	closed  bool
}

// sessionInfo is what the store knows about its ZooKeeper session.
type sessionInfo struct {
	state zk.State
	// expiries counts the sessions lost so far. A change means every ephemeral
	// node and watch of the earlier session is gone, even though go-zookeeper
	// silently opens a new session.
	expiries uint64
}

// NewZK connects to the ZooKeeper ensemble hosts ("host:port") and waits until a
// session is established or ctx ends. sessionTimeout is the session timeout asked
// of the servers; it must lie within their [minSessionTimeout,
// maxSessionTimeout], because the lease of an elected leader is derived from it
// and go-zookeeper does not expose the negotiated value.
func NewZK(ctx context.Context, hosts []string, sessionTimeout time.Duration, logger *slog.Logger) (*ZKStore, error) {
	if len(hosts) == 0 {
		return nil, errors.New("connect zookeeper: empty host list")
	}
	if sessionTimeout <= 0 {
		return nil, fmt.Errorf("connect zookeeper: session timeout %v must be positive", sessionTimeout)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &ZKStore{
		log:            logger.With("zk", hosts),
		sessionTimeout: sessionTimeout,
		changed:        make(chan struct{}),
		sess:           sessionInfo{state: zk.StateDisconnected},
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	conn, _, err := zk.Connect(hosts, sessionTimeout,
		zk.WithLogger(zkLogger{s.log}),
		zk.WithEventCallback(s.onEvent))
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("connect zookeeper %v: %w", hosts, err)
	}
	// The event channel returned by Connect drops events when full, so the
	// callback is the reliable source and the channel is left unread.
	s.conn = conn
	if err := s.waitSession(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("connect zookeeper %v: %w", hosts, err)
	}
	return s, nil
}

// SessionTimeout returns the session timeout the store asked for.
func (s *ZKStore) SessionTimeout() time.Duration { return s.sessionTimeout }

// onEvent runs on go-zookeeper's goroutines and must not block.
func (s *ZKStore) onEvent(ev zk.Event) {
	if ev.Type != zk.EventSession {
		return
	}
	s.mu.Lock()
	prev := s.sess.state
	s.sess.state = ev.State
	if ev.State == zk.StateExpired {
		s.sess.expiries++
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()

	switch {
	case ev.State == zk.StateExpired:
		s.log.Warn("zookeeper session expired")
	case ev.State == zk.StateHasSession:
		s.log.Info("zookeeper session established", "server", ev.Server)
	case ev.State == zk.StateDisconnected && prev == zk.StateHasSession:
		s.log.Warn("disconnected from zookeeper", "server", ev.Server)
	case ev.State == zk.StateAuthFailed:
		s.log.Error("zookeeper authentication failed", "server", ev.Server)
	}
}

// session returns the current session info and a channel closed at its next
// change.
func (s *ZKStore) session() (sessionInfo, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sess, s.changed
}

func (s *ZKStore) waitSession(ctx context.Context) error {
	for {
		info, changed := s.session()
		if info.state == zk.StateHasSession {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return ErrClosed
		}
	}
}

// call runs one go-zookeeper call without retrying. Results written by op may
// only be read after call returned nil or a ZooKeeper error, never after it
// returned because ctx ended.
func (s *ZKStore) call(ctx context.Context, op func() error) error {
	// An ended context runs nothing: otherwise a quick op and the done
	// context race in the select below, and the call may succeed anyway.
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.calls.Add(1)
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		defer s.calls.Done()
		done <- op()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrClosed
	}
}

// retry runs op until it succeeds, fails for a reason other than a lost
// connection, or the deadline passes. ambiguous is told after each failed
// attempt whose request may have reached the server.
func (s *ZKStore) retry(ctx context.Context, op func() error, ambiguous func()) error {
	bounded := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		bounded, cancel = context.WithTimeout(ctx, s.sessionTimeout)
		defer cancel()
	}
	backoff := 20 * time.Millisecond
	for {
		err := s.call(bounded, op)
		if !transient(err) {
			if err != nil && bounded.Err() != nil && ctx.Err() == nil {
				// Our own bound ran out, not the caller's deadline.
				return fmt.Errorf("zookeeper unreachable for %v: %w", s.sessionTimeout, err)
			}
			return err
		}
		if ambiguous != nil && (errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrSessionExpired)) {
			ambiguous()
		}
		s.log.Debug("zookeeper call failed, retrying", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-bounded.Done():
			t.Stop()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("zookeeper unreachable for %v: %w", s.sessionTimeout, err)
		case <-s.ctx.Done():
			t.Stop()
			return ErrClosed
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// transient reports errors caused by the connection rather than the request:
// the same request may succeed once the client has reconnected.
func transient(err error) bool {
	return errors.Is(err, zk.ErrConnectionClosed) ||
		errors.Is(err, zk.ErrNoServer) ||
		errors.Is(err, zk.ErrSessionExpired) ||
		errors.Is(err, zk.ErrSessionMoved)
}

// mapErr turns go-zookeeper errors into the package's errors.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, zk.ErrNoNode):
		return ErrNotFound
	case errors.Is(err, zk.ErrNodeExists):
		return ErrExists
	case errors.Is(err, zk.ErrNotEmpty):
		return ErrNotEmpty
	case errors.Is(err, zk.ErrClosing):
		return ErrClosed
	case errors.Is(err, zk.ErrInvalidPath), errors.Is(err, zk.ErrBadArguments):
		return fmt.Errorf("%w: %v", ErrInvalidPath, err)
	}
	return err
}

// Create implements Store.
func (s *ZKStore) Create(ctx context.Context, path string, data []byte) error {
	parts, err := splitPath(path)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if len(parts) == 0 {
		return fmt.Errorf("create %s: %w", path, ErrExists)
	}
	if data == nil {
		data = []byte{}
	}
	maybeCreated := false
	err = s.retry(ctx, func() error {
		_, err := s.conn.Create(path, data, 0, zk.WorldACL(zk.PermAll))
		return err
	}, func() { maybeCreated = true })
	if errors.Is(err, zk.ErrNodeExists) && maybeCreated {
		// An earlier attempt may have created the node before the connection
		// dropped; that attempt is ours if the node holds our data.
		if got, gerr := s.Get(ctx, path); gerr == nil && bytes.Equal(got, data) {
			return nil
		}
	}
	if errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("create %s: parent %s: %w", path, joinPath(parts[:len(parts)-1]), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, mapErr(err))
	}
	return nil
}

// Set implements Store.
func (s *ZKStore) Set(ctx context.Context, path string, data []byte) error {
	if _, err := splitPath(path); err != nil {
		return fmt.Errorf("set: %w", err)
	}
	if data == nil {
		data = []byte{}
	}
	// Unconditional (version -1), so a retry after a lost reply is harmless.
	err := s.retry(ctx, func() error {
		_, err := s.conn.Set(path, data, -1)
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("set %s: %w", path, mapErr(err))
	}
	return nil
}

// Get implements Store.
func (s *ZKStore) Get(ctx context.Context, path string) ([]byte, error) {
	if _, err := splitPath(path); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	var data []byte
	err := s.retry(ctx, func() error {
		var err error
		data, _, err = s.conn.Get(path)
		return err
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", path, mapErr(err))
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

// Children implements Store.
func (s *ZKStore) Children(ctx context.Context, path string) ([]string, error) {
	if _, err := splitPath(path); err != nil {
		return nil, fmt.Errorf("children: %w", err)
	}
	var children []string
	err := s.retry(ctx, func() error {
		var err error
		children, _, err = s.conn.Children(path)
		return err
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("children %s: %w", path, mapErr(err))
	}
	sort.Strings(children)
	return children, nil
}

// Delete implements Store.
func (s *ZKStore) Delete(ctx context.Context, path string) error {
	parts, err := splitPath(path)
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if len(parts) == 0 {
		return fmt.Errorf("delete %s: %w: the root cannot be deleted", path, ErrInvalidPath)
	}
	err = s.retry(ctx, func() error { return s.conn.Delete(path, -1) }, nil)
	if err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("delete %s: %w", path, mapErr(err))
	}
	return nil
}

// Close ends the session, which deletes its ephemeral nodes (ending the terms of
// electors made from this store), and waits for the calls in flight.
func (s *ZKStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.conn.Close()
	s.calls.Wait()
	return nil
}

// zkLogger routes go-zookeeper's messages (connection attempts, loop exits) to
// slog at debug level; the store logs the session changes that matter itself.
type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "go-zookeeper")
}
