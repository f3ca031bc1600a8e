package replica

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/pegasusgo/pegasus/daemon/remotecmd"
	"github.com/pegasusgo/pegasus/daemon/replica/membership"
	"github.com/pegasusgo/pegasus/daemon/replica/mlog"
	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
	"github.com/pegasusgo/pegasus/internal/coldbackup"
	"github.com/pegasusgo/pegasus/internal/ratelog"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage"
	"golang.org/x/time/rate"
)

// Options configure a replica server. Zero timings pick upstream's defaults.
type Options struct {
	// ClientAuth proves this server to the meta servers and its peers; nil in
	// an insecure cluster.
	ClientAuth  *rpc.ClientAuth
	Self        string // ip:port of this server
	ClusterName string
	MetaServers []string
	DataDirs    []DataDir

	BeaconInterval     time.Duration // 3 s
	Lease              time.Duration // 20 s: no acknowledged beacon for this long and we stop serving
	LeaseCheckInterval time.Duration // 2 s
	ConfigSyncInterval time.Duration // 30 s
	CheckpointInterval time.Duration // 100 s: flush the stores and trim the plogs
	TickInterval       time.Duration // 50 ms: the replication state machines' clock
	RPCTimeout         time.Duration // meta and peer calls, 3 s
	// UnheldGrace is how long this server must have been listed as primary of a
	// replica it does not hold before it hands the role back (5 s): time for the
	// install proposal of a new partition to arrive and be applied.
	UnheldGrace time.Duration

	MaxAllowedWriteSize int64         // 1 MiB; 0 = unlimited
	CopyRateMBps        int           // checkpoint bytes served to learners per second (100 MB)
	GarbageRetention    time.Duration // keep ".gar" directories this long (1 day)
	ErrorRetention      time.Duration // keep ".err" directories this long (7 days)
	PlogFileSize        int64
	PlogForceFlush      bool
	Replication         pacifica.Options
	Storage             storage.Options
	ColdBackup          coldbackup.Options // backup.go, restore.go

	// DiskMinAvailableSpaceRatio (%): a data disk whose available ratio is below it
	// is SPACE_INSUFFICIENT; 0 = never. RejectWriteWhenDiskInsufficient makes the
	// primaries on a disk that is not NORMAL refuse client writes. The config's
	// defaults are 10 and true.
	DiskMinAvailableSpaceRatio      int
	RejectWriteWhenDiskInsufficient bool
	// DiskCheckInterval is how often the disks' free space is read (2 s): often
	// enough to stop writes before a disk fills up, and a statfs call is cheap.
	DiskCheckInterval time.Duration
	// PerfCounterInterval is how often the legacy perf counters are snapshot
	// from the metrics ([pegasus.server] perf_counter_update_interval_seconds,
	// 10 s): their rates are over that interval.
	PerfCounterInterval time.Duration
	// ReadCapacityUnitSize and WriteCapacityUnitSize are the bytes of one read
	// or write capacity unit ([pegasus.server]
	// perf_counter_{read,write}_capacity_unit_size, 4 KB; see capacityunits.go).
	ReadCapacityUnitSize, WriteCapacityUnitSize int64

	Logger    *slog.Logger
	StartTime time.Time
	// Now is the clock of the meta link: beacon send times and the lease
	// (default time.Now). Timers and the rest of the server read the system clock.
	Now func() time.Time
	// NetStats reads the RPC server's connection accounting for the network_*
	// metrics (nil: not reported).
	NetStats func() rpc.ServerStats
	// Dial connects to the meta servers and the peers (nil: TCP); see
	// role.Transport.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.BeaconInterval, 3*time.Second)
	def(&o.Lease, 20*time.Second)
	def(&o.LeaseCheckInterval, 2*time.Second)
	def(&o.ConfigSyncInterval, 30*time.Second)
	def(&o.CheckpointInterval, 100*time.Second)
	def(&o.TickInterval, 50*time.Millisecond)
	def(&o.RPCTimeout, 3*time.Second)
	def(&o.UnheldGrace, 5*time.Second)
	def(&o.GarbageRetention, 24*time.Hour)
	def(&o.ErrorRetention, 7*24*time.Hour)
	def(&o.DiskCheckInterval, 2*time.Second)
	def(&o.PerfCounterInterval, 10*time.Second)
	if o.CopyRateMBps <= 0 {
		o.CopyRateMBps = 100
	}
	if o.ReadCapacityUnitSize <= 0 {
		o.ReadCapacityUnitSize = 4096
	}
	if o.WriteCapacityUnitSize <= 0 {
		o.WriteCapacityUnitSize = 4096
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
}

// Stub is a replica server: the replicas it hosts and its link to the meta server.
type Stub struct {
	opts    Options
	self    string
	log     *slog.Logger
	disks   []*disk
	cmds    *remotecmd.Registry
	metrics *serverMetrics
	meta    *metaLink

	mu         sync.RWMutex
	partitions map[base.Gpid]*partition
	creating   map[base.Gpid]*disk // disk chosen for each replica being created
	identity   identity            // the cluster the disks belong to
	fatal      chan error          // a reason the server must stop
	cache      *pebble.Cache       // the block cache shared by the replicas, when the stub made it
	// claims has, for each replica being opened, created or closed, a channel
	// closed when that ends: one such operation at a time per replica, since
	// Pebble's lock lets only one open its directory.
	claims map[base.Gpid]chan struct{}
	// closed remembers what each replica closed as no longer a member held
	// (upstream's closed replicas): config syncs go on reporting it, so that the
	// meta server can still pick it as the primary of a partition that lost every
	// other member. Replicas closed after a local failure are not in it.
	closed map[base.Gpid]*metadata.ReplicaInfo

	// members decides membership: what config syncs and proposals mean for
	// the local replicas (membership package). memMu serialises its events;
	// never held while waiting for an executor, and taken before mu.
	memMu   sync.Mutex
	members *membership.Machine

	// confirmed is closed once a config sync showed that the meta servers serve
	// the cluster of identity (membership.SignalConfirmed).
	confirmed chan struct{}

	peersMu sync.Mutex
	peers   map[string]*rpc.Client

	copyLimit *rate.Limiter // bytes/s served to learners

	peerLog *ratelog.Limiter // refused cluster messages (peercheck.go)
	// oversizeLog and misroutedLog limit the warnings about refused client
	// writes (writeguard.go).
	oversizeLog, misroutedLog *ratelog.Limiter

	diskKick chan struct{} // a write found a disk full: check the disks now

	compactor *compactor // manual compactions (manualcompact.go)
	backups   *backups   // cold backups of the primaries (backup.go)
	// restoring maps a replica being created from a backup to its
	// *restoreJob; restoreDrops holds the tables this server asked to drop
	// (restore.go).
	restoring, restoreDrops sync.Map

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open starts a replica server: it loads every replica found on the data disks
// (replaying their logs) and is then ready to be registered and run.
func Open(opts Options) (*Stub, error) {
	opts.setDefaults()
	if _, err := base.ParseRPCAddress(opts.Self); err != nil {
		return nil, fmt.Errorf("replica server address: %w", err)
	}
	kick := make(chan struct{}, 1)
	disks, err := openDisks(opts.DataDirs, kick)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stub{
		opts:       opts,
		self:       opts.Self,
		log:        opts.Logger,
		disks:      disks,
		partitions: map[base.Gpid]*partition{},
		creating:   map[base.Gpid]*disk{},
		claims:     map[base.Gpid]chan struct{}{},
		closed:     map[base.Gpid]*metadata.ReplicaInfo{},
		members:    membership.New(opts.Self, opts.UnheldGrace),
		fatal:      make(chan error, 1),
		confirmed:  make(chan struct{}),
		peers:      map[string]*rpc.Client{},
		diskKick:   kick,
		ctx:        ctx,
		cancel:     cancel,
	}
	s.copyLimit = rate.NewLimiter(rate.Limit(opts.CopyRateMBps<<20), copyChunk)
	s.peerLog = ratelog.New(peerLogEvery)
	s.oversizeLog = ratelog.New(refusedWriteLogEvery)
	s.misroutedLog = ratelog.New(refusedWriteLogEvery)
	s.metrics = newServerMetrics(s)
	s.compactor = newCompactor(s)
	s.backups = newBackups(s)
	s.meta = newMetaLink(s)
	s.cmds = remotecmd.New("replica", opts.StartTime)
	s.registerCommands()
	s.compactor.registerCommands()
	// The disks' status is known before any replica serves.
	s.checkDisks(time.Now())
	if err := checkRoomToStart(disks); err != nil {
		cancel()
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.watchDisks(ctx)
	}()
	id, err := readIdentity(disks)
	if err != nil {
		cancel()
		s.wg.Wait()
		return nil, err
	}
	s.identity = id
	if s.opts.Storage.Cache == nil {
		// One block cache for every replica of the server, as RocksDB's
		// rocksdb_block_cache_capacity is: a private cache per replica would
		// multiply the configured memory by the number of replicas.
		size := s.opts.Storage.BlockCacheSize
		if size <= 0 {
			size = storage.DefaultOptions().BlockCacheSize
		}
		s.cache = pebble.NewCache(size)
		s.opts.Storage.Cache = s.cache
	}
	if err := s.loadAll(); err != nil {
		s.Close()
		return nil, err
	}
	// Started last: it reads the options Open completes (the block cache).
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runPerfCounters(ctx)
	}()
	return s, nil
}

// loadAll opens every replica directory found on the disks.
func (s *Stub) loadAll() error {
	for _, d := range s.disks {
		entries, err := os.ReadDir(d.dir)
		if err != nil {
			return fmt.Errorf("list %s: %w", d.dir, err)
		}
		for _, e := range entries {
			if !e.IsDir() || !isReplicaDirName(e.Name()) {
				continue
			}
			dir := filepath.Join(d.dir, e.Name())
			st, err := readState(dir)
			if err != nil {
				s.log.Error("skipping a replica directory that does not load", "dir", dir, "err", err)
				continue
			}
			if st.Cluster != "" && s.opts.ClusterName != "" && st.Cluster != s.opts.ClusterName {
				return fmt.Errorf("replica %s belongs to cluster %q, this server to %q: refusing to start (clean the data directories of the old cluster first)", dir, st.Cluster, s.opts.ClusterName)
			}
			g, err := base.ParseGpid(st.Gpid)
			if err != nil {
				s.log.Error("skipping a replica directory with a bad gpid", "dir", dir, "err", err)
				continue
			}
			if _, dup := s.partitions[g]; dup {
				s.log.Error("replica found twice, keeping the first", "gpid", st.Gpid, "dir", dir)
				continue
			}
			p, err := s.openPartition(g, d, dir, st)
			if err != nil {
				s.log.Error("opening a replica failed; moving it aside", "dir", dir, "err", err)
				os.Rename(dir, fmt.Sprintf("%s.%d.err", dir, time.Now().UnixMicro()))
				continue
			}
			s.partitions[g] = p
		}
	}
	s.log.Info("replicas loaded", "count", len(s.partitions))
	return nil
}

// isReplicaDirName accepts "<app_id>.<pidx>.<type>" without a garbage suffix.
func isReplicaDirName(name string) bool {
	parts := strings.Split(name, ".")
	if len(parts) != 3 {
		return false
	}
	_, err := base.ParseGpid(parts[0] + "." + parts[1])
	return err == nil && parts[2] != ""
}

// openPartition opens a replica's store and log, replays the log and starts its
// executor.
func (s *Stub) openPartition(g base.Gpid, d *disk, dir string, st persistedState) (*partition, error) {
	log := s.log.With("gpid", g.String())
	scenario := usageScenario(st.Envs)
	store, err := storage.Open(filepath.Join(dir, "data"), s.storeOptions(scenario, d, log))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	plog, err := mlog.Open(mlog.Options{Dir: filepath.Join(dir, "plog"), FileSizeBytes: s.opts.PlogFileSize, ForceFlush: s.opts.PlogForceFlush, Logger: log})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open plog: %w", err)
	}
	var logged []*pacifica.Mutation
	err = plog.Replay(func(r mlog.Record) error {
		mu, err := decodeMutation(r.Data)
		if err != nil {
			return err
		}
		logged = append(logged, mu)
		return nil
	})
	if err != nil {
		plog.Close()
		store.Close()
		return nil, fmt.Errorf("replay plog: %w", err)
	}
	p := &partition{
		stub:        s,
		gpid:        g,
		dir:         dir,
		disk:        d,
		log:         log,
		plog:        plog,
		core:        pacifica.New(s.self, s.replicationOptions(st.MaxReplicas)),
		pendingAcks: map[ackKey][]chan pacifica.Ack{},
		state:       st,
		inbox:       newMailbox(),
		done:        make(chan struct{}),
		stop:        make(chan struct{}),
	}
	p.scenario.Store(scenario)
	s.withMembers(func(m *membership.Machine) { m.Opened(g) })
	p.store.Store(store)
	p.setAppInfo(st.appInfo(g))
	now := time.Now()
	rd := p.core.Restore(st.config(), store.LastAppliedDecree(), logged)
	p.process(rd, now)
	if p.closing.Load() {
		plog.Close()
		store.Close()
		return nil, fmt.Errorf("replay failed")
	}
	if len(logged) > 0 {
		log.Info("replica replayed its log", "mutations", len(logged), "committed", p.core.Committed(), "prepared", p.core.MaxPrepared(), "ballot", p.core.Ballot())
	}
	p.publish()
	p.running.Store(true)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		p.run()
	}()
	return p, nil
}

