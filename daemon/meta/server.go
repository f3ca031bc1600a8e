package meta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/daemon/remotecmd"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/internal/coldbackup"
	"github.com/pegasusgo/pegasus/internal/ratelog"
	"github.com/pegasusgo/pegasus/rpc"
)

// DefaultTable is a table created when the leader finds an empty cluster.
type DefaultTable struct {
	Name           string
	AppType        string
	PartitionCount int32
	ReplicaCount   int32
	Envs           map[string]string
}

// Options configure a meta server. The zero values of the timings pick upstream's
// defaults.
type Options struct {
	// ClientAuth proves this server to the replica servers it calls; nil in an
	// insecure cluster.
	ClientAuth  *rpc.ClientAuth
	Self        string   // this server's ip:port, as other servers reach it
	MetaServers []string // every meta server of the cluster, ip:port
	ClusterName string
	ClusterRoot string   // root path of the cluster in the store
	StoreHosts  []string // shown in cluster_info (the ZooKeeper ensemble)

	Store   metastore.Store
	Elector metastore.Elector

	FDGrace          time.Duration // 22 s
	FDCheckInterval  time.Duration // 2 s
	StableRunTime    time.Duration // 600 s: unstable restart window
	MaxUnstable      int           // 5: restarts in a row before a node is refused
	LBInterval       time.Duration // 10 s: periodic cure pass
	LevelOnStart     admin.MetaFunctionLevel
	MinLiveNodes     int // min_live_node_count_for_unfreeze, 3
	LivePercentage   int // node_live_percentage_threshold_for_update, 65
	HoldDroppedApp   time.Duration
	MinReplicaCount  int32 // min_allowed_replica_count, 1
	MaxReplicaCount  int32 // max_allowed_replica_count, 5
	Min2PCReplicas   int32 // mutation_2pc_min_replica_count, for health reports
	DefaultTables    []DefaultTable
	WhiteList        []string // replica servers allowed to join; empty = anyone
	ProposalTimeout  time.Duration
	AssignDelay      time.Duration // replica_assign_delay_ms_for_dropouts: wait for a dropped secondary (10 min)
	BalanceMoves     int           // balance_op_count_per_round: moves planned at once (10)
	ExcludedNodes    []string      // replica servers taken out of service at start
	Logger           *slog.Logger
	Now              func() time.Time
	StartTime        time.Time
	ConfigSyncPeriod time.Duration // what replica servers use; shown in docs only
	// SendHostPort fills the hp_* fields of replies ([meta_server]
	// send_host_port_fields); see hostport.go.
	SendHostPort bool
	// NetStats reads the RPC server's connection accounting for the network_*
	// metrics (nil: not reported).
	NetStats func() rpc.ServerStats
	// Dial connects to the replica servers (nil: TCP); see role.Transport.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// ColdBackupDisabled answers the backup and restore RPCs
	// ERR_SERVICE_NOT_ACTIVE; ColdBackup configures them (backup.go).
	ColdBackupDisabled bool
	ColdBackup         coldbackup.Options
	// MinBackupInterval is the shortest backup policy interval (24 h, as
	// upstream; [meta_server] min_backup_interval_seconds lowers it for
	// tests). PolicyCheckInterval is how often the leader looks at its
	// policies: MinBackupInterval/10 within [1 s, 300 s] (backuppolicy.go).
	MinBackupInterval   time.Duration
	PolicyCheckInterval time.Duration
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.FDGrace, 22*time.Second)
	def(&o.FDCheckInterval, 2*time.Second)
	def(&o.StableRunTime, 600*time.Second)
	def(&o.LBInterval, 10*time.Second)
	def(&o.HoldDroppedApp, 7*24*time.Hour)
	def(&o.ProposalTimeout, 3*time.Second)
	def(&o.AssignDelay, 10*time.Minute)
	if o.BalanceMoves <= 0 {
		o.BalanceMoves = 10
	}
	if o.MaxUnstable <= 0 {
		o.MaxUnstable = 5
	}
	if o.LevelOnStart == 0 {
		o.LevelOnStart = admin.MetaFunctionLevel_fl_steady
	}
	if o.LivePercentage <= 0 {
		o.LivePercentage = 65
	}
	if o.MinReplicaCount <= 0 {
		o.MinReplicaCount = 1
	}
	if o.MaxReplicaCount <= 0 {
		o.MaxReplicaCount = 5
	}
	if o.Min2PCReplicas <= 0 {
		o.Min2PCReplicas = 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StartTime.IsZero() {
		o.StartTime = o.Now()
	}
	if o.ClusterRoot == "" {
		o.ClusterRoot = "/"
	}
	def(&o.MinBackupInterval, 24*time.Hour)
	def(&o.PolicyCheckInterval, min(max(o.MinBackupInterval/10, time.Second), policyCheckEvery))
}

