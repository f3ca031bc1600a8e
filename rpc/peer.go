package rpc

import "net/netip"

// Authenticated reports whether the caller proved membership of the cluster. It is
// always false on a server without a keyring (an insecure cluster): there, the
// cluster protocol trusts what messages say of their sender, as upstream does.
func (p Peer) Authenticated() bool { return p.Node != "" }

// Is reports whether the caller authenticated as the cluster member addr. An
// unauthenticated caller is no member. Addresses are compared as addresses, so
// "::ffff:10.0.0.1:34801" is "10.0.0.1:34801".
func (p Peer) Is(addr string) bool { return p.Node != "" && SameNode(p.Node, addr) }

// SameNode reports whether two "ip:port" strings name the same server; strings
// that are not ip:port are compared as they are.
func SameNode(a, b string) bool {
	if a == b {
		return true
	}
	x, errX := netip.ParseAddrPort(a)
	y, errY := netip.ParseAddrPort(b)
	if errX != nil || errY != nil {
		return false
	}
	return x.Addr().Unmap() == y.Addr().Unmap() && x.Port() == y.Port()
}