func (s *Stub) replicationOptions(maxReplicas int32) pacifica.Options {
	o := s.opts.Replication
	if o.Min2PC <= 0 {
		// Upstream: 1 when a table has at most 2 replicas, else a majority.
		o.Min2PC = 2
		if maxReplicas <= 2 {
			o.Min2PC = 1
		}
	}
	return o
}

// create makes an empty replica: for a partition's first configuration (ballot 1:
// every member starts empty, so no learning is needed), or for a learner.
func (s *Stub) create(g base.Gpid, info *layer2.AppInfo) (*partition, error) {
	return s.createFrom(g, info, nil)
}

// createFrom makes a new replica whose data directory fill, when not nil,
// writes first (a restore's download). fill runs before the replica's state
// file is written, so that a crash midway leaves a directory the server
// skips at start (no state) and the next creation moves aside, never a
// replica that looks valid with part of its data.
func (s *Stub) createFrom(g base.Gpid, info *layer2.AppInfo, fill func(dataDir string) error) (*partition, error) {
	release, existing, err := s.claim(g)
	if err != nil || existing != nil {
		return existing, err
	}
	defer release()
	s.mu.Lock()
	// Replicas still being created count too: a new table's partitions arrive
	// together and would otherwise all pick the same, emptiest disk.
	appCount, allCount := map[*disk]int{}, map[*disk]int{}
	count := func(pg base.Gpid, d *disk) {
		allCount[d]++
		if pg.Appid == g.Appid {
			appCount[d]++
		}
	}
	for pg, p := range s.partitions {
		count(pg, p.disk)
	}
	for pg, d := range s.creating {
		count(pg, d)
	}
	d := pickDisk(s.disks, appCount, allCount)
	s.creating[g] = d
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.creating, g)
		s.mu.Unlock()
	}()
	dir := filepath.Join(d.dir, replicaDirName(g, info.AppType))
	if _, err := os.Stat(dir); err == nil {
		// A leftover of an earlier incarnation: keep it aside, never delete data.
		aside := fmt.Sprintf("%s.%d.gar", dir, time.Now().UnixMicro())
		if err := os.Rename(dir, aside); err != nil {
			return nil, fmt.Errorf("move aside %s: %w", dir, err)
		}
		s.log.Warn("moved an old replica directory aside", "dir", aside)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create replica dir: %w", err)
	}
	if fill != nil {
		if err := fill(filepath.Join(dir, "data")); err != nil {
			return nil, err
		}
	}
	st := stateOf(s.opts.ClusterName, g, info, pacifica.Config{})
	if err := writeState(dir, st); err != nil {
		return nil, err
	}
	p, err := s.openPartition(g, d, dir, st)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.partitions[g] = p
	s.mu.Unlock()
	s.log.Info("created replica", "gpid", g.String(), "table", info.AppName, "disk", d.tag)
	return p, nil
}