// Server is one meta server process.
type Server struct {
	opts Options
	log  *slog.Logger
	mux  *rpc.Mux
	cmds *remotecmd.Registry

	mu         sync.RWMutex
	term       *leaderTerm // nil while not the (ready) leader
	leaderHint string      // the leader as last seen in the election
	clusterID  string      // read (or made) by the leader from <root>/cluster_id

	clientsMu sync.Mutex
	clients   map[string]*rpc.Client // replica servers, for proposals

	// peerLog limits the log lines of refused cluster RPCs (peercheck.go).
	peerLog *ratelog.Limiter
	// storeLog limits the log lines of failed store writes that are retried
	// (retryStore); storeRetry is the pause between the attempts.
	storeLog   *ratelog.Limiter
	storeRetry time.Duration
	// opLog limits the log lines of admin operations that failed to persist
	// their change (leaderop.go).
	opLog *ratelog.Limiter

	cold *coldBackups    // one-time backups (backup.go)
	pol  *backupPolicies // backup policies (backuppolicy.go)
	// restores is the status of the restores into new tables (restorestatus.go).
	restores *restores
}

// New returns a meta server. Register its handlers on a mux with Register and serve
// its HTTP API from HTTPHandler; Run takes part in the election.
func New(opts Options) (*Server, error) {
	opts.setDefaults()
	if opts.Store == nil || opts.Elector == nil {
		return nil, errors.New("meta server: a store and an elector are required")
	}
	if _, err := base.ParseRPCAddress(opts.Self); err != nil {
		return nil, fmt.Errorf("meta server: own address: %w", err)
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		clients: map[string]*rpc.Client{},
		peerLog: ratelog.New(peerLogEvery),

		storeLog:   ratelog.New(storeLogEvery),
		storeRetry: time.Second,
		opLog:      ratelog.New(opLogEvery),
		cold:       newColdBackups(opts.ColdBackup),
		pol:        newBackupPolicies(),
		restores:   newRestores(),
	}
	s.cmds = remotecmd.New("meta", opts.StartTime)
	s.registerCommands()
	return s, nil
}

// leaderTerm is the state of one leadership term.
type leaderTerm struct {
	ctx context.Context
	// opMu serialises every change of the state: compute, persist, apply. Readers
	// only need Server.mu, so a slow store write never blocks routing queries.
	opMu sync.Mutex
	// The fields below are guarded by Server.mu.
	state   *clusterState
	fd      *failureDetector
	level   admin.MetaFunctionLevel
	reports map[string]*consensus.ConfigurationQueryByNodeRequest // last config sync per node
	ops     *operators                                            // moves and proposals in flight
	drops   map[base.Gpid]map[string]time.Time                    // when a node left a partition
	// excluded nodes are being taken out of service: never chosen, drained by the
	// balancer.
	excluded map[string]bool
	start    time.Time // when this term began
	// cureMu serialises the cure passes (timer and events).
	cureMu sync.Mutex
	// deadWarned is when each partition that lost every member was last
	// reported in the log. Guarded by cureMu.
	deadWarned map[base.Gpid]time.Time
}

