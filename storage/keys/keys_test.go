package keys

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/rpc/golden"
)

func vectorsDir(t *testing.T) string { return golden.Dir(t) }

// readTSV returns the data rows of a vectors table: comment lines and the header row are
// dropped, an empty column stays an empty string.
func readTSV(t *testing.T, name string, columns int) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(vectorsDir(t), name))
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	defer f.Close()
	var rows [][]string
	header := true
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		if header {
			header = false
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != columns {
			t.Fatalf("%s: row %q has %d columns, want %d", name, line, len(cols), columns)
		}
		rows = append(rows, cols)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no data rows", name)
	}
	return rows
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestKeyVectors(t *testing.T) {
	for i, row := range readTSV(t, "keys.tsv", 3) {
		h, s, want := unhex(t, row[0]), unhex(t, row[1]), unhex(t, row[2])
		got, err := EncodeKey(h, s)
		if err != nil {
			t.Fatalf("row %d: EncodeKey: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("row %d: EncodeKey = %x, want %x", i, got, want)
		}
		dh, ds, err := DecodeKey(want)
		if err != nil {
			t.Fatalf("row %d: DecodeKey: %v", i, err)
		}
		if !bytes.Equal(dh, h) || !bytes.Equal(ds, s) {
			t.Errorf("row %d: DecodeKey = (%x, %x), want (%x, %x)", i, dh, ds, h, s)
		}
	}
}

func TestValueVectors(t *testing.T) {
	for i, row := range readTSV(t, "values.tsv", 7) {
		version, err := strconv.ParseUint(row[0], 10, 32)
		if err != nil {
			t.Fatalf("row %d: version: %v", i, err)
		}
		user := unhex(t, row[1])
		expire, err := strconv.ParseUint(row[2], 10, 32)
		if err != nil {
			t.Fatalf("row %d: expire_ts: %v", i, err)
		}
		var timetag uint64
		if version == DataVersion1 {
			ts, err1 := strconv.ParseUint(row[3], 10, 64)
			cluster, err2 := strconv.ParseUint(row[4], 10, 8)
			deleted, err3 := strconv.ParseUint(row[5], 10, 1)
			if err := errors.Join(err1, err2, err3); err != nil {
				t.Fatalf("row %d: timetag columns: %v", i, err)
			}
			timetag = MakeTimetag(ts, uint8(cluster), deleted == 1)
			gts, gc, gd := SplitTimetag(timetag)
			if gts != ts || uint64(gc) != cluster || gd != (deleted == 1) {
				t.Errorf("row %d: SplitTimetag = %d,%d,%v", i, gts, gc, gd)
			}
		}
		want := unhex(t, row[6])
		got, err := EncodeValue(uint32(version), uint32(expire), timetag, user)
		if err != nil {
			t.Fatalf("row %d: EncodeValue: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("row %d: EncodeValue = %x, want %x", i, got, want)
		}
		v, err := DecodeValue(uint32(version), want)
		if err != nil {
			t.Fatalf("row %d: DecodeValue: %v", i, err)
		}
		if v.ExpireTS != uint32(expire) || v.Timetag != timetag || !bytes.Equal(v.UserValue, user) {
			t.Errorf("row %d: DecodeValue = %+v", i, v)
		}
	}
}

func TestDecodeKeyErrors(t *testing.T) {
	tests := []struct {
		name string
		key  []byte
		want error
	}{
		{"empty", nil, ErrKeyTooShort},
		{"one byte", []byte{0}, ErrKeyTooShort},
		{"prefix past end", []byte{0, 3, 'a', 'b'}, ErrKeyLength},
		{"reserved ffff", append([]byte{0xff, 0xff}, make([]byte, 70000)...), ErrKeyLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := DecodeKey(tc.key); !errors.Is(err, tc.want) {
				t.Fatalf("DecodeKey error = %v, want %v", err, tc.want)
			}
		})
	}
	// The smallest valid keys: empty hash key with and without a sort key.
	for _, k := range [][]byte{{0, 0}, {0, 0, 1}} {
		if _, _, err := DecodeKey(k); err != nil {
			t.Errorf("DecodeKey(%x): %v", k, err)
		}
	}
}

func TestValidateHashKey(t *testing.T) {
	tests := []struct {
		n    int
		want error
	}{
		{0, ErrEmptyHashKey},
		{1, nil},
		{MaxHashKeyLen, nil},
		{MaxHashKeyLen + 1, ErrHashKeyTooLong},
	}
	for _, tc := range tests {
		if err := ValidateHashKey(make([]byte, tc.n)); !errors.Is(err, tc.want) {
			t.Errorf("ValidateHashKey(%d bytes) = %v, want %v", tc.n, err, tc.want)
		}
	}
	if _, err := EncodeKey(make([]byte, MaxHashKeyLen+1), nil); !errors.Is(err, ErrHashKeyTooLong) {
		t.Errorf("EncodeKey of a too long hash key: %v", err)
	}
	k, err := EncodeKey(bytes.Repeat([]byte{0xff}, MaxHashKeyLen), []byte{0xff})
	if err != nil {
		t.Fatal(err)
	}
	if k[0] != 0xff || k[1] != 0xfe {
		t.Errorf("length prefix of the longest hash key = %x", k[:2])
	}
}

func TestHashKeyEnd(t *testing.T) {
	tests := []struct {
		hash []byte
		want []byte
	}{
		{[]byte("a"), []byte{0, 1, 'b'}},
		{[]byte{'a', 0xff}, []byte{0, 2, 'b'}},
		{[]byte{0xff, 0xff}, []byte{0, 3}},
		{nil, []byte{0, 1}},
	}
	for _, tc := range tests {
		got, err := HashKeyEnd(tc.hash)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("HashKeyEnd(%x) = %x, want %x", tc.hash, got, tc.want)
		}
		// Every key of the hash key sorts below the bound, the next hash key does not.
		for _, sort := range [][]byte{nil, {0}, {0xff, 0xff, 0xff}} {
			k, _ := EncodeKey(tc.hash, sort)
			if bytes.Compare(k, got) >= 0 {
				t.Errorf("key %x not below HashKeyEnd %x", k, got)
			}
		}
	}
	if PrefixSuccessor([]byte{0xff, 0xff}) != nil || PrefixSuccessor(nil) != nil {
		t.Error("PrefixSuccessor of an all-FF prefix must be nil")
	}
	if got := KeySuccessor([]byte{1, 2}); !bytes.Equal(got, []byte{1, 2, 0}) {
		t.Errorf("KeySuccessor = %x", got)
	}
}

