package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// Core is [core].
type Core struct {
	// DataDir (data_dir, default "./data") is the parent of every app
	// instance's working directory; config.ini sets it to %{app.dir}.
	DataDir string
	// LogDir (log_dir) is where logs go; empty means "<DataDir>/log".
	LogDir string
	// LoggingStartLevel (logging_start_level) is an upstream level name such
	// as LOG_LEVEL_INFO; see LogLevel.
	LoggingStartLevel string
	// ShutdownTimeoutSeconds (shutdown_timeout_seconds, default 30) bounds a
	// graceful stop: a process whose roles have not stopped this long after
	// SIGTERM or SIGINT logs it and exits with status 1.
	ShutdownTimeoutSeconds int
}

// ShutdownTimeout is ShutdownTimeoutSeconds as a duration.
func (c Core) ShutdownTimeout() time.Duration {
	return time.Duration(c.ShutdownTimeoutSeconds) * time.Second
}

// EffectiveLogDir is where the process writes its logs. The deployment guide
// sends operators to %{app.dir}/log, which is this default.
func (c Core) EffectiveLogDir() string {
	if c.LogDir != "" {
		return c.LogDir
	}
	return filepath.Join(c.DataDir, "log")
}

// LogLevel maps LoggingStartLevel to slog. FATAL has no slog counterpart and
// becomes Error: fatal messages are always logged anyway.
func (c Core) LogLevel() slog.Level {
	switch c.LoggingStartLevel {
	case "LOG_LEVEL_DEBUG":
		return slog.LevelDebug
	case "LOG_LEVEL_WARNING":
		return slog.LevelWarn
	case "LOG_LEVEL_ERROR", "LOG_LEVEL_FATAL":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func decodeCore(r *sectionReader) Core {
	c := Core{
		DataDir:           filepath.Clean(r.str("data_dir", "./data")),
		LogDir:            r.str("log_dir", ""),
		LoggingStartLevel: r.enum("logging_start_level", "LOG_LEVEL_INFO", "LOG_LEVEL_DEBUG", "LOG_LEVEL_INFO", "LOG_LEVEL_WARNING", "LOG_LEVEL_ERROR", "LOG_LEVEL_FATAL"),

		ShutdownTimeoutSeconds: r.integer("shutdown_timeout_seconds", 30, positive),
	}
	if c.LogDir != "" {
		c.LogDir = filepath.Clean(c.LogDir)
	}
	r.finish("tool", "toollets", "pause_on_start", "cli_local", "cli_remote", "enable_default_app_mimic",
		"start_nfs", "tls_trans_memory_KB", "tcmalloc_release_rate", "logging_factory_name", "logging_flush_on_exit")
	return c
}

// Network is [network].
type Network struct {
	// PrimaryInterface (primary_interface) names the NIC whose IPv4 address
	// identifies this node; empty means the first private address. See HostIP.
	PrimaryInterface string
	// ExplicitHostAddress (explicit_host_address) overrides interface
	// selection, e.g. with a Kubernetes service IP. IPv4 literal or empty.
	ExplicitHostAddress string
	// IOServiceWorkerCount (io_service_worker_count, default 4).
	IOServiceWorkerCount int
	// ConnThresholdPerIP (conn_threshold_per_ip, default 1000; 0 = no limit)
	// caps the connections one remote IP may hold open to a server. Upstream's
	// default is 0; a default cap keeps one client from using up the server.
	ConnThresholdPerIP int
	// MaxConnections (max_connections, default 10000; 0 = no limit) caps the
	// connections a server holds open, THFT and HTTP together.
	MaxConnections int
	// MaxFrameSizeMB (max_frame_size_mb, default 64) bounds one request frame.
	MaxFrameSizeMB int
	// PendingFrameMB (pending_frame_mb, default 256) is the memory a server lends
	// to request frames still arriving, over all connections.
	PendingFrameMB int
	// FrameTimeoutSeconds (frame_timeout_seconds, default 30): a request frame
	// must arrive whole this long after its first byte.
	FrameTimeoutSeconds int
	// FirstRequestTimeoutSeconds (first_request_timeout_seconds, default 10): a
	// new connection must deliver a complete request within this.
	FirstRequestTimeoutSeconds int
	// EnableUDP (enable_udp, default true).
	EnableUDP bool
}

func decodeNetwork(r *sectionReader) Network {
	n := Network{
		PrimaryInterface:           r.str("primary_interface", ""),
		ExplicitHostAddress:        r.str("explicit_host_address", ""),
		IOServiceWorkerCount:       r.integer("io_service_worker_count", 4, positive),
		ConnThresholdPerIP:         r.integer("conn_threshold_per_ip", 1000, nonNegative),
		MaxConnections:             r.integer("max_connections", 10000, nonNegative),
		MaxFrameSizeMB:             r.integer("max_frame_size_mb", 64, between(1, 1024)),
		PendingFrameMB:             r.integer("pending_frame_mb", 256, between(1, 1<<20)),
		FrameTimeoutSeconds:        r.integer("frame_timeout_seconds", 30, positive),
		FirstRequestTimeoutSeconds: r.integer("first_request_timeout_seconds", 10, positive),
		EnableUDP:                  r.boolean("enable_udp", true),
	}
	if n.PendingFrameMB < n.MaxFrameSizeMB {
		r.failKey("pending_frame_mb", n.PendingFrameMB, fmt.Errorf("must be at least max_frame_size_mb (%d): one frame of the largest size must fit", n.MaxFrameSizeMB))
		n.PendingFrameMB = n.MaxFrameSizeMB
	}
	if n.ExplicitHostAddress != "" {
		if _, err := parseIPv4(n.ExplicitHostAddress); err != nil {
			r.failKey("explicit_host_address", n.ExplicitHostAddress, err)
			n.ExplicitHostAddress = ""
		}
	}
	r.finish()
	return n
}

// HTTP is [http]: the HTTP service every server offers on its RPC port.
type HTTP struct {
	// EnableHTTPServer (enable_http_server, default true): false answers every
	// HTTP request 404, /metrics included.
	EnableHTTPServer bool
	// EnablePprof (enable_pprof, default false) serves Go's profiler at /pprof/.
	// Off by default: it is unauthenticated and a profile costs the server CPU.
	EnablePprof bool
}

func decodeHTTP(r *sectionReader) HTTP {
	h := HTTP{
		EnableHTTPServer: r.boolean("enable_http_server", true),
		EnablePprof:      r.boolean("enable_pprof", false),
	}
	r.finish()
	return h
}

// Security is [security]: who may speak the cluster protocol and change the
// cluster. See docs/security.md.
type Security struct {
	// ClusterSecretFile (cluster_secret_file) holds the secrets the cluster's
	// servers prove their membership with: one per line, the first current, all
	// accepted (two during a rotation). Servers re-read it while they run.
	ClusterSecretFile string
	// InsecureCluster (insecure_cluster, default false) runs without membership
	// authentication: anyone who reaches a server's port can speak the cluster
	// protocol. A server with neither refuses to start.
	InsecureCluster bool
	// AdminAllowList (admin_allow_list) lists the addresses (IPs or CIDR
	// prefixes) that may change the cluster without authenticating. Unset, they
	// are loopback and the cluster's own hosts. Cluster members, which
	// authenticate, always may.
	AdminAllowList []netip.Prefix
}

// securityRefused are upstream [security] keys that ask for a protection this
// implementation does not give: a server configured with them refuses to start
// rather than run less protected than its operator asked. value is the setting
// that asks for it.
var securityRefused = []struct{ key, instead string }{
	{"enable_auth", "Kerberos SASL is not supported: cluster members authenticate with cluster_secret_file, clients by address (admin_allow_list); see docs/security.md"},
	{"mandatory_auth", "cluster RPCs always require authentication when cluster_secret_file is set; remove the key"},
	{"enable_acl", "table ACLs are not supported: administrative RPCs are limited to admin_allow_list and cluster members"},
	{"enable_ranger_acl", "Ranger is not supported: administrative RPCs are limited to admin_allow_list and cluster members"},
	{"super_users", "users are not authenticated: list administrators' addresses in admin_allow_list"},
	{"meta_acl_rpc_allow_list", "per-RPC ACLs are not supported: administrative RPCs are limited to admin_allow_list and cluster members"},
	{"enable_zookeeper_kerberos", "Kerberos for ZooKeeper is not supported: protect ZooKeeper by network access"},
}

func decodeSecurity(r *sectionReader) Security {
	s := Security{
		ClusterSecretFile: r.str("cluster_secret_file", ""),
		InsecureCluster:   r.boolean("insecure_cluster", false),
	}
	for _, item := range splitList(r.str("admin_allow_list", "")) {
		p, err := parsePrefix(item)
		if err != nil {
			r.failKey("admin_allow_list", item, err)
			continue
		}
		s.AdminAllowList = append(s.AdminAllowList, p)
	}
	for _, k := range securityRefused {
		v, _ := r.lookup(k.key)
		switch strings.ToLower(v) {
		case "", "false", "0":
			r.recordOff(k.key, v)
			continue
		}
		r.failKey(k.key, v, errors.New(k.instead))
	}
	r.finish("krb5_keytab", "krb5_config", "krb5_principal", "service_name", "service_fqdn", "sasl_plugin_path",
		"encryption_cluster_key_name", "update_ranger_policy_interval_sec", "zookeeper_kerberos_service_name",
		"zookeeper_sasl_service_fqdn")
	return s
}

// parsePrefix reads an IP address or a CIDR prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not an IP prefix: %w", err)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("not an IP address or prefix (host names are not accepted): %w", err)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// splitList splits a comma- or space-separated list, dropping empty items.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// FunctionLevel is the meta server's meta_function_level_on_start: how much
// the meta server is allowed to change on its own.
type FunctionLevel string

// The function levels, from most to least restricted.
const (
	FunctionLevelStopped FunctionLevel = "stopped"
	FunctionLevelBlind   FunctionLevel = "blind"
	FunctionLevelFreezed FunctionLevel = "freezed" // (sic) upstream spelling
	FunctionLevelSteady  FunctionLevel = "steady"
	FunctionLevelLively  FunctionLevel = "lively"
)

// Service type names accepted in [meta_server].
const (
	LockServiceZooKeeper  = "distributed_lock_service_zookeeper"
	LockServiceSimple     = "distributed_lock_service_simple"
	StateServiceZooKeeper = "meta_state_service_zookeeper"
	StateServiceSimple    = "meta_state_service_simple"
)

// MetaServer is [meta_server]. Every role reads ServerList.
type MetaServer struct {
	ServerList  []netip.AddrPort // server_list; IPv4:port only
	ClusterRoot string           // cluster_root, default "/"; the ZK root of the cluster

	DistributedLockServiceType       string // LockServiceZooKeeper (default) or LockServiceSimple
	DistributedLockServiceParameters string // the lock root for ZooKeeper
	MetaStateServiceType             string // StateServiceZooKeeper (default) or StateServiceSimple
	MetaStateServiceParameters       string // work dir for the simple service

	MetaFunctionLevelOnStart             FunctionLevel // default steady
	NodeLivePercentageThresholdForUpdate int           // default 65 (%)
	MinLiveNodeCountForUnfreeze          int           // default 3
	RecoverFromReplicaServer             bool
	HoldSecondsForDroppedApp             int64 // default 604800 (7 days)
	AddSecondaryEnableFlowControl        bool
	AddSecondaryMaxCountForOneNode       int   // default 10
	StableRSMinRunningSeconds            int64 // default 600
	// MaxSuccessiveUnstableRestart is max_succssive_unstable_restart (the key
	// is misspelt upstream; the spelling is kept for compatibility). Default 5.
	MaxSuccessiveUnstableRestart int

	ServerLoadBalancerType          string // only greedy_load_balancer
	PartitionGuardianType           string // only partition_guardian
	ReplicaAssignDelayMsForDropouts int64  // default 600000
	MaxReplicasInGroup              int    // default 4
	MaxReservedDroppedReplicas      int    // default 1
	BalancerInTurn                  bool
	OnlyPrimaryBalancer             bool
	OnlyMovePrimary                 bool
	BalanceCluster                  bool
	BalanceOpCountPerRound          int // default 10
	MinAllowedReplicaCount          int // default 1
	MaxAllowedReplicaCount          int // default 5

	ColdBackupDisabled bool // default true
	// MinBackupIntervalSeconds (min_backup_interval_seconds, default 86400)
	// is the shortest interval a backup policy may have. Not an upstream key
	// (upstream fixes it at one day): lowering it is for tests, which need
	// policies that run every few seconds.
	MinBackupIntervalSeconds int64
	EnableWhiteList          bool     // enable_white_list
	ReplicaWhiteList         []string // replica_white_list, host:port items

	// SendHostPortFields (send_host_port_fields, default false) makes the meta
	// server fill the hp_* (host_port) twins of the address fields in its
	// replies, as Pegasus 2.6 does. Off by default: the 2022 go-client that
	// admin-cli and pegic are built with cannot skip those fields.
	SendHostPortFields bool
}

// HoldForDroppedApp is how long a dropped table can still be recalled.
func (m MetaServer) HoldForDroppedApp() time.Duration {
	return time.Duration(m.HoldSecondsForDroppedApp) * time.Second
}

// StableRSMinRunning is how long a replica server must stay up for its
// restart not to count as unstable.
func (m MetaServer) StableRSMinRunning() time.Duration {
	return time.Duration(m.StableRSMinRunningSeconds) * time.Second
}

// ReplicaAssignDelayForDropouts is how long the guardian waits for a dropped
// secondary to come back before placing the replica elsewhere.
func (m MetaServer) ReplicaAssignDelayForDropouts() time.Duration {
	return time.Duration(m.ReplicaAssignDelayMsForDropouts) * time.Millisecond
}

func decodeMetaServer(r *sectionReader) MetaServer {
	m := MetaServer{
		ClusterRoot:                      r.str("cluster_root", "/"),
		DistributedLockServiceType:       r.enum("distributed_lock_service_type", LockServiceZooKeeper, LockServiceZooKeeper, LockServiceSimple),
		DistributedLockServiceParameters: r.str("distributed_lock_service_parameters", ""),
		MetaStateServiceType:             r.enum("meta_state_service_type", StateServiceZooKeeper, StateServiceZooKeeper, StateServiceSimple),
		MetaStateServiceParameters:       r.str("meta_state_service_parameters", ""),
		MetaFunctionLevelOnStart: FunctionLevel(r.enum("meta_function_level_on_start", string(FunctionLevelSteady),
			string(FunctionLevelStopped), string(FunctionLevelBlind), string(FunctionLevelFreezed),
			string(FunctionLevelSteady), string(FunctionLevelLively))),
		NodeLivePercentageThresholdForUpdate: r.integer("node_live_percentage_threshold_for_update", 65, between(0, 100)),
		MinLiveNodeCountForUnfreeze:          r.integer("min_live_node_count_for_unfreeze", 3, nonNegative),
		RecoverFromReplicaServer:             r.boolean("recover_from_replica_server", false),
		HoldSecondsForDroppedApp:             r.int64("hold_seconds_for_dropped_app", 604800, nonNegative),
		AddSecondaryEnableFlowControl:        r.boolean("add_secondary_enable_flow_control", false),
		AddSecondaryMaxCountForOneNode:       r.integer("add_secondary_max_count_for_one_node", 10, positive),
		StableRSMinRunningSeconds:            r.int64("stable_rs_min_running_seconds", 600, nonNegative),
		MaxSuccessiveUnstableRestart:         r.integer("max_succssive_unstable_restart", 5, positive),
		ServerLoadBalancerType:               r.enum("server_load_balancer_type", "greedy_load_balancer", "greedy_load_balancer"),
		PartitionGuardianType:                r.enum("partition_guardian_type", "partition_guardian", "partition_guardian"),
		ReplicaAssignDelayMsForDropouts:      r.int64("replica_assign_delay_ms_for_dropouts", 600000, nonNegative),
		MaxReplicasInGroup:                   r.integer("max_replicas_in_group", 4, positive),
		MaxReservedDroppedReplicas:           r.integer("max_reserved_dropped_replicas", 1, nonNegative),
		BalancerInTurn:                       r.boolean("balancer_in_turn", false),
		OnlyPrimaryBalancer:                  r.boolean("only_primary_balancer", false),
		OnlyMovePrimary:                      r.boolean("only_move_primary", false),
		BalanceCluster:                       r.boolean("balance_cluster", false),
		BalanceOpCountPerRound:               r.integer("balance_op_count_per_round", 10, positive),
		MinAllowedReplicaCount:               r.integer("min_allowed_replica_count", 1, positive),
		MaxAllowedReplicaCount:               r.integer("max_allowed_replica_count", 5, positive),
		ColdBackupDisabled:                   r.boolean("cold_backup_disabled", true),
		MinBackupIntervalSeconds:             r.int64("min_backup_interval_seconds", 86400, positive),
		EnableWhiteList:                      r.boolean("enable_white_list", false),
		SendHostPortFields:                   r.boolean("send_host_port_fields", false),
	}
	if v := r.str("server_list", ""); v != "" {
		list, err := ParseMetaServerList(v)
		if err != nil {
			r.failKey("server_list", v, err)
		}
		m.ServerList = list
	}
	if !strings.HasPrefix(m.ClusterRoot, "/") {
		r.failKey("cluster_root", m.ClusterRoot, errors.New("must be an absolute ZooKeeper path (start with '/')"))
	}
	if m.MinAllowedReplicaCount > m.MaxAllowedReplicaCount && r.valid("min_allowed_replica_count", "max_allowed_replica_count") {
		r.failKey("min_allowed_replica_count", m.MinAllowedReplicaCount, fmt.Errorf("must not exceed max_allowed_replica_count (%d)", m.MaxAllowedReplicaCount))
	}
	if v := r.str("replica_white_list", ""); v != "" {
		list, err := ParseHostPortList(v)
		if err != nil {
			r.failKey("replica_white_list", v, err)
		}
		m.ReplicaWhiteList = list
	}
	r.finish()
	return m
}

// Replication is [replication]: the replica server's settings, plus the
// failure-detector and load-balancing timings that the meta server reads
// from the same section.
type Replication struct {
	// DataDirs are the disks for replica data. When data_dirs is empty this is
	// one disk tagged "default" at [core] data_dir, which puts replicas in
	// "<data_dir>/replica/reps" as upstream does. See DataDir.ReplicaDir.
	DataDirs []DataDir
	// DataDirsBlackListFile (data_dirs_black_list_file) lists paths, one per
	// line, to skip. Empty means none.
	DataDirsBlackListFile string
	ClusterName           string // cluster_name
	// SlogDir (slog_dir) is the old shared-log root; [core] data_dir when
	// empty. The shared log is gone, but a replica server must refuse to start
	// while old files remain there, so it still needs the path.
	SlogDir string

	FDDisabled              bool
	FDCheckIntervalSeconds  int // default 2
	FDBeaconIntervalSeconds int // default 3
	FDLeaseSeconds          int // default 20; must exceed the beacon interval
	FDGraceSeconds          int // default 22; must exceed the lease

	ConfigSyncDisabled   bool
	ConfigSyncIntervalMs int64 // default 30000
	LBIntervalMs         int64 // default 10000 (meta)

	PrepareTimeoutMsForSecondaries          int64 // default 3000
	PrepareTimeoutMsForPotentialSecondaries int64 // default 5000
	StalenessForCommit                      int   // default 2 (upstream: 20)
	MaxMutationCountInPrepareList           int   // default 110
	// Mutation2PCMinReplicaCount (mutation_2pc_min_replica_count, default 2);
	// see Mutation2PCMinReplicas for how values <= 0 are read.
	Mutation2PCMinReplicaCount int
	BatchWriteDisabled         bool

	GroupCheckDisabled   bool
	GroupCheckIntervalMs int64 // default 100000
	EmptyWriteDisabled   bool

	CheckpointDisabled         bool
	CheckpointIntervalSeconds  int64 // default 100
	CheckpointMaxIntervalHours int   // default 2

	LogPrivateFileSizeMB            int   // default 32
	LogPrivateReserveMaxSizeMB      int   // default 1000
	LogPrivateReserveMaxTimeSeconds int64 // default 36000
	PlogForceFlush                  bool  // default false: plog writes are not fsynced
	PlogGCEnabled                   bool  // default true

	GCDisabled                          bool
	GCIntervalMs                        int64 // default 30000
	GCMemoryReplicaIntervalMs           int64 // default 600000
	GCDiskErrorReplicaIntervalSeconds   int64 // default 604800
	GCDiskGarbageReplicaIntervalSeconds int64 // default 86400

	DiskStatDisabled                bool
	DiskStatIntervalSeconds         int // default 600
	DiskMinAvailableSpaceRatio      int // default 10 (%)
	RejectWriteWhenDiskInsufficient bool
	IgnoreBrokenDisk                bool // default true: skip a broken data dir instead of refusing to start

	MaxAllowedWriteSize          int64 // default 1 MiB; 0 = no limit
	LearnAppMaxConcurrentCount   int   // default 5
	DenyClientOnStart            bool
	DelayForFDTimeoutOnStart     bool
	MaxReplicasOnLoadForEachDisk int // default 256

	DuplicationEnabled bool   // default true
	ColdBackupRoot     string // cold_backup_root
	// ColdBackupRateMBps (cold_backup_rate_mbps, default 50; 0 = no limit)
	// bounds the bytes per second one replica server uploads to or downloads
	// from a block service for backups and restores.
	ColdBackupRateMBps int
}

// Durations of the [replication] timings.
func (r Replication) FDCheckInterval() time.Duration {
	return time.Duration(r.FDCheckIntervalSeconds) * time.Second
}
func (r Replication) FDBeaconInterval() time.Duration {
	return time.Duration(r.FDBeaconIntervalSeconds) * time.Second
}
func (r Replication) FDLease() time.Duration { return time.Duration(r.FDLeaseSeconds) * time.Second }
func (r Replication) FDGrace() time.Duration { return time.Duration(r.FDGraceSeconds) * time.Second }
func (r Replication) ConfigSyncInterval() time.Duration {
	return time.Duration(r.ConfigSyncIntervalMs) * time.Millisecond
}
func (r Replication) LBInterval() time.Duration {
	return time.Duration(r.LBIntervalMs) * time.Millisecond
}
func (r Replication) PrepareTimeoutForSecondaries() time.Duration {
	return time.Duration(r.PrepareTimeoutMsForSecondaries) * time.Millisecond
}
func (r Replication) PrepareTimeoutForPotentialSecondaries() time.Duration {
	return time.Duration(r.PrepareTimeoutMsForPotentialSecondaries) * time.Millisecond
}
func (r Replication) GroupCheckInterval() time.Duration {
	return time.Duration(r.GroupCheckIntervalMs) * time.Millisecond
}
func (r Replication) CheckpointInterval() time.Duration {
	return time.Duration(r.CheckpointIntervalSeconds) * time.Second
}
func (r Replication) CheckpointMaxInterval() time.Duration {
	return time.Duration(r.CheckpointMaxIntervalHours) * time.Hour
}
func (r Replication) LogPrivateReserveMaxTime() time.Duration {
	return time.Duration(r.LogPrivateReserveMaxTimeSeconds) * time.Second
}
func (r Replication) GCInterval() time.Duration {
	return time.Duration(r.GCIntervalMs) * time.Millisecond
}
func (r Replication) GCMemoryReplicaInterval() time.Duration {
	return time.Duration(r.GCMemoryReplicaIntervalMs) * time.Millisecond
}
func (r Replication) GCDiskErrorReplicaInterval() time.Duration {
	return time.Duration(r.GCDiskErrorReplicaIntervalSeconds) * time.Second
}
func (r Replication) GCDiskGarbageReplicaInterval() time.Duration {
	return time.Duration(r.GCDiskGarbageReplicaIntervalSeconds) * time.Second
}
func (r Replication) DiskStatInterval() time.Duration {
	return time.Duration(r.DiskStatIntervalSeconds) * time.Second
}

// Mutation2PCMinReplicas is how many replicas must ack a write before it
// commits, for a partition with maxReplicaCount replicas: the configured
// value when positive, otherwise a majority (1 for groups of up to two).
func (r Replication) Mutation2PCMinReplicas(maxReplicaCount int) int {
	if r.Mutation2PCMinReplicaCount > 0 {
		return r.Mutation2PCMinReplicaCount
	}
	if maxReplicaCount <= 2 {
		return 1
	}
	return maxReplicaCount/2 + 1
}

// SharedLogDir is where an app instance's old shared log lives:
// "<slog_dir>/<instance>/slog", or "<data_dir>/<instance>/slog" when
// slog_dir is empty.
func (r Replication) SharedLogDir(instance string) string {
	return filepath.Join(r.SlogDir, instance, "slog")
}

func decodeReplication(r *sectionReader, core Core) Replication {
	rep := Replication{
		DataDirsBlackListFile: r.str("data_dirs_black_list_file", ""),
		ClusterName:           r.str("cluster_name", ""),
		SlogDir:               r.str("slog_dir", ""),

		FDDisabled:              r.boolean("fd_disabled", false),
		FDCheckIntervalSeconds:  r.integer("fd_check_interval_seconds", 2, positive),
		FDBeaconIntervalSeconds: r.integer("fd_beacon_interval_seconds", 3, positive),
		FDLeaseSeconds:          r.integer("fd_lease_seconds", 20, positive),
		FDGraceSeconds:          r.integer("fd_grace_seconds", 22, positive),

		ConfigSyncDisabled:   r.boolean("config_sync_disabled", false),
		ConfigSyncIntervalMs: r.int64("config_sync_interval_ms", 30000, positive),
		LBIntervalMs:         r.int64("lb_interval_ms", 10000, positive),

		PrepareTimeoutMsForSecondaries:          r.int64("prepare_timeout_ms_for_secondaries", 3000, positive),
		PrepareTimeoutMsForPotentialSecondaries: r.int64("prepare_timeout_ms_for_potential_secondaries", 5000, positive),
		StalenessForCommit:                      r.integer("staleness_for_commit", 2, positive),
		MaxMutationCountInPrepareList:           r.integer("max_mutation_count_in_prepare_list", 110, positive),
		Mutation2PCMinReplicaCount:              r.integer("mutation_2pc_min_replica_count", 2),
		BatchWriteDisabled:                      r.boolean("batch_write_disabled", false),

		GroupCheckDisabled:   r.boolean("group_check_disabled", false),
		GroupCheckIntervalMs: r.int64("group_check_interval_ms", 100000, positive),
		EmptyWriteDisabled:   r.boolean("empty_write_disabled", false),

		CheckpointDisabled:         r.boolean("checkpoint_disabled", false),
		CheckpointIntervalSeconds:  r.int64("checkpoint_interval_seconds", 100, positive),
		CheckpointMaxIntervalHours: r.integer("checkpoint_max_interval_hours", 2, positive),

		LogPrivateFileSizeMB:            r.integer("log_private_file_size_mb", 32, positive),
		LogPrivateReserveMaxSizeMB:      r.integer("log_private_reserve_max_size_mb", 1000, nonNegative),
		LogPrivateReserveMaxTimeSeconds: r.int64("log_private_reserve_max_time_seconds", 36000, nonNegative),
		PlogForceFlush:                  r.boolean("plog_force_flush", false),
		PlogGCEnabled:                   r.boolean("plog_gc_enabled", true),

		GCDisabled:                          r.boolean("gc_disabled", false),
		GCIntervalMs:                        r.int64("gc_interval_ms", 30000, positive),
		GCMemoryReplicaIntervalMs:           r.int64("gc_memory_replica_interval_ms", 600000, positive),
		GCDiskErrorReplicaIntervalSeconds:   r.int64("gc_disk_error_replica_interval_seconds", 604800, nonNegative),
		GCDiskGarbageReplicaIntervalSeconds: r.int64("gc_disk_garbage_replica_interval_seconds", 86400, nonNegative),

		DiskStatDisabled:                r.boolean("disk_stat_disabled", false),
		DiskStatIntervalSeconds:         r.integer("disk_stat_interval_seconds", 600, positive),
		DiskMinAvailableSpaceRatio:      r.integer("disk_min_available_space_ratio", 10, between(0, 100)),
		RejectWriteWhenDiskInsufficient: r.boolean("reject_write_when_disk_insufficient", true),
		IgnoreBrokenDisk:                r.boolean("ignore_broken_disk", true),

		MaxAllowedWriteSize:          r.int64("max_allowed_write_size", 1<<20, nonNegative),
		LearnAppMaxConcurrentCount:   r.integer("learn_app_max_concurrent_count", 5, positive),
		DenyClientOnStart:            r.boolean("deny_client_on_start", false),
		DelayForFDTimeoutOnStart:     r.boolean("delay_for_fd_timeout_on_start", false),
		MaxReplicasOnLoadForEachDisk: r.integer("max_replicas_on_load_for_each_disk", 256, positive),

		DuplicationEnabled: r.boolean("duplication_enabled", true),
		ColdBackupRoot:     r.str("cold_backup_root", ""),
		ColdBackupRateMBps: r.integer("cold_backup_rate_mbps", 50, nonNegative),
	}

	if v := r.str("data_dirs", ""); v != "" {
		dirs, err := ParseDataDirs(v)
		if err != nil {
			r.failKey("data_dirs", v, err)
		}
		rep.DataDirs = dirs
	} else {
		rep.DataDirs = []DataDir{{Tag: DefaultDataDirTag, Path: core.DataDir}}
	}
	if rep.SlogDir == "" {
		rep.SlogDir = core.DataDir
	} else {
		rep.SlogDir = filepath.Clean(rep.SlogDir)
	}

	// The failure detector only works if a beacon can arrive within a lease,
	// and if the meta server (grace) waits longer than the replica (lease):
	// otherwise the meta could declare a node dead while that node still
	// believes it holds a valid lease and keeps serving as primary.
	if rep.FDGraceSeconds <= rep.FDLeaseSeconds && r.valid("fd_grace_seconds", "fd_lease_seconds") {
		r.failKey("fd_grace_seconds", rep.FDGraceSeconds, fmt.Errorf("must be greater than fd_lease_seconds (%d)", rep.FDLeaseSeconds))
	}
	if rep.FDLeaseSeconds <= rep.FDBeaconIntervalSeconds && r.valid("fd_lease_seconds", "fd_beacon_interval_seconds") {
		r.failKey("fd_lease_seconds", rep.FDLeaseSeconds, fmt.Errorf("must be greater than fd_beacon_interval_seconds (%d)", rep.FDBeaconIntervalSeconds))
	}

	r.finish("verbose_client_log_on_start", "verbose_commit_log_on_start", "allow_non_idempotent_write",
		"prepare_decree_gap_for_debug_logging", "checkpoint_min_decree_gap", "log_private_batch_buffer_*",
		"log_shared_*", "mem_release_*", "max_concurrent_uploading_file_count",
		"max_concurrent_bulk_load_downloading_count", "bulk_load_*", "hdfs_*", "cold_backup_checkpoint_reserve_minutes",
		"gc_disk_migration_*")
	return rep
}

// ZooKeeper is [zookeeper].
type ZooKeeper struct {
	HostsList []string // hosts_list, host:port items
	TimeoutMs int      // timeout_ms: the ZooKeeper session timeout, default 30000
	Logfile   string   // logfile, default "zoo.log"
}

// SessionTimeout is the ZooKeeper session timeout.
func (z ZooKeeper) SessionTimeout() time.Duration {
	return time.Duration(z.TimeoutMs) * time.Millisecond
}

func decodeZooKeeper(r *sectionReader) ZooKeeper {
	z := ZooKeeper{
		TimeoutMs: r.integer("timeout_ms", 30000, positive),
		Logfile:   r.str("logfile", "zoo.log"),
	}
	if v := r.str("hosts_list", ""); v != "" {
		list, err := ParseHostPortList(v)
		if err != nil {
			r.failKey("hosts_list", v, err)
		}
		z.HostsList = list
	}
	r.finish()
	return z
}

// Collector is [pegasus.collector].
type Collector struct {
	// AvailableDetectApp is the table probed for availability. Default "temp":
	// the deployment guide says a new cluster creates "temp" and the collector
	// checks it.
	AvailableDetectApp               string
	AvailableDetectAlertScriptDir    string // default "."
	AvailableDetectAlertEmailAddress string
	AvailableDetectIntervalSeconds   int // default 3
	AvailableDetectAlertFailCount    int // default 30
	// AvailableDetectTimeoutMs is available_detect_timeout (milliseconds,
	// default 1000).
	AvailableDetectTimeoutMs int
	AppStatIntervalSeconds   int    // default 10
	UsageStatApp             string // empty: no usage records are written
	// AvailableDetectHistoryApp (available_detect_history_app, default
	// "stat") is the table that keeps the availability of each closed period.
	// Not upstream's key: upstream writes those rows into the detect table,
	// which must stay empty here when it is temp. Empty keeps no history.
	AvailableDetectHistoryApp string

	CapacityUnitFetchIntervalSeconds int // default 8
	StorageSizeFetchIntervalSeconds  int // default 3600
	CapacityUnitSavingTTLDays        int // default 90

	EnableDetectHotkey    bool
	HotPartitionThreshold int // default 3
	OccurrenceThreshold   int // default 3
	MaxHotspotStoreSize   int // default 100
}

// AvailableDetectInterval is the period of availability probes.
func (c Collector) AvailableDetectInterval() time.Duration {
	return time.Duration(c.AvailableDetectIntervalSeconds) * time.Second
}

// AvailableDetectTimeout is the timeout of one availability probe.
func (c Collector) AvailableDetectTimeout() time.Duration {
	return time.Duration(c.AvailableDetectTimeoutMs) * time.Millisecond
}

// AppStatInterval is the period of per-table statistics collection.
func (c Collector) AppStatInterval() time.Duration {
	return time.Duration(c.AppStatIntervalSeconds) * time.Second
}

func decodeCollector(r *sectionReader) Collector {
	c := Collector{
		AvailableDetectApp:               r.str("available_detect_app", "temp"),
		AvailableDetectAlertScriptDir:    r.str("available_detect_alert_script_dir", "."),
		AvailableDetectAlertEmailAddress: r.str("available_detect_alert_email_address", ""),
		AvailableDetectIntervalSeconds:   r.integer("available_detect_interval_seconds", 3, positive),
		AvailableDetectAlertFailCount:    r.integer("available_detect_alert_fail_count", 30, positive),
		AvailableDetectTimeoutMs:         r.integer("available_detect_timeout", 1000, positive),
		AppStatIntervalSeconds:           r.integer("app_stat_interval_seconds", 10, positive),
		UsageStatApp:                     r.str("usage_stat_app", ""),
		AvailableDetectHistoryApp:        r.str("available_detect_history_app", "stat"),
		CapacityUnitFetchIntervalSeconds: r.integer("capacity_unit_fetch_interval_seconds", 8, positive),
		StorageSizeFetchIntervalSeconds:  r.integer("storage_size_fetch_interval_seconds", 3600, positive),
		CapacityUnitSavingTTLDays:        r.integer("capacity_unit_saving_ttl_days", 90, positive),
		EnableDetectHotkey:               r.boolean("enable_detect_hotkey", false),
		HotPartitionThreshold:            r.integer("hot_partition_threshold", 3, positive),
		OccurrenceThreshold:              r.integer("occurrence_threshold", 3, positive),
		MaxHotspotStoreSize:              r.integer("max_hotspot_store_size", 100, positive),
	}
	// "cluster" named the cluster in old files; [pegasus.clusters] and
	// [replication] cluster_name replaced it.
	r.finish("cluster")
	return c
}

func decodeClusters(d *decoder) map[string][]netip.AddrPort {
	r := d.reader("pegasus.clusters")
	out := map[string][]netip.AddrPort{}
	if r.sec == nil {
		return out
	}
	for _, name := range r.sec.keys {
		v, _ := r.lookup(name)
		if v == "" {
			r.fail(name, v, r.name, errors.New("cluster has no meta servers"))
			continue
		}
		list, err := ParseMetaServerList(v)
		if err != nil {
			r.failKey(name, v, err)
			continue
		}
		out[name] = list
	}
	return out
}
