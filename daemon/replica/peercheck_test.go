package replica

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
	"github.com/pegasusgo/pegasus/rpc"
)

func TestMayReplicate(t *testing.T) {
	const p, x = "10.0.0.1:34801", "10.0.0.9:34801"
	cur := pacifica.Config{Ballot: 5, Primary: p, Secondaries: []string{"10.0.0.2:34801"}}
	cases := []struct {
		name   string
		sender string
		msg    pacifica.Config
		want   bool
	}{
		{"the primary", p, pacifica.Config{Ballot: 5, Primary: p}, true},
		{"the primary, mapped address", "[::ffff:10.0.0.1]:34801", pacifica.Config{Ballot: 5, Primary: p}, true},
		{"a member naming the primary", x, pacifica.Config{Ballot: 5, Primary: p}, false},
		{"a member naming itself at the same ballot", x, pacifica.Config{Ballot: 5, Primary: x}, false},
		{"a member naming itself at a higher ballot (a new primary)", x, pacifica.Config{Ballot: 6, Primary: x}, true},
		{"a member naming another at a higher ballot", x, pacifica.Config{Ballot: 6, Primary: p}, false},
		{"the primary at a lower ballot (refused as stale later)", p, pacifica.Config{Ballot: 4, Primary: p}, true},
		{"no primary named", x, pacifica.Config{Ballot: 6}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := mayReplicate(tc.sender, cur, tc.msg); got != tc.want {
				t.Errorf("mayReplicate = %v, want %v", got, tc.want)
			}
		})
	}
}