// closePartition stops a replica and closes its store and log. Its directory stays.
func (s *Stub) closePartition(p *partition) {
	p.stopExecutor()
	info := p.replicaInfo()
	info.Status = metadata.PartitionStatus_PS_INACTIVE
	done := make(chan struct{})
	s.mu.Lock()
	listed := s.partitions[p.gpid] == p
	if listed {
		// No claim can be held while the replica is listed; this one makes an
		// open of the directory wait for the close.
		delete(s.partitions, p.gpid)
		s.claims[p.gpid] = done
	}
	s.mu.Unlock()
	if listed {
		s.withMembers(func(m *membership.Machine) { m.Closed(p.gpid) })
	}
	if err := p.plog.Close(); err != nil {
		p.log.Warn("closing plog", "err", err)
	}
	if err := p.st().Close(); err != nil {
		p.log.Warn("closing store", "err", err)
	}
	s.metrics.dropEntity(p)
	s.mu.Lock()
	if s.claims[p.gpid] == done {
		delete(s.claims, p.gpid)
		if p.retired.Load() {
			s.closed[p.gpid] = info
		} else {
			delete(s.closed, p.gpid)
		}
	}
	s.mu.Unlock()
	close(done)
}

// claim waits until no other open, create or close of g is in progress. It
// returns the replica when it is open by then; otherwise g is claimed until
// release is called (after the replica is listed, or the attempt failed).
func (s *Stub) claim(g base.Gpid) (release func(), existing *partition, err error) {
	for {
		s.mu.Lock()
		if p := s.partitions[g]; p != nil {
			s.mu.Unlock()
			return nil, p, nil
		}
		ch := s.claims[g]
		if ch == nil {
			ch = make(chan struct{})
			s.claims[g] = ch
			s.mu.Unlock()
			return func() {
				s.mu.Lock()
				if s.claims[g] == ch {
					delete(s.claims, g)
				}
				s.mu.Unlock()
				close(ch)
			}, nil, nil
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-s.ctx.Done():
			return nil, nil, fmt.Errorf("replica %s: %w", g.String(), s.ctx.Err())
		}
	}
}

