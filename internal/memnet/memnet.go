// Package memnet is an in-memory network for running Pegasus servers and
// clients in one process without sockets, with faults a test can inject.
//
// A Network holds listeners by address. Each server or client gets a Host, its
// end of the network: Host.Listen and Host.Dial have the shape of
// role.Transport and rpc.ClientOptions.Dial. A connection's LocalAddr and
// RemoteAddr are *net.TCPAddr carrying the hosts' IPs (a dialling host gets an
// ephemeral port), so the servers' access and peer checks see what they would
// see over TCP.
//
// Connections understand the THFT framing: every frame written is delivered,
// dropped or held as a whole, by the rules the test sets between two hosts on
// the frame's message name (a request's RPC code, or that code with "_ACK" for
// its reply). That is what lets a test replay a race deterministically: hold
// the config-sync answers to a replica server, let a proposal through, then
// release the answers. Bytes that are not THFT (HTTP) pass unfiltered.
//
// Faults: Cut (both ways: frames dropped, open connections closed, new dials
// refused; one way: the frames from one host to the other dropped), Heal,
// Hold and Release, Drop, and Crash (a host's listener and connections closed
// at once, as a killed process would leave them).
package memnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
)

// ErrRefused is what a dial gets when no listener is at the address or the
// link is cut.
var ErrRefused = errors.New("memnet: connection refused")

// Action is what a rule does with a matching frame.
type Action int

// The actions of a rule.
const (
	Deliver Action = iota
	Drop
	Hold
)

// rule applies to the frames from one host to another (an empty host matches
// any) whose message name is name (empty: every frame).
type rule struct {
	from, to, name string
	action         Action
	left           int // a Hold of a number of frames: how many more it takes (0: no limit)
	spent          bool
}

func (r rule) matches(from, to, name string) bool {
	return !r.spent && (r.from == "" || r.from == from) && (r.to == "" || r.to == to) && (r.name == "" || r.name == name)
}

// heldFrame is a frame kept back by a Hold rule, with the stream it belongs to.
type heldFrame struct {
	from, to, name string
	p              *pipe
	data           []byte
}

// Network is one in-memory network. The zero value is not usable; use New.
type Network struct {
	mu        sync.Mutex
	listeners map[string]*listener
	conns     map[*conn]struct{}
	rules     []rule
	cuts      map[[2]string]bool // from → to: dials refused, frames dropped
	down      map[string]bool    // crashed hosts, until they listen again
	held      []heldFrame
	nextPort  int
	counts    map[[3]string]int // from, to, name → frames delivered
}

// New returns an empty network.
func New() *Network {
	return &Network{
		listeners: map[string]*listener{},
		conns:     map[*conn]struct{}{},
		cuts:      map[[2]string]bool{},
		down:      map[string]bool{},
		counts:    map[[3]string]int{},
		nextPort:  40000,
	}
}

// Host is one endpoint of the network, named by its address ("ip:port").
type Host struct {
	n    *Network
	addr string
	ip   netip.Addr
}

// Host returns the endpoint at addr, an "ip:port" (the port may be 0 for a
// host that only dials).
func (n *Network) Host(addr string) (*Host, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("memnet: host address: %w", err)
	}
	return &Host{n: n, addr: addr, ip: ap.Addr()}, nil
}

// Addr is the host's address.
func (h *Host) Addr() string { return h.addr }

// Listen opens the host's listener; addr must be the host's own address.
func (h *Host) Listen(addr string) (net.Listener, error) {
	if addr != h.addr {
		return nil, fmt.Errorf("memnet: host %s cannot listen on %s", h.addr, addr)
	}
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.listeners[addr]; ok {
		return nil, fmt.Errorf("memnet: listen %s: address already in use", addr)
	}
	delete(n.down, addr)
	l := &listener{n: n, addr: tcpAddr(h.ip, h.port()), key: addr, accept: make(chan *conn, 64), done: make(chan struct{})}
	n.listeners[addr] = l
	return l, nil
}

func (h *Host) port() int {
	ap, _ := netip.ParseAddrPort(h.addr)
	return int(ap.Port())
}

