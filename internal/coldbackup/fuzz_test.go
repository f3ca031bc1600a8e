package coldbackup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pegasusgo/pegasus/storage/blockservice"
)

// FuzzDownloadMetadata puts arbitrary current_checkpoint and manifest
// contents in a backup root (a damaged or foreign backup) and restores from
// it: Download must fail with a clear error or succeed, never panic, and never
// write outside its local directory.
func FuzzDownloadMetadata(f *testing.F) {
	f.Add("chkpt_1", `{"files":[{"name":"a.sst","size":1,"md5":"x"}]}`)
	f.Add("../../etc", `{"files":[{"name":"../x","size":-1}]}`)
	f.Add("chkpt_1", `{"files":null}`)
	f.Add("", "not json")
	f.Fuzz(func(t *testing.T, current, manifest string) {
		root := t.TempDir()
		svc, err := blockservice.NewLocal(filepath.Join(root, "backup"))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if _, err := svc.Put(ctx, blockservice.Join("p", CurrentCheckpointFile), strings.NewReader(current)); err != nil {
			return
		}
		dir := blockservice.Join("p", strings.TrimSpace(current))
		if _, err := svc.Put(ctx, blockservice.Join(dir, BackupMetadataFile), strings.NewReader(manifest)); err != nil {
			return // a name the store refuses: Download refuses it too
		}
		local := filepath.Join(root, "local", "restore")
		if _, err := Download(ctx, svc, nil, "p", local, nil); err != nil && !errors.Is(err, blockservice.ErrCorrupt) && !errors.Is(err, blockservice.ErrNotFound) {
			t.Logf("download: %v", err) // another kind of refusal: fine, it is one
		}
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "backup" && e.Name() != "local" {
				t.Fatalf("Download wrote %s outside its directories", e.Name())
			}
		}
	})
}