// wasRetired reports whether g was closed here as no longer a member.
func (s *Stub) wasRetired(g base.Gpid) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.closed[g]
	return ok
}

func (s *Stub) get(g base.Gpid) *partition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.partitions[g]
}

func (s *Stub) all() []*partition {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*partition, 0, len(s.partitions))
	for _, p := range s.partitions {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].gpid.Raw() < out[j].gpid.Raw() })
	return out
}

// Run keeps in touch with the meta server and runs the periodic duties until ctx
// ends, or until the server must stop (its data belongs to another cluster).
func (s *Stub) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.meta.run(ctx) }()
	go func() { defer wg.Done(); s.checkpointLoop(ctx) }()
	go func() { defer wg.Done(); s.compactor.loop(ctx) }()
	var err error
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case err = <-s.fatal:
		cancel()
	}
	wg.Wait()
	return err
}

// Close stops every replica and releases the server's resources. The replicas are
// closed in parallel: closing a store waits up to its CloseFlushTimeout for a final
// flush that a full disk does not let finish, and one after the other would multiply
// that by the number of replicas.
func (s *Stub) Close() error {
	s.cancel()
	var closing sync.WaitGroup
	for _, p := range s.all() {
		closing.Add(1)
		go func() {
			defer closing.Done()
			s.closePartition(p)
		}()
	}
	closing.Wait()
	s.wg.Wait()
	s.peersMu.Lock()
	for a, c := range s.peers {
		c.Close()
		delete(s.peers, a)
	}
	s.peersMu.Unlock()
	s.meta.close()
	if s.cache != nil {
		// The stores hold their own references; this drops the server's.
		s.cache.Unref()
		s.cache = nil
	}
	return nil
}