// Dial connects the host to the listener at addr.
func (h *Host) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := h.n
	n.mu.Lock()
	l, ok := n.listeners[addr]
	if !ok || n.down[h.addr] || n.cuts[[2]string{h.addr, addr}] || n.cuts[[2]string{addr, h.addr}] {
		n.mu.Unlock()
		return nil, fmt.Errorf("dial %s from %s: %w", addr, h.addr, ErrRefused)
	}
	n.nextPort++
	local := tcpAddr(h.ip, n.nextPort)
	toServer, toClient := newPipe(), newPipe()
	client := &conn{n: n, self: h.addr, peer: addr, local: local, remote: l.addr, in: toClient, out: toServer, requests: true}
	server := &conn{n: n, self: addr, peer: h.addr, local: l.addr, remote: local, in: toServer, out: toClient}
	client.other, server.other = server, client
	n.conns[client] = struct{}{}
	n.conns[server] = struct{}{}
	n.mu.Unlock()
	select {
	case l.accept <- server:
		return client, nil
	case <-l.done:
	case <-ctx.Done():
	}
	client.Close()
	server.Close()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("dial %s from %s: %w", addr, h.addr, ErrRefused)
}

func tcpAddr(ip netip.Addr, port int) *net.TCPAddr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port)))
}

// Cut cuts the link between hosts a and b (addresses): frames between them are
// dropped; when both is set, their open connections are closed as well and new
// dials either way are refused. With both unset only the frames from a to b are
// lost, which is how a one-way partition looks to the servers (calls time out).
func (n *Network) Cut(a, b string, both bool) {
	n.mu.Lock()
	var closing []*conn
	n.rules = append(n.rules, rule{from: a, to: b, action: Drop})
	if both {
		n.rules = append(n.rules, rule{from: b, to: a, action: Drop})
		n.cuts[[2]string{a, b}] = true
		for c := range n.conns {
			if (c.self == a && c.peer == b) || (c.self == b && c.peer == a) {
				closing = append(closing, c)
			}
		}
	}
	n.mu.Unlock()
	for _, c := range closing {
		c.Close()
	}
}

// Heal removes every cut and drop rule between a and b (either way) and lets
// dials through again.
func (n *Network) Heal(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rules = slices.DeleteFunc(n.rules, func(r rule) bool {
		return r.action == Drop && ((r.from == a && r.to == b) || (r.from == b && r.to == a))
	})
	delete(n.cuts, [2]string{a, b})
	delete(n.cuts, [2]string{b, a})
}

// Drop drops the frames named name from host from to host to (empty: any)
// until Heal.
func (n *Network) Drop(from, to, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rules = append(n.rules, rule{from: from, to: to, name: name, action: Drop})
}

// Hold keeps back the frames named name from host from to host to (empty:
// any) until Release.
func (n *Network) Hold(from, to, name string) { n.HoldN(from, to, name, 0) }

// HoldN is Hold for the next count frames only (0: every frame); the later
// ones pass.
func (n *Network) HoldN(from, to, name string, count int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rules = append(n.rules, rule{from: from, to: to, name: name, action: Hold, left: count})
}

// Held returns how many frames are held back.
func (n *Network) Held() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.held)
}

// HeldMatching returns how many held frames match from, to and name (empty:
// any).
func (n *Network) HeldMatching(from, to, name string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := rule{from: from, to: to, name: name}
	k := 0
	for _, h := range n.held {
		if r.matches(h.from, h.to, h.name) {
			k++
		}
	}
	return k
}

// Delivered returns how many frames named name went from host from to host to
// (empty: any).
func (n *Network) Delivered(from, to, name string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := rule{from: from, to: to, name: name}
	k := 0
	for key, v := range n.counts {
		if r.matches(key[0], key[1], key[2]) {
			k += v
		}
	}
	return k
}

