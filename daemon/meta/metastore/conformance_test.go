package metastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// backend opens stores over one shared backend (one ZooKeeper server, one
// directory), each like a separate meta process.
type backend struct {
	name  string
	setup func(t *testing.T) (open func(t *testing.T) Store)
}

func backends() []backend {
	return []backend{
		{"zk", func(t *testing.T) func(t *testing.T) Store {
			srv := startZK(t)
			return func(t *testing.T) Store { return newZKStore(t, srv.Addr(), 4*time.Second) }
		}},
		{"local", func(t *testing.T) func(t *testing.T) Store {
			dir := t.TempDir()
			return func(t *testing.T) Store { return newLocalStore(t, dir) }
		}},
	}
}

type conformanceCase struct {
	name string
	// root exists and is empty when run starts.
	run func(t *testing.T, ctx context.Context, s Store, root string, open func(*testing.T) Store)
}

var conformanceCases = []conformanceCase{
	{"create and get", func(t *testing.T, ctx context.Context, s Store, root string, _ func(*testing.T) Store) {
		p := root + "/a"
		mustDo(t, s.Create(ctx, p, []byte("v1")))
		wantData(t, s, ctx, p, []byte("v1"))
		wantErr(t, s.Create(ctx, p, []byte("v2")), ErrExists, "second create")
		wantData(t, s, ctx, p, []byte("v1"))
		_, err := s.Get(ctx, root+"/missing")
		wantErr(t, err, ErrNotFound, "get missing")
		wantErr(t, s.Create(ctx, root+"/missing/child", nil), ErrNotFound, "create under missing parent")
		mustDo(t, s.Create(ctx, root+"/empty", nil))
		wantData(t, s, ctx, root+"/empty", []byte{})
	}},
	{"set", func(t *testing.T, ctx context.Context, s Store, root string, _ func(*testing.T) Store) {
		p := root + "/n"
		mustDo(t, s.Create(ctx, p, []byte("old")))
		mustDo(t, s.Set(ctx, p, []byte("new value")))
		wantData(t, s, ctx, p, []byte("new value"))
		mustDo(t, s.Set(ctx, p, nil))
		wantData(t, s, ctx, p, []byte{})
		wantErr(t, s.Set(ctx, root+"/missing", []byte("x")), ErrNotFound, "set missing")
		_, err := s.Get(ctx, root+"/missing")
		wantErr(t, err, ErrNotFound, "set must not create")
	}},
	{"children", func(t *testing.T, ctx context.Context, s Store, root string, _ func(*testing.T) Store) {
		got, err := s.Children(ctx, root)
		mustDo(t, err)
		if len(got) != 0 {
			t.Fatalf("Children of an empty node = %q", got)
		}
		// Names that could collide with the local store's own files, or sort
		// differently from their creation order.
		names := []string{"zeta", "b", "a b", "data", "c.x", "tmp-1", "del-1", ".hidden", "10", "9", "ü"}
		for _, n := range names {
			mustDo(t, s.Create(ctx, root+"/"+n, []byte(n)))
		}
		mustDo(t, s.Create(ctx, root+"/b/grandchild", nil))
		got, err = s.Children(ctx, root)
		mustDo(t, err)
		want := slices.Sorted(slices.Values(names))
		if !slices.Equal(got, want) {
			t.Fatalf("Children = %q, want %q", got, want)
		}
		for _, n := range names {
			wantData(t, s, ctx, root+"/"+n, []byte(n))
		}
		_, err = s.Children(ctx, root+"/missing")
		wantErr(t, err, ErrNotFound, "children of missing")
	}},
	{"delete", func(t *testing.T, ctx context.Context, s Store, root string, _ func(*testing.T) Store) {
		mustDo(t, s.Create(ctx, root+"/p", nil))
		mustDo(t, s.Create(ctx, root+"/p/c", []byte("c")))
		wantErr(t, s.Delete(ctx, root+"/p"), ErrNotEmpty, "delete with children")
		wantData(t, s, ctx, root+"/p/c", []byte("c"))
		mustDo(t, s.Delete(ctx, root+"/p/c"))
		_, err := s.Get(ctx, root+"/p/c")
		wantErr(t, err, ErrNotFound, "get deleted")
		mustDo(t, s.Delete(ctx, root+"/p/c")) // missing: not an error
		mustDo(t, s.Delete(ctx, root+"/p"))
		mustDo(t, s.Delete(ctx, root+"/never/existed"))
		got, err := s.Children(ctx, root)
		mustDo(t, err)
		if len(got) != 0 {
			t.Fatalf("Children after deletes = %q", got)
		}
		// A deleted node can be created again, with new data.
		mustDo(t, s.Create(ctx, root+"/p", []byte("again")))
		wantData(t, s, ctx, root+"/p", []byte("again"))
	}},
	{"root", func(t *testing.T, ctx context.Context, s Store, _ string, _ func(*testing.T) Store) {
		wantErr(t, s.Create(ctx, "/", nil), ErrExists, "create root")
		wantErr(t, s.Delete(ctx, "/"), ErrInvalidPath, "delete root")
		children, err := s.Children(ctx, "/")
		mustDo(t, err)
		if !slices.Contains(children, "conformance") {
			t.Fatalf("Children(/) = %q, want it to contain %q", children, "conformance")
		}
		if _, err := s.Get(ctx, "/"); err != nil {
			t.Fatalf("Get(/): %v", err)
		}
	}},
	{"invalid paths", func(t *testing.T, ctx context.Context, s Store, root string, _ func(*testing.T) Store) {
		for _, p := range []string{"", "a", "a/b", root + "/", "//a", root + "//x", root + "/./x", root + "/../x", root + "/.", root + "/..", root + "/a\x00b"} {
			wantErr(t, s.Create(ctx, p, nil), ErrInvalidPath, fmt.Sprintf("Create(%q)", p))
			wantErr(t, s.Set(ctx, p, nil), ErrInvalidPath, fmt.Sprintf("Set(%q)", p))
			_, err := s.Get(ctx, p)
			wantErr(t, err, ErrInvalidPath, fmt.Sprintf("Get(%q)", p))
			_, err = s.Children(ctx, p)
			wantErr(t, err, ErrInvalidPath, fmt.Sprintf("Children(%q)", p))
			wantErr(t, s.Delete(ctx, p), ErrInvalidPath, fmt.Sprintf("Delete(%q)", p))
			wantErr(t, EnsurePath(ctx, s, p), ErrInvalidPath, fmt.Sprintf("EnsurePath(%q)", p))
			wantErr(t, DeleteTree(ctx, s, p), ErrInvalidPath, fmt.Sprintf("DeleteTree(%q)", p))
		}
	}},
	{"ensure path", func(t *testing.T, ctx context.Context, s Store, root string, _ func(*testing.T) Store) {
		deep := root + "/a/b/c/d"
		mustDo(t, EnsurePath(ctx, s, deep))
		wantData(t, s, ctx, deep, []byte{})
		mustDo(t, s.Set(ctx, root+"/a/b", []byte("keep")))
		mustDo(t, EnsurePath(ctx, s, deep)) // idempotent
		mustDo(t, EnsurePath(ctx, s, root+"/a/b/e"))
		wantData(t, s, ctx, root+"/a/b", []byte("keep"))
		got, err := s.Children(ctx, root+"/a/b")
		mustDo(t, err)
		if !slices.Equal(got, []string{"c", "e"}) {
			t.Fatalf("Children = %q, want [c e]", got)
		}
		mustDo(t, EnsurePath(ctx, s, "/"))
	}},
	{"delete tree", func(t *testing.T, ctx context.Context, s Store, root string, _ func(*testing.T) Store) {
		for _, p := range []string{"/t/x/1", "/t/x/2/deep/er", "/t/y", "/sibling/z"} {
			mustDo(t, EnsurePath(ctx, s, root+p))
		}
		mustDo(t, s.Set(ctx, root+"/t/x/1", []byte("data")))
		mustDo(t, DeleteTree(ctx, s, root+"/t"))
		_, err := s.Get(ctx, root+"/t")
		wantErr(t, err, ErrNotFound, "get deleted tree")
		wantData(t, s, ctx, root+"/sibling/z", []byte{})
		mustDo(t, DeleteTree(ctx, s, root+"/t")) // missing: not an error
		mustDo(t, DeleteTree(ctx, s, root+"/sibling/z"))
		wantErr(t, DeleteTree(ctx, s, "/"), ErrInvalidPath, "DeleteTree(/)")
		got, err := s.Children(ctx, root)
		mustDo(t, err)
		if !slices.Equal(got, []string{"sibling"}) {
			t.Fatalf("Children = %q, want [sibling]", got)
		}
	}},
	{"binary data", func(t *testing.T, ctx context.Context, s Store, root string, _ func(*testing.T) Store) {
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		big := bytes.Repeat([]byte{0, 0xff, '\n', 'x'}, 64<<10) // 256 KiB
		for i, data := range [][]byte{all, {0}, big, []byte("\r\n\x00trailing\x00")} {
			p := fmt.Sprintf("%s/b%d", root, i)
			mustDo(t, s.Create(ctx, p, data))
			wantData(t, s, ctx, p, data)
			mustDo(t, s.Set(ctx, p, data[:len(data)/2]))
			wantData(t, s, ctx, p, data[:len(data)/2])
		}
	}},
	{"many children", func(t *testing.T, ctx context.Context, s Store, root string, _ func(*testing.T) Store) {
		const n = 300
		var want []string
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("child-%04d", (i*7919)%n) // created out of order
			want = append(want, name)
			mustDo(t, s.Create(ctx, root+"/"+name, []byte(name)))
		}
		slices.Sort(want)
		got, err := s.Children(ctx, root)
		mustDo(t, err)
		if !slices.Equal(got, want) {
			t.Fatalf("Children returned %d names, want %d sorted names", len(got), len(want))
		}
		mustDo(t, DeleteTree(ctx, s, root))
	}},
	{"visible to other stores", func(t *testing.T, ctx context.Context, s Store, root string, open func(*testing.T) Store) {
		other := open(t)
		mustDo(t, s.Create(ctx, root+"/shared", []byte("one")))
		wantData(t, other, ctx, root+"/shared", []byte("one"))
		mustDo(t, s.Set(ctx, root+"/shared", []byte("two")))
		wantData(t, other, ctx, root+"/shared", []byte("two"))
		mustDo(t, other.Delete(ctx, root+"/shared"))
		_, err := s.Get(ctx, root+"/shared")
		wantErr(t, err, ErrNotFound, "get after delete by another store")
	}},
	{"context", func(t *testing.T, _ context.Context, s Store, root string, _ func(*testing.T) Store) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.Get(ctx, root)
		wantErr(t, err, context.Canceled, "get with canceled context")
		wantErr(t, s.Create(ctx, root+"/x", nil), context.Canceled, "create with canceled context")
	}},
	{"closed", func(t *testing.T, ctx context.Context, _ Store, root string, open func(*testing.T) Store) {
		s := open(t)
		mustDo(t, s.Close())
		mustDo(t, s.Close()) // idempotent
		_, err := s.Get(ctx, root)
		wantErr(t, err, ErrClosed, "get after close")
		wantErr(t, s.Create(ctx, root+"/x", nil), ErrClosed, "create after close")
		wantErr(t, s.Set(ctx, root, nil), ErrClosed, "set after close")
		_, err = s.Children(ctx, root)
		wantErr(t, err, ErrClosed, "children after close")
		wantErr(t, s.Delete(ctx, root+"/x"), ErrClosed, "delete after close")
	}},
}