// checkpointFlushTimeout bounds the wait for one replica's flush in checkpointLoop.
const checkpointFlushTimeout = 20 * time.Second

// checkpointLoop flushes the stores and trims the plogs up to what is durable.
func (s *Stub) checkpointLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.cleanDisks(time.Now())
		for _, p := range s.all() {
			if p.closing.Load() {
				continue
			}
			p.dropOldLearnCheckpoint()
			// Bounded: a flush that cannot finish (a full disk) must not hold up the
			// other replicas' flushes and the disk cleaning for long. One that takes
			// longer goes on in the background; the log is trimmed at the next pass.
			fctx, cancel := context.WithTimeout(ctx, min(s.opts.CheckpointInterval, checkpointFlushTimeout))
			err := p.st().Flush(fctx)
			cancel()
			if ctx.Err() != nil {
				return // stopping: the stores flush as they close
			}
			if err != nil {
				p.log.Warn("flush failed", "err", err)
				continue
			}
			if _, err := p.plog.GC(p.st().LastDurableDecree()); err != nil {
				p.log.Warn("plog gc failed", "err", err)
			}
		}
	}
}

func (s *Stub) peer(addr string) *rpc.Client {
	s.peersMu.Lock()
	defer s.peersMu.Unlock()
	c, ok := s.peers[addr]
	if !ok {
		c = rpc.NewClient(addr, rpc.ClientOptions{Logger: s.log, MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, Auth: s.opts.ClientAuth, Dial: s.opts.Dial})
		s.peers[addr] = c
	}
	return c
}

