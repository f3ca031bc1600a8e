package meta

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
	"github.com/pegasusgo/pegasus/rpc"
)

func testKeyring(t *testing.T) *rpc.Keyring {
	t.Helper()
	keys, err := rpc.NewKeyring([]byte("meta-test-secret-0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// memberClient is a connection to addr authenticated as the cluster member node.
func memberClient(t *testing.T, addr, node string, keys *rpc.Keyring) *rpc.Client {
	t.Helper()
	c := rpc.NewClient(addr, rpc.ClientOptions{Auth: &rpc.ClientAuth{Keys: keys, Node: node}})
	t.Cleanup(func() { c.Close() })
	return c
}

// newMemberNode is a fakeNode beaconing over a connection authenticated as self.
func newMemberNode(t *testing.T, metaAddr, self string, keys *rpc.Keyring) *fakeNode {
	n := &fakeNode{addr: self, interval: 100 * time.Millisecond, start: time.Now().UnixMilli(),
		client:  rpc.NewClient(metaAddr, rpc.ClientOptions{Auth: &rpc.ClientAuth{Keys: keys, Node: self}}),
		stopped: make(chan struct{}), done: make(chan struct{})}
	go n.loop()
	t.Cleanup(n.stop)
	return n
}

func rpcCall(c *rpc.Client, code string, args, result rpc.Value) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Call(ctx, rpc.Request{Code: code, Args: args}, result)
}

func beaconFor(node string, start int64) *consensus.BeaconMsg {
	return &consensus.BeaconMsg{Time: time.Now().UnixMilli(), FromNode: base.MustParseRPCAddress(node), ToNode: &base.RPCAddress{}, StartTime: &start}
}

func frameCode(err error) string {
	var re *rpc.Error
	if errors.As(err, &re) {
		return re.Code
	}
	if err != nil {
		return err.Error()
	}
	return base.ErrOK
}

// fdState returns what the failure detector knows of node.
func fdState(m *testMeta, node string) (known, alive bool, startTime int64, unstable int) {
	lt := m.srv.currentTerm()
	m.srv.mu.RLock()
	defer m.srv.mu.RUnlock()
	n, ok := lt.fd.nodes[node]
	if !ok {
		return false, false, 0, 0
	}
	return true, n.alive, n.startTime, n.unstable
}

// A beacon is accepted only over the connection of the node it is for: one
// member cannot keep a phantom alive or make a live node look like it keeps
// restarting (and get it refused as unstable).
func TestBeaconMustComeFromItsNode(t *testing.T) {
	keys := testKeyring(t)
	m := startMetaAccess(t, t.TempDir(), func(o *Options) { o.StableRunTime = time.Hour; o.MaxUnstable = 2 }, &rpc.Access{Keys: keys})
	const self, victim = "127.0.0.1:35911", "127.0.0.1:35912"
	newMemberNode(t, m.addr, victim, keys)
	waitFor(t, 10*time.Second, "the victim alive", func() bool { _, alive, _, _ := fdState(m, victim); return alive })
	_, _, victimStart, _ := fdState(m, victim)

	start := time.Now().UnixMilli()
	cases := []struct {
		name    string
		auth    string // the member the connection proves ("" : none)
		from    string // the node the beacon names
		start   int64
		want    string
		creates bool // the named node is known afterwards
	}{
		{"own beacon", self, self, start, base.ErrOK, true},
		{"own beacon, mapped address", "[::ffff:127.0.0.1]:35913", "127.0.0.1:35913", start, base.ErrOK, true},
		{"phantom", self, "127.0.0.1:45899", start, base.ErrACLDeny, false},
		{"a live node's address, restarted", self, victim, start + 1000, base.ErrACLDeny, true},
		{"a live node's address, restarted again", self, victim, start + 2000, base.ErrACLDeny, true},
		{"unauthenticated", "", "127.0.0.1:45898", start, base.ErrUnauthenticated, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c *rpc.Client
			if tc.auth == "" {
				c = rpc.NewClient(m.addr, rpc.ClientOptions{})
				defer c.Close()
			} else {
				c = memberClient(t, m.addr, tc.auth, keys)
			}
			err := rpcCall(c, rpc.CodeBeacon, beaconFor(tc.from, tc.start), &consensus.BeaconAck{})
			if got := frameCode(err); got != tc.want {
				t.Fatalf("beacon: %s, want %s", got, tc.want)
			}
			if known, _, _, _ := fdState(m, tc.from); known != tc.creates {
				t.Errorf("%s known to the failure detector: %v, want %v", tc.from, known, tc.creates)
			}
		})
	}
	known, alive, st, unstable := fdState(m, victim)
	if !known || !alive || st != victimStart || unstable != 0 {
		t.Errorf("victim after forged beacons: known %v alive %v start %d (was %d) unstable %d", known, alive, st, victimStart, unstable)
	}
}

// Without a keyring (insecure_cluster) nothing is proven, and beacons are taken
// as they say, as upstream does.
func TestInsecureClusterTrustsBeacons(t *testing.T) {
	m := startMeta(t, t.TempDir(), nil)
	c := rpc.NewClient(m.addr, rpc.ClientOptions{})
	defer c.Close()
	for _, node := range []string{"127.0.0.1:35921", "127.0.0.1:35922"} {
		if err := rpcCall(c, rpc.CodeBeacon, beaconFor(node, time.Now().UnixMilli()), &consensus.BeaconAck{}); err != nil {
			t.Fatalf("beacon for %s: %v", node, err)
		}
		if _, alive, _, _ := fdState(m, node); !alive {
			t.Errorf("%s not alive after its beacon", node)
		}
	}
}

// A config sync is answered, and its report of stored replicas recorded, only for
// the node whose connection sent it.
func TestConfigSyncMustComeFromItsNode(t *testing.T) {
	keys := testKeyring(t)
	m := startMetaAccess(t, t.TempDir(), nil, &rpc.Access{Keys: keys})
	const self, victim = "127.0.0.1:35931", "127.0.0.1:35932"
	cases := []struct {
		name       string
		auth, node string
		want       string
	}{
		{"own", self, self, base.ErrOK},
		{"own, mapped address", "[::ffff:127.0.0.1]:35931", self, base.ErrOK},
		{"another node", self, victim, base.ErrACLDeny},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := memberClient(t, m.addr, tc.auth, keys)
			var resp consensus.ConfigurationQueryByNodeResponse
			req := &consensus.ConfigurationQueryByNodeRequest{Node: base.MustParseRPCAddress(tc.node), StoredReplicas: []*metadata.ReplicaInfo{}}
			if err := rpcCall(c, rpc.CodeConfigSync, req, &resp); err != nil {
				t.Fatal(err)
			}
			if got := resp.Err.Name(); got != tc.want {
				t.Fatalf("config sync: %s, want %s", got, tc.want)
			}
		})
	}
	lt := m.srv.currentTerm()
	m.srv.mu.RLock()
	_, forged := lt.reports[victim]
	_, own := lt.reports[self]
	m.srv.mu.RUnlock()
	if forged || !own {
		t.Errorf("reports recorded: victim %v (want false), own %v (want true)", forged, own)
	}
}

