package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ParseMetaServerList parses a meta server list, "ip1:port1,ip2:port2", as
// used by [meta_server] server_list and [pegasus.clusters]. Only IPv4
// addresses are accepted: the deployment guide says hostnames are not
// supported, and node identities on the wire are IPv4 addresses, so a
// hostname would not match the address a meta server reports for itself.
func ParseMetaServerList(s string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	var problems []string
	seen := map[netip.AddrPort]int{}
	for i, item := range strings.Split(s, ",") {
		n := i + 1
		item = strings.TrimSpace(item)
		host, port, err := splitHostPort(item)
		if err != nil {
			problems = append(problems, fmt.Sprintf("item %d %q: %v", n, item, err))
			continue
		}
		ip, err := parseIPv4(host)
		if err != nil {
			problems = append(problems, fmt.Sprintf("item %d %q: %v", n, item, err))
			continue
		}
		ap := netip.AddrPortFrom(ip, port)
		if first, dup := seen[ap]; dup {
			problems = append(problems, fmt.Sprintf("item %d %q: duplicate of item %d", n, item, first))
			continue
		}
		seen[ap] = n
		out = append(out, ap)
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

// ParseHostPortList parses "host1:port1,host2:port2" where a host may be a
// name or an IP address, as in [zookeeper] hosts_list. The items are returned
// trimmed, in their original order.
func ParseHostPortList(s string) ([]string, error) {
	var out []string
	var problems []string
	seen := map[string]int{}
	for i, item := range strings.Split(s, ",") {
		n := i + 1
		item = strings.TrimSpace(item)
		host, port, err := splitHostPort(item)
		if err == nil {
			err = checkHost(host)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("item %d %q: %v", n, item, err))
			continue
		}
		norm := net.JoinHostPort(host, strconv.Itoa(int(port)))
		if first, dup := seen[norm]; dup {
			problems = append(problems, fmt.Sprintf("item %d %q: duplicate of item %d", n, item, first))
			continue
		}
		seen[norm] = n
		out = append(out, norm)
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

func splitHostPort(item string) (string, uint16, error) {
	if item == "" {
		return "", 0, errors.New("empty item")
	}
	host, ps, err := net.SplitHostPort(item)
	if err != nil {
		return "", 0, errors.New("want host:port")
	}
	if host == "" {
		return "", 0, errors.New("empty host")
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("bad port %q, want 1-65535", ps)
	}
	return host, uint16(p), nil
}

// parseIPv4 accepts an IPv4 literal only, with a message that tells a
// hostname or an IPv6 address apart from garbage.
func parseIPv4(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil {
		if checkHost(s) == nil {
			return netip.Addr{}, fmt.Errorf("%q is a hostname; only IP addresses are supported", s)
		}
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	ip = ip.Unmap()
	if !ip.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address; only IPv4 is supported", s)
	}
	return ip, nil
}

// checkHost accepts an IP literal or a DNS name (RFC 1123 labels).
func checkHost(h string) error {
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	if len(h) > 253 {
		return fmt.Errorf("host name too long")
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a valid host name", h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%q is not a valid host name", h)
			}
		}
	}
	return nil
}