// Run takes part in the leader election until ctx ends. While leader it serves;
// when the leadership is lost it stops acting at once and campaigns again.
func (s *Server) Run(ctx context.Context) error {
	go s.watchLeader(ctx)
	for ctx.Err() == nil {
		term, err := s.opts.Elector.Campaign(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			s.log.Warn("leader election failed, retrying", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		s.log.Info("became the meta leader", "self", s.opts.Self)
		s.lead(ctx, term)
		s.log.Warn("no longer the meta leader", "self", s.opts.Self)
	}
	s.closeClients()
	return ctx.Err()
}

// watchLeader keeps leaderHint fresh for followers' forwarding answers.
func (s *Server) watchLeader(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		l, err := s.opts.Elector.Leader(lctx)
		cancel()
		if err == nil {
			s.mu.Lock()
			s.leaderHint = l
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) lead(ctx context.Context, term *metastore.Term) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-term.Lost():
		case <-lctx.Done():
		}
		cancel()
	}()
	lt := &leaderTerm{
		ctx:      lctx,
		fd:       newFailureDetector(s.opts.FDGrace, s.opts.StableRunTime, s.opts.MaxUnstable),
		level:    s.opts.LevelOnStart,
		reports:  map[string]*consensus.ConfigurationQueryByNodeRequest{},
		ops:      newOperators(resendAfter, moveTimeout),
		drops:    map[base.Gpid]map[string]time.Time{},
		excluded: map[string]bool{},
		start:    s.opts.Now(),

		deadWarned: map[base.Gpid]time.Time{},
	}
	defer func() {
		// The term's operations end with it: nothing more is proposed.
		s.mu.Lock()
		s.term = nil
		lt.ops.stop()
		s.mu.Unlock()
		if ctx.Err() != nil {
			term.Resign()
		}
	}()

	for _, n := range s.opts.ExcludedNodes {
		lt.excluded[n] = true
	}
	for {
		st, err := s.recoverState(lctx)
		if err == nil {
			lt.state = st
			break
		}
		if lctx.Err() != nil {
			return
		}
		s.log.Error("loading the cluster state failed, retrying", "err", err)
		sleep(lctx, time.Second)
	}
	now := s.opts.Now()
	for _, a := range lt.state.apps {
		for _, pc := range a.partitions {
			for _, m := range members(pc) {
				lt.fd.register(m, now)
			}
		}
	}
	s.resumeBackups(lt)
	s.loadPolicies(lt)
	s.loadRestores(lt)
	s.mu.Lock()
	s.term = lt
	s.leaderHint = s.opts.Self
	s.mu.Unlock()
	s.log.Info("meta leader ready", "tables", len(lt.state.byName))

	go s.fdLoop(lt)
	go s.policyLoop(lt)
	s.cureLoop(lt)
}

// currentTerm returns the ready leader term, or nil on a follower.
func (s *Server) currentTerm() *leaderTerm {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.term
}

// IsLeader reports whether this server currently acts as the leader.
func (s *Server) IsLeader() bool { return s.currentTerm() != nil }

// LeaderAddr returns the leader as this server knows it ("" if unknown).
func (s *Server) LeaderAddr() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.term != nil {
		return s.opts.Self
	}
	return s.leaderHint
}

