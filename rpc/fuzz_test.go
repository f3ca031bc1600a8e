package rpc

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
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
