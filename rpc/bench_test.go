package rpc

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
)

// benchCallers is the number of concurrent callers the target is stated for.
const benchCallers = 32

// BenchmarkRoundTrip measures a small get-like call through our client and server
// over loopback, with benchCallers callers sharing one pipelined connection.
func BenchmarkRoundTrip(b *testing.B) {
	_, addr := startServer(b, echoMux(nil), ServerOptions{})
	c := NewClient(addr, ClientOptions{})
	defer c.Close()
	key := base.BlobString("\x00\x09user_1001profile")
	runParallel(b, func() error {
		var resp rrdb.ReadResponse
		return c.Call(context.Background(), Request{Code: CodeGet, AppID: 2, PartitionIndex: 4, Args: key}, &resp)
	})
}

// BenchmarkRawEcho is the baseline for BenchmarkRoundTrip: the same transport design
// (one pipelined connection, writes coalesced until the queue is empty, replies
// matched by id) carrying length-prefixed opaque payloads of the same size, with no
// header or thrift work. The ratio of the two is the cost of our framing and codec.
func BenchmarkRawEcho(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go rawEchoServe(nc)
		}
	}()
	c, err := dialRawEcho(ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.close()
	// Same request size as the THFT get above (header + message).
	payload := make([]byte, 48+46)
	runParallel(b, func() error { return c.call(payload) })
}

func runParallel(b *testing.B, call func() error) {
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	var next sync.Mutex
	remaining := b.N
	for g := 0; g < benchCallers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				if remaining == 0 {
					next.Unlock()
					return
				}
				remaining--
				next.Unlock()
				if err := call(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// rawEchoServe echoes [u32 len][u32 id][payload] frames, handling each in its own
// goroutine like our server and coalescing replies in one writer.
func rawEchoServe(nc net.Conn) {
	defer nc.Close()
	out := make(chan []byte, 1024)
	go func() {
		bw := bufio.NewWriterSize(nc, 64<<10)
		for f := range out {
			if _, err := bw.Write(f); err != nil {
				return
			}
			if len(out) == 0 {
				if bw.Flush() != nil {
					return
				}
			}
		}
	}()
	defer close(out)
	br := bufio.NewReaderSize(nc, 64<<10)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var pre [4]byte
		if _, err := io.ReadFull(br, pre[:]); err != nil {
			return
		}
		f := make([]byte, 4+binary.BigEndian.Uint32(pre[:]))
		copy(f, pre[:])
		if _, err := io.ReadFull(br, f[4:]); err != nil {
			return
		}
		wg.Add(1)
		go func() { defer wg.Done(); out <- f }()
	}
}

type rawEchoClient struct {
	nc      net.Conn
	out     chan []byte
	mu      sync.Mutex
	id      uint32
	pending map[uint32]chan struct{}
}

func dialRawEcho(addr string) (*rawEchoClient, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &rawEchoClient{nc: nc, out: make(chan []byte, 1024), pending: map[uint32]chan struct{}{}}
	go func() {
		bw := bufio.NewWriterSize(nc, 64<<10)
		for f := range c.out {
			if _, err := bw.Write(f); err != nil {
				return
			}
			if len(c.out) == 0 {
				if bw.Flush() != nil {
					return
				}
			}
		}
	}()
	go func() {
		br := bufio.NewReaderSize(nc, 64<<10)
		for {
			var pre [8]byte
			if _, err := io.ReadFull(br, pre[:]); err != nil {
				return
			}
			body := make([]byte, binary.BigEndian.Uint32(pre[:4])-4)
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			id := binary.BigEndian.Uint32(pre[4:])
			c.mu.Lock()
			ch := c.pending[id]
			delete(c.pending, id)
			c.mu.Unlock()
			if ch != nil {
				ch <- struct{}{}
			}
		}
	}()
	return c, nil
}

func (c *rawEchoClient) call(payload []byte) error {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	c.id++
	id := c.id
	c.pending[id] = ch
	c.mu.Unlock()
	f := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint32(f[0:4], uint32(4+len(payload)))
	binary.BigEndian.PutUint32(f[4:8], id)
	copy(f[8:], payload)
	c.out <- f
	<-ch
	return nil
}

func (c *rawEchoClient) close() {
	close(c.out)
	c.nc.Close()
}