func addrs(nodes ...string) []*base.RPCAddress {
	out := []*base.RPCAddress{}
	for _, n := range nodes {
		out = append(out, base.MustParseRPCAddress(n))
	}
	return out
}

func pcOf(ballot int64, primary string, secondaries ...string) *layer2.PartitionConfiguration {
	pc := &layer2.PartitionConfiguration{Pid: base.NewGpid(1, 0), Ballot: ballot, MaxReplicaCount: 3,
		Primary: &base.RPCAddress{}, Secondaries: addrs(secondaries...), LastDrops: []*base.RPCAddress{}}
	if primary != "" {
		pc.Primary = base.MustParseRPCAddress(primary)
	}
	return pc
}

func TestMayRequestChange(t *testing.T) {
	const p, s1, s2, x = "10.0.0.1:34801", "10.0.0.2:34801", "10.0.0.3:34801", "10.0.0.4:34801"
	withPrimary := pcOf(4, p, s1, s2)
	noPrimary := pcOf(5, "", s1, s2)
	type C = admin.ConfigType
	cases := []struct {
		name string
		peer string
		cur  *layer2.PartitionConfiguration
		typ  C
		node string
		next *layer2.PartitionConfiguration
		want bool
	}{
		{"primary removes a secondary", p, withPrimary, admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, s2, pcOf(5, p, s1), true},
		{"primary, mapped address", "[::ffff:10.0.0.1]:34801", withPrimary, admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, s2, pcOf(5, p, s1), true},
		{"primary adds a secondary", p, pcOf(4, p, s1), admin.ConfigType_CT_UPGRADE_TO_SECONDARY, s2, pcOf(5, p, s1, s2), true},
		{"primary steps down", p, withPrimary, admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY, p, pcOf(5, "", s1, s2, p), true},
		{"restarted primary forces a ballot", p, withPrimary, admin.ConfigType_CT_PRIMARY_FORCE_UPDATE_BALLOT, p, pcOf(5, p, s1, s2), true},
		{"secondary removes another", s1, withPrimary, admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, s2, pcOf(5, p, s1), false},
		{"secondary takes the primary role", s1, withPrimary, admin.ConfigType_CT_UPGRADE_TO_PRIMARY, s1, pcOf(5, s1, s2), false},
		{"non-member forces a ballot", x, withPrimary, admin.ConfigType_CT_PRIMARY_FORCE_UPDATE_BALLOT, p, pcOf(5, p, s1, s2), false},
		{"non-member assigns itself", x, withPrimary, admin.ConfigType_CT_ASSIGN_PRIMARY, x, pcOf(5, x, s1, s2), false},
		{"promoted secondary", s1, noPrimary, admin.ConfigType_CT_UPGRADE_TO_PRIMARY, s1, pcOf(6, s1, s2), true},
		{"promoted secondary drops the other", s1, noPrimary, admin.ConfigType_CT_UPGRADE_TO_PRIMARY, s1, pcOf(6, s1), false},
		{"promotion asked for another node", s1, noPrimary, admin.ConfigType_CT_UPGRADE_TO_PRIMARY, s2, pcOf(6, s2, s1), false},
		{"last replica assigned primary", x, pcOf(5, ""), admin.ConfigType_CT_ASSIGN_PRIMARY, x, pcOf(6, x), true},
		{"member leaves", s2, withPrimary, admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, s2, pcOf(5, p, s1), true},
		{"member leaves and takes the primary along", s2, withPrimary, admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, s2, pcOf(5, "", s1), false},
		{"member of a primary-less partition leaves", s2, noPrimary, admin.ConfigType_CT_REMOVE, s2, pcOf(6, "", s1), true},
		{"member leaves, asking for another type", s2, withPrimary, admin.ConfigType_CT_UPGRADE_TO_SECONDARY, s2, pcOf(5, p, s1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := &consensus.ConfigurationUpdateRequest{Config: tc.next, Type: tc.typ, Node: base.MustParseRPCAddress(tc.node)}
			if got := mayRequestChange(tc.peer, tc.cur, req); got != tc.want {
				t.Errorf("mayRequestChange = %v, want %v", got, tc.want)
			}
		})
	}
}