// recoverState loads every table from the store; a cluster without tables gets the
// default tables.
func (s *Server) recoverState(ctx context.Context) (*clusterState, error) {
	root := s.opts.ClusterRoot
	store := s.opts.Store
	if err := metastore.EnsurePath(ctx, store, appsPath(root)); err != nil {
		return nil, fmt.Errorf("create %s: %w", appsPath(root), err)
	}
	ids, err := store.Children(ctx, appsPath(root))
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	if err := s.loadClusterID(ctx); err != nil {
		return nil, err
	}
	st := newClusterState()
	for _, name := range ids {
		id, err := strconv.ParseInt(name, 10, 32)
		if err != nil {
			s.log.Warn("ignoring unexpected node under the tables path", "node", name)
			continue
		}
		data, err := store.Get(ctx, appPath(root, int32(id)))
		if err != nil {
			return nil, fmt.Errorf("read table %d: %w", id, err)
		}
		info, err := decodeApp(data)
		if err != nil {
			return nil, fmt.Errorf("table %d: %w", id, err)
		}
		a := &app{info: info, partitions: make([]*layer2.PartitionConfiguration, info.PartitionCount)}
		for i := int32(0); i < info.PartitionCount; i++ {
			p := partitionPath(root, info.AppID, i)
			data, err := store.Get(ctx, p)
			switch {
			case errors.Is(err, metastore.ErrNotFound):
				// The leader that created the table died before writing every
				// partition: finish its work.
				pc := newPartition(info.AppID, i, info.MaxReplicaCount)
				if info.Status == layer2.AppStatus_AS_DROPPED {
					pc.PartitionFlags |= partitionFlagDropped
				}
				if err := s.writePartition(ctx, pc, true); err != nil {
					return nil, err
				}
				a.partitions[i] = pc
			case err != nil:
				return nil, fmt.Errorf("read partition %d.%d: %w", info.AppID, i, err)
			default:
				pc, err := decodePartition(data)
				if err != nil {
					return nil, err
				}
				a.partitions[i] = pc
			}
		}
		st.put(a)
	}
	if len(st.apps) == 0 {
		if err := s.createDefaultTables(ctx, st); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// loadClusterID reads the cluster's identity, making one the first time. Replica
// servers record it with their data, so that data of an earlier cluster (whose root
// was deleted) is never mixed into a new one.
func (s *Server) loadClusterID(ctx context.Context) error {
	p := joinPath(s.opts.ClusterRoot, "cluster_id")
	data, err := s.opts.Store.Get(ctx, p)
	if errors.Is(err, metastore.ErrNotFound) {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("make cluster id: %w", err)
		}
		data = []byte(hex.EncodeToString(b[:]))
		if err := s.opts.Store.Create(ctx, p, data); err != nil && !errors.Is(err, metastore.ErrExists) {
			return fmt.Errorf("create %s: %w", p, err)
		}
		if data, err = s.opts.Store.Get(ctx, p); err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		s.log.Info("new cluster", "cluster_id", string(data))
	} else if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	s.mu.Lock()
	s.clusterID = string(data)
	s.mu.Unlock()
	return nil
}

// ClusterID returns the cluster's identity ("" until a leader loaded it).
func (s *Server) ClusterID() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.clusterID
}

func (s *Server) createDefaultTables(ctx context.Context, st *clusterState) error {
	now := s.opts.Now().Unix()
	for _, t := range s.opts.DefaultTables {
		if st.lookup(t.Name) != nil {
			continue
		}
		info := newAppInfo(st.maxID+1, t.Name, t.AppType, t.PartitionCount, t.ReplicaCount, t.Envs, now)
		a := &app{info: info}
		for i := int32(0); i < info.PartitionCount; i++ {
			a.partitions = append(a.partitions, newPartition(info.AppID, i, info.MaxReplicaCount))
		}
		if err := s.persistNewApp(ctx, a); err != nil {
			return fmt.Errorf("create default table %s: %w", t.Name, err)
		}
		st.put(a)
		s.log.Info("created default table", "table", t.Name, "app_id", info.AppID, "partitions", info.PartitionCount)
	}
	return nil
}

func newAppInfo(id int32, name, typ string, partitions, replicas int32, envs map[string]string, now int64) *layer2.AppInfo {
	info := layer2.NewAppInfo()
	info.Status = layer2.AppStatus_AS_AVAILABLE
	if typ == "" {
		typ = "pegasus"
	}
	info.AppType = typ
	info.AppName = name
	info.AppID = id
	info.PartitionCount = partitions
	info.Envs = map[string]string{}
	for k, v := range envs {
		info.Envs[k] = v
	}
	info.IsStateful = true
	info.MaxReplicaCount = replicas
	info.CreateSecond = now
	info.InitPartitionCount = partitions
	return info
}

// Persistence. Every write happens before the change is applied in memory.