// securedSecondary starts a replica server with cluster authentication on and
// makes it a secondary of partition g (ballot 1) whose primary is the member
// primary (no server runs there: the test speaks for it).
func securedSecondary(t *testing.T, g base.Gpid, primary string) (*scriptedMeta, *Stub, *partition) {
	t.Helper()
	keys, err := rpc.NewKeyring([]byte("replica-test-secret-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	m, s := startScripted(t, func(m *scriptedMeta) { m.keys = keys })
	m.mu.Lock()
	m.paused = true
	m.mu.Unlock()
	pc := partitionConfig(g, 1, primary)
	pc.Secondaries = []*base.RPCAddress{base.MustParseRPCAddress(m.self)}
	m.set(pc)
	m.propose(admin.ConfigType_CT_UPGRADE_TO_SECONDARY, pc, m.self)
	waitFor(t, "the secondary", func() bool {
		p := s.get(g)
		return p != nil && p.ballot.Load() == 1 && metadata.PartitionStatus(p.status.Load()) == metadata.PartitionStatus_PS_SECONDARY
	})
	m.mu.Lock()
	m.paused = false
	m.mu.Unlock()
	return m, s, s.get(g)
}

// member is a connection to the replica server authenticated as node.
func (m *scriptedMeta) member(node string) *rpc.Client {
	c := rpc.NewClient(m.self, rpc.ClientOptions{Auth: &rpc.ClientAuth{Keys: m.keys, Node: node}})
	m.t.Cleanup(func() { c.Close() })
	return c
}

func callCode(cl *rpc.Client, g base.Gpid, code string, args, result rpc.Value) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Call(ctx, rpc.Request{Code: code, AppID: g.Appid, PartitionIndex: g.PartitionIndex, Args: args}, result); err != nil {
		return rpc.ErrorCode(err)
	}
	return ""
}

type replicaState struct {
	ballot, prepared, applied int64
	status                    metadata.PartitionStatus
	primary                   string
}

func replicaStateOf(p *partition) replicaState {
	st := replicaState{ballot: p.ballot.Load(), prepared: p.prepared.Load(), applied: p.st().LastAppliedDecree(),
		status: metadata.PartitionStatus(p.status.Load())}
	reply := make(chan pacifica.Config, 1)
	p.post(configQueryEv{reply: reply})
	st.primary = (<-reply).Primary
	return st
}

// With cluster authentication, a prepare or a group check is taken only from the
// replica's primary: a member naming the primary, or naming itself at the
// replica's ballot, is refused with ERR_ACL_DENY and nothing changes; the primary
// is served; a member naming itself at a higher ballot is a new primary and is
// followed, as before.
func TestReplicationOnlyFromThePrimary(t *testing.T) {
	g := base.Gpid{Appid: 1, PartitionIndex: 0}
	const primary, other = "127.0.0.1:45001", "127.0.0.1:45002"
	m, s, p := securedSecondary(t, g, primary)
	fromPrimary, fromOther := m.member(primary), m.member(other)
	outsider := rpc.NewClient(m.self, rpc.ClientOptions{})
	defer outsider.Close()

	prepare := func(cl *rpc.Client, ballot int64, named string, decree, committed int64) string {
		req := &consensus.PrepareRequest{
			Config:   toConfig(pacifica.Config{Ballot: ballot, Primary: named, Secondaries: []string{m.self}}, g, pacifica.StatusSecondary),
			Mutation: toWire(g, &pacifica.Mutation{Ballot: ballot, Decree: decree, LastCommitted: committed}),
		}
		var resp consensus.PrepareResponse
		if code := callCode(cl, g, rpc.CodePrepare, req, &resp); code != "" {
			return code
		}
		return resp.Err.Name()
	}
	groupCheck := func(cl *rpc.Client, ballot int64, named string, committed int64) string {
		req := &consensus.GroupCheckRequest{App: tableInfo(), Node: base.MustParseRPCAddress(m.self),
			Config:              toConfig(pacifica.Config{Ballot: ballot, Primary: named, Secondaries: []string{m.self}}, g, pacifica.StatusSecondary),
			LastCommittedDecree: committed}
		var resp consensus.GroupCheckResponse
		if code := callCode(cl, g, rpc.CodeGroupCheck, req, &resp); code != "" {
			return code
		}
		return resp.Err.Name()
	}
	secondary := metadata.PartitionStatus_PS_SECONDARY
	steps := []struct {
		name string
		send func() string
		want string
		then replicaState // the state once answered
	}{
		{"prepare from a member naming the primary", func() string { return prepare(fromOther, 1, primary, 1, 0) }, base.ErrACLDeny, replicaState{1, 0, 0, secondary, primary}},
		{"prepare from a member naming itself", func() string { return prepare(fromOther, 1, other, 1, 0) }, base.ErrACLDeny, replicaState{1, 0, 0, secondary, primary}},
		{"prepare from outside the cluster", func() string { return prepare(outsider, 1, primary, 1, 0) }, base.ErrUnauthenticated, replicaState{1, 0, 0, secondary, primary}},
		{"prepare from the primary", func() string { return prepare(fromPrimary, 1, primary, 1, 0) }, base.ErrOK, replicaState{1, 1, 0, secondary, primary}},
		{"group check from a member naming the primary", func() string { return groupCheck(fromOther, 1, primary, 1) }, base.ErrACLDeny, replicaState{1, 1, 0, secondary, primary}},
		{"group check from a member naming itself", func() string { return groupCheck(fromOther, 1, other, 1) }, base.ErrACLDeny, replicaState{1, 1, 0, secondary, primary}},
		{"group check from the primary", func() string { return groupCheck(fromPrimary, 1, primary, 1) }, base.ErrOK, replicaState{1, 1, 1, secondary, primary}},
		{"prepare from a new primary at a higher ballot", func() string { return prepare(fromOther, 2, other, 2, 1) }, base.ErrOK, replicaState{2, 2, 1, secondary, other}},
		{"prepare from the former primary", func() string { return prepare(fromPrimary, 2, primary, 3, 1) }, base.ErrACLDeny, replicaState{2, 2, 1, secondary, other}},
	}
	for _, st := range steps {
		if got := st.send(); got != st.want {
			t.Fatalf("%s: %s, want %s", st.name, got, st.want)
		}
		if st.want == base.ErrOK {
			// Served: the state moves on (the log write and the commit finish
			// after the answer).
			waitFor(t, st.name+" to take effect", func() bool { return replicaStateOf(p) == st.then })
			continue
		}
		if got := replicaStateOf(p); got != st.then {
			t.Fatalf("after %s: %+v, want %+v", st.name, got, st.then)
		}
	}
	if s.metrics.peerRefused.Load() != 5 {
		t.Errorf("%d refusals counted, want 5", s.metrics.peerRefused.Load())
	}
}

// Proposals are taken only from a meta server, learner invitations only from
// the primary, a removal only from the replica's primary (or a meta server),
// with cluster authentication.
func TestProposalsAndRemovalFromTheRightNode(t *testing.T) {
	g := base.Gpid{Appid: 1, PartitionIndex: 0}
	const primary, other = "127.0.0.1:45011", "127.0.0.1:45012"
	m, s, p := securedSecondary(t, g, primary)
	refusals := s.metrics.peerRefused.Load()
	refused := func(what string) {
		t.Helper()
		refusals++
		waitFor(t, what+" refused", func() bool { return s.metrics.peerRefused.Load() >= refusals })
	}
	want := replicaState{1, 0, 0, metadata.PartitionStatus_PS_SECONDARY, primary}

	// A proposal from a member that is not a meta server: promote this replica
	// (it would ask the scripted meta server, which takes any next ballot).
	pc := partitionConfig(g, 1, "")
	pc.Secondaries = []*base.RPCAddress{base.MustParseRPCAddress(m.self)}
	req := &consensus.ConfigurationUpdateRequest{Info: tableInfo(), Config: pc, Type: admin.ConfigType_CT_UPGRADE_TO_PRIMARY,
		Node: base.MustParseRPCAddress(m.self), HostNode: &base.RPCAddress{}}
	if code := callCode(m.member(other), g, rpc.CodeConfigProposal, req, nil); code != "" {
		t.Fatal(code)
	}
	refused("the proposal")
	if got := replicaStateOf(p); got != want || m.get(g).Ballot != 1 {
		t.Fatalf("after a proposal from a member: %+v, meta ballot %d; want %+v, ballot 1", got, m.get(g).Ballot, want)
	}

	// Learner invitations: a member naming the primary, or itself at this ballot.
	for _, named := range []string{primary, other} {
		req := &consensus.LearnAddLearnerRequest{App: tableInfo(),
			Config: toConfig(pacifica.Config{Ballot: 1, Primary: named, Secondaries: []string{m.self}}, g, pacifica.StatusLearner)}
		if code := callCode(m.member(other), g, rpc.CodeAddLearner, req, nil); code != "" {
			t.Fatal(code)
		}
		refused("the invitation naming " + named)
	}
	if got := replicaStateOf(p); got != want {
		t.Fatalf("after invitations from a member: %+v, want %+v", got, want)
	}

	remove := func(cl *rpc.Client, named string) {
		t.Helper()
		req := &consensus.GroupCheckRequest{App: tableInfo(), Node: base.MustParseRPCAddress(m.self),
			Config: toConfig(pacifica.Config{Ballot: 2, Primary: named}, g, pacifica.StatusInactive)}
		if code := callCode(cl, g, rpc.CodeRemoveReplica, req, nil); code != "" {
			t.Fatal(code)
		}
	}
	for _, named := range []string{"", primary} {
		remove(m.member(other), named)
		refused("the removal naming " + named)
		if got := replicaStateOf(p); got != want {
			t.Fatalf("after a removal from a member naming %q: %+v, want %+v", named, got, want)
		}
	}
	remove(m.member(primary), primary)
	waitFor(t, "the removal from the primary", func() bool { return s.get(g) == nil || p.ballot.Load() == 2 })
	if n := s.metrics.peerRefused.Load(); n != refusals {
		t.Errorf("%d refusals counted, want %d", n, refusals)
	}
}

// Learning requests, completions and checkpoint copies come from the learner
// they are for.
func TestLearningFromTheLearner(t *testing.T) {
	g := base.Gpid{Appid: 1, PartitionIndex: 0}
	const primary, learner, other = "127.0.0.1:45021", "127.0.0.1:45022", "127.0.0.1:45023"
	m, _, p := securedSecondary(t, g, primary)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.sst"), []byte("checkpoint data"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.ckptMu.Lock()
	p.ckpt = &learnCkpt{decree: 7, dir: dir, created: time.Now(), learners: []string{learner}}
	p.ckptMu.Unlock()

	learn := func(cl *rpc.Client, named string) string {
		var resp consensus.LearnResponse
		req := &consensus.LearnRequest{Pid: base.NewGpid(g.Appid, g.PartitionIndex), Learner: base.MustParseRPCAddress(named), Signature: 1}
		if code := callCode(cl, g, rpc.CodeLearn, req, &resp); code != "" {
			return code
		}
		return resp.Err.Name()
	}
	completed := func(cl *rpc.Client, named string) string {
		var resp consensus.LearnNotifyResponse
		req := &consensus.LearnNotifyRequest{Pid: base.NewGpid(g.Appid, g.PartitionIndex), Learner: base.MustParseRPCAddress(named), Signature: 1}
		if code := callCode(cl, g, rpc.CodeLearnCompleted, req, &resp); code != "" {
			return code
		}
		return resp.Err.Name()
	}
	copyFile := func(cl *rpc.Client) string {
		var resp consensus.CopyResponse
		req := &consensus.CopyRequest{Pid: base.NewGpid(g.Appid, g.PartitionIndex), CheckpointDecree: 7, File: "f.sst", Size: 1024}
		if code := callCode(cl, g, rpc.CodeNFSCopy, req, &resp); code != "" {
			return code
		}
		if resp.Err.OK() && string(resp.Data.Bytes()) != "checkpoint data" {
			return "wrong data " + string(resp.Data.Bytes())
		}
		return resp.Err.Name()
	}
	fromLearner, fromOther := m.member(learner), m.member(other)
	cases := []struct {
		name string
		send func() string
		want string
	}{
		// The learner is not one of this secondary's: the state machine refuses it.
		{"learn from the learner", func() string { return learn(fromLearner, learner) }, base.ErrInvalidState},
		{"learn for another node", func() string { return learn(fromOther, learner) }, base.ErrACLDeny},
		{"completion from the learner", func() string { return completed(fromLearner, learner) }, base.ErrOK},
		{"completion for another node", func() string { return completed(fromOther, learner) }, base.ErrACLDeny},
		{"copy by the learner", func() string { return copyFile(fromLearner) }, base.ErrOK},
		{"copy by another member", func() string { return copyFile(fromOther) }, base.ErrACLDeny},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.send(); got != tc.want {
				t.Errorf("%s, want %s", got, tc.want)
			}
		})
	}
}
