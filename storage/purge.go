package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/cockroachdb/pebble"

	"github.com/pegasusgo/pegasus/storage/keys"
)

// Table properties written by expireCollector into every sstable. They are persisted:
// never change the names.
const (
	expireCollectorName = "pegasus.expire_ts"
	propExpireMarker    = "pegasus.expire_ts.collected" // always present
	propExpireMin       = "pegasus.expire_ts.min"       // smallest non-zero expire_ts, if any
)

// purgeBatchKeys bounds the keys deleted per batch, so that the sweep holds the write
// lock only briefly.
const purgeBatchKeys = 512

// expireCollector records the smallest non-zero expire_ts of an sstable. expire_ts is
// the first four bytes of the value in every data version, so no version is needed.
// It is a table (not block) property collector because Pebble hands block property
// collectors no values for SET records in its newer table formats.
type expireCollector struct {
	min uint32
}

func newExpireCollector() pebble.TablePropertyCollector { return &expireCollector{} }

func (c *expireCollector) Name() string { return expireCollectorName }

func (c *expireCollector) Add(key pebble.InternalKey, value []byte) error {
	k := key.Kind()
	if (k != pebble.InternalKeyKindSet && k != pebble.InternalKeyKindSetWithDelete) || len(value) < 4 {
		return nil
	}
	if len(key.UserKey) < 2 || (key.UserKey[0] == 0xff && key.UserKey[1] == 0xff) {
		return nil // internal record, not a stored value
	}
	if e := binary.BigEndian.Uint32(value); e != 0 && (c.min == 0 || e < c.min) {
		c.min = e
	}
	return nil
}

func (c *expireCollector) Finish(props map[string]string) error {
	props[propExpireMarker] = "1"
	if c.min != 0 {
		props[propExpireMin] = strconv.FormatUint(uint64(c.min), 10)
	}
	return nil
}

// mayHoldExpired is the sweep's table filter: it skips the sstables known to hold
// nothing expired by threshold, and reads any table whose properties it cannot use.
func mayHoldExpired(threshold uint32) func(map[string]string) bool {
	return func(props map[string]string) bool {
		if _, ok := props[propExpireMarker]; !ok {
			return true
		}
		v, ok := props[propExpireMin]
		if !ok {
			return false
		}
		m, err := strconv.ParseUint(v, 10, 32)
		return err != nil || uint32(m) <= threshold
	}
}

// purgeThreshold returns the expire_ts at or below which records may be deleted, or 0
// when nothing may be. It is the earlier of the local clock and the timestamp of the
// last applied mutation, minus the grace period: incr and check-and-set judge expiry
// by the mutation's timestamp, so a record is only purged once every mutation still
// to come (whose timestamps are assigned by a primary whose clock may lag ours) will
// consider it expired anyway.
func (s *Store) purgeThreshold() uint32 {
	now := s.nowEpoch()
	if ts := s.lastTSUS.Load(); ts > 0 {
		now = min(now, keys.Epoch2016FromUnixMicros(ts))
	}
	grace := uint32(min(s.opts.PurgeGracePeriod.Seconds(), float64(now)))
	return now - grace
}

// PurgeExpired deletes the records that expired before the purge threshold (see the
// package documentation) and returns how many it deleted. Deletions go through the
// normal write path in small batches that do not change the decree; reads never see
// a difference because expired records are already invisible.
func (s *Store) PurgeExpired(ctx context.Context) (int, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.release()
	return s.purgeExpired(ctx)
}

func (s *Store) purgeExpired(ctx context.Context) (int, error) {
	threshold := s.purgeThreshold()
	if threshold == 0 {
		return 0, nil
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: []byte(userKeyStart),
		UpperBound: []byte(userKeyEnd),
		// sstables without a record expiring by the threshold are skipped entirely, so
		// the sweep costs little where there is no TTL data; memtables are always read.
		// Skipping a table may surface an older version of a key whose newer version
		// lives there: every candidate is checked again against the live state before
		// it is deleted.
		TableFilter: mayHoldExpired(threshold),
	})
	if err != nil {
		return 0, fmt.Errorf("storage: purge: %w", err)
	}
	defer it.Close()
	var candidates [][]byte
	purged := 0
	for n, valid := 0, it.First(); valid; n, valid = n+1, it.Next() {
		// Close cancels ctx and waits for a running sweep; Pebble does not watch ctx.
		if n%1024 == 0 && ctx.Err() != nil {
			return purged, fmt.Errorf("storage: purge: %w", ctx.Err())
		}
		raw, err := it.ValueAndErr()
		if err != nil {
			return purged, fmt.Errorf("storage: purge: %w", err)
		}
		if len(raw) < 4 {
			continue
		}
		if e := binary.BigEndian.Uint32(raw); e == 0 || e > threshold {
			continue
		}
		candidates = append(candidates, append([]byte(nil), it.Key()...))
		if len(candidates) >= purgeBatchKeys {
			n, err := s.deleteExpired(candidates, threshold)
			purged += n
			if err != nil {
				return purged, err
			}
			candidates = candidates[:0]
			if err := ctx.Err(); err != nil {
				return purged, fmt.Errorf("storage: purge: %w", err)
			}
		}
	}
	if err := it.Error(); err != nil {
		return purged, fmt.Errorf("storage: purge: %w", err)
	}
	n, err := s.deleteExpired(candidates, threshold)
	return purged + n, err
}

// deleteExpired deletes the candidates that are still expired by threshold. It holds
// the write lock while it re-reads them, so a record rewritten since the scan (by an
// Apply that raced with the sweep) is never lost.
func (s *Store) deleteExpired(candidates [][]byte, threshold uint32) (int, error) {
	if len(candidates) == 0 {
		return 0, nil
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	for _, k := range candidates {
		raw, closer, err := s.db.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("storage: purge: %w", err)
		}
		expired := len(raw) >= 4 && keys.IsExpired(binary.BigEndian.Uint32(raw), threshold)
		closer.Close()
		if expired {
			if err := b.Delete(k, nil); err != nil {
				return 0, fmt.Errorf("storage: purge: %w", err)
			}
		}
	}
	n := int(b.Count())
	if n == 0 {
		return 0, nil
	}
	if err := b.Commit(s.writeOpts); err != nil {
		return 0, fmt.Errorf("storage: purge commit: %w", err)
	}
	s.countWritten(n, n)
	return n, nil
}

// Compact purges expired records and then compacts the whole key space, which drops
// the deletion tombstones and overwritten versions and reclaims their space. It is the
// entry point of manual compaction. Pebble's compaction cannot be interrupted, so ctx
// is only checked between the two phases and during the sweep.
func (s *Store) Compact(ctx context.Context) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	n, err := s.purgeExpired(ctx)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: compact: %w", err)
	}
	// The end bound sorts after every key, internal records included.
	if err := s.db.Compact([]byte{}, []byte{0xff, 0xff, 0xff, 0xff}, true); err != nil {
		return fmt.Errorf("storage: compact: %w", err)
	}
	s.log.Info("manual compaction done", "purged", n)
	return nil
}
