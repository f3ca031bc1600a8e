package metastore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// lockNodePrefix names the candidates' nodes in the lock dir, as upstream does;
// go-zookeeper's protected create puts "_c_<guid>-" in front of it.
const lockNodePrefix = "LOCKNODE"

// errNodeLost means the candidate's lock node disappeared (its session expired
// or someone deleted it) and a new one is needed.
var errNodeLost = errors.New("lock node lost")

// NewElector returns an elector running the ZooKeeper lock recipe in lockDir (the
// full path, e.g. "<cluster_root>/lock/dsn.meta.server.leader", created on
// demand) for the candidate selfAddr ("host:port", the data of its lock node).
//
// Each candidate creates an ephemeral sequential node holding its address; the
// smallest sequence number holds the lock. Losers watch the owner's node (not
// their predecessor: every loser re-checks when the owner goes, as upstream
// does). A candidate that finds an older node with its own address, left by its
// previous incarnation or by a create whose reply was lost, deletes it.
//
// A leader's term is lost at once when the session expires, when its lock node
// is deleted, and when it has not heard from ZooKeeper for 2/3 of the session
// timeout: the servers may expire the session after one full timeout and
// another candidate may win, so the leader steps down before that can happen.
// The latter is measured from the send time of the last successful request of a
// probe sent every 1/8 of the timeout, because go-zookeeper itself only notices
// a silent server after 2/3 of the timeout.
//
// The elector uses its store's session, so an elector's term also ends when the
// store is closed. Several electors may share a store if their addresses differ.
func (s *ZKStore) NewElector(lockDir, selfAddr string) Elector {
	ctx, cancel := context.WithCancel(s.ctx)
	return &zkElector{
		s:      s,
		dir:    lockDir,
		self:   selfAddr,
		log:    s.log.With("lock", lockDir, "self", selfAddr),
		ctx:    ctx,
		cancel: cancel,
	}
}

type zkElector struct {
	s    *ZKStore
	dir  string
	self string
	log  *slog.Logger

	// ctx ends when the elector or its store is closed.
	ctx    context.Context
	cancel context.CancelFunc

	mu          sync.Mutex
	campaigning bool
	leading     bool // a term is live
	closed      bool
	wg          sync.WaitGroup // monitors and node clean-ups
}

// lockNode is one candidate's node in the lock dir.
type lockNode struct {
	name string
	seq  int64
}

// Campaign implements Elector. It fails when a campaign is already running or
// a term of this elector is still live.
func (e *zkElector) Campaign(ctx context.Context) (*Term, error) {
	e.mu.Lock()
	switch {
	case e.closed:
		e.mu.Unlock()
		return nil, fmt.Errorf("campaign %s: %w", e.dir, ErrClosed)
	case e.campaigning:
		e.mu.Unlock()
		return nil, fmt.Errorf("campaign %s: a campaign is already running", e.dir)
	case e.leading:
		e.mu.Unlock()
		return nil, fmt.Errorf("campaign %s: already leader", e.dir)
	}
	e.campaigning = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.campaigning = false
		e.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel)
	defer stop()

	backoff := 100 * time.Millisecond
	for {
		// The lock directory is made in the loop: a campaign that starts
		// while ZooKeeper is unreachable waits for it like any attempt,
		// instead of failing (Campaign blocks until leader or ctx ends).
		var term *Term
		err := EnsurePath(ctx, e.s, e.dir)
		if err == nil {
			term, err = e.attempt(ctx)
		}
		if err == nil {
			return term, nil
		}
		if ctx.Err() != nil {
			if !errors.Is(err, ctx.Err()) {
				err = fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
			}
			return nil, fmt.Errorf("campaign %s: %w", e.dir, e.ctxErr(ctx, err))
		}
		e.log.Info("lock attempt failed, retrying", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("campaign %s: %w", e.dir, e.ctxErr(ctx, ctx.Err()))
		}
		backoff = min(backoff*2, time.Second)
	}
}

// ctxErr reports ErrClosed rather than a cancellation caused by Close.
func (e *zkElector) ctxErr(ctx context.Context, err error) error {
	if e.ctx.Err() != nil && ctx.Err() != nil {
		return ErrClosed
	}
	return err
}

