package coldbackup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pegasusgo/pegasus/storage/blockservice"
)

func TestUploadDownload(t *testing.T) {
	ctx := context.Background()
	svc, err := blockservice.NewLocal(filepath.Join(t.TempDir(), "bs"))
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	files := map[string]string{"000001.sst": "sst data", "MANIFEST-000001": "manifest", "sub/x": "nested"}
	for n, c := range files {
		p := filepath.Join(src, filepath.FromSlash(n))
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := Root("", "cluster")
	part := PartitionDir(root, 42, "t", 3, 1)
	if part != "cluster/42/t_3/1" {
		t.Fatalf("layout: %s", part)
	}
	if _, ok, err := Uploaded(ctx, svc, part); ok || err != nil {
		t.Fatalf("uploaded before upload: %v %v", ok, err)
	}
	var last int64
	man, err := Upload(ctx, svc, nil, src, part, CheckpointName("127.0.0.1:34801"), BackupMetadata{CheckpointDecree: 7, PartitionIndex: 1}, func(done, total int64) { last = done })
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Files) != 3 || man.CheckpointTotalSize != int64(len("sst data")+len("manifest")+len("nested")) || last != man.CheckpointTotalSize {
		t.Fatalf("manifest %+v, progress %d", man, last)
	}
	got, ok, err := Uploaded(ctx, svc, part)
	if !ok || err != nil || got.CheckpointDecree != 7 {
		t.Fatalf("uploaded = %+v %v %v", got, ok, err)
	}

	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T)
		wantErr error
	}{
		{"intact", func(t *testing.T) {}, nil},
		{"flipped byte", func(t *testing.T) {
			p := filepath.Join(svc.Root(), "cluster/42/t_3/1/chkpt_127.0.0.1_34801/000001.sst")
			if err := os.WriteFile(p, []byte("sst dXta"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, blockservice.ErrCorrupt},
		{"missing file", func(t *testing.T) {
			if err := svc.Delete(ctx, "cluster/42/t_3/1/chkpt_127.0.0.1_34801/sub/x", false); err != nil {
				t.Fatal(err)
			}
		}, blockservice.ErrCorrupt},
		{"no checkpoint", func(t *testing.T) {
			if err := svc.Delete(ctx, "cluster/42/t_3/1/current_checkpoint", false); err != nil {
				t.Fatal(err)
			}
		}, blockservice.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.damage(t)
			dst := filepath.Join(t.TempDir(), "restore")
			_, err := Download(ctx, svc, nil, part, dst, nil)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("download: %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if _, serr := os.Stat(dst); !os.IsNotExist(serr) {
					t.Fatal("a failed download left its directory")
				}
				return
			}
			for n, c := range files {
				data, err := os.ReadFile(filepath.Join(dst, filepath.FromSlash(n)))
				if err != nil || string(data) != c {
					t.Fatalf("%s = %q, %v", n, data, err)
				}
			}
		})
	}
}