func toConfig(rc pacifica.Config, g base.Gpid, status pacifica.Status) *consensus.ReplicaConfiguration {
	out := &consensus.ReplicaConfiguration{
		Pid:         base.NewGpid(g.Appid, g.PartitionIndex),
		Ballot:      rc.Ballot,
		Primary:     addrOrEmpty(rc.Primary),
		Status:      status,
		Secondaries: make([]*base.RPCAddress, 0, len(rc.Secondaries)),
	}
	for _, s := range rc.Secondaries {
		out.Secondaries = append(out.Secondaries, addrOrEmpty(s))
	}
	return out
}

func fromConfig(rc *consensus.ReplicaConfiguration) pacifica.Config {
	cfg := pacifica.Config{Ballot: rc.Ballot}
	if rc.Primary.IsValid() {
		cfg.Primary = rc.Primary.String()
	}
	for _, s := range rc.Secondaries {
		if s.IsValid() {
			cfg.Secondaries = append(cfg.Secondaries, s.String())
		}
	}
	return cfg
}

// configOf converts a meta partition configuration.
func configOf(pc *layer2.PartitionConfiguration) pacifica.Config { return membership.ConfigOf(pc) }

func addrOrEmpty(s string) *base.RPCAddress {
	if s == "" {
		return &base.RPCAddress{}
	}
	a, err := base.ParseRPCAddress(s)
	if err != nil {
		return &base.RPCAddress{}
	}
	return a
}

// sendPrepare sends a prepare and feeds the answer back to the executor.
func (s *Stub) sendPrepare(p *partition, pr pacifica.Prepare) {
	req := &consensus.PrepareRequest{
		Config:   toConfig(pr.Config, p.gpid, pr.Status),
		Mutation: toWire(p.gpid, pr.Mutation),
	}
	decree, ballot, to := pr.Mutation.Decree, pr.Mutation.Ballot, pr.To
	c := s.peer(to)
	go func() {
		ctx, cancel := context.WithTimeout(s.ctx, p.core0PrepareTimeout())
		defer cancel()
		var resp consensus.PrepareResponse
		err := c.Call(ctx, rpc.Request{Code: rpc.CodePrepare, AppID: p.gpid.Appid, PartitionIndex: p.gpid.PartitionIndex, Args: req}, &resp)
		code := resp.Err.Name()
		if err != nil {
			code = rpc.ErrorCode(err)
		}
		p.post(ackEv{from: to, decree: decree, ballot: ballot, err: code})
	}()
}

func (p *partition) core0PrepareTimeout() time.Duration {
	if t := p.stub.opts.Replication.PrepareTimeout; t > 0 {
		return t
	}
	return 3 * time.Second
}

func (s *Stub) sendGroupCheck(p *partition, gc pacifica.GroupCheck) {
	req := &consensus.GroupCheckRequest{
		App:                 p.appInfo(),
		Node:                addrOrEmpty(gc.To),
		Config:              toConfig(gc.Config, p.gpid, gc.Status),
		LastCommittedDecree: gc.Committed,
	}
	c := s.peer(gc.To)
	go func() {
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.RPCTimeout)
		defer cancel()
		var resp consensus.GroupCheckResponse
		if err := c.Call(ctx, rpc.Request{Code: rpc.CodeGroupCheck, AppID: p.gpid.Appid, PartitionIndex: p.gpid.PartitionIndex, Args: req}, &resp); err != nil {
			// A node that does not answer is the failure detector's business.
			return
		}
		p.post(groupCheckReplyEv{from: gc.To, ballot: gc.Config.Ballot, err: resp.Err.Name()})
	}()
}

