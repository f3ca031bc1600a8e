package metastore

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// splitPath validates an absolute node path and returns its components; the root
// "/" has none. Both stores accept exactly the same paths, so a cluster can move
// between them.
func splitPath(path string) ([]string, error) {
	if path == "/" {
		return nil, nil
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("%w %q: not absolute", ErrInvalidPath, path)
	}
	parts := strings.Split(path[1:], "/")
	for _, p := range parts {
		if err := checkName(p); err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrInvalidPath, path, err)
		}
	}
	return parts, nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty component")
	case name == "." || name == "..":
		return fmt.Errorf("component %q", name)
	case strings.IndexByte(name, 0) >= 0:
		return errors.New("NUL byte")
	}
	return nil
}

// joinPath is the inverse of splitPath.
func joinPath(parts []string) string { return "/" + strings.Join(parts, "/") }

// childPath returns the path of a child of parent.
func childPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

// EnsurePath creates every missing node along path (empty data), one level at a
// time like the meta server's startup does; levels that already exist are left
// as they are.
func EnsurePath(ctx context.Context, s Store, path string) error {
	parts, err := splitPath(path)
	if err != nil {
		return fmt.Errorf("ensure path: %w", err)
	}
	for i := range parts {
		p := joinPath(parts[:i+1])
		// Several processes may race to create the same levels: losing the race
		// is success.
		if err := s.Create(ctx, p, nil); err != nil && !errors.Is(err, ErrExists) {
			return fmt.Errorf("ensure path %s: %w", path, err)
		}
	}
	return nil
}

// DeleteTree deletes path and everything below it; a missing path is not an
// error. It is not atomic: if it fails half-way, part of the tree is gone.
// Deleting the root is refused.
func DeleteTree(ctx context.Context, s Store, path string) error {
	parts, err := splitPath(path)
	if err != nil {
		return fmt.Errorf("delete tree: %w", err)
	}
	if len(parts) == 0 {
		return fmt.Errorf("delete tree: %w: refusing to delete the root", ErrInvalidPath)
	}
	return deleteTree(ctx, s, path)
}

func deleteTree(ctx context.Context, s Store, path string) error {
	// A writer may add children while the tree is being deleted; give it a few
	// rounds before reporting the conflict.
	const rounds = 5
	for i := 0; ; i++ {
		children, err := s.Children(ctx, path)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("delete tree %s: %w", path, err)
		}
		for _, c := range children {
			if err := deleteTree(ctx, s, childPath(path, c)); err != nil {
				return err
			}
		}
		err = s.Delete(ctx, path)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrNotEmpty) || i+1 == rounds {
			return fmt.Errorf("delete tree %s: %w", path, err)
		}
	}
}
