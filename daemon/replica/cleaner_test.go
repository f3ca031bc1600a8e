package replica

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCleanDisksKeepsRecentGarbage(t *testing.T) {
	root := t.TempDir()
	now := time.Now()
	old := now.Add(-48 * time.Hour).UnixMicro()
	recent := now.Add(-time.Hour).UnixMicro()
	mk := func(rel string) string {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldGar := mk(fmt.Sprintf("1.2.pegasus.%d.gar", old))
	newGar := mk(fmt.Sprintf("1.3.pegasus.%d.gar", recent))
	oldErr := mk(fmt.Sprintf("1.4.pegasus.%d.err", old))
	live := mk("1.5.pegasus")
	oldData := mk(fmt.Sprintf("1.5.pegasus/data.%d.gar", old))
	s := &Stub{disks: []*disk{{tag: "d", dir: root}}, log: slog.New(slog.DiscardHandler),
		opts: Options{GarbageRetention: 24 * time.Hour, ErrorRetention: 7 * 24 * time.Hour}}
	s.cleanDisks(now)
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	for p, want := range map[string]bool{oldGar: false, newGar: true, oldErr: true, live: true, oldData: false} {
		if exists(p) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), exists(p), want)
		}
	}
}
