package rpc

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/internal/waitfor"
)

// TestReplyWriterConcurrentRepliesArriveWhole: replies written at once by many
// goroutines all arrive, each in one piece.
func TestReplyWriterConcurrentRepliesArriveWhole(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	w := newReplyWriter(server, 8, func(err error) { t.Errorf("write failed: %v", err) })
	const writers, each = 16, 200
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				body := fmt.Appendf(nil, "writer %d reply %d %s", g, i, make([]byte, i%50))
				frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
				w.write(append(frame, body...), i%2 == 0)
			}
		}()
	}
	seen := make(map[string]bool)
	for len(seen) < writers*each {
		var n [4]byte
		if _, err := io.ReadFull(client, n[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(n[:]))
		if _, err := io.ReadFull(client, body); err != nil {
			t.Fatal(err)
		}
		var g, i int
		if _, err := fmt.Sscanf(string(body), "writer %d reply %d", &g, &i); err != nil {
			t.Fatalf("reply cut or mixed with another: %q", body)
		}
		if want := fmt.Sprintf("writer %d reply %d %s", g, i, make([]byte, i%50)); string(body) != want || seen[want] {
			t.Fatalf("reply %q: damaged or received twice", body)
		}
		seen[string(body)] = true
	}
	wg.Wait()
}

// TestReplyWriterPeerNotReading: while a peer reads nothing, at most maxQueued
// replies wait behind the one being written and the next writers wait for
// room; when the write fails every writer returns, onFail runs once, and later
// replies are dropped at once.
func TestReplyWriterPeerNotReading(t *testing.T) {
	server, client := net.Pipe()
	var fails atomic.Int32
	w := newReplyWriter(server, 3, func(error) { fails.Add(1) })
	var returned atomic.Int32
	var wg sync.WaitGroup
	start := func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.write([]byte("reply"), false)
			returned.Add(1)
		}()
	}
	start() // blocks in the pipe: nobody reads
	waitfor.True(t, 5*time.Second, time.Millisecond, "a goroutine to be writing", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.writing
	})
	for i := 0; i < 3; i++ {
		start()
	}
	waitfor.True(t, 5*time.Second, time.Millisecond, "three replies to be queued", func() bool { return returned.Load() == 3 })
	for i := 0; i < 4; i++ {
		start()
	}
	w.mu.Lock()
	queued := w.queued
	w.mu.Unlock()
	if queued != 3 {
		t.Fatalf("%d replies queued, want the bound of 3", queued)
	}
	if n := returned.Load(); n != 3 {
		t.Fatalf("%d writers returned while the queue was full, want 3", n)
	}
	client.Close()
	wg.Wait()
	if n := fails.Load(); n != 1 {
		t.Fatalf("onFail called %d times, want once", n)
	}
	w.write([]byte("late"), true) // returns at once: dropped
	if n := fails.Load(); n != 1 {
		t.Fatalf("onFail called %d times after a dropped reply, want once", n)
	}
}