func TestValueErrors(t *testing.T) {
	if _, err := DecodeValue(1, make([]byte, 11)); !errors.Is(err, ErrValueTooShort) {
		t.Errorf("short v1 value: %v", err)
	}
	if _, err := DecodeValue(0, make([]byte, 3)); !errors.Is(err, ErrValueTooShort) {
		t.Errorf("short v0 value: %v", err)
	}
	if _, err := DecodeValue(2, make([]byte, 20)); !errors.Is(err, ErrDataVersion) {
		t.Errorf("version 2: %v", err)
	}
	if _, err := EncodeValue(7, 0, 0, nil); !errors.Is(err, ErrDataVersion) {
		t.Errorf("encode version 7: %v", err)
	}
}

func TestEpochHelpers(t *testing.T) {
	// The vectors' scenario: unix 1748736000 with a 1 h TTL gives 297133200.
	now := time.Unix(1748736000, 0)
	if got := ExpireTSFromTTL(time.Hour, now); got != 297133200 {
		t.Errorf("ExpireTSFromTTL = %d, want 297133200", got)
	}
	if got := ExpireTSFromTTL(0, now); got != 0 {
		t.Errorf("zero TTL = %d", got)
	}
	if got := Epoch2016(time.Unix(Epoch2016Unix-5, 0)); got != 0 {
		t.Errorf("time before 2016 = %d", got)
	}
	if got := Epoch2016FromUnixMicros(1748736000_123456); got != 297129600 {
		t.Errorf("Epoch2016FromUnixMicros = %d", got)
	}
	if got := TimeFromEpoch2016(297129600); !got.Equal(now) {
		t.Errorf("TimeFromEpoch2016 = %v", got)
	}
	tests := []struct {
		expire, now uint32
		expired     bool
		remaining   int64
	}{
		{0, 100, false, -1},
		{100, 99, false, 1},
		{100, 100, true, 0},
		{100, 101, true, 0},
		{1, 0, false, 1},
	}
	for _, tc := range tests {
		if got := IsExpired(tc.expire, tc.now); got != tc.expired {
			t.Errorf("IsExpired(%d, %d) = %v", tc.expire, tc.now, got)
		}
		if got := RemainingTTL(tc.expire, tc.now); got != tc.remaining {
			t.Errorf("RemainingTTL(%d, %d) = %d", tc.expire, tc.now, got)
		}
	}
}
