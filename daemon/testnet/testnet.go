// Package testnet hands out loopback TCP ports for tests that start real servers.
//
// Ports come from below the kernel's ephemeral range: a port the kernel picked with
// bind(":0") is in that range, and once a test kills the server that held it, any
// outgoing connection on the machine may take it as its local port, so that the
// server cannot listen on it again when the test restarts it.
package testnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Below the ephemeral range we take ports from [lowest, ephemeral start); the
// default Linux range starts at 32768.
const (
	lowest           = 15000
	defaultEphemeral = 32768
	attempts         = 2000
)

// Ports returns n distinct loopback ports that are free right now and outside the
// ephemeral range.
func Ports(n int) ([]int, error) {
	hi := ephemeralStart()
	if hi-lowest < 1000 {
		return kernelPorts(n) // an unusual range: fall back to what the kernel gives
	}
	seen := map[int]bool{}
	var ports []int
	var lastErr error
	for i := 0; i < attempts && len(ports) < n; i++ {
		p := lowest + rand.IntN(hi-lowest)
		if seen[p] {
			continue
		}
		seen[p] = true
		// Free for a listener on the loopback address the tests use. Ports are
		// drawn at random, so two callers of one test rarely collide; a
		// collision shows as a failed listen, not as a wrong result.
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			lastErr = err
			continue
		}
		ln.Close()
		ports = append(ports, p)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("find %d free ports below %d: %w", n, hi, errors.Join(errors.New("too few free"), lastErr))
	}
	return ports, nil
}

// ephemeralStart reads the first port of the kernel's ephemeral range.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return defaultEphemeral
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return defaultEphemeral
	}
	p, err := strconv.Atoi(f[0])
	if err != nil || p <= 0 {
		return defaultEphemeral
	}
	return p
}

func kernelPorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
