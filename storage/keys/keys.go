// Package keys holds the byte-level encodings of Pegasus data: the composite key that
// joins a hash key and a sort key, and the stored value layout that carries the expiry
// time and the duplication timetag in front of the user value.
//
// The package is deliberately free of any storage-engine dependency: the replica's
// storage engine, the shell and the clients all build and take apart composite keys, and
// only the engine needs Pebble.
//
// # Composite key
//
//	key = u16 BE len(hash_key) ++ hash_key ++ sort_key
//
// Keys compare bytewise, so the sort keys of one hash key are contiguous and ordered,
// while hash keys are ordered by length first. The length prefix cannot express 65535:
// the reference server requires hash keys shorter than that and treats a 0xFFFF prefix as
// invalid. DecodeKey therefore rejects a 0xFFFF length, which keeps every key that
// DecodeKey accepts reproducible by EncodeKey, and leaves the byte range starting with
// FF FF free for engine-internal records.
//
// # Stored value
//
//	data version 0: u32 BE expire_ts ++ user_value
//	data version 1: u32 BE expire_ts ++ u64 BE timetag ++ user_value
//
// expire_ts counts seconds since 2016-01-01T00:00:00Z (0 = no expiry); the timetag is
// timestamp_us<<8 | cluster_id<<1 | deleted_flag and only matters for last-writer-wins
// between duplicated clusters. The data version is a property of a whole replica (kept by
// the engine), not of each value, so decoding needs it as an argument. Version 2 (a
// self-describing first byte) is defined upstream but never written; it is not supported.
package keys

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxHashKeyLen is the longest hash key a composite key may carry. The u16 length prefix
// could hold 65535, but the reference server reserves that value as invalid.
const MaxHashKeyLen = 65534

// Errors returned by the key helpers. They are sentinel values so that callers can map
// them to the rrdb "invalid argument" code with errors.Is.
var (
	ErrEmptyHashKey   = errors.New("empty hash key")
	ErrHashKeyTooLong = fmt.Errorf("hash key longer than %d bytes", MaxHashKeyLen)
	ErrKeyTooShort    = errors.New("composite key shorter than its 2-byte length prefix")
	ErrKeyLength      = errors.New("composite key hash-key length prefix out of range")
)

// ValidateHashKey reports whether h may be used as the hash key of a stored record:
// clients refuse empty hash keys and the server refuses ones of 65535 bytes or more.
func ValidateHashKey(h []byte) error {
	if len(h) == 0 {
		return ErrEmptyHashKey
	}
	if len(h) > MaxHashKeyLen {
		return fmt.Errorf("%w: %d bytes", ErrHashKeyTooLong, len(h))
	}
	return nil
}

// EncodeKey builds the composite key of (hashKey, sortKey). An empty hash key is allowed
// because raw bounds such as the start of a full scan use it; a hash key longer than
// MaxHashKeyLen is not representable and returns ErrHashKeyTooLong.
func EncodeKey(hashKey, sortKey []byte) ([]byte, error) {
	if len(hashKey) > MaxHashKeyLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrHashKeyTooLong, len(hashKey))
	}
	return AppendKey(make([]byte, 0, 2+len(hashKey)+len(sortKey)), hashKey, sortKey), nil
}

// AppendKey appends the composite key of (hashKey, sortKey) to dst. The caller must have
// checked that len(hashKey) <= MaxHashKeyLen; a longer key would silently wrap the
// length prefix, so AppendKey panics instead.
func AppendKey(dst, hashKey, sortKey []byte) []byte {
	if len(hashKey) > MaxHashKeyLen {
		panic(fmt.Sprintf("keys.AppendKey: hash key of %d bytes", len(hashKey)))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(hashKey)))
	dst = append(dst, hashKey...)
	return append(dst, sortKey...)
}

// DecodeKey splits a composite key into its hash key and sort key. The returned slices
// alias key. It fails when key is shorter than 2 bytes, when the length prefix runs past
// the end of key, or when the prefix is the reserved value 0xFFFF.
func DecodeKey(key []byte) (hashKey, sortKey []byte, err error) {
	if len(key) < 2 {
		return nil, nil, fmt.Errorf("%w: %d bytes", ErrKeyTooShort, len(key))
	}
	n := int(binary.BigEndian.Uint16(key))
	if n > MaxHashKeyLen || 2+n > len(key) {
		return nil, nil, fmt.Errorf("%w: prefix %d, key %d bytes", ErrKeyLength, n, len(key))
	}
	return key[2 : 2+n : 2+n], key[2+n:], nil
}

// HashKeyOf returns the hash key part of a composite key, or an error like DecodeKey.
func HashKeyOf(key []byte) ([]byte, error) {
	h, _, err := DecodeKey(key)
	return h, err
}

// PrefixSuccessor returns the smallest key that is greater than every key starting with
// prefix: prefix with its last byte that is not 0xFF incremented and everything after it
// dropped. It returns nil when no such key exists (prefix is empty or all 0xFF), meaning
// "no upper bound".
func PrefixSuccessor(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xFF {
			out := make([]byte, i+1)
			copy(out, prefix[:i+1])
			out[i]++
			return out
		}
	}
	return nil
}

// HashKeyEnd returns the exclusive upper bound of all composite keys of hashKey, "the next
// key after hash key H" of the protocol: the successor of composite(H, ""). Because the
// length prefix of a valid hash key is at most 0xFFFE, the result always exists.
func HashKeyEnd(hashKey []byte) ([]byte, error) {
	start, err := EncodeKey(hashKey, nil)
	if err != nil {
		return nil, err
	}
	return PrefixSuccessor(start), nil
}

// KeySuccessor returns the immediate successor of key in bytewise order (key ++ 0x00).
// It turns an inclusive bound into an exclusive one (and vice versa) without knowing
// anything about the key's structure.
func KeySuccessor(key []byte) []byte {
	out := make([]byte, len(key)+1)
	copy(out, key)
	return out
}
