package keys

import (
	"bytes"
	"testing"
)

// FuzzDecodeKey checks that DecodeKey never panics and that every key it accepts is
// exactly what EncodeKey produces for the decoded parts (the encoding is a bijection on
// the accepted set), and that the parts sort within HashKeyEnd.
func FuzzDecodeKey(f *testing.F) {
	for _, seed := range [][]byte{
		nil, {0}, {0, 0}, {0, 1, 'a'}, {0, 2, 'h', 'k', 's', 'k'}, {0xff, 0xff}, {0xff, 0xfe, 1},
		{0, 1, 0, 0xff, 0},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		h, s, err := DecodeKey(key)
		if err != nil {
			return
		}
		again, err := EncodeKey(h, s)
		if err != nil {
			t.Fatalf("EncodeKey(%x, %x) of a decoded key: %v", h, s, err)
		}
		if !bytes.Equal(again, key) {
			t.Fatalf("round trip %x -> (%x, %x) -> %x", key, h, s, again)
		}
		end, err := HashKeyEnd(h)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Compare(key, end) >= 0 {
			t.Fatalf("key %x not below HashKeyEnd %x", key, end)
		}
	})
}

// FuzzDecodeValue checks that DecodeValue never panics for either data version and that
// accepted values re-encode to the same bytes.
func FuzzDecodeValue(f *testing.F) {
	for _, seed := range [][]byte{
		nil, {0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 1, 'x'},
		{0, 0, 0, 0, 6, 0x36, 0x77, 0x54, 0x17, 0xe2, 0x40, 0, '{', '}'},
	} {
		f.Add(uint8(0), seed)
		f.Add(uint8(1), seed)
	}
	f.Fuzz(func(t *testing.T, version uint8, stored []byte) {
		v, err := DecodeValue(uint32(version), stored)
		if err != nil {
			return
		}
		again, err := EncodeValue(uint32(version), v.ExpireTS, v.Timetag, v.UserValue)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, stored) {
			t.Fatalf("round trip v%d %x -> %+v -> %x", version, stored, v, again)
		}
		ts, cluster, deleted := SplitTimetag(v.Timetag)
		if version == DataVersion1 && MakeTimetag(ts, cluster, deleted) != v.Timetag {
			t.Fatalf("timetag %x does not round-trip", v.Timetag)
		}
	})
}
