// Package blockservice is the storage that cold backups are written to and
// restored from: a tree of named files under one root, shared by every server
// of a cluster (upstream's block_service_manager with its providers).
//
// The interface is deliberately small so that an object-store provider can be
// added later: it only needs whole-file writes that become visible atomically
// (an object PUT is), reads, listing by prefix, deletion and an existence
// test. Nothing relies on appends, renames or directories of the provider.
//
// Only the local-filesystem provider (type local_service, a directory that is
// typically an NFS or other shared mount) is implemented here.
package blockservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Errors of the Service methods; test them with errors.Is.
var (
	// ErrNotFound: the file or directory does not exist (or a file has no
	// sidecar, i.e. its write never completed).
	ErrNotFound = errors.New("blockservice: object not found")
	// ErrNotEmpty: a directory with entries was deleted without recursive.
	ErrNotEmpty = errors.New("blockservice: directory not empty")
	// ErrInvalidPath: the path is absolute, has "..", "." or empty parts.
	ErrInvalidPath = errors.New("blockservice: invalid path")
)

// FileInfo describes a stored file: its size and the MD5 of its content as
// hex, as upstream records them in the local provider's sidecars.
type FileInfo struct {
	Size int64  `json:"size"`
	MD5  string `json:"md5"`
}

// Entry is one name in a directory listing.
type Entry struct {
	Name  string
	IsDir bool
	Info  FileInfo // files only
}

// Service is a block-service provider. Paths are slash-separated and
// relative to the provider's root ("2026/1_t/0/current_checkpoint"). Every
// method honours ctx: a call whose ctx ends returns an error wrapping
// ctx.Err(), and a Put cut short leaves nothing that Get or List would show.
// Implementations are safe for concurrent use.
type Service interface {
	// Put stores everything read from r as the file p, replacing any earlier
	// one. The file becomes visible only once complete.
	Put(ctx context.Context, p string, r io.Reader) (FileInfo, error)
	// Get opens file p for reading; the caller closes the reader. Reads also
	// honour ctx.
	Get(ctx context.Context, p string) (io.ReadCloser, FileInfo, error)
	// Stat returns file p's recorded size and MD5.
	Stat(ctx context.Context, p string) (FileInfo, error)
	// List returns the entries of directory p sorted by name. "" lists the root.
	List(ctx context.Context, p string) ([]Entry, error)
	// Delete removes file or directory p; a directory with entries only with
	// recursive. A missing path is ErrNotFound.
	Delete(ctx context.Context, p string, recursive bool) error
	// Exists reports whether file or directory p exists.
	Exists(ctx context.Context, p string) (bool, error)
}

// Type names of the providers, the values of [block_service.<name>] type.
const (
	TypeLocal = "local_service"
	TypeHDFS  = "hdfs_service"
)

// Config is one [block_service.<name>] section.
type Config struct {
	Type string
	Args []string
}

// Open makes the provider cfg describes.
func Open(cfg Config) (Service, error) {
	switch cfg.Type {
	case TypeLocal:
		root := ""
		if len(cfg.Args) > 0 {
			root = cfg.Args[0]
		}
		return NewLocal(root)
	case TypeHDFS:
		return nil, fmt.Errorf("blockservice: provider type %s is not supported by this release", cfg.Type)
	}
	return nil, fmt.Errorf("blockservice: unknown provider type %q", cfg.Type)
}

// Join joins path parts with slashes, dropping empty ones.
func Join(parts ...string) string {
	var keep []string
	for _, p := range parts {
		p = strings.Trim(p, "/")
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, "/")
}

// checkPath validates a provider-relative path ("" is the root).
func checkPath(p string) error {
	if p == "" {
		return nil
	}
	if strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) || path.Clean(p) != p {
		return fmt.Errorf("%w: %q", ErrInvalidPath, p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("%w: %q", ErrInvalidPath, p)
		}
	}
	return nil
}

// ctxReader ends a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

type ctxReadCloser struct {
	ctxReader
	c io.Closer
}

func (c ctxReadCloser) Close() error { return c.c.Close() }
