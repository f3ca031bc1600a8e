// Package metastore keeps the meta server's persistent state and elects the meta
// leader. Two implementations sit behind the same interfaces: ZooKeeper (the
// production path, [meta_server] meta_state_service_type =
// meta_state_service_zookeeper) and a local directory shared by the meta processes of
// one machine (meta_state_service_simple), for one-machine clusters and tests.
//
// The store is a tree of nodes addressed by slash-separated absolute paths, each
// holding a byte payload, like ZooKeeper's data model; the meta server keeps its
// tables under <cluster_root>/apps (see docs/operations.md).
package metastore

import (
	"context"
	"errors"
	"sync"
)

// Errors returned by Store methods; callers test them with errors.Is.
var (
	ErrNotFound = errors.New("metastore: node does not exist")
	ErrExists   = errors.New("metastore: node already exists")
	ErrNotEmpty = errors.New("metastore: node has children")
	ErrClosed   = errors.New("metastore: store closed")
	// ErrInvalidPath reports a path that is not absolute, has empty, "." or ".."
	// components, a trailing slash or a NUL byte.
	ErrInvalidPath = errors.New("metastore: invalid path")
)

// Store is the hierarchical key-value store holding the meta server state. Paths are
// absolute ("/pegasus/c1/apps/1"); "/" is the root and always exists (Create of "/"
// reports ErrExists, Delete of "/" ErrInvalidPath). Every method honours ctx: when
// ctx ends before the operation completes, the error wraps ctx.Err() (the operation
// may still take effect, as with any remote call). Store implementations are safe
// for concurrent use.
type Store interface {
	// Create makes a node; its parent must exist. ErrExists if it already does.
	Create(ctx context.Context, path string, data []byte) error
	// Set replaces a node's data. ErrNotFound if the node does not exist.
	Set(ctx context.Context, path string, data []byte) error
	// Get returns a node's data. ErrNotFound if the node does not exist.
	Get(ctx context.Context, path string) ([]byte, error)
	// Children lists the names (not paths) of a node's children, sorted.
	Children(ctx context.Context, path string) ([]string, error)
	// Delete removes a node without children. ErrNotEmpty if it has some; deleting a
	// missing node is not an error.
	Delete(ctx context.Context, path string) error
	// Close releases the store's resources.
	Close() error
}

// Elector runs the meta leader election among the meta servers of a cluster.
type Elector interface {
	// Campaign blocks until this candidate becomes the leader, or ctx ends. The
	// returned Term reports the end of the leadership. One campaign runs at a time
	// and not while a term of the same elector is live; once the term has ended,
	// the elector may campaign again. A campaign that fails leaves nothing that
	// could make this candidate the leader later.
	Campaign(ctx context.Context) (*Term, error)
	// Leader returns the address of the current leader, "" when there is none.
	Leader(ctx context.Context) (string, error)
	// Close withdraws from the election (ending a term held, making a running
	// Campaign return ErrClosed) and releases resources.
	Close() error
}

// Term is one period of leadership. Lost is closed as soon as the leadership may
// have passed to someone else (ZooKeeper session expired or was disconnected for too
// long, lock node deleted, Resign called): the leader must stop acting at once.
type Term struct {
	lost   chan struct{}
	once   sync.Once
	resign func()
}

// NewTerm returns a term and the function that ends it (safe to call more than
// once). resign, when not nil, is what Resign does; it should end the term.
func NewTerm(resign func()) (*Term, func()) {
	t := &Term{lost: make(chan struct{}), resign: resign}
	return t, func() { t.once.Do(func() { close(t.lost) }) }
}

// Lost is closed when the term has ended.
func (t *Term) Lost() <-chan struct{} { return t.lost }

// Resign gives the leadership up. The term has ended when Resign returns; calling
// it on an ended term does nothing.
func (t *Term) Resign() {
	if t.resign != nil {
		t.resign()
	}
}
