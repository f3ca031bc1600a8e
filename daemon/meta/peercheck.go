package meta

import (
	"slices"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
)

// Who may speak for a replica server. With cluster authentication on, the rpc
// layer proves which member a connection belongs to (call.Peer().Node); a member
// may then beacon, sync and ask for configuration changes only for itself, or for
// the partitions it is the primary of. The message bodies still name a node, as
// upstream's do: that name must be the connection's. In an insecure cluster
// (no keyring) nothing is proven and the bodies are trusted, as upstream does.

// peerLogEvery is how often a kind of refusal is logged at most.
const peerLogEvery = 10 * time.Second

// refusePeer logs, rate-limited, a cluster RPC refused because its sender is not
// the node it speaks for.
func (s *Server) refusePeer(call *rpc.Call, code, what string, args ...any) {
	args = append([]any{"rpc", code, "remote", call.Remote, "authenticated_as", call.Peer().Node}, args...)
	s.peerLog.Warn(s.log, "cluster RPC refused: "+what+" (ERR_ACL_DENY)", args...)
}

// mayRequestChange reports whether the member peer may ask for the change req
// of a partition whose stored configuration is cur: "the meta manages the
// primary; the primary manages the other replicas". The primary may ask for any
// change of its partition. Another member may only act on itself as the meta
// server asked it to: take the primary role of a partition that has none
// (ASSIGN_PRIMARY, UPGRADE_TO_PRIMARY), or leave the partition
// (DOWNGRADE_TO_INACTIVE, REMOVE); and then the rest of the membership must stay
// as it is.
func mayRequestChange(peer string, cur *layer2.PartitionConfiguration, req *consensus.ConfigurationUpdateRequest) bool {
	if cur.Primary.IsValid() && rpc.SameNode(peer, cur.Primary.String()) {
		return true
	}
	if !req.Node.IsValid() || !rpc.SameNode(peer, req.Node.String()) || req.Config == nil {
		return false
	}
	node := req.Node
	others := slices.DeleteFunc(slices.Clone(cur.Secondaries), node.Equals)
	switch req.Type {
	case admin.ConfigType_CT_ASSIGN_PRIMARY, admin.ConfigType_CT_UPGRADE_TO_PRIMARY:
		return !cur.Primary.IsValid() && req.Config.Primary.Equals(node) && sameAddrs(req.Config.Secondaries, others)
	case admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, admin.ConfigType_CT_REMOVE:
		primary := cur.Primary
		if primary.Equals(node) {
			primary = &base.RPCAddress{}
		}
		return req.Config.Primary.Equals(primary) && sameAddrs(req.Config.Secondaries, others)
	}
	return false
}

// sameAddrs reports whether two address lists hold the same addresses.
func sameAddrs(a, b []*base.RPCAddress) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, x.Equals) {
			return false
		}
	}
	return true
}
