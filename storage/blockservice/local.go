package blockservice

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Local is the local_service provider: files under a directory. Each file
// has a sidecar ".<name>.meta" holding {"size","md5"} as upstream writes it;
// a file without its sidecar is incomplete and neither listed nor readable.
type Local struct {
	root string
}

// NewLocal returns the provider rooted at dir, creating dir. An empty dir
// means the working directory, as upstream.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("blockservice: local root: %w", err)
	}
	return &Local{root: dir}, nil
}

// Root is the directory the provider stores under.
func (l *Local) Root() string { return l.root }

func (l *Local) abs(p string) (string, error) {
	if err := checkPath(p); err != nil {
		return "", err
	}
	return filepath.Join(l.root, filepath.FromSlash(p)), nil
}

func sidecar(file string) string {
	return filepath.Join(filepath.Dir(file), "."+filepath.Base(file)+".meta")
}

// Put implements Service: the data goes to a temporary file, is synced and
// renamed into place, and only then the sidecar is written the same way, so
// a crash at any point leaves either the old file or nothing visible.
func (l *Local) Put(ctx context.Context, p string, r io.Reader) (FileInfo, error) {
	if p == "" {
		return FileInfo{}, fmt.Errorf("%w: empty file name", ErrInvalidPath)
	}
	file, err := l.abs(p)
	if err != nil {
		return FileInfo{}, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return FileInfo{}, fmt.Errorf("blockservice: put %s: %w", p, err)
	}
	h := md5.New()
	n, err := writeAtomic(file, func(w io.Writer) error {
		_, err := io.Copy(io.MultiWriter(w, h), ctxReader{ctx, r})
		return err
	}, func() error {
		// The old sidecar would describe the new data wrongly for a moment.
		if err := os.Remove(sidecar(file)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
	if err != nil {
		return FileInfo{}, fmt.Errorf("blockservice: put %s: %w", p, err)
	}
	info := FileInfo{Size: n, MD5: hex.EncodeToString(h.Sum(nil))}
	meta, _ := json.Marshal(info)
	if _, err := writeAtomic(sidecar(file), func(w io.Writer) error {
		_, err := w.Write(meta)
		return err
	}, nil); err != nil {
		return FileInfo{}, fmt.Errorf("blockservice: put %s: sidecar: %w", p, err)
	}
	return info, nil
}

// writeAtomic writes a temporary file next to file with fill, syncs it, runs
// beforeRename and renames it to file, then syncs the directory.
func writeAtomic(file string, fill func(io.Writer) error, beforeRename func() error) (int64, error) {
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	tmp := filepath.Join(filepath.Dir(file), "."+filepath.Base(file)+".tmp-"+hex.EncodeToString(suffix[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	cw := &countWriter{w: f}
	err = fill(cw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && beforeRename != nil {
		err = beforeRename()
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return 0, err
	}
	if d, err := os.Open(filepath.Dir(file)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// Stat implements Service.
func (l *Local) Stat(ctx context.Context, p string) (FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return FileInfo{}, err
	}
	file, err := l.abs(p)
	if err != nil {
		return FileInfo{}, err
	}
	return readSidecar(file, p)
}

func readSidecar(file, p string) (FileInfo, error) {
	st, err := os.Stat(file)
	if err != nil || st.IsDir() {
		return FileInfo{}, fmt.Errorf("%w: %s", ErrNotFound, p)
	}
	data, err := readSmall(sidecar(file), maxSidecarBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return FileInfo{}, fmt.Errorf("%w: %s (no metadata: incomplete write)", ErrNotFound, p)
	}
	if err != nil {
		return FileInfo{}, fmt.Errorf("blockservice: stat %s: %w", p, err)
	}
	var info FileInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return FileInfo{}, fmt.Errorf("blockservice: stat %s: bad metadata: %w", p, err)
	}
	return info, nil
}

// Get implements Service.
func (l *Local) Get(ctx context.Context, p string) (io.ReadCloser, FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, FileInfo{}, err
	}
	file, err := l.abs(p)
	if err != nil {
		return nil, FileInfo{}, err
	}
	info, err := readSidecar(file, p)
	if err != nil {
		return nil, FileInfo{}, err
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, FileInfo{}, fmt.Errorf("blockservice: get %s: %w", p, err)
	}
	return ctxReadCloser{ctxReader{ctx, f}, f}, info, nil
}

// List implements Service.
func (l *Local) List(ctx context.Context, p string) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := l.abs(p)
	if err != nil {
		return nil, err
	}
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, p)
	}
	if err != nil {
		return nil, fmt.Errorf("blockservice: list %s: %w", p, err)
	}
	var out []Entry
	for _, de := range des {
		name := de.Name()
		if de.IsDir() {
			out = append(out, Entry{Name: name, IsDir: true})
			continue
		}
		if strings.HasPrefix(name, ".") && (strings.HasSuffix(name, ".meta") || strings.Contains(name, ".tmp-")) {
			continue
		}
		info, err := readSidecar(filepath.Join(dir, name), name)
		if err != nil {
			continue // incomplete write
		}
		out = append(out, Entry{Name: name, Info: info})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete implements Service.
func (l *Local) Delete(ctx context.Context, p string, recursive bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	target, err := l.abs(p)
	if err != nil {
		return err
	}
	if p == "" {
		return fmt.Errorf("%w: refusing to delete the root", ErrInvalidPath)
	}
	st, err := os.Stat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s", ErrNotFound, p)
	}
	if err != nil {
		return fmt.Errorf("blockservice: delete %s: %w", p, err)
	}
	if st.IsDir() {
		if !recursive {
			des, err := os.ReadDir(target)
			if err != nil {
				return fmt.Errorf("blockservice: delete %s: %w", p, err)
			}
			if len(des) > 0 {
				return fmt.Errorf("%w: %s", ErrNotEmpty, p)
			}
		}
		if err := os.RemoveAll(target); err != nil {
			return fmt.Errorf("blockservice: delete %s: %w", p, err)
		}
		return nil
	}
	// The sidecar goes first: without it the file is already invisible.
	if err := os.Remove(sidecar(target)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blockservice: delete %s: %w", p, err)
	}
	if err := os.Remove(target); err != nil {
		return fmt.Errorf("blockservice: delete %s: %w", p, err)
	}
	return nil
}

// Exists implements Service.
func (l *Local) Exists(ctx context.Context, p string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	target, err := l.abs(p)
	if err != nil {
		return false, err
	}
	st, err := os.Stat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("blockservice: exists %s: %w", p, err)
	}
	if st.IsDir() {
		return true, nil
	}
	_, err = readSidecar(target, p)
	return err == nil, nil
}

// maxSidecarBytes bounds a sidecar read: it holds a size and an md5.
const maxSidecarBytes = 4 << 10

// readSmall reads a file expected to be small, refusing one over limit bytes
// (a damaged or foreign file in the root).
func readSmall(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, limit)
	}
	return data, nil
}
