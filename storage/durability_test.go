package storage

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/pegasusgo/pegasus/storage/keys"
)

func openAt(t *testing.T, dir string, clk *fakeClock, mutate ...func(*Options)) *Store {
	t.Helper()
	o := testOptions(clk)
	for _, m := range mutate {
		m(&o)
	}
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open %s: %v", dir, err)
	}
	return s
}

func applyRange(t *testing.T, s *Store, clk *fakeClock, from, to int64) {
	t.Helper()
	for d := from; d <= to; d++ {
		_, err := s.Apply(&Mutation{Decree: d, TimestampUS: clk.Now().UnixMicro(), Ops: []Op{
			putOp("h", fmt.Sprintf("k%03d", d%7), fmt.Sprintf("v%d", d), 0),
			incrOp("h", "counter", 1, 0),
		}})
		if err != nil {
			t.Fatalf("apply %d: %v", d, err)
		}
	}
}

func digestOf(t *testing.T, s *Store, clk *fakeClock) string {
	t.Helper()
	d, err := s.Digest(t.Context(), clk.epoch())
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", d)
}

func TestDurableDecreeAndReopen(t *testing.T) {
	clk := newFakeClock()
	dir := filepath.Join(t.TempDir(), "db")
	s := openAt(t, dir, clk)
	if s.LastAppliedDecree() != 0 || s.LastDurableDecree() != 0 {
		t.Fatalf("new store: applied %d durable %d", s.LastAppliedDecree(), s.LastDurableDecree())
	}
	applyRange(t, s, clk, 1, 5)
	if s.LastAppliedDecree() != 5 || s.LastDurableDecree() != 0 {
		t.Fatalf("before flush: applied %d durable %d", s.LastAppliedDecree(), s.LastDurableDecree())
	}
	if err := s.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s.LastDurableDecree() != 5 {
		t.Fatalf("after flush: durable %d", s.LastDurableDecree())
	}
	applyRange(t, s, clk, 6, 8)
	if s.LastAppliedDecree() != 8 || s.LastDurableDecree() != 5 {
		t.Fatalf("after more writes: applied %d durable %d", s.LastAppliedDecree(), s.LastDurableDecree())
	}
	if s.SizeOnDisk() <= 0 {
		t.Fatalf("size on disk %d", s.SizeOnDisk())
	}
	want := digestOf(t, s, clk)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A clean close flushes, so nothing is lost.
	s = openAt(t, dir, clk)
	defer s.Close()
	if s.LastAppliedDecree() != 8 || s.LastDurableDecree() != 8 {
		t.Fatalf("after reopen: applied %d durable %d", s.LastAppliedDecree(), s.LastDurableDecree())
	}
	if got := digestOf(t, s, clk); got != want {
		t.Fatalf("digest changed across reopen")
	}
	if s.DataVersion() != 1 {
		t.Fatalf("data version %d", s.DataVersion())
	}
	// Decree 9 continues the sequence.
	applyRange(t, s, clk, 9, 9)
}

func TestCheckpoint(t *testing.T) {
	clk := newFakeClock()
	root := t.TempDir()
	s := openAt(t, filepath.Join(root, "db"), clk)
	defer s.Close()
	applyRange(t, s, clk, 1, 10)
	want := digestOf(t, s, clk)
	cp := filepath.Join(root, "checkpoint.10")
	decree, err := s.Checkpoint(t.Context(), cp)
	if err != nil || decree != 10 {
		t.Fatalf("checkpoint: %d %v", decree, err)
	}
	if _, err := s.Checkpoint(t.Context(), cp); err == nil {
		t.Fatal("checkpoint into an existing directory succeeded")
	}
	applyRange(t, s, clk, 11, 12)
	if digestOf(t, s, clk) == want {
		t.Fatal("digest did not change with new writes")
	}
	c := openAt(t, cp, clk)
	defer c.Close()
	if c.LastAppliedDecree() != 10 || c.LastDurableDecree() != 10 {
		t.Fatalf("checkpoint store: applied %d durable %d", c.LastAppliedDecree(), c.LastDurableDecree())
	}
	if got := digestOf(t, c, clk); got != want {
		t.Fatal("checkpoint content differs from the store at its decree")
	}
	// A learner continues from the checkpoint with the same mutations and converges.
	applyRange(t, c, clk, 11, 12)
	if digestOf(t, c, clk) != digestOf(t, s, clk) {
		t.Fatal("replaying the same mutations on the checkpoint diverged")
	}
}

func TestWALMode(t *testing.T) {
	clk := newFakeClock()
	dir := filepath.Join(t.TempDir(), "db")
	s := openAt(t, dir, clk, func(o *Options) { o.DisableWAL = false })
	applyRange(t, s, clk, 1, 3)
	if s.LastDurableDecree() != 3 {
		t.Fatalf("WAL mode durable %d", s.LastDurableDecree())
	}
	cp := filepath.Join(t.TempDir(), "cp")
	if d, err := s.Checkpoint(t.Context(), cp); err != nil || d != 3 {
		t.Fatalf("checkpoint: %d %v", d, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, cp} {
		s := openAt(t, d, clk, func(o *Options) { o.DisableWAL = false })
		if s.LastAppliedDecree() != 3 {
			t.Errorf("%s: applied %d", d, s.LastAppliedDecree())
		}
		s.Close()
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "db"), newFakeClock())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.LastDurableDecree() != 0 || s.SizeOnDisk() != 0 {
		t.Fatal("closed store answered")
	}
	if err := s.Flush(t.Context()); err == nil {
		t.Fatal("flush after close succeeded")
	}
}

// TestDataVersion0 opens a store whose data version record says 0 (an old replica):
// values are read and written in the version 0 layout (no timetag).
func TestDataVersion0(t *testing.T) {
	clk := newFakeClock()
	dir := filepath.Join(t.TempDir(), "db")
	s := openAt(t, dir, clk)
	if err := s.db.Set([]byte(metaDataVersionKey), []byte{0, 0, 0, 0}, s.writeOpts); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, dir, clk)
	defer s.Close()
	if s.DataVersion() != 0 {
		t.Fatalf("data version %d", s.DataVersion())
	}
	now := clk.epoch()
	if _, err := s.Apply(&Mutation{Decree: 1, TimestampUS: clk.Now().UnixMicro(), Ops: []Op{
		putOp("h", "s", "v0", int32(now+60)), incrOp("h", "n", 2, 0),
	}}); err != nil {
		t.Fatal(err)
	}
	raw, closer, err := s.db.Get(ck("h", "s"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := keys.EncodeValue(keys.DataVersion0, now+60, 0, []byte("v0"))
	if string(raw) != string(want) {
		t.Fatalf("stored %x, want %x", raw, want)
	}
	closer.Close()
	if r, _ := s.Get(ck("h", "n")); string(r.Value.Bytes()) != "2" {
		t.Fatalf("incr on v0: %+v", r)
	}
	if r, _ := s.TTL(ck("h", "s")); r.TTLSeconds != 60 {
		t.Fatalf("ttl on v0: %+v", r)
	}
}