func TestStoreConformance(t *testing.T) {
	checkGoroutines(t)
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			open := b.setup(t)
			s := open(t)
			for _, tc := range conformanceCases {
				t.Run(tc.name, func(t *testing.T) {
					ctx := ctxTimeout(t, 30*time.Second)
					root := "/conformance/" + tc.name
					mustDo(t, EnsurePath(ctx, s, root))
					tc.run(t, ctx, s, root, open)
				})
			}
		})
	}
}

// TestLocalStoreLeavesNoTemporaries checks that the atomic-write machinery
// cleans up after itself: only node directories and data files remain.
func TestLocalStoreLeavesNoTemporaries(t *testing.T) {
	dir := t.TempDir()
	s := newLocalStore(t, dir)
	ctx := ctxTimeout(t, 10*time.Second)
	mustDo(t, EnsurePath(ctx, s, "/a/b"))
	mustDo(t, s.Set(ctx, "/a/b", []byte("x")))
	mustDo(t, s.Set(ctx, "/", []byte("root")))
	mustDo(t, s.Create(ctx, "/a/c", nil))
	mustDo(t, s.Delete(ctx, "/a/c"))
	wantData(t, s, ctx, "/", []byte("root"))
	files := listTree(t, dir)
	want := []string{"tree", "tree/c.a", "tree/c.a/c.b", "tree/c.a/c.b/data", "tree/c.a/data", "tree/data"}
	if !slices.Equal(files, want) {
		t.Fatalf("files in the store = %q, want %q", files, want)
	}
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t testing.TB, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

func wantData(t testing.TB, s Store, ctx context.Context, path string, want []byte) {
	t.Helper()
	got, err := s.Get(ctx, path)
	if err != nil {
		t.Fatalf("Get(%s): %v", path, err)
	}
	if !bytes.Equal(got, want) {
		if len(got) > 64 || len(want) > 64 {
			t.Fatalf("Get(%s) returned %d bytes, want %d bytes (contents differ)", path, len(got), len(want))
		}
		t.Fatalf("Get(%s) = %q, want %q", path, got, want)
	}
}

// listTree lists every file and directory below dir, relative and sorted.
func listTree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
