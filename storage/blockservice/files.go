package blockservice

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/time/rate"
)

// ErrCorrupt reports a downloaded file whose size or MD5 differs from what
// was recorded when it was uploaded.
var ErrCorrupt = errors.New("blockservice: corrupted file")

// limitChunk is the largest read passed through a limiter at once (its burst).
const limitChunk = 64 << 10

// NewLimiter returns a limiter of mbps megabytes per second for Upload and
// Download; mbps <= 0 means no limit (nil).
func NewLimiter(mbps int) *rate.Limiter {
	if mbps <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(mbps<<20), limitChunk)
}

// limitedReader waits on a limiter for every chunk read.
type limitedReader struct {
	ctx context.Context
	r   io.Reader
	lim *rate.Limiter
}

func (l limitedReader) Read(b []byte) (int, error) {
	if len(b) > limitChunk {
		b = b[:limitChunk]
	}
	n, err := l.r.Read(b)
	if n > 0 && l.lim != nil {
		if werr := l.lim.WaitN(l.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// Upload copies the local file into svc as p, at most lim's rate (nil: no
// limit), and returns what svc recorded.
func Upload(ctx context.Context, svc Service, lim *rate.Limiter, local, p string) (FileInfo, error) {
	f, err := os.Open(local)
	if err != nil {
		return FileInfo{}, fmt.Errorf("blockservice: upload %s: %w", local, err)
	}
	defer f.Close()
	return svc.Put(ctx, p, limitedReader{ctx, f, lim})
}

// Download copies p from svc to the local file, at most lim's rate, and
// checks the copy against want (and against what svc recorded): a size or
// MD5 mismatch is ErrCorrupt. The local file appears only when complete and
// verified.
func Download(ctx context.Context, svc Service, lim *rate.Limiter, p, local string, want FileInfo) error {
	rc, info, err := svc.Get(ctx, p)
	if err != nil {
		return err
	}
	defer rc.Close()
	if info.Size != want.Size || info.MD5 != want.MD5 {
		return fmt.Errorf("%w: %s: stored as %d bytes md5 %s, manifest says %d bytes md5 %s", ErrCorrupt, p, info.Size, info.MD5, want.Size, want.MD5)
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return fmt.Errorf("blockservice: download %s: %w", p, err)
	}
	h := md5.New()
	tmp := local + ".downloading"
	n, err := writeAtomic(tmp, func(w io.Writer) error {
		_, err := io.Copy(io.MultiWriter(w, h), limitedReader{ctx, rc, lim})
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("blockservice: download %s: %w", p, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != want.Size || got != want.MD5 {
		_ = os.Remove(tmp)
		return fmt.Errorf("%w: %s: read %d bytes md5 %s, manifest says %d bytes md5 %s", ErrCorrupt, p, n, got, want.Size, want.MD5)
	}
	if err := os.Rename(tmp, local); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("blockservice: download %s: %w", p, err)
	}
	return nil
}

// FileMD5 returns the size and MD5 of a local file.
func FileMD5(local string) (FileInfo, error) {
	f, err := os.Open(local)
	if err != nil {
		return FileInfo{}, err
	}
	defer f.Close()
	h := md5.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return FileInfo{}, err
	}
	return FileInfo{Size: n, MD5: hex.EncodeToString(h.Sum(nil))}, nil
}
