package keys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Data versions of the stored value schema.
const (
	// DataVersion0 is the original layout: u32 expire_ts ++ user value.
	DataVersion0 = 0
	// DataVersion1 adds a u64 timetag after expire_ts; new replicas write it.
	DataVersion1 = 1
	// CurrentDataVersion is the version new replicas are created with.
	CurrentDataVersion = DataVersion1
)

// Epoch2016Unix is the Unix time of 2016-01-01T00:00:00Z, the origin of expire_ts.
const Epoch2016Unix = 1451606400

// MaxClusterID is the largest duplication cluster id that fits in a timetag.
const MaxClusterID = 127

// ErrValueTooShort and ErrDataVersion are returned by DecodeValue.
var (
	ErrValueTooShort = errors.New("stored value shorter than its header")
	ErrDataVersion   = errors.New("unsupported data version")
)

// Value is a decoded stored value. UserValue aliases the buffer it was decoded from.
type Value struct {
	ExpireTS  uint32 // seconds since 2016-01-01 UTC; 0 = no expiry
	Timetag   uint64 // data version 1 only; 0 for version 0
	UserValue []byte
}

// HeaderLen returns the number of bytes in front of the user value for a data version,
// or an error for an unsupported version.
func HeaderLen(version uint32) (int, error) {
	switch version {
	case DataVersion0:
		return 4, nil
	case DataVersion1:
		return 12, nil
	default:
		return 0, fmt.Errorf("%w: %d", ErrDataVersion, version)
	}
}

// EncodeValue returns the stored form of a user value for the given data version. The
// timetag is ignored by version 0.
func EncodeValue(version uint32, expireTS uint32, timetag uint64, userValue []byte) ([]byte, error) {
	n, err := HeaderLen(version)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n+len(userValue))
	PutValue(buf, version, expireTS, timetag, userValue)
	return buf, nil
}

// PutValue writes the stored form into dst, which must be exactly HeaderLen(version) +
// len(userValue) bytes long; it exists so that callers can encode straight into a
// pre-sized buffer (for instance a storage batch) without an intermediate allocation.
// It panics on an unsupported version or a wrongly sized dst: both are programming errors.
func PutValue(dst []byte, version uint32, expireTS uint32, timetag uint64, userValue []byte) {
	n, err := HeaderLen(version)
	if err != nil {
		panic(err)
	}
	if len(dst) != n+len(userValue) {
		panic(fmt.Sprintf("keys.PutValue: dst is %d bytes, need %d", len(dst), n+len(userValue)))
	}
	binary.BigEndian.PutUint32(dst, expireTS)
	if version == DataVersion1 {
		binary.BigEndian.PutUint64(dst[4:], timetag)
	}
	copy(dst[n:], userValue)
}

// DecodeValue parses a stored value of the given data version. UserValue aliases stored.
func DecodeValue(version uint32, stored []byte) (Value, error) {
	n, err := HeaderLen(version)
	if err != nil {
		return Value{}, err
	}
	if len(stored) < n {
		return Value{}, fmt.Errorf("%w: %d bytes, version %d needs %d", ErrValueTooShort, len(stored), version, n)
	}
	v := Value{ExpireTS: binary.BigEndian.Uint32(stored), UserValue: stored[n:len(stored):len(stored)]}
	if version == DataVersion1 {
		v.Timetag = binary.BigEndian.Uint64(stored[4:])
	}
	return v, nil
}

// MakeTimetag packs a write's microsecond timestamp (56 bits kept), the duplication
// cluster id (7 bits kept) and the deleted flag into a timetag.
func MakeTimetag(timestampUS uint64, clusterID uint8, deleted bool) uint64 {
	t := timestampUS<<8 | uint64(clusterID&MaxClusterID)<<1
	if deleted {
		t |= 1
	}
	return t
}

// SplitTimetag is the inverse of MakeTimetag.
func SplitTimetag(t uint64) (timestampUS uint64, clusterID uint8, deleted bool) {
	return t >> 8, uint8(t>>1) & MaxClusterID, t&1 == 1
}

// Epoch2016 converts a time to seconds since 2016-01-01 UTC, clamped to the u32 range.
func Epoch2016(t time.Time) uint32 {
	return clampEpoch(t.Unix() - Epoch2016Unix)
}

// Epoch2016FromUnixMicros converts a Unix microsecond timestamp (the unit of mutation
// timestamps) to seconds since 2016-01-01 UTC, clamped to the u32 range.
func Epoch2016FromUnixMicros(us int64) uint32 {
	return clampEpoch(us/1_000_000 - Epoch2016Unix)
}

func clampEpoch(s int64) uint32 {
	switch {
	case s < 0:
		return 0
	case s > math.MaxUint32:
		return math.MaxUint32
	default:
		return uint32(s)
	}
}

// TimeFromEpoch2016 converts an expire_ts back to a time.
func TimeFromEpoch2016(s uint32) time.Time {
	return time.Unix(int64(s)+Epoch2016Unix, 0).UTC()
}

// IsExpired reports whether a record with this expire_ts is expired at now (both in
// seconds since 2016-01-01). A record expires at the start of its expire_ts second.
func IsExpired(expireTS, now uint32) bool {
	return expireTS > 0 && expireTS <= now
}

// ExpireTSFromTTL converts a relative TTL to an absolute expire_ts the way clients do:
// ttl 0 (or negative) means no expiry.
func ExpireTSFromTTL(ttl time.Duration, now time.Time) uint32 {
	secs := int64(ttl / time.Second)
	if secs <= 0 {
		return 0
	}
	return clampEpoch(secs + now.Unix() - Epoch2016Unix)
}

// RemainingTTL returns the seconds left before expireTS at now: -1 when the record never
// expires, 0 when it is already expired.
func RemainingTTL(expireTS, now uint32) int64 {
	if expireTS == 0 {
		return -1
	}
	if expireTS <= now {
		return 0
	}
	return int64(expireTS - now)
}
