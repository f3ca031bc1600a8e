package rpc

import (
	"bufio"
	"bytes"
	"testing"
)

func TestFrameBuffered(t *testing.T) {
	body := bytes.Repeat([]byte("b"), 100)
	v0 := AppendRequestV0(nil, Header{AppID: 1}, body)
	v1, err := AppendRequestV1(nil, Header{AppID: 1}, body)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte("RDSN"), v0[4:]...)
	cases := []struct {
		name string
		in   []byte
		want bool
	}{
		{"v0 whole", v0, true},
		{"v0 and more", append(append([]byte{}, v0...), v0[:10]...), true},
		{"v0 one byte short", v0[:len(v0)-1], false},
		{"v0 header only", v0[:headerV0Len], false},
		{"v0 half a header", v0[:20], false},
		{"v1 whole", v1, true},
		{"v1 one byte short", v1[:len(v1)-1], false},
		{"v1 prefix only", v1[:headerV1Prefix], false},
		{"bad magic", bad, false},
		{"nothing", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := bufio.NewReaderSize(bytes.NewReader(c.in), 4096)
			_, _ = r.Peek(len(c.in)) // fill the buffer with everything
			if got := frameBuffered(r); got != c.want {
				t.Fatalf("frameBuffered = %v, want %v", got, c.want)
			}
			if r.Buffered() != len(c.in) {
				t.Fatalf("frameBuffered consumed bytes: %d buffered of %d", r.Buffered(), len(c.in))
			}
		})
	}
}
