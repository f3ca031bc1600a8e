package coldbackup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/pegasusgo/pegasus/storage/blockservice"
)

// ErrUndecodable reports a backup file that exists but does not decode.
var ErrUndecodable = errors.New("coldbackup: undecodable backup file")

// Uploaded reports whether the partition at partDir was completely uploaded
// (its current_checkpoint names a checkpoint whose manifest reads back), and
// that manifest.
func Uploaded(ctx context.Context, svc blockservice.Service, partDir string) (BackupMetadata, bool, error) {
	data, err := getAll(ctx, svc, blockservice.Join(partDir, CurrentCheckpointFile))
	if errors.Is(err, blockservice.ErrNotFound) {
		return BackupMetadata{}, false, nil
	}
	if err != nil {
		return BackupMetadata{}, false, err
	}
	var man BackupMetadata
	err = GetJSON(ctx, svc, blockservice.Join(partDir, strings.TrimSpace(string(data)), BackupMetadataFile), &man)
	if errors.Is(err, blockservice.ErrNotFound) {
		return BackupMetadata{}, false, nil
	}
	if err != nil {
		return BackupMetadata{}, false, err
	}
	return man, true, nil
}

// localFiles lists the regular files under dir, slash-separated relative
// names, sorted.
func localFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// Upload copies the local checkpoint directory to partDir/chkptName at most
// lim's rate, checks that each stored file's recorded size and MD5 are the
// local file's, then writes the manifest (man with the files filled in) and
// last current_checkpoint. progress, when not nil, is told the bytes done of
// the total after each file.
func Upload(ctx context.Context, svc blockservice.Service, lim *rate.Limiter, local, partDir, chkptName string, man BackupMetadata, progress func(done, total int64)) (BackupMetadata, error) {
	names, err := localFiles(local)
	if err != nil {
		return man, fmt.Errorf("list checkpoint %s: %w", local, err)
	}
	man.Files = nil
	man.CheckpointTotalSize = 0
	for _, n := range names {
		info, err := blockservice.FileMD5(filepath.Join(local, filepath.FromSlash(n)))
		if err != nil {
			return man, fmt.Errorf("checksum %s: %w", n, err)
		}
		man.Files = append(man.Files, FileEntry{Name: n, Size: info.Size, MD5: info.MD5})
		man.CheckpointTotalSize += info.Size
	}
	if man.CheckpointTimestamp == 0 {
		man.CheckpointTimestamp = time.Now().UnixMilli()
	}
	dir := blockservice.Join(partDir, chkptName)
	var done int64
	for _, f := range man.Files {
		got, err := blockservice.Upload(ctx, svc, lim, filepath.Join(local, filepath.FromSlash(f.Name)), blockservice.Join(dir, f.Name))
		if err != nil {
			return man, fmt.Errorf("upload %s: %w", f.Name, err)
		}
		// The checkpoint is immutable: a difference means the copy went wrong.
		if got.Size != f.Size || got.MD5 != f.MD5 {
			return man, fmt.Errorf("%w: uploaded %s is %d bytes md5 %s, local %d bytes md5 %s", blockservice.ErrCorrupt, f.Name, got.Size, got.MD5, f.Size, f.MD5)
		}
		done += f.Size
		if progress != nil {
			progress(done, man.CheckpointTotalSize)
		}
	}
	if err := PutJSON(ctx, svc, blockservice.Join(dir, BackupMetadataFile), man); err != nil {
		return man, fmt.Errorf("write manifest: %w", err)
	}
	if _, err := svc.Put(ctx, blockservice.Join(partDir, CurrentCheckpointFile), strings.NewReader(chkptName)); err != nil {
		return man, fmt.Errorf("write %s: %w", CurrentCheckpointFile, err)
	}
	return man, nil
}

// Download copies a partition's uploaded checkpoint from partDir into the
// local directory (which must not exist yet) at most lim's rate, checking
// every file against the manifest, and returns the manifest. A missing
// checkpoint wraps blockservice.ErrNotFound; a file that differs from the
// manifest, or an undecodable manifest, wraps blockservice.ErrCorrupt. On
// error the local directory is removed.
func Download(ctx context.Context, svc blockservice.Service, lim *rate.Limiter, partDir, local string, progress func(done, total int64)) (man BackupMetadata, err error) {
	data, err := getAll(ctx, svc, blockservice.Join(partDir, CurrentCheckpointFile))
	if err != nil {
		return man, fmt.Errorf("read %s: %w", blockservice.Join(partDir, CurrentCheckpointFile), err)
	}
	dir := blockservice.Join(partDir, strings.TrimSpace(string(data)))
	if err := GetJSON(ctx, svc, blockservice.Join(dir, BackupMetadataFile), &man); err != nil {
		if errors.Is(err, ErrUndecodable) {
			err = fmt.Errorf("%w: %v", blockservice.ErrCorrupt, err)
		}
		return man, fmt.Errorf("read manifest: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(local)
		}
	}()
	if err := os.MkdirAll(local, 0o755); err != nil {
		return man, err
	}
	var done int64
	for _, f := range man.Files {
		if strings.Contains(f.Name, "..") || strings.HasPrefix(f.Name, "/") {
			return man, fmt.Errorf("%w: manifest names file %q", blockservice.ErrCorrupt, f.Name)
		}
		want := blockservice.FileInfo{Size: f.Size, MD5: f.MD5}
		if err := blockservice.Download(ctx, svc, lim, blockservice.Join(dir, f.Name), filepath.Join(local, filepath.FromSlash(f.Name)), want); err != nil {
			if errors.Is(err, blockservice.ErrNotFound) {
				// Listed in the manifest but gone: the backup is damaged.
				err = fmt.Errorf("%w: %v", blockservice.ErrCorrupt, err)
			}
			return man, err
		}
		done += f.Size
		if progress != nil {
			progress(done, man.CheckpointTotalSize)
		}
	}
	return man, nil
}
