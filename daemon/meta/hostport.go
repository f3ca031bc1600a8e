package meta

import (
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// Pegasus 2.6 added optional host_port twins (hp_primary, hp_node, ...) next to
// the rpc_address fields of its replies. Clients disagree about them
// (docs/compatibility.md, spec/protocol.md §4.3):
//
//   - the 2022 go-client that admin-cli and pegic are built with, and older
//     Java, Node.js and Python clients, do not know them and cannot skip them
//     (a host_port is tagged STRUCT but is not one), so a reply carrying them
//     fails to decode;
//   - code written against the current go-client's admin API reads them, and
//     dereferences nil when they are absent.
//
// Nothing on a THFT connection tells the two apart: query_cfg and list_nodes
// requests carry no hp_* field in any client version, every go-client revision
// and the Python and Node.js clients send the same v0 header, and the Java
// client sends v1 whether or not its IDL has the fields. So the meta server
// does not guess per connection: [meta_server] send_host_port_fields decides
// for the whole cluster, off by default so that the official tools keep
// working.

// hostPortOf is the host_port twin of an address. Nodes are identified by IPv4
// address only (no host name is known for them), so the host is the IP as a
// string. An empty address gives the empty host_port (type 0, invalid), as
// upstream sends for a partition without primary.
func hostPortOf(a *base.RPCAddress) *base.HostPort {
	if !a.IsValid() {
		return &base.HostPort{}
	}
	return &base.HostPort{Host: a.Addr().String(), Port: a.Port(), Type: 1}
}

func hostPortsOf(as []*base.RPCAddress) []*base.HostPort {
	out := make([]*base.HostPort, len(as))
	for i, a := range as {
		out[i] = hostPortOf(a)
	}
	return out
}

// fillPartitionHostPorts sets the hp_* fields of configurations about to be
// sent, when the cluster is configured to send them. The lists get the same
// length and order as their rpc_address twins, as upstream's readers expect.
func (s *Server) fillPartitionHostPorts(pcs ...*layer2.PartitionConfiguration) {
	if !s.opts.SendHostPort {
		return
	}
	for _, pc := range pcs {
		if pc == nil {
			continue
		}
		pc.HpPrimary = hostPortOf(pc.Primary)
		pc.HpSecondaries = hostPortsOf(pc.Secondaries)
		pc.HpLastDrops = hostPortsOf(pc.LastDrops)
	}
}

// fillNodeHostPort sets hp_node of a list_nodes entry.
func (s *Server) fillNodeHostPort(n *admin.NodeInfo) {
	if s.opts.SendHostPort {
		n.HpNode = hostPortOf(n.Node)
	}
}

// fillUpdateHostPorts sets the hp_* fields of a configuration_update_request
// sent back by a config sync.
func (s *Server) fillUpdateHostPorts(u *consensus.ConfigurationUpdateRequest) {
	if !s.opts.SendHostPort {
		return
	}
	s.fillPartitionHostPorts(u.Config)
	u.HpNode = hostPortOf(u.Node)
}
