package storage

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/pegasusgo/pegasus/storage/keys"
)

// Record is one stored user record as ForEach presents it. The slices are only valid
// during the callback.
type Record struct {
	Key      []byte // composite key
	HashKey  []byte
	SortKey  []byte
	Value    []byte // user value
	ExpireTS uint32 // seconds since 2016-01-01; 0 = no expiry
	Timetag  uint64 // 0 for data version 0
}

// Expired reports whether the record is expired at now (seconds since 2016-01-01).
func (r *Record) Expired(now uint32) bool { return keys.IsExpired(r.ExpireTS, now) }

// ForEach calls fn for every stored user record in key order, from one consistent
// snapshot, including expired records that have not been purged yet (use
// Record.Expired to skip them). Internal records and keys that are not composite keys
// are not visited. An error from fn stops the iteration and is returned.
func (s *Store) ForEach(ctx context.Context, fn func(*Record) error) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: []byte(userKeyStart),
		UpperBound: []byte(userKeyEnd),
	})
	if err != nil {
		return fmt.Errorf("storage: iterate: %w", err)
	}
	defer it.Close()
	var r Record
	for n, valid := 0, it.First(); valid; n, valid = n+1, it.Next() {
		if n%256 == 0 && ctx.Err() != nil {
			return fmt.Errorf("storage: iterate: %w", ctx.Err())
		}
		h, sk, err := keys.DecodeKey(it.Key())
		if err != nil {
			continue
		}
		raw, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("storage: iterate: %w", err)
		}
		v, err := keys.DecodeValue(s.dataVersion, raw)
		if err != nil {
			return fmt.Errorf("storage: record %x: %w", it.Key(), err)
		}
		r = Record{Key: it.Key(), HashKey: h, SortKey: sk, Value: v.UserValue, ExpireTS: v.ExpireTS, Timetag: v.Timetag}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("storage: iterate: %w", err)
	}
	return nil
}

// Digest returns a SHA-256 over the live records (unexpired at now, in seconds since
// 2016-01-01) in key order: composite key, user value and expire_ts, each length
// prefixed. Timetags are left out because they carry the duplication cluster id, which
// is not part of the data. Two replicas with the same decree and the same "now" have
// the same digest whatever their purge and compaction history.
func (s *Store) Digest(ctx context.Context, now uint32) ([sha256.Size]byte, error) {
	h := sha256.New()
	var buf [8]byte
	err := s.ForEach(ctx, func(r *Record) error {
		if r.Expired(now) {
			return nil
		}
		binary.BigEndian.PutUint32(buf[:4], uint32(len(r.Key)))
		h.Write(buf[:4])
		h.Write(r.Key)
		binary.BigEndian.PutUint32(buf[:4], uint32(len(r.Value)))
		binary.BigEndian.PutUint32(buf[4:], r.ExpireTS)
		h.Write(buf[:8])
		h.Write(r.Value)
		return nil
	})
	var sum [sha256.Size]byte
	if err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
