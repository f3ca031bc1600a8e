package rpc

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/pegasusgo/pegasus/rpc/golden"
)

// seedFrames adds every golden frame of the given kind ("req" or "resp") to the
// fuzz corpus, when the vector directory is present (fuzzing needs no vectors).
func seedFrames(f *testing.F, kind string) {
	dir, err := golden.Locate()
	if err != nil {
		return
	}
	files, _ := filepath.Glob(filepath.Join(dir, "frames", kind+".*.hex"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			if b, err := golden.ParseHex(string(data)); err == nil {
				f.Add(b)
			}
		}
	}
}

// FuzzRequestDecoder feeds arbitrary bytes to the server's request path: frame
// reading, message parsing and args decoding for every RPC of the catalogue. It
// must never panic, whatever the input.
func FuzzRequestDecoder(f *testing.F) {
	seedFrames(f, "req")
	f.Add([]byte("THFT\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00"))
	methods := Catalogue()
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		for {
			frame, err := ReadRequest(br, 1<<20)
			if err != nil {
				return
			}
			msg, p, err := ParseCall(frame.Body)
			if err != nil {
				continue
			}
			m, ok := methods[msg.Name]
			if !ok {
				continue
			}
			_ = DecodeArgs(context.Background(), p, m.NewArgs())
			// Decoding the same body as every other request type must not panic either.
			for _, other := range methods {
				if _, p, err := ParseCall(frame.Body); err == nil {
					_ = DecodeArgs(context.Background(), p, other.NewArgs())
				}
			}
		}
	})
}

// FuzzResponseDecoder feeds arbitrary bytes to the client's reply path: frame
// reading, reply parsing and result decoding for every RPC of the catalogue.
func FuzzResponseDecoder(f *testing.F) {
	seedFrames(f, "resp")
	methods := Catalogue()
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		for {
			frame, err := ReadResponse(br, 1<<20)
			if err != nil {
				return
			}
			head, _, err := ParseResponse(frame)
			if err != nil {
				continue
			}
			if head.ErrorName != "ERR_OK" {
				continue
			}
			for _, m := range methods {
				if m.OneWay() {
					continue
				}
				if _, p, err := ParseResponse(frame); err == nil {
					_ = DecodeResult(context.Background(), p, m.NewResult())
				}
			}
		}
	})
}

// FuzzFrameReaderMemory reads arbitrary bytes as request frames with the
// production frame limit and checks what a frame may cost: the memory charged to
// the pending-frame budget, and the memory actually allocated, stay within a small
// multiple of the bytes received, whatever length the headers declare.
func FuzzFrameReaderMemory(f *testing.F) {
	seedFrames(f, "req")
	f.Add(v0Header(DefaultMaxFrame))
	f.Add(append(v0Header(DefaultMaxFrame), make([]byte, 3*firstChunk)...))
	f.Add([]byte("THFT\x00\x00\x00\x01\x00\x00\xff\xff\x03\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p peakReserve
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		br := bufio.NewReaderSize(bytes.NewReader(data), 16<<10)
		for {
			if _, err := readRequest(br, DefaultMaxFrame, p.reserve); err != nil {
				break
			}
		}
		runtime.ReadMemStats(&after)
		if p.held != 0 {
			t.Fatalf("%d bytes still charged after reading", p.held)
		}
		if limit := int64(3*len(data) + 2*firstChunk); p.peak > limit {
			t.Fatalf("charged %d bytes at peak for %d bytes of input (limit %d)", p.peak, len(data), limit)
		}
		// The reader's own 16 KiB buffer, the thrift request meta and the fuzzing
		// machinery allocate too: the bound is loose, but a frame sized by its
		// header (up to 64 MiB) is far past it.
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(4*len(data))+4<<20 {
			t.Fatalf("allocated %d bytes for %d bytes of input", alloc, len(data))
		}
	})
}
