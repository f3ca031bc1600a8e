package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/sstable"

	"github.com/pegasusgo/pegasus/storage/keys"
)

// expireProperty names the block property that records, per data block and per
// sstable, the interval [min, max+1) of the non-zero expire_ts of the records it holds.
// The name is persisted in every sstable: never change it.
const expireProperty = "pegasus.expire_ts"

// purgeBatchKeys bounds the keys deleted per batch, so that the sweep holds the write
// lock only briefly.
const purgeBatchKeys = 512

// expireCollector feeds the expire_ts interval of each data block. expire_ts is the
// first four bytes of the value in every data version, so no version is needed.
type expireCollector struct {
	lower, upper uint64 // [lower, upper) of the current block; empty when lower == upper
}

func newExpireCollector() pebble.BlockPropertyCollector {
	return sstable.NewBlockIntervalCollector(expireProperty, &expireCollector{}, nil)
}

func (c *expireCollector) Add(key pebble.InternalKey, value []byte) error {
	k := key.Kind()
	if (k != pebble.InternalKeyKindSet && k != pebble.InternalKeyKindSetWithDelete) || len(value) < 4 {
		return nil
	}
	if len(key.UserKey) >= 2 && key.UserKey[0] == 0xff && key.UserKey[1] == 0xff {
		return nil // internal record, not a stored value
	}
	e := uint64(binary.BigEndian.Uint32(value))
	if e == 0 {
		return nil
	}
	if c.lower == c.upper {
		c.lower, c.upper = e, e+1
		return nil
	}
	c.lower, c.upper = min(c.lower, e), max(c.upper, e+1)
	return nil
}

func (c *expireCollector) FinishDataBlock() (uint64, uint64, error) {
	l, u := c.lower, c.upper
	c.lower, c.upper = 0, 0
	return l, u, nil
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
	filter := sstable.NewBlockIntervalFilter(expireProperty, 1, uint64(threshold)+1)
	filters := make([]pebble.BlockPropertyFilter, 1, 2)
	filters[0] = filter
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: []byte{0, 0},
		UpperBound: []byte(userKeyEnd),
		// Blocks and sstables without a record expiring by the threshold are skipped
		// entirely, so the sweep costs little where there is no TTL data. Memtables are
		// always read. The filter may also surface older versions of a key; every
		// candidate is checked again against the live state before it is deleted.
		PointKeyFilters: filters,
	})
	if err != nil {
		return 0, fmt.Errorf("storage: purge: %w", err)
	}
	defer it.Close()
	var candidates [][]byte
	purged := 0
	for valid := it.First(); valid; valid = it.Next() {
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