func (s *Server) persistNewApp(ctx context.Context, a *app) error {
	data, err := encodeApp(a.info)
	if err != nil {
		return err
	}
	p := appPath(s.opts.ClusterRoot, a.info.AppID)
	if err := s.retryStore(ctx, "create "+p, func() error { return s.opts.Store.Create(ctx, p, data) }, metastore.ErrExists); err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	for _, pc := range a.partitions {
		if err := s.writePartition(ctx, pc, true); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) writeApp(ctx context.Context, info *layer2.AppInfo) error {
	data, err := encodeApp(info)
	if err != nil {
		return err
	}
	p := appPath(s.opts.ClusterRoot, info.AppID)
	if err := s.retryStore(ctx, "write "+p, func() error { return s.opts.Store.Set(ctx, p, data) }, nil); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func (s *Server) writePartition(ctx context.Context, pc *layer2.PartitionConfiguration, create bool) error {
	data, err := encodePartition(pc)
	if err != nil {
		return err
	}
	p := partitionPath(s.opts.ClusterRoot, pc.Pid.Appid, pc.Pid.PartitionIndex)
	what, op := "write "+p, func() error { return s.opts.Store.Set(ctx, p, data) }
	var tolerate error
	if create {
		what, op = "create "+p, func() error { return s.opts.Store.Create(ctx, p, data) }
		tolerate = metastore.ErrExists
	}
	if err := s.retryStore(ctx, what, op, tolerate); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// storeLogEvery is how often a failed store write that is retried is logged at
// most.
const storeLogEvery = 10 * time.Second

// retryStore retries a store operation (what names it in the log) every second
// until it succeeds or ctx ends; the store is the source of truth, so a change
// must not be applied without it. An error matching tolerate counts as success (a
// retried create that had succeeded). Each failure that is retried is logged with
// its cause (rate-limited), and so is (always) the success that ends failures.
func (s *Server) retryStore(ctx context.Context, what string, op func() error, tolerate error) error {
	var failed int
	var first time.Time
	for {
		err := op()
		if err == nil || (tolerate != nil && errors.Is(err, tolerate)) {
			if failed > 0 {
				s.log.Info("meta store write succeeded after failed attempts", "op", what, "failed_attempts", failed, "failing_for", time.Since(first).Round(time.Millisecond))
			}
			return nil
		}
		if errors.Is(err, metastore.ErrNotFound) || errors.Is(err, metastore.ErrClosed) || (tolerate == nil && errors.Is(err, metastore.ErrExists)) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		}
		if failed == 0 {
			first = time.Now()
		}
		failed++
		s.storeLog.Warn(s.log, "meta store write failed, retrying", "op", what, "attempt", failed, "retry_in", s.storeRetry, "err", err)
		sleep(ctx, s.storeRetry)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Node liveness and the periodic passes.

func (s *Server) fdLoop(lt *leaderTerm) {
	t := time.NewTicker(s.opts.FDCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-lt.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		dead := lt.fd.check(s.opts.Now())
		s.mu.Unlock()
		for _, n := range dead {
			s.log.Warn("replica server declared dead", "node", n, "grace", s.opts.FDGrace)
			s.onNodeDead(lt, n)
		}
	}
}

// cureLoop runs the cure pass every LBInterval until the term ends.
func (s *Server) cureLoop(lt *leaderTerm) {
	t := time.NewTicker(s.opts.LBInterval)
	defer t.Stop()
	for {
		s.cureAll(lt)
		select {
		case <-lt.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// aliveNodes lists the alive replica servers, sorted. Caller holds s.mu.
func (lt *leaderTerm) aliveNodes() []string {
	var out []string
	for _, n := range lt.fd.snapshot() {
		if n.alive {
			out = append(out, n.addr)
		}
	}
	return out
}

// effectiveLevel applies the automatic freeze: too few alive replica servers cap the
// level at freezed. Caller holds s.mu.
func (s *Server) effectiveLevel(lt *leaderTerm) admin.MetaFunctionLevel {
	alive, total := 0, 0
	for _, n := range lt.fd.snapshot() {
		total++
		if n.alive {
			alive++
		}
	}
	level := lt.level
	if level > admin.MetaFunctionLevel_fl_freezed &&
		(alive < s.opts.MinLiveNodes || alive*100 < s.opts.LivePercentage*total) {
		level = admin.MetaFunctionLevel_fl_freezed
	}
	return level
}

// proposeInstall tells every member of a partition's first configuration its role.
// Ballot 1 is only ever given by initial placement, which is how a replica server
// knows it may create the replica empty.
func (s *Server) proposeInstall(lt *leaderTerm, info *layer2.AppInfo, pc *layer2.PartitionConfiguration) {
	s.sendProposal(lt, info, pc, admin.ConfigType_CT_ASSIGN_PRIMARY, pc.Primary.String(), pc.Primary.String())
	for _, sec := range pc.Secondaries {
		s.sendProposal(lt, info, pc, admin.ConfigType_CT_UPGRADE_TO_SECONDARY, sec.String(), sec.String())
	}
}

// sendProposal sends RPC_CONFIG_PROPOSAL (one-way) to target. A lost repair step
// or move step is proposed again by a cure pass once resendAfter has passed (see
// operators). A lost install of a new partition is not resent: a member that
// reports nothing may also be one that lost its data, and creating it empty
// would lose writes. The replica server
// keeps installs that arrive before its first config sync, and a member that never
// got one is replaced (a primary hands the role back, a secondary is dropped by
// its primary's group check and re-added by learning).
func (s *Server) sendProposal(lt *leaderTerm, info *layer2.AppInfo, pc *layer2.PartitionConfiguration, typ admin.ConfigType, target, node string) {
	req := &consensus.ConfigurationUpdateRequest{
		Info:     cloneInfo(info),
		Config:   cloneConfig(pc),
		Type:     typ,
		Node:     base.MustParseRPCAddress(node),
		HostNode: &base.RPCAddress{},
	}
	c := s.client(target)
	go func() {
		ctx, cancel := context.WithTimeout(lt.ctx, s.opts.ProposalTimeout)
		defer cancel()
		if err := c.Call(ctx, rpc.Request{Code: rpc.CodeConfigProposal, Args: req}, nil); err != nil {
			s.log.Debug("sending proposal failed", "target", target, "gpid", pc.Pid.String(), "type", typ, "err", err)
		}
	}()
}

func (s *Server) client(addr string) *rpc.Client {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	c, ok := s.clients[addr]
	if !ok {
		c = rpc.NewClient(addr, rpc.ClientOptions{Logger: s.log, Auth: s.opts.ClientAuth, Dial: s.opts.Dial})
		s.clients[addr] = c
	}
	return c
}

func (s *Server) closeClients() {
	s.clientsMu.Lock()
	defer s.clientsMu.Unlock()
	for a, c := range s.clients {
		c.Close()
		delete(s.clients, a)
	}
}

// onNodeDead reacts to a replica server declared dead: the checker removes it
// from its partitions and promotes new primaries.
func (s *Server) onNodeDead(lt *leaderTerm, node string) {
	s.cureAll(lt)
}

// HTTPHandler returns the meta server's HTTP API (served on the RPC port).
func (s *Server) HTTPHandler() http.Handler { return s.httpHandler() }

// IsClusterHost reports whether ip is the host of a replica server the leader
// knows. Without an admin_allow_list, a cluster's own hosts may administer it.
func (s *Server) IsClusterHost(ip netip.Addr) bool {
	lt := s.currentTerm()
	if lt == nil {
		return false
	}
	// It runs for every new connection: only the nodes that beacon (the failure
	// detector's, a map) are looked at, not every partition's members.
	s.mu.RLock()
	defer s.mu.RUnlock()
	for addr := range lt.fd.nodes {
		if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}

// nodesOfState lists every replica server known to the leader with its liveness,
// including nodes named by a configuration but never heard of. Caller holds s.mu.
func (lt *leaderTerm) nodesOfState() []nodeLiveness {
	seen := map[string]bool{}
	out := lt.fd.snapshot()
	for _, n := range out {
		seen[n.addr] = true
	}
	for _, a := range lt.state.apps {
		for _, pc := range a.partitions {
			for _, m := range members(pc) {
				if !seen[m] {
					seen[m] = true
					out = append(out, nodeLiveness{addr: m})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].addr < out[j].addr })
	return out
}
