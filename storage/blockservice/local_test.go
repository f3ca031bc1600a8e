package blockservice

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newLocal(t *testing.T) (*Local, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := NewLocal(filepath.Join(dir, "root"))
	if err != nil {
		t.Fatal(err)
	}
	return l, l.Root()
}

func TestLocalOperations(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, l *Local, root string)
	}{
		{"put then get returns the content, size and md5", func(t *testing.T, l *Local, root string) {
			info, err := l.Put(ctx, "a/b/f", strings.NewReader("hello"))
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != 5 || info.MD5 != "5d41402abc4b2a76b9719d911017c592" {
				t.Fatalf("info = %+v", info)
			}
			rc, got, err := l.Get(ctx, "a/b/f")
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			data, _ := io.ReadAll(rc)
			if string(data) != "hello" || got != info {
				t.Fatalf("get = %q %+v", data, got)
			}
			// upstream's sidecar is beside the file
			if _, err := os.Stat(filepath.Join(root, "a/b/.f.meta")); err != nil {
				t.Fatal(err)
			}
		}},
		{"put replaces a file", func(t *testing.T, l *Local, root string) {
			mustPut(t, l, "f", "one")
			mustPut(t, l, "f", "second")
			info, err := l.Stat(ctx, "f")
			if err != nil || info.Size != 6 {
				t.Fatalf("stat = %+v, %v", info, err)
			}
		}},
		{"a file without its sidecar (crash mid-put) is invisible", func(t *testing.T, l *Local, root string) {
			if err := os.WriteFile(filepath.Join(root, "half"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, _, err := l.Get(ctx, "half"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("get: %v", err)
			}
			if ok, _ := l.Exists(ctx, "half"); ok {
				t.Fatal("exists")
			}
			es, err := l.List(ctx, "")
			if err != nil || len(es) != 0 {
				t.Fatalf("list = %+v, %v", es, err)
			}
		}},
		{"a put cut short by its context leaves nothing", func(t *testing.T, l *Local, root string) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := l.Put(cctx, "f", strings.NewReader("data")); !errors.Is(err, context.Canceled) {
				t.Fatalf("put: %v", err)
			}
			des, _ := os.ReadDir(root)
			if len(des) != 0 {
				t.Fatalf("left %v", des)
			}
		}},
		{"list shows directories and complete files only", func(t *testing.T, l *Local, root string) {
			mustPut(t, l, "d/x", "1")
			mustPut(t, l, "d/sub/y", "22")
			es, err := l.List(ctx, "d")
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 2 || es[0].Name != "sub" || !es[0].IsDir || es[1].Name != "x" || es[1].Info.Size != 1 {
				t.Fatalf("list = %+v", es)
			}
			if _, err := l.List(ctx, "nope"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("list missing: %v", err)
			}
		}},
		{"delete of a non-empty directory needs recursive", func(t *testing.T, l *Local, root string) {
			mustPut(t, l, "d/x", "1")
			if err := l.Delete(ctx, "d", false); !errors.Is(err, ErrNotEmpty) {
				t.Fatalf("delete: %v", err)
			}
			if err := l.Delete(ctx, "d", true); err != nil {
				t.Fatal(err)
			}
			if ok, _ := l.Exists(ctx, "d"); ok {
				t.Fatal("still exists")
			}
			if err := l.Delete(ctx, "d", true); !errors.Is(err, ErrNotFound) {
				t.Fatalf("delete missing: %v", err)
			}
		}},
		{"paths escaping the root are refused", func(t *testing.T, l *Local, root string) {
			for _, p := range []string{"../x", "/abs", "a//b", "a/./b", "a/.."} {
				if _, err := l.Put(ctx, p, strings.NewReader("x")); !errors.Is(err, ErrInvalidPath) {
					t.Errorf("put %q: %v", p, err)
				}
			}
		}},
		{"download verifies size and md5", func(t *testing.T, l *Local, root string) {
			info := mustPut(t, l, "f", "payload")
			out := filepath.Join(t.TempDir(), "out")
			if err := Download(ctx, l, NewLimiter(1), "f", out, info); err != nil {
				t.Fatal(err)
			}
			if data, _ := os.ReadFile(out); string(data) != "payload" {
				t.Fatalf("downloaded %q", data)
			}
			// A flipped byte in the stored file is caught on the way in.
			if err := os.WriteFile(filepath.Join(root, "f"), []byte("paYload"), 0o644); err != nil {
				t.Fatal(err)
			}
			out2 := filepath.Join(t.TempDir(), "out2")
			if err := Download(ctx, l, nil, "f", out2, info); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("download corrupted: %v", err)
			}
			if _, err := os.Stat(out2); !os.IsNotExist(err) {
				t.Fatal("a corrupted download left a file")
			}
			// A manifest that disagrees with the stored file is corruption too.
			if err := Download(ctx, l, nil, "f", out2, FileInfo{Size: 1, MD5: "00"}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("download mismatched: %v", err)
			}
		}},
		{"upload copies a local file", func(t *testing.T, l *Local, root string) {
			src := filepath.Join(t.TempDir(), "src")
			data := bytes.Repeat([]byte("z"), 200<<10)
			if err := os.WriteFile(src, data, 0o644); err != nil {
				t.Fatal(err)
			}
			info, err := Upload(ctx, l, NewLimiter(100), src, "up/src")
			if err != nil {
				t.Fatal(err)
			}
			want, _ := FileMD5(src)
			if info != want {
				t.Fatalf("upload info %+v, want %+v", info, want)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, root := newLocal(t)
			tc.run(t, l, root)
		})
	}
}

func mustPut(t *testing.T, l *Local, p, data string) FileInfo {
	t.Helper()
	info, err := l.Put(context.Background(), p, strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		cfg     Config
		wantErr string
	}{
		{Config{Type: TypeLocal, Args: []string{filepath.Join(dir, "r")}}, ""},
		{Config{Type: TypeHDFS, Args: []string{"nn"}}, "not supported"},
		{Config{Type: "s3"}, "unknown provider type"},
	} {
		_, err := Open(tc.cfg)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Open(%+v) = %v, want %q", tc.cfg, err, tc.wantErr)
		}
	}
}

func TestJoin(t *testing.T) {
	if got := Join("", "/a/", "b", "", "c/"); got != "a/b/c" {
		t.Fatalf("Join = %q", got)
	}
}
