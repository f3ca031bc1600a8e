package metastore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// Files of a local store's directory.
const (
	localTreeDir    = "tree"   // the root node
	localLockFile   = "lock"   // flocked by the leader
	localLeaderFile = "leader" // the leader's address
	localDataFile   = "data"   // a node's payload, inside the node's directory
	// Child nodes are directories named with this prefix, so that node names can
	// never collide with the data file or with temporary files.
	localChildPrefix = "c."
	localTempPrefix  = "tmp-"
	localTrashPrefix = "del-"
)

// LocalStore is the embedded Store of one-machine clusters: a directory tree
// shared by the meta processes of the machine, of which only the leader writes
// (the others read it, and take over when the leader dies).
//
// Each node is a directory holding a data file; children are sub-directories.
// Every change goes through a temporary file or directory that is fsynced and
// renamed into place, and the parent directory is fsynced after the rename, so
// a crash leaves either the old or the new state of the node and readers never
// see a partial write. Directories left by a crash between the steps carry
// temporary names that are never listed.
type LocalStore struct {
	dir  string
	tree string

	// mu serialises this process's writers: checks such as "has no children"
	// and the change that follows must not interleave. Other processes are
	// expected not to write while this one does (only the leader writes).
	mu       sync.Mutex
	closed   bool
	electors []*localElector
}

// NewLocal opens (creating it if needed) the local store in dir.
func NewLocal(dir string) (*LocalStore, error) {
	if dir == "" {
		return nil, errors.New("open local metastore: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open local metastore %s: %w", dir, err)
	}
	tree := filepath.Join(abs, localTreeDir)
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return nil, fmt.Errorf("open local metastore %s: %w", dir, err)
	}
	return &LocalStore{dir: abs, tree: tree}, nil
}

// Dir returns the store's directory.
func (s *LocalStore) Dir() string { return s.dir }

// nodeDir maps path components to the node's directory.
func (s *LocalStore) nodeDir(parts []string) string {
	elems := make([]string, 0, len(parts)+1)
	elems = append(elems, s.tree)
	for _, p := range parts {
		elems = append(elems, localChildPrefix+p)
	}
	return filepath.Join(elems...)
}

// begin validates the call and returns the path's components.
func (s *LocalStore) begin(ctx context.Context, path string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.isClosed() {
		return nil, ErrClosed
	}
	return splitPath(path)
}

func (s *LocalStore) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Create implements Store.
func (s *LocalStore) Create(ctx context.Context, path string, data []byte) error {
	parts, err := s.begin(ctx, path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if len(parts) == 0 {
		return fmt.Errorf("create %s: %w", path, ErrExists)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	parent := s.nodeDir(parts[:len(parts)-1])
	target := s.nodeDir(parts)
	if _, err := os.Stat(parent); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("create %s: parent %s: %w", path, joinPath(parts[:len(parts)-1]), ErrNotFound)
		}
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := os.Stat(target); err == nil {
		return fmt.Errorf("create %s: %w", path, ErrExists)
	}

	tmp, err := os.MkdirTemp(parent, localTempPrefix)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := writeFileSync(filepath.Join(tmp, localDataFile), data); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := syncDir(tmp); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("create %s: %w", path, err)
	}
	// The node directory is never empty (it holds its data file), so rename
	// fails instead of replacing a node another process created meanwhile.
	if err := os.Rename(tmp, target); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("create %s: %w", path, ErrExists)
		}
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// Set implements Store.
func (s *LocalStore) Set(ctx context.Context, path string, data []byte) error {
	parts, err := s.begin(ctx, path)
	if err != nil {
		return fmt.Errorf("set %s: %w", path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	node := s.nodeDir(parts)
	if _, err := os.Stat(node); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("set %s: %w", path, ErrNotFound)
		}
		return fmt.Errorf("set %s: %w", path, err)
	}
	if err := replaceFile(node, localDataFile, data); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("set %s: %w", path, ErrNotFound)
		}
		return fmt.Errorf("set %s: %w", path, err)
	}
	return nil
}

// Get implements Store.
func (s *LocalStore) Get(ctx context.Context, path string) ([]byte, error) {
	parts, err := s.begin(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", path, err)
	}
	node := s.nodeDir(parts)
	data, err := os.ReadFile(filepath.Join(node, localDataFile))
	if err == nil {
		return data, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("get %s: %w", path, err)
	}
	if len(parts) == 0 {
		return []byte{}, nil // the root has no data file until it is set
	}
	return nil, fmt.Errorf("get %s: %w", path, ErrNotFound)
}

// Children implements Store.
func (s *LocalStore) Children(ctx context.Context, path string) ([]string, error) {
	parts, err := s.begin(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("children %s: %w", path, err)
	}
	names, err := childNames(s.nodeDir(parts))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("children %s: %w", path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("children %s: %w", path, err)
	}
	return names, nil
}

func childNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), localChildPrefix) {
			names = append(names, strings.TrimPrefix(e.Name(), localChildPrefix))
		}
	}
	sort.Strings(names)
	return names, nil
}

// Delete implements Store.
func (s *LocalStore) Delete(ctx context.Context, path string) error {
	parts, err := s.begin(ctx, path)
	if err != nil {
		return fmt.Errorf("delete %s: %w", path, err)
	}
	if len(parts) == 0 {
		return fmt.Errorf("delete %s: %w: the root cannot be deleted", path, ErrInvalidPath)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	node := s.nodeDir(parts)
	children, err := childNames(node)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", path, err)
	}
	if len(children) > 0 {
		return fmt.Errorf("delete %s: %w", path, ErrNotEmpty)
	}
	// Renaming the node away is the atomic step; removing the renamed
	// directory afterwards can be interrupted without harm.
	parent := filepath.Dir(node)
	trash, err := os.MkdirTemp(parent, localTrashPrefix)
	if err != nil {
		return fmt.Errorf("delete %s: %w", path, err)
	}
	if err := os.Rename(node, filepath.Join(trash, "node")); err != nil {
		os.Remove(trash)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", path, err)
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("delete %s: %w", path, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("delete %s: remove %s: %w", path, trash, err)
	}
	return nil
}

// Close implements Store; it also closes the electors made from the store,
// ending their terms as closing a ZooKeeper session would.
func (s *LocalStore) Close() error {
	s.mu.Lock()
	s.closed = true
	electors := s.electors
	s.electors = nil
	s.mu.Unlock()
	for _, e := range electors {
		e.Close()
	}
	return nil
}

// replaceFile atomically replaces dir/name with data.
func replaceFile(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, name+"."+localTempPrefix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// writeFileSync writes a new file and fsyncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a directory's entries (renames, creations) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
