package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Interface is a network interface as address selection sees it.
type Interface struct {
	Name string
	// Down is set for an interface that is administratively down. It is a
	// negative flag so that a literal Interface{Name, Addrs} in a test reads
	// as a normal, working interface.
	Down  bool
	Addrs []netip.Addr
}

// InterfaceLister enumerates the host's interfaces in system order. HostIP
// takes it as a parameter so that tests can pass fixed lists.
type InterfaceLister func() ([]Interface, error)

// SystemInterfaces lists this host's interfaces.
func SystemInterfaces() ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	out := make([]Interface, 0, len(ifs))
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of network interface %s: %w", ifc.Name, err)
		}
		it := Interface{Name: ifc.Name, Down: ifc.Flags&net.FlagUp == 0}
		for _, a := range addrs {
			var ip net.IP
			switch v := a.(type) {
			case *net.IPNet:
				ip = v.IP
			case *net.IPAddr:
				ip = v.IP
			}
			if addr, ok := netip.AddrFromSlice(ip); ok {
				it.Addrs = append(it.Addrs, addr.Unmap())
			}
		}
		out = append(out, it)
	}
	return out, nil
}

// isPrivateIPv4 covers the three ranges the deployment guide names (10/8,
// 172.16/12, 192.168/16), and nothing else: loopback and link-local
// addresses cannot be reached from the other nodes.
func isPrivateIPv4(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	return b[0] == 10 || (b[0] == 172 && b[1]&0xf0 == 16) || (b[0] == 192 && b[1] == 168)
}

// dockerBridgeIP is the address old Docker versions gave their bridge; some
// bridges are not named docker*, so upstream skips the address itself too.
const dockerBridgeIP = "172.17.42.1"

// HostIP picks the IPv4 address this node announces to the others, as the
// deployment guide describes:
//
//  1. explicit_host_address, when set;
//  2. else, when primary_interface names a NIC, that NIC's first IPv4
//     address (an error lists the available NICs when there is none);
//  3. else the first address in 10.0.0.0/8, 172.16.0.0/12 or
//     192.168.0.0/16, in interface order, skipping interfaces that are down
//     or whose name contains "docker" (container bridges are not reachable
//     from other hosts);
//  4. else 127.0.0.1, so that a single-machine setup still starts.
//
// how explains the choice in words, for the startup log. A nil list means
// SystemInterfaces.
func (n Network) HostIP(list InterfaceLister) (ip netip.Addr, how string, err error) {
	if n.ExplicitHostAddress != "" {
		ip, err := parseIPv4(n.ExplicitHostAddress)
		if err != nil {
			return netip.Addr{}, "", fmt.Errorf("[network] explicit_host_address: %w", err)
		}
		return ip, "[network] explicit_host_address", nil
	}
	if list == nil {
		list = SystemInterfaces
	}
	ifs, err := list()
	if err != nil {
		return netip.Addr{}, "", fmt.Errorf("choose host address: %w", err)
	}

	if name := n.PrimaryInterface; name != "" {
		for _, ifc := range ifs {
			if ifc.Name != name {
				continue
			}
			for _, a := range ifc.Addrs {
				if a = a.Unmap(); a.Is4() {
					return a, fmt.Sprintf("[network] primary_interface %s", name), nil
				}
			}
			return netip.Addr{}, "", fmt.Errorf("[network] primary_interface %q has no IPv4 address; available interfaces: %s",
				name, describeInterfaces(ifs))
		}
		return netip.Addr{}, "", fmt.Errorf("[network] primary_interface %q: no such network interface; available interfaces: %s",
			name, describeInterfaces(ifs))
	}

	for _, ifc := range ifs {
		if ifc.Down || strings.Contains(ifc.Name, "docker") {
			continue
		}
		for _, a := range ifc.Addrs {
			a = a.Unmap()
			if isPrivateIPv4(a) && a.String() != dockerBridgeIP {
				return a, fmt.Sprintf("first private IPv4 address, on %s", ifc.Name), nil
			}
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1}),
		"no private IPv4 address on any interface; using loopback, reachable from this host only", nil
}

func describeInterfaces(ifs []Interface) string {
	if len(ifs) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(ifs))
	for _, ifc := range ifs {
		var v4 []string
		for _, a := range ifc.Addrs {
			if a = a.Unmap(); a.Is4() {
				v4 = append(v4, a.String())
			}
		}
		desc := ifc.Name
		switch {
		case len(v4) > 0:
			desc += " (" + strings.Join(v4, ", ") + ")"
		default:
			desc += " (no IPv4)"
		}
		if ifc.Down {
			desc += " [down]"
		}
		parts = append(parts, desc)
	}
	return strings.Join(parts, ", ")
}
