package testnet

import (
	"net"
	"strconv"
	"testing"
)

func TestPortsAreDistinctFreeAndBelowTheEphemeralRange(t *testing.T) {
	ports, err := Ports(20)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 20 {
		t.Fatalf("got %d ports, want 20", len(ports))
	}
	start := ephemeralStart()
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if start-lowest >= 1000 && (p < lowest || p >= start) {
			t.Errorf("port %d outside [%d, %d)", p, lowest, start)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Errorf("port %d not free: %v", p, err)
			continue
		}
		ln.Close()
	}
}

func TestPortsSkipsATakenPort(t *testing.T) {
	// Hold many ports of the range; the ones handed out must avoid all of them.
	held := map[int]bool{}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for p := lowest; p < lowest+200; p++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		held[p] = true
	}
	ports, err := Ports(50)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if held[p] {
			t.Fatalf("port %d is held by the test but was handed out", p)
		}
	}
}
