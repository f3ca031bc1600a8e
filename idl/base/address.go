package base

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/apache/thrift/lib/go/thrift"
)

// Address types carried in the low two bits of an rpc_address.
const (
	addrTypeInvalid = 0
	addrTypeIPv4    = 1
)

// RPCAddress is an IPv4 endpoint packed into one i64: the address in bits 63..32, the
// port in bits 31..16 and the address type (1 = IPv4) in bits 1..0. The zero value is
// the empty address.
type RPCAddress struct {
	raw uint64
}

// NewRPCAddress builds an address from an IPv4 address and a port.
func NewRPCAddress(ip netip.Addr, port uint16) *RPCAddress {
	if !ip.Is4() {
		ip = ip.Unmap()
	}
	if !ip.Is4() {
		return &RPCAddress{}
	}
	b := ip.As4()
	v := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32
	v |= uint64(port)<<16 | addrTypeIPv4
	return &RPCAddress{raw: v}
}

// RPCAddressFromRaw wraps a wire value.
func RPCAddressFromRaw(v int64) *RPCAddress { return &RPCAddress{raw: uint64(v)} }

// ParseRPCAddress parses "a.b.c.d:port". Host names are refused: Pegasus identifies
// nodes by IPv4 address.
func ParseRPCAddress(s string) (*RPCAddress, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		host, _, splitErr := net.SplitHostPort(s)
		if splitErr == nil && host != "" {
			if _, ipErr := netip.ParseAddr(host); ipErr != nil {
				return nil, fmt.Errorf("parse address %q: %q is not an IPv4 address (host names are not supported)", s, host)
			}
		}
		return nil, fmt.Errorf("parse address %q: want ip:port: %w", s, err)
	}
	if !ap.Addr().Unmap().Is4() {
		return nil, fmt.Errorf("parse address %q: only IPv4 addresses are supported", s)
	}
	if ap.Port() == 0 {
		return nil, fmt.Errorf("parse address %q: port must not be 0", s)
	}
	return NewRPCAddress(ap.Addr().Unmap(), ap.Port()), nil
}

// MustParseRPCAddress is ParseRPCAddress for constants in tests and defaults.
func MustParseRPCAddress(s string) *RPCAddress {
	a, err := ParseRPCAddress(s)
	if err != nil {
		panic(err)
	}
	return a
}

// Raw returns the wire value; 0 for nil.
func (a *RPCAddress) Raw() int64 {
	if a == nil {
		return 0
	}
	return int64(a.raw)
}

// IsValid reports whether the address holds an IPv4 endpoint.
func (a *RPCAddress) IsValid() bool { return a != nil && a.raw&3 == addrTypeIPv4 }

// Addr returns the IPv4 address.
func (a *RPCAddress) Addr() netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	v := a.raw >> 32
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Port returns the port.
func (a *RPCAddress) Port() uint16 {
	if a == nil {
		return 0
	}
	return uint16(a.raw >> 16)
}

func (a *RPCAddress) Read(ctx context.Context, iprot thrift.TProtocol) error {
	v, err := iprot.ReadI64(ctx)
	if err != nil {
		return fmt.Errorf("read rpc_address: %w", err)
	}
	a.raw = uint64(v)
	return nil
}

func (a *RPCAddress) Write(ctx context.Context, oprot thrift.TProtocol) error {
	return oprot.WriteI64(ctx, a.Raw())
}

// Equals compares wire values; nil equals the empty address.
func (a *RPCAddress) Equals(o *RPCAddress) bool { return a.Raw() == o.Raw() }

// String returns "ip:port", or "invalid address" for anything but an IPv4 endpoint
// (the spelling upstream uses in its JSON).
func (a *RPCAddress) String() string {
	if !a.IsValid() {
		return "invalid address"
	}
	return net.JoinHostPort(a.Addr().String(), strconv.Itoa(int(a.Port())))
}

// HostPort is a host name and port: string host ++ i16 port ++ byte type.
type HostPort struct {
	Host string
	Port uint16
	Type byte // 0 invalid, 1 IPv4 or host name, 2 group
}

func (h *HostPort) Read(ctx context.Context, iprot thrift.TProtocol) error {
	host, err := iprot.ReadString(ctx)
	if err != nil {
		return fmt.Errorf("read host_port host: %w", err)
	}
	port, err := iprot.ReadI16(ctx)
	if err != nil {
		return fmt.Errorf("read host_port port: %w", err)
	}
	typ, err := iprot.ReadByte(ctx)
	if err != nil {
		return fmt.Errorf("read host_port type: %w", err)
	}
	h.Host, h.Port, h.Type = host, uint16(port), byte(typ)
	return nil
}

func (h *HostPort) Write(ctx context.Context, oprot thrift.TProtocol) error {
	var v HostPort
	if h != nil {
		v = *h
	}
	if err := oprot.WriteString(ctx, v.Host); err != nil {
		return err
	}
	if err := oprot.WriteI16(ctx, int16(v.Port)); err != nil {
		return err
	}
	return oprot.WriteByte(ctx, int8(v.Type))
}

// Equals compares all parts; nil equals the zero value.
func (h *HostPort) Equals(o *HostPort) bool {
	var a, b HostPort
	if h != nil {
		a = *h
	}
	if o != nil {
		b = *o
	}
	return a == b
}

func (h *HostPort) String() string {
	if h == nil {
		return "<nil>"
	}
	return net.JoinHostPort(h.Host, strconv.Itoa(int(h.Port)))
}