// A configuration change is applied only when asked for by the partition's
// primary (or by the node it is about, acting on itself); others are refused
// with ERR_ACL_DENY and the stored configuration stays.
func TestUpdatePartitionConfigFromTheRightNode(t *testing.T) {
	keys := testKeyring(t)
	m := startMetaAccess(t, t.TempDir(), func(o *Options) {
		o.DefaultTables = []DefaultTable{{Name: "temp", PartitionCount: 1, ReplicaCount: 3}}
	}, &rpc.Access{Keys: keys})
	nodes := []string{"127.0.0.1:35941", "127.0.0.1:35942", "127.0.0.1:35943"}
	for _, n := range nodes {
		newMemberNode(t, m.addr, n, keys)
	}
	a := newAdmin(t, m.addr)
	var pc *layer2.PartitionConfiguration
	waitFor(t, 20*time.Second, "temp placed", func() bool {
		r := a.query("temp")
		if !r.Err.OK() || len(r.Partitions) != 1 {
			return false
		}
		pc = r.Partitions[0]
		return pc.Primary.IsValid() && len(pc.Secondaries) == 2
	})
	p, s1, s2 := pc.Primary.String(), pc.Secondaries[0].String(), pc.Secondaries[1].String()
	b := pc.Ballot
	info := &layer2.AppInfo{AppID: pc.Pid.Appid, AppName: "temp", PartitionCount: 1, MaxReplicaCount: 3, Envs: map[string]string{}}
	update := func(sender string, typ admin.ConfigType, node string, next *layer2.PartitionConfiguration) string {
		t.Helper()
		next.Pid = base.NewGpid(pc.Pid.Appid, pc.Pid.PartitionIndex)
		var resp consensus.ConfigurationUpdateResponse
		req := &consensus.ConfigurationUpdateRequest{Info: info, Config: next, Type: typ, Node: base.MustParseRPCAddress(node), HostNode: base.MustParseRPCAddress(sender)}
		if err := rpcCall(memberClient(t, m.addr, sender, keys), rpc.CodeUpdatePartitionConfig, req, &resp); err != nil {
			t.Fatal(err)
		}
		return resp.Err.Name()
	}
	steps := []struct {
		name   string
		sender string
		typ    admin.ConfigType
		node   string
		next   *layer2.PartitionConfiguration
		want   string
		ballot int64 // the stored ballot afterwards
	}{
		{"a secondary removes the other", s1, admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, s2, pcOf(b+1, p, s1), base.ErrACLDeny, b},
		{"a secondary takes the primary role", s1, admin.ConfigType_CT_UPGRADE_TO_PRIMARY, s1, pcOf(b+1, s1, s2), base.ErrACLDeny, b},
		{"a secondary leaves, dropping the primary", s2, admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, s2, pcOf(b+1, "", s1), base.ErrACLDeny, b},
		{"a secondary forces the ballot", s2, admin.ConfigType_CT_PRIMARY_FORCE_UPDATE_BALLOT, p, pcOf(b+1, p, s1, s2), base.ErrACLDeny, b},
		{"the primary removes a secondary", p, admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, s2, pcOf(b+1, p, s1), base.ErrOK, b + 1},
		{"a secondary leaves", s1, admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, s1, pcOf(b+2, p), base.ErrOK, b + 2},
	}
	for _, st := range steps {
		if got := update(st.sender, st.typ, st.node, st.next); got != st.want {
			t.Fatalf("%s: %s, want %s", st.name, got, st.want)
		}
		if now := a.query("temp").Partitions[0]; now.Ballot != st.ballot || !now.Primary.Equals(pc.Primary) {
			t.Fatalf("after %q: ballot %d primary %v, want ballot %d primary %s", st.name, now.Ballot, now.Primary, st.ballot, p)
		}
	}
}
