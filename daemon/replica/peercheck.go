package replica

import (
	"context"
	"net"
	"slices"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/rpc"
)

// Who may drive a replica. With cluster authentication on, the rpc layer proves
// which member a connection belongs to (rpc.Call.Peer); the replication messages
// still name their sender in their bodies, as upstream's do, and that name must
// be the connection's:
//
//   - prepares, group checks and learner invitations come from the primary named
//     in the message's configuration, and, when that configuration is at the
//     replica's ballot, from the primary of the replica's own configuration (a
//     higher ballot is adopted as before: that is how a new primary reaches its
//     secondaries; a lower one is refused as stale by the state machine);
//   - proposals come from a meta server;
//   - a removal comes from the primary that removed the replica or a meta
//     server;
//   - learning requests and completions come from the learner they name, and
//     checkpoint copies from a learner the checkpoint was handed to.
//
// Without a keyring (insecure_cluster) nothing is proven and the bodies are
// trusted, as upstream does. The state machine (pacifica) keeps deciding on the
// names in the messages; the checks here make sure those names are the sender's.

// peerLogEvery is how often a kind of refusal is logged at most.
const peerLogEvery = 10 * time.Second

// sender is who sent a cluster message.
type sender struct {
	node   string   // the member its connection authenticated as; "" without authentication
	remote net.Addr // the connection's remote address
}

func senderOf(c *rpc.Call) sender { return sender{node: c.Peer().Node, remote: c.Remote} }

func (f sender) authenticated() bool { return f.node != "" }

// is reports whether the sender proved to be node.
func (f sender) is(node string) bool { return f.node != "" && rpc.SameNode(f.node, node) }

// refusePeer counts and logs (rate-limited) a refused cluster message.
func (s *Stub) refusePeer(from sender, code, what string, args ...any) {
	s.metrics.peerRefused.Inc()
	args = append([]any{"rpc", code, "remote", from.remote, "authenticated_as", from.node}, args...)
	s.peerLog.Warn(s.log, "cluster RPC refused: "+what, args...)
}

// namesSender checks that an authenticated sender of a replication message is
// the primary its configuration names.
func (s *Stub) namesSender(from sender, code string, g base.Gpid, msg pacifica.Config) bool {
	if !from.authenticated() || from.is(msg.Primary) {
		return true
	}
	s.refusePeer(from, code, "the sender is not the primary the message names (ERR_ACL_DENY)",
		"gpid", g.String(), "ballot", msg.Ballot, "named_primary", msg.Primary)
	return false
}

// mayReplicate reports whether the member node may send a replication message
// carrying configuration msg to a replica whose configuration is cur.
func mayReplicate(node string, cur, msg pacifica.Config) bool {
	if !rpc.SameNode(node, msg.Primary) {
		return false
	}
	return msg.Ballot != cur.Ballot || rpc.SameNode(node, cur.Primary)
}

// fromPrimary is the executor's check of a replication message: its sender must
// be the primary the message names and, at the replica's ballot, the replica's
// primary. It runs on the executor, which owns the configuration.
func (p *partition) fromPrimary(from sender, code string, msg pacifica.Config) bool {
	if !from.authenticated() {
		return true
	}
	cur := pacifica.Config{Ballot: p.core.Ballot(), Primary: p.core.Primary()}
	if mayReplicate(from.node, cur, msg) {
		return true
	}
	p.stub.refusePeer(from, code, "the sender is not this replica's primary (ERR_ACL_DENY)",
		"gpid", p.gpid.String(), "ballot", cur.Ballot, "primary", cur.Primary, "message_ballot", msg.Ballot, "named_primary", msg.Primary)
	return false
}

// mayRemove checks the sender of RPC_REMOVE_REPLICA carrying configuration msg:
// the primary that removed this replica, named in msg (this replica may not
// have seen that primary's configuration yet: a primary moved just before), or
// the primary of this replica's configuration (a sender that names none), or a
// meta server. It runs on the executor.
func (p *partition) mayRemove(from sender, msg pacifica.Config) bool {
	if !from.authenticated() || p.stub.isMetaServer(from.node) {
		return true
	}
	cur := pacifica.Config{Ballot: p.core.Ballot(), Primary: p.core.Primary()}
	if from.is(cur.Primary) || msg.Primary != "" && mayReplicate(from.node, cur, msg) {
		return true
	}
	p.stub.refusePeer(from, rpc.CodeRemoveReplica, "the sender is neither the primary that removed this replica nor a meta server",
		"gpid", p.gpid.String(), "ballot", cur.Ballot, "primary", cur.Primary, "message_ballot", msg.Ballot, "named_primary", msg.Primary)
	return false
}

// fromMetaServer checks the sender of a message only the meta servers send.
func (s *Stub) fromMetaServer(from sender, code string) bool {
	if !from.authenticated() || s.isMetaServer(from.node) {
		return true
	}
	s.refusePeer(from, code, "the sender is not a meta server", "meta_servers", s.opts.MetaServers)
	return false
}

// isMetaServer reports whether node is a meta server: one of the configured ones,
// or one a meta server named as the leader.
func (s *Stub) isMetaServer(node string) bool {
	if slices.ContainsFunc(s.opts.MetaServers, func(m string) bool { return rpc.SameNode(m, node) }) {
		return true
	}
	s.meta.mu.Lock()
	defer s.meta.mu.Unlock()
	return slices.ContainsFunc(s.meta.clients, func(c *rpc.Client) bool { return rpc.SameNode(c.Addr(), node) })
}

// fromLearner checks that an authenticated sender is the learner it names.
func (s *Stub) fromLearner(from sender, code string, g base.Gpid, learner string) bool {
	if !from.authenticated() || from.is(learner) {
		return true
	}
	s.refusePeer(from, code, "the sender is not the learner the message names (ERR_ACL_DENY)", "gpid", g.String(), "learner", learner)
	return false
}

// await waits for the executor's verdict on a message: ERR_TIMEOUT if it takes
// longer than limit, ERR_INACTIVE_STATE if the replica closes meanwhile.
func (p *partition) await(ctx context.Context, verdict <-chan string, limit time.Duration) string {
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case v := <-verdict:
		return v
	case <-p.done:
		return base.ErrInactiveState
	case <-t.C:
		return base.ErrTimeout
	case <-ctx.Done():
		return base.ErrTimeout
	}
}
