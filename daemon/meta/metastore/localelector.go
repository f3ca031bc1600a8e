package metastore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// localPollInterval is how often a local candidate retries the lock. flock has
// no wait-with-timeout, and a blocking flock cannot be cancelled by ctx.
const localPollInterval = 150 * time.Millisecond

// NewElector returns an elector for the meta processes sharing this store's
// directory. Leadership is an exclusive flock on the store's lock file; the
// leader writes its address to the leader file. The kernel drops the lock of a
// process that dies, however it dies, which is how another candidate takes over.
// flock belongs to an open file description, so electors of different
// LocalStores (even in one process) compete like separate processes. A term is
// lost only through Resign or Close: the lock cannot be taken away.
func (s *LocalStore) NewElector(selfAddr string) Elector {
	e := &localElector{
		s:          s,
		self:       selfAddr,
		lockPath:   filepath.Join(s.dir, localLockFile),
		leaderPath: filepath.Join(s.dir, localLeaderFile),
		done:       make(chan struct{}),
	}
	s.mu.Lock()
	if s.closed {
		e.closed = true
		close(e.done)
	} else {
		s.electors = append(s.electors, e)
	}
	s.mu.Unlock()
	return e
}

type localElector struct {
	s          *LocalStore
	self       string
	lockPath   string
	leaderPath string
	done       chan struct{} // closed by Close

	mu          sync.Mutex
	closed      bool
	campaigning bool
	held        *os.File // the locked descriptor while a term is live
	end         func()
}

// Campaign implements Elector. It fails when a campaign is already running or
// a term of this elector is still live.
func (e *localElector) Campaign(ctx context.Context) (*Term, error) {
	e.mu.Lock()
	switch {
	case e.closed:
		e.mu.Unlock()
		return nil, fmt.Errorf("campaign %s: %w", e.lockPath, ErrClosed)
	case e.campaigning:
		e.mu.Unlock()
		return nil, fmt.Errorf("campaign %s: a campaign is already running", e.lockPath)
	case e.held != nil:
		e.mu.Unlock()
		return nil, fmt.Errorf("campaign %s: already leader", e.lockPath)
	}
	e.campaigning = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.campaigning = false
		e.mu.Unlock()
	}()

	// A descriptor of our own: the lock belongs to it, and closing it is what
	// releases the leadership.
	f, err := os.OpenFile(e.lockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("campaign: %w", err)
	}
	if err := e.lock(ctx, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("campaign %s: %w", e.lockPath, err)
	}
	if err := replaceFile(e.s.dir, localLeaderFile, []byte(e.self)); err != nil {
		f.Close()
		return nil, fmt.Errorf("campaign: record leader address: %w", err)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		e.release(f)
		return nil, fmt.Errorf("campaign %s: %w", e.lockPath, ErrClosed)
	}
	// Bound to this descriptor: resigning an old term must not end a later one.
	term, end := NewTerm(func() { e.resign(f) })
	e.held, e.end = f, end
	return term, nil
}

// lock polls for the exclusive lock until it is ours, ctx ends or the elector
// is closed.
func (e *localElector) lock(ctx context.Context, f *os.File) error {
	ticker := time.NewTicker(localPollInterval)
	defer ticker.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
		default:
			return fmt.Errorf("flock: %w", err)
		}
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-e.done:
			return ErrClosed
		}
	}
}

// resign ends the term held through f (any live term when f is nil): the term
// ends first, then the address is withdrawn, then the lock is released, so that
// no successor can start while this leader may still act.
func (e *localElector) resign(f *os.File) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.held == nil || (f != nil && e.held != f) {
		return
	}
	e.end()
	e.release(e.held)
	e.held, e.end = nil, nil
}

// release withdraws the leader address and unlocks. Called with the lock held.
func (e *localElector) release(f *os.File) {
	// A failure only leaves a stale address behind, which Leader ignores once
	// the lock is free.
	if err := os.Remove(e.leaderPath); err == nil {
		_ = syncDir(e.s.dir)
	}
	f.Close()
}

// Leader implements Elector: "" when no process holds the lock, else the address
// in the leader file.
func (e *localElector) Leader(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	// A separate descriptor: a shared lock on it conflicts with any exclusive
	// lock, including one held by this very process.
	f, err := os.Open(e.lockPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("leader: %w", err)
	}
	defer f.Close()
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	switch {
	case err == nil:
		return "", nil // nobody holds the lock; closing f drops our shared lock
	case !errors.Is(err, syscall.EWOULDBLOCK):
		return "", fmt.Errorf("leader: flock %s: %w", e.lockPath, err)
	}
	data, err := os.ReadFile(e.leaderPath)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil // the winner has not written its address yet
	}
	if err != nil {
		return "", fmt.Errorf("leader: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// Close implements Elector.
func (e *localElector) Close() error {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.done)
	}
	e.mu.Unlock()
	e.resign(nil)
	return nil
}