// sendConfigChange asks the meta server for a configuration change and feeds the
// answer back to the executor.
func (s *Stub) sendConfigChange(p *partition, req *pacifica.ConfigRequest) {
	info := p.appInfo()
	pc := &layer2.PartitionConfiguration{
		Pid:             base.NewGpid(p.gpid.Appid, p.gpid.PartitionIndex),
		Ballot:          req.Config.Ballot,
		MaxReplicaCount: info.MaxReplicaCount,
		Primary:         addrOrEmpty(req.Config.Primary),
		Secondaries:     []*base.RPCAddress{},
		LastDrops:       []*base.RPCAddress{},
	}
	for _, sec := range req.Config.Secondaries {
		pc.Secondaries = append(pc.Secondaries, addrOrEmpty(sec))
	}
	msg := &consensus.ConfigurationUpdateRequest{
		Info:     info,
		Config:   pc,
		Type:     typeOf(req.Type),
		Node:     addrOrEmpty(req.Node),
		HostNode: addrOrEmpty(s.self),
	}
	go func() {
		resp, err := s.meta.updateConfig(s.ctx, msg)
		if err != nil {
			p.log.Warn("configuration change request failed", "type", msg.Type.String(), "err", err)
			p.post(changeReplyEv{err: rpc.ErrorCode(err)})
			return
		}
		var cfg *pacifica.Config
		if resp.Config != nil && resp.Config.Pid != nil && resp.Config.Pid.Equals(&p.gpid) {
			c := configOf(resp.Config)
			cfg = &c
		}
		p.post(changeReplyEv{err: resp.Err.Name(), cfg: cfg})
	}()
}

// notifyRemoved tells a replica removed from a configuration that it is out. The
// configuration names this server as its primary, as upstream's does: the
// removed replica checks that the sender is that primary (peercheck.go).
func (s *Stub) notifyRemoved(p *partition, node string, ballot int64) {
	req := &consensus.GroupCheckRequest{
		App:                 p.appInfo(),
		Node:                addrOrEmpty(node),
		Config:              toConfig(pacifica.Config{Ballot: ballot, Primary: s.self}, p.gpid, pacifica.StatusInactive),
		LastCommittedDecree: 0,
	}
	c := s.peer(node)
	go func() {
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.RPCTimeout)
		defer cancel()
		_ = c.Call(ctx, rpc.Request{Code: rpc.CodeRemoveReplica, AppID: p.gpid.Appid, PartitionIndex: p.gpid.PartitionIndex, Args: req}, nil)
	}()
}

// storedReplicas describes every local replica for a config sync.
func (s *Stub) storedReplicas() []*metadata.ReplicaInfo {
	var out []*metadata.ReplicaInfo
	open := map[base.Gpid]bool{}
	for _, p := range s.all() {
		out = append(out, p.replicaInfo())
		open[p.gpid] = true
	}
	s.mu.RLock()
	for g, info := range s.closed {
		if !open[g] {
			c := *info
			out = append(out, &c)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *metadata.ReplicaInfo) int { return cmp.Compare(a.Pid.Raw(), b.Pid.Raw()) })
	return out
}

// replicaInfo is what a config sync reports of the replica.
func (p *partition) replicaInfo() *metadata.ReplicaInfo {
	info := p.appInfo()
	return &metadata.ReplicaInfo{
		Pid:                 base.NewGpid(p.gpid.Appid, p.gpid.PartitionIndex),
		Ballot:              p.ballot.Load(),
		Status:              metadata.PartitionStatus(p.status.Load()),
		LastCommittedDecree: p.st().LastAppliedDecree(),
		LastPreparedDecree:  max(p.prepared.Load(), p.st().LastAppliedDecree()),
		LastDurableDecree:   p.st().LastDurableDecree(),
		AppType:             info.AppType,
		DiskTag:             p.disk.tag,
		ManualCompactStatus: metadata.ManualCompactionStatusPtr(p.compact.status()),
	}
}

// touch records configuration activity on the replica (membership.Machine.Changed).
func (p *partition) touch() { p.stub.withMembers(func(m *membership.Machine) { m.Changed(p.gpid) }) }