// attempt creates a lock node and waits until it is the smallest. On any
// failure the node is withdrawn, so a candidate that gave up cannot win.
func (e *zkElector) attempt(ctx context.Context) (*Term, error) {
	node, err := e.createNode(ctx)
	if err != nil {
		return nil, err
	}
	won := false
	defer func() {
		if !won {
			e.deleteNode(node)
		}
	}()
	for {
		nodes, err := e.list(ctx)
		if err != nil {
			return nil, err
		}
		mine := -1
		for i, n := range nodes {
			if n.name == node {
				mine = i
				break
			}
		}
		if mine < 0 {
			return nil, errNodeLost
		}
		if mine == 0 {
			term, err := e.startTerm(ctx, node)
			if err != nil {
				return nil, err
			}
			won = true
			return term, nil
		}
		// Older nodes with our address are stale incarnations of ourselves:
		// waiting for them would wait for our own session to expire.
		dup := false
		for _, n := range nodes[1:mine] {
			data, err := e.s.Get(ctx, e.dir+"/"+n.name)
			if err == nil && string(data) == e.self {
				e.log.Info("deleting stale lock node with our address", "node", n.name)
				if err := e.s.Delete(ctx, e.dir+"/"+n.name); err != nil {
					return nil, err
				}
				dup = true
			}
		}
		if dup {
			continue
		}
		owner := e.dir + "/" + nodes[0].name
		var data []byte
		var watch <-chan zk.Event
		err = e.s.retry(ctx, func() error {
			var err error
			data, _, watch, err = e.s.conn.GetW(owner)
			return err
		}, nil)
		if errors.Is(err, zk.ErrNoNode) {
			continue // the owner just went: look again
		}
		if err != nil {
			return nil, fmt.Errorf("watch lock owner %s: %w", owner, mapErr(err))
		}
		if string(data) == e.self {
			e.log.Info("deleting stale lock owner with our address", "node", nodes[0].name)
			if err := e.s.Delete(ctx, owner); err != nil {
				return nil, err
			}
			continue
		}
		e.log.Debug("waiting for the lock owner", "owner", string(data), "node", nodes[0].name)
		select {
		case <-watch:
			// Deleted, changed, or the watch was dropped with the session:
			// in every case the list must be read again.
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// createNode creates this candidate's ephemeral sequential node and returns its
// name.
func (e *zkElector) createNode(ctx context.Context) (string, error) {
	type result struct {
		path string
		err  error
	}
	res := make(chan result, 1)
	var mu sync.Mutex
	abandoned := false
	started := e.spawn(func() {
		// The protected create finds its node again when the connection drops
		// during the request, instead of leaving an orphan that could win the
		// lock for a candidate that thinks it failed.
		p, err := e.s.conn.CreateProtectedEphemeralSequential(
			e.dir+"/"+lockNodePrefix, []byte(e.self), zk.WorldACL(zk.PermAll))
		mu.Lock()
		defer mu.Unlock()
		if !abandoned {
			res <- result{p, err}
		} else if err == nil {
			e.deleteNode(baseName(p)) // nobody waits for this node any more
		}
	})
	if !started {
		return "", ErrClosed
	}
	select {
	case r := <-res:
		if r.err != nil {
			return "", fmt.Errorf("create lock node in %s: %w", e.dir, mapErr(r.err))
		}
		return baseName(r.path), nil
	case <-ctx.Done():
		mu.Lock()
		abandoned = true
		mu.Unlock()
		select {
		case r := <-res: // delivered just before we gave up
			if r.err == nil {
				e.deleteNode(baseName(r.path))
			}
		default:
		}
		return "", ctx.Err()
	}
}

// spawn runs f in a goroutine that Close waits for; false when closed.
func (e *zkElector) spawn(f func()) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f()
	}()
	return true
}

func baseName(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

// list returns the lock nodes sorted by sequence number.
func (e *zkElector) list(ctx context.Context) ([]lockNode, error) {
	names, err := e.s.Children(ctx, e.dir)
	if err != nil {
		return nil, err
	}
	nodes := make([]lockNode, 0, len(names))
	for _, name := range names {
		i := strings.LastIndex(name, lockNodePrefix)
		if i < 0 {
			continue
		}
		seq, err := strconv.ParseInt(name[i+len(lockNodePrefix):], 10, 64)
		if err != nil {
			continue
		}
		nodes = append(nodes, lockNode{name: name, seq: seq})
	}
	sort.Slice(nodes, func(i, j int) bool {
		if nodes[i].seq != nodes[j].seq {
			return nodes[i].seq < nodes[j].seq
		}
		return nodes[i].name < nodes[j].name
	})
	return nodes, nil
}

// Leader implements Elector: the address stored in the owner's node.
func (e *zkElector) Leader(ctx context.Context) (string, error) {
	for i := 0; ; i++ {
		nodes, err := e.list(ctx)
		if errors.Is(err, ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("leader of %s: %w", e.dir, err)
		}
		if len(nodes) == 0 {
			return "", nil
		}
		data, err := e.s.Get(ctx, e.dir+"/"+nodes[0].name)
		if errors.Is(err, ErrNotFound) && i < 10 {
			continue // the owner went between the two reads
		}
		if err != nil {
			return "", fmt.Errorf("leader of %s: %w", e.dir, err)
		}
		return string(data), nil
	}
}

// Close implements Elector: it ends a live term, withdraws the lock node and
// stops the campaign and the background work.
func (e *zkElector) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	return nil
}

// startTerm turns the winning node into a term watched by a monitor goroutine.
func (e *zkElector) startTerm(ctx context.Context, node string) (*Term, error) {
	path := e.dir + "/" + node
	// Taken before the watch is set, so an expiry right after it is noticed.
	info, _ := e.s.session()
	sent := time.Now()
	var exists bool
	var stat *zk.Stat
	var watch <-chan zk.Event
	err := e.s.call(ctx, func() error {
		var err error
		exists, stat, watch, err = e.s.conn.ExistsW(path)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("watch own lock node %s: %w", path, mapErr(err))
	}
	if !exists || stat.EphemeralOwner != e.s.conn.SessionID() {
		return nil, errNodeLost
	}

	m := &monitor{
		e:        e,
		node:     node,
		owner:    stat.EphemeralOwner,
		expiries: info.expiries,
		watch:    watch,
		resign:   make(chan struct{}),
		resigned: make(chan struct{}),
	}
	var once sync.Once
	term, end := NewTerm(func() {
		once.Do(func() { close(m.resign) })
		<-m.resigned
	})
	m.end = end
	e.mu.Lock()
	e.leading = true
	e.mu.Unlock()
	if !e.spawn(func() { m.run(sent) }) {
		e.mu.Lock()
		e.leading = false
		e.mu.Unlock()
		return nil, ErrClosed
	}
	e.log.Info("won the leader lock", "node", node)
	return term, nil
}

// monitor watches a live term and ends it at the first sign that the lock may
// have passed to someone else.
type monitor struct {
	e        *zkElector
	node     string
	owner    int64  // session that owns the node
	expiries uint64 // session expiries seen when the term started
	watch    <-chan zk.Event
	end      func()
	resign   chan struct{} // closed by Resign
	resigned chan struct{} // closed once Resign may return
}

type probeResult struct {
	sent   time.Time
	exists bool
	owner  int64
	watch  <-chan zk.Event
	err    error
}

func (m *monitor) run(leaseStart time.Time) {
	e := m.e
	lease := e.s.sessionTimeout * 2 / 3
	expiry := time.NewTimer(time.Until(leaseStart.Add(lease)))
	defer expiry.Stop()
	ticker := time.NewTicker(max(e.s.sessionTimeout/8, 10*time.Millisecond))
	defer ticker.Stop()
	var probe chan probeResult // nil while no probe is in flight
	info, changed := e.s.session()

	reason := ""
	for reason == "" {
		if info.expiries != m.expiries {
			reason = "zookeeper session expired"
			break
		}
		select {
		case ev := <-m.watch:
			switch ev.Type {
			case zk.EventNodeDataChanged:
				m.watch = nil // re-armed by the next probe
			case zk.EventNodeDeleted:
				reason = "lock node deleted"
			default:
				reason = fmt.Sprintf("lock node watch ended (%v, %v)", ev.Type, ev.Err)
			}
		case <-changed:
			info, changed = e.s.session()
		case <-ticker.C:
			if probe == nil {
				ch := make(chan probeResult, 1)
				rewatch := m.watch == nil
				if e.spawn(func() { m.probe(ch, rewatch) }) {
					probe = ch
				}
			}
		case r := <-probe:
			probe = nil
			switch {
			case errors.Is(r.err, zk.ErrSessionExpired):
				reason = "zookeeper session expired"
			case r.err != nil:
				// Connection trouble: the lease timer decides.
			case !r.exists:
				reason = "lock node deleted"
			case r.owner != m.owner:
				reason = "lock node owned by another session"
			default:
				if r.watch != nil {
					m.watch = r.watch
				}
				expiry.Reset(time.Until(r.sent.Add(lease)))
			}
		case <-expiry.C:
			reason = fmt.Sprintf("no answer from zookeeper for %v (2/3 of the session timeout)", lease)
		case <-m.resign:
			reason = "resigned"
		case <-e.ctx.Done():
			reason = "elector or store closed"
		}
	}
	// Stop acting first: the node is deleted only afterwards, so nobody can
	// win while this term still looks live.
	e.mu.Lock()
	e.leading = false
	e.mu.Unlock()
	m.end()
	e.log.Warn("leader term ended", "reason", reason, "node", m.node)
	m.cleanup(reason)
}

// probe checks the own node; a reply proves the session was alive when the
// request was sent.
func (m *monitor) probe(out chan<- probeResult, rewatch bool) {
	s := m.e.s
	path := m.e.dir + "/" + m.node
	ctx, cancel := context.WithTimeout(m.e.ctx, s.sessionTimeout)
	defer cancel()
	r := probeResult{sent: time.Now()}
	var stat *zk.Stat
	r.err = s.call(ctx, func() error {
		var err error
		if rewatch {
			r.exists, stat, r.watch, err = s.conn.ExistsW(path)
		} else {
			r.exists, stat, err = s.conn.Exists(path)
		}
		return err
	})
	if r.err == nil && r.exists {
		r.owner = stat.EphemeralOwner
	}
	out <- r
}

// cleanup deletes the node of an ended term. After a lost connection the
// session may survive, and with it the node, which would keep everybody else
// from winning: keep trying until the node or its session is gone.
func (m *monitor) cleanup(reason string) {
	e := m.e
	resignedOnce := sync.OnceFunc(func() { close(m.resigned) })
	defer resignedOnce()
	for {
		err := e.deleteNodeOnce(m.node)
		// Resign returns once the node is gone or one attempt failed: it must
		// not hang for as long as ZooKeeper is unreachable.
		resignedOnce()
		if err == nil {
			return
		}
		info, _ := e.s.session()
		if info.expiries != m.expiries || e.ctx.Err() != nil {
			return // the node went with its session, or will with the store
		}
		e.log.Debug("deleting lock node of ended term failed, retrying", "err", err, "reason", reason)
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-t.C:
		case <-e.ctx.Done():
			t.Stop()
			// One last try, so a closed elector does not leave its node
			// behind while the store lives on.
			_ = e.deleteNodeOnce(m.node)
			return
		}
	}
}

// deleteNodeOnce deletes a lock node of this elector, bounded by half a session
// timeout so that Close and Resign cannot hang on an unreachable ZooKeeper.
func (e *zkElector) deleteNodeOnce(node string) error {
	ctx, cancel := context.WithTimeout(e.s.ctx, e.s.sessionTimeout/2)
	defer cancel()
	return e.s.Delete(ctx, e.dir+"/"+node)
}

// deleteNode deletes a lock node, logging failure: whatever is left goes with the
// session, or is removed by this address's next campaign.
func (e *zkElector) deleteNode(node string) {
	if err := e.deleteNodeOnce(node); err != nil {
		e.log.Warn("could not withdraw lock node", "node", node, "err", err)
	}
}
