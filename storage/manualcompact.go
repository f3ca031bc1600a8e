package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble"
)

// metaManualCompactKey holds when the last manual compaction of the store
// finished (u64 BE Unix milliseconds), upstream's
// last_manual_compact_finish_time. It is local state, not replicated: each
// replica compacts on its own, and the once rule compares its trigger time
// with this replica's last finish.
const metaManualCompactKey = "\xff\xffpegasus.meta/last_manual_compact_finish_ms"

// LastManualCompactFinish returns when the last manual compaction of this
// store finished (zero when none has).
func (s *Store) LastManualCompactFinish() (time.Time, error) {
	if err := s.acquire(); err != nil {
		return time.Time{}, err
	}
	defer s.release()
	raw, closer, err := s.db.Get([]byte(metaManualCompactKey))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("storage: read last manual compaction: %w", err)
	}
	defer closer.Close()
	if len(raw) != 8 {
		return time.Time{}, fmt.Errorf("storage: last manual compaction record of %d bytes", len(raw))
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(raw))), nil
}

// ManualCompact runs a manual compaction (Compact) and records when it
// finished, durably, so that a once-compaction is not repeated after a
// restart. It returns the finish time.
func (s *Store) ManualCompact(ctx context.Context) (time.Time, error) {
	if err := s.Compact(ctx); err != nil {
		return time.Time{}, err
	}
	finish := s.opts.Clock()
	if err := s.acquire(); err != nil {
		return time.Time{}, err
	}
	defer s.release()
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(finish.UnixMilli()))
	if err := s.db.Set([]byte(metaManualCompactKey), buf[:], s.writeOpts); err != nil {
		return time.Time{}, fmt.Errorf("storage: record manual compaction: %w", err)
	}
	// The store has no write-ahead log of its own (the mutation log is it,
	// and this record is not a mutation): a flush makes it durable.
	if err := s.flush(ctx); err != nil {
		return time.Time{}, fmt.Errorf("storage: record manual compaction: %w", err)
	}
	return finish, nil
}