// Release removes the Hold rules matching from, to and name exactly and
// delivers, in the order they were written, the held frames those rules kept
// back (a frame whose connection has closed since is lost with it).
func (n *Network) Release(from, to, name string) int {
	n.mu.Lock()
	var removed []rule
	n.rules = slices.DeleteFunc(n.rules, func(r rule) bool {
		if r.action == Hold && r.from == from && r.to == to && r.name == name {
			removed = append(removed, r)
			return true
		}
		return false
	})
	var out []heldFrame
	n.held = slices.DeleteFunc(n.held, func(h heldFrame) bool {
		for _, r := range removed {
			if (rule{from: r.from, to: r.to, name: r.name}).matches(h.from, h.to, h.name) && n.decideLocked(h.from, h.to, h.name) == Deliver {
				out = append(out, h)
				return true
			}
		}
		return false
	})
	for _, h := range out {
		n.counts[[3]string{h.from, h.to, h.name}]++
	}
	n.mu.Unlock()
	for _, h := range out {
		h.p.write(h.data)
	}
	return len(out)
}

// Crash closes the listener at addr and every connection to or from that host,
// as a killed process leaves them; frames held for or from it are lost, and
// the host's dials are refused until it listens again.
func (n *Network) Crash(addr string) {
	n.mu.Lock()
	n.down[addr] = true
	l := n.listeners[addr]
	var closing []*conn
	for c := range n.conns {
		if c.self == addr {
			closing = append(closing, c)
		}
	}
	n.held = slices.DeleteFunc(n.held, func(h heldFrame) bool { return h.from == addr || h.to == addr })
	n.mu.Unlock()
	if l != nil {
		l.Close()
	}
	for _, c := range closing {
		c.Close()
	}
}

// decideLocked returns what happens to a frame: the last matching rule wins,
// so a Hold set after a Drop holds.
func (n *Network) decideLocked(from, to, name string) Action {
	act, _ := n.ruleLocked(from, to, name)
	return act
}

func (n *Network) ruleLocked(from, to, name string) (Action, *rule) {
	act, which := Deliver, (*rule)(nil)
	for i := range n.rules {
		if r := &n.rules[i]; r.matches(from, to, name) {
			act, which = r.action, r
		}
	}
	return act, which
}

// send passes one whole frame written on c through the rules.
func (n *Network) send(c *conn, frame []byte, name string) {
	n.mu.Lock()
	act, r := n.ruleLocked(c.self, c.peer, name)
	switch act {
	case Drop:
		n.mu.Unlock()
		return
	case Hold:
		if r.left > 0 {
			r.left--
			r.spent = r.left == 0
		}
		n.held = append(n.held, heldFrame{from: c.self, to: c.peer, name: name, p: c.out, data: frame})
		n.mu.Unlock()
		return
	}
	n.counts[[3]string{c.self, c.peer, name}]++
	n.mu.Unlock()
	c.out.write(frame)
}

func (n *Network) forget(c *conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}

// listener is a host's listener.
type listener struct {
	n      *Network
	addr   *net.TCPAddr
	key    string
	accept chan *conn
	once   sync.Once
	done   chan struct{}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *listener) Close() error {
	l.once.Do(func() {
		l.n.mu.Lock()
		if l.n.listeners[l.key] == l {
			delete(l.n.listeners, l.key)
		}
		l.n.mu.Unlock()
		close(l.done)
		// Connections dialled but never accepted die with the listener.
		for {
			select {
			case c := <-l.accept:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (l *listener) Addr() net.Addr { return l.addr }

// frameLen returns the length of the THFT frame at the start of b, 0 if more
// bytes are needed, or -1 if b does not start with a frame. Requests start
// with "THFT"; replies with their u32 total length.
func frameLen(b []byte, request bool) int {
	if !request {
		if len(b) < 4 {
			return 0
		}
		return int(binary.BigEndian.Uint32(b[0:4]))
	}
	if len(b) < 8 {
		if len(b) >= 4 && string(b[:4]) != "THFT" {
			return -1
		}
		return 0
	}
	if string(b[:4]) != "THFT" {
		return -1
	}
	switch binary.BigEndian.Uint32(b[4:8]) {
	case 0:
		if len(b) < 20 {
			return 0
		}
		return 48 + int(binary.BigEndian.Uint32(b[16:20]))
	case 1:
		if len(b) < 16 {
			return 0
		}
		return 16 + int(binary.BigEndian.Uint32(b[8:12])) + int(binary.BigEndian.Uint32(b[12:16]))
	}
	return -1
}
