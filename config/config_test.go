package config

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	cfg, err := Parse("test.ini", []byte(text), Options{})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return cfg
}

func warningStrings(cfg *Config) []string {
	var out []string
	for _, w := range cfg.Warnings {
		out = append(out, w.String())
	}
	return out
}

func TestLoadFixture(t *testing.T) {
	var logBuf bytes.Buffer
	cfg, err := Load("testdata/config.ini", Options{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	if err != nil {
		t.Fatal(err)
	}

	if cfg.Core.DataDir != "/srv/pegasus/app" || cfg.Core.EffectiveLogDir() != "/srv/pegasus/app/log" ||
		cfg.Core.LogLevel() != slog.LevelWarn {
		t.Errorf("core: %+v", cfg.Core)
	}
	if cfg.AppDataDir("meta") != "/srv/pegasus/app/meta" {
		t.Errorf("meta data dir %q", cfg.AppDataDir("meta"))
	}
	if n := cfg.Network; n.PrimaryInterface != "bond0" || n.IOServiceWorkerCount != 8 || n.ConnThresholdPerIP != 2000 || !n.EnableUDP {
		t.Errorf("network: %+v", n)
	}

	m := cfg.MetaServer
	wantMetas := []netip.AddrPort{
		netip.MustParseAddrPort("10.20.0.11:34601"),
		netip.MustParseAddrPort("10.20.0.12:34601"),
		netip.MustParseAddrPort("10.20.0.13:34601"),
	}
	if !reflect.DeepEqual(m.ServerList, wantMetas) {
		t.Errorf("server_list %v", m.ServerList)
	}
	if m.ClusterRoot != "/pegasus/bj_online" || m.DistributedLockServiceParameters != "/pegasus/bj_online/lock" ||
		m.MetaFunctionLevelOnStart != FunctionLevelLively || m.NodeLivePercentageThresholdForUpdate != 50 ||
		m.HoldForDroppedApp() != 72*time.Hour || !m.AddSecondaryEnableFlowControl ||
		m.AddSecondaryMaxCountForOneNode != 20 || m.StableRSMinRunning() != 5*time.Minute ||
		m.ReplicaAssignDelayForDropouts() != 5*time.Minute || m.MaxReplicasInGroup != 3 ||
		m.MaxReservedDroppedReplicas != 0 || !m.BalanceCluster || m.BalanceOpCountPerRound != 20 ||
		m.MinAllowedReplicaCount != 2 || m.ColdBackupDisabled || m.ReplicaWhiteList != nil {
		t.Errorf("meta_server: %+v", m)
	}

	r := cfg.Replication
	wantDirs := []DataDir{
		{"ssd2", "/srv/ssd2/pegasus"}, {"ssd3", "/srv/ssd3/pegasus"}, {"ssd4", "/srv/ssd4/pegasus"},
	}
	if !reflect.DeepEqual(r.DataDirs, wantDirs) {
		t.Errorf("data_dirs %v", r.DataDirs)
	}
	if got := r.DataDirs[2].ReplicaDir("replica"); got != "/srv/ssd4/pegasus/replica/reps" {
		t.Errorf("replica dir %q", got)
	}
	if r.SlogDir != "/srv/pegasus/app" || r.SharedLogDir("replica") != "/srv/pegasus/app/replica/slog" {
		t.Errorf("slog %q", r.SlogDir)
	}
	if r.ClusterName != "bj_online" || r.FDLease() != 20*time.Second || r.FDGrace() != 22*time.Second ||
		r.CheckpointInterval() != 5*time.Minute || r.DiskMinAvailableSpaceRatio != 15 ||
		r.MaxReplicasOnLoadForEachDisk != 128 || r.GCDiskErrorReplicaInterval() != 24*time.Hour ||
		r.ColdBackupRoot != "bj_online" || r.Mutation2PCMinReplicas(3) != 2 {
		t.Errorf("replication: %+v", r)
	}

	if z := cfg.ZooKeeper; z.SessionTimeout() != 10*time.Second || len(z.HostsList) != 3 || z.HostsList[0] != "zk1.bj.example.com:2181" {
		t.Errorf("zookeeper: %+v", z)
	}

	s := cfg.Server
	if s.WriteBufferSize != 128<<20 || s.MaxWriteBufferNumber != 4 || s.BlockCacheCapacity != 4<<30 ||
		s.MaxBackgroundCompactions != 8 || s.LimiterMaxWriteMegabytesPerSec != 300 ||
		!reflect.DeepEqual(s.Compression, []string{"none", "none", "lz4", "lz4", "zstd"}) ||
		s.CompressionFor(0) != "none" || s.CompressionFor(9) != "zstd" {
		t.Errorf("pegasus.server: %+v", s)
	}
	wantUnmapped := []string{"rocksdb_verbose_log", "rocksdb_max_background_flushes", "rocksdb_num_levels",
		"rocksdb_filter_type", "perf_counter_sink", "prometheus_port"}
	if s.MaxBytesForLevelMultiplier != 10 {
		t.Errorf("level multiplier %d", s.MaxBytesForLevelMultiplier)
	}
	if !reflect.DeepEqual(s.Unmapped, wantUnmapped) {
		t.Errorf("unmapped %v", s.Unmapped)
	}
	if s.Settings["rocksdb_filter_type"] != "prefix" || s.Settings["rocksdb_write_buffer_size"] != "134217728" {
		t.Errorf("settings %v", s.Settings)
	}

	c := cfg.Collector
	if c.AvailableDetectApp != "temp" || c.AvailableDetectTimeout() != 5*time.Second || c.UsageStatApp != "stat" ||
		c.AvailableDetectAlertEmailAddress != "oncall@example.com" || c.AppStatInterval() != 10*time.Second {
		t.Errorf("collector: %+v", c)
	}
	if len(cfg.Clusters) != 2 || !reflect.DeepEqual(cfg.Clusters["bj_online"], wantMetas) || len(cfg.Clusters["bj_backup"]) != 2 {
		t.Errorf("clusters %v", cfg.Clusters)
	}

	wantApps := map[string]App{
		"meta":      {Section: "apps.meta", Name: "meta", Type: "meta", Ports: []int{34601}, Run: true, Count: 1},
		"replica":   {Section: "apps.replica", Name: "replica", Type: "replica", Ports: []int{34801}, Run: true, Count: 1},
		"collector": {Section: "apps.collector", Name: "collector", Type: "collector", Ports: []int{34101}, Run: true, Count: 1, DelaySeconds: 5},
	}
	if !reflect.DeepEqual(cfg.Apps, wantApps) {
		t.Errorf("apps:\n got %+v\nwant %+v", cfg.Apps, wantApps)
	}

	wantTables := []DefaultTable{
		{Section: "meta_server.apps.temp", AppName: "temp", AppType: "pegasus", PartitionCount: 8, MaxReplicaCount: 3, Stateful: true},
		{Section: "meta_server.apps.stat", AppName: "stat", AppType: "pegasus", PartitionCount: 4, MaxReplicaCount: 3, Stateful: true,
			Envs: map[string]string{"default_ttl": "604800", "rocksdb.usage_scenario": "normal"}},
	}
	if !reflect.DeepEqual(cfg.DefaultTables, wantTables) {
		t.Errorf("default tables:\n got %+v\nwant %+v", cfg.DefaultTables, wantTables)
	}

	wantWarnings := []string{
		"testdata/config.ini:15: [apps.meta] pools: upstream key not used by this implementation; ignored",
		"testdata/config.ini:24: [apps.replica] pools: upstream key not used by this implementation; ignored",
		"testdata/config.ini:36: [core] tool: upstream key not used by this implementation; ignored",
		"testdata/config.ini:45: [threadpool.*] 2 upstream runtime section(s) not used by this implementation; ignored",
		"testdata/config.ini:106: [replication] verbose_client_log_on_start: upstream key not used by this implementation; ignored",
		"testdata/config.ini:145: [replication] log_shared_file_size_mb: upstream key not used by this implementation; ignored",
		"testdata/config.ini:211: [task.*] 2 upstream runtime section(s) not used by this implementation; ignored",
	}
	if got := warningStrings(cfg); !reflect.DeepEqual(got, wantWarnings) {
		t.Errorf("warnings:\n got %q\nwant %q", got, wantWarnings)
	}
	if n := strings.Count(logBuf.String(), "level=WARN"); n != len(wantWarnings) {
		t.Errorf("logged %d warnings, want %d:\n%s", n, len(wantWarnings), logBuf.String())
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, "")
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings for an empty file: %v", warningStrings(cfg))
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"core.data_dir", cfg.Core.DataDir, "data"},
		{"core log dir", cfg.Core.EffectiveLogDir(), "data/log"},
		{"core level", cfg.Core.LogLevel(), slog.LevelInfo},
		{"core shutdown timeout", cfg.Core.ShutdownTimeout(), 30 * time.Second},
		{"network.primary_interface", cfg.Network.PrimaryInterface, ""},
		{"network.enable_udp", cfg.Network.EnableUDP, true},
		{"meta.server_list", len(cfg.MetaServer.ServerList), 0},
		{"meta.cluster_root", cfg.MetaServer.ClusterRoot, "/"},
		{"meta.lock", cfg.MetaServer.DistributedLockServiceType, LockServiceZooKeeper},
		{"meta.state", cfg.MetaServer.MetaStateServiceType, StateServiceZooKeeper},
		{"meta.level", cfg.MetaServer.MetaFunctionLevelOnStart, FunctionLevelSteady},
		{"meta.live_pct", cfg.MetaServer.NodeLivePercentageThresholdForUpdate, 65},
		{"meta.min_live", cfg.MetaServer.MinLiveNodeCountForUnfreeze, 3},
		{"meta.hold", cfg.MetaServer.HoldForDroppedApp(), 7 * 24 * time.Hour},
		{"meta.add_secondary_max", cfg.MetaServer.AddSecondaryMaxCountForOneNode, 10},
		{"meta.unstable", cfg.MetaServer.MaxSuccessiveUnstableRestart, 5},
		{"meta.balancer", cfg.MetaServer.ServerLoadBalancerType, "greedy_load_balancer"},
		{"meta.guardian", cfg.MetaServer.PartitionGuardianType, "partition_guardian"},
		{"meta.dropouts", cfg.MetaServer.ReplicaAssignDelayForDropouts(), 10 * time.Minute},
		{"meta.max_replicas_in_group", cfg.MetaServer.MaxReplicasInGroup, 4},
		{"meta.max_reserved_dropped", cfg.MetaServer.MaxReservedDroppedReplicas, 1},
		{"meta.balance_op_count", cfg.MetaServer.BalanceOpCountPerRound, 10},
		{"meta.replica range", [2]int{cfg.MetaServer.MinAllowedReplicaCount, cfg.MetaServer.MaxAllowedReplicaCount}, [2]int{1, 5}},
		{"meta.cold_backup_disabled", cfg.MetaServer.ColdBackupDisabled, true},
		{"meta.min_backup_interval_seconds", cfg.MetaServer.MinBackupIntervalSeconds, int64(86400)},
		{"rep.data_dirs", cfg.Replication.DataDirs, []DataDir{{DefaultDataDirTag, "data"}}},
		{"rep.replica dir", cfg.Replication.DataDirs[0].ReplicaDir("replica"), "data/replica/reps"},
		{"rep.slog", cfg.Replication.SlogDir, "data"},
		{"rep.fd", [4]time.Duration{cfg.Replication.FDCheckInterval(), cfg.Replication.FDBeaconInterval(), cfg.Replication.FDLease(), cfg.Replication.FDGrace()},
			[4]time.Duration{2 * time.Second, 3 * time.Second, 20 * time.Second, 22 * time.Second}},
		{"rep.config_sync", cfg.Replication.ConfigSyncInterval(), 30 * time.Second},
		{"rep.lb", cfg.Replication.LBInterval(), 10 * time.Second},
		{"rep.prepare", [2]time.Duration{cfg.Replication.PrepareTimeoutForSecondaries(), cfg.Replication.PrepareTimeoutForPotentialSecondaries()},
			[2]time.Duration{3 * time.Second, 5 * time.Second}},
		{"rep.staleness", cfg.Replication.StalenessForCommit, 2},
		{"rep.prepare_list", cfg.Replication.MaxMutationCountInPrepareList, 110},
		{"rep.2pc", cfg.Replication.Mutation2PCMinReplicaCount, 2},
		{"rep.group_check", cfg.Replication.GroupCheckInterval(), 100 * time.Second},
		{"rep.checkpoint", cfg.Replication.CheckpointInterval(), 100 * time.Second},
		{"rep.checkpoint_max", cfg.Replication.CheckpointMaxInterval(), 2 * time.Hour},
		{"rep.plog", [3]int{cfg.Replication.LogPrivateFileSizeMB, cfg.Replication.LogPrivateReserveMaxSizeMB, int(cfg.Replication.LogPrivateReserveMaxTime() / time.Hour)}, [3]int{32, 1000, 10}},
		{"rep.plog_force_flush", cfg.Replication.PlogForceFlush, false},
		{"rep.plog_gc", cfg.Replication.PlogGCEnabled, true},
		{"rep.gc", [4]time.Duration{cfg.Replication.GCInterval(), cfg.Replication.GCMemoryReplicaInterval(), cfg.Replication.GCDiskErrorReplicaInterval(), cfg.Replication.GCDiskGarbageReplicaInterval()},
			[4]time.Duration{30 * time.Second, 10 * time.Minute, 7 * 24 * time.Hour, 24 * time.Hour}},
		{"rep.disk_stat", cfg.Replication.DiskStatInterval(), 10 * time.Minute},
		{"rep.disk_ratio", cfg.Replication.DiskMinAvailableSpaceRatio, 10},
		{"rep.reject_write", cfg.Replication.RejectWriteWhenDiskInsufficient, true},
		{"rep.max_write", cfg.Replication.MaxAllowedWriteSize, int64(1 << 20)},
		{"rep.learn", cfg.Replication.LearnAppMaxConcurrentCount, 5},
		{"rep.load_per_disk", cfg.Replication.MaxReplicasOnLoadForEachDisk, 256},
		{"rep.duplication", cfg.Replication.DuplicationEnabled, true},
		{"zk.timeout", cfg.ZooKeeper.SessionTimeout(), 30 * time.Second},
		{"zk.logfile", cfg.ZooKeeper.Logfile, "zoo.log"},
		{"server.write_buffer", cfg.Server.WriteBufferSize, int64(64 << 20)},
		{"server.l0", [3]int{cfg.Server.Level0FileNumCompactionTrigger, cfg.Server.Level0SlowdownWritesTrigger, cfg.Server.Level0StopWritesTrigger}, [3]int{4, 30, 60}},
		{"server.level_base", cfg.Server.MaxBytesForLevelBase, int64(640 << 20)},
		{"server.compression", cfg.Server.Compression, []string{"lz4"}},
		{"server.block_cache", cfg.Server.BlockCacheCapacity, int64(64 << 20)},
		{"server.compactions", cfg.Server.MaxBackgroundCompactions, 2},
		{"server.multiplier", cfg.Server.MaxBytesForLevelMultiplier, 10},
		{"server.bloom", cfg.Server.BloomFilterBitsPerKey, 10},
		{"server.limiter", cfg.Server.LimiterMaxWriteMegabytesPerSec, 500},
		{"server.slow_query", cfg.Server.SlowQueryThresholdNs, int64(100 * time.Millisecond)},
		{"collector.app", cfg.Collector.AvailableDetectApp, "temp"},
		{"collector.interval", cfg.Collector.AvailableDetectInterval(), 3 * time.Second},
		{"collector.timeout", cfg.Collector.AvailableDetectTimeout(), time.Second},
		{"collector.app_stat", cfg.Collector.AppStatInterval(), 10 * time.Second},
		{"collector.hotspot", [3]int{cfg.Collector.HotPartitionThreshold, cfg.Collector.OccurrenceThreshold, cfg.Collector.MaxHotspotStoreSize}, [3]int{3, 3, 100}},
		{"apps", len(cfg.Apps), 0},
		{"tables", len(cfg.DefaultTables), 0},
		{"clusters", len(cfg.Clusters), 0},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestEmptyValueMeansDefault(t *testing.T) {
	cfg := mustParse(t, "[replication]\nfd_lease_seconds =\nslog_dir =\n[core]\ndata_dir =\n")
	if cfg.Replication.FDLeaseSeconds != 20 || cfg.Core.DataDir != "data" || cfg.Replication.SlogDir != "data" {
		t.Errorf("got %+v / %+v", cfg.Replication, cfg.Core)
	}
}

func TestWarnings(t *testing.T) {
	text := `orphan = 1
[core]
data_dir = /d
dta_dir = /typo
[replication]
fd_lease_seconds = 20
fd_lease_seconds = 21
log_shared_file_count_limit = 3
[pegasus.server]
rocksdb_write_bufer_size = 1
rocksdb_num_levels = 6
[pegasus.collector]
cluster = x
[my_section]
a = b
[nfs]
x = 1
[meta_server.apps.nameless]
partition_count = 4
[apps.mimic]
type = dsn.app.mimic
[apps.custom]
type = custom
`
	cfg := mustParse(t, text)
	want := []string{
		"test.ini:1: orphan: key outside any section; ignored",
		"test.ini:4: [core] dta_dir: unknown key; ignored",
		"test.ini:7: [replication] fd_lease_seconds: set 2 times (lines 6, 7); the last value wins",
		"test.ini:8: [replication] log_shared_file_count_limit: upstream key not used by this implementation; ignored",
		"test.ini:10: [pegasus.server] rocksdb_write_bufer_size: unknown key; ignored",
		"test.ini:13: [pegasus.collector] cluster: upstream key not used by this implementation; ignored",
		"test.ini:14: [my_section] unknown section; ignored",
		"test.ini:16: [nfs] upstream section not used by this implementation; ignored",
		"test.ini:18: [meta_server.apps.nameless] app_name: no app_name; section skipped, no table is created",
		"test.ini:21: [apps.mimic] type: upstream helper app \"dsn.app.mimic\" is not supported; it will not be started",
		"test.ini:23: [apps.custom] type: unknown app type \"custom\"; this section can not be started",
	}
	if got := warningStrings(cfg); !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n got %q\nwant %q", got, want)
	}
	if cfg.Replication.FDLeaseSeconds != 21 {
		t.Errorf("last value should win, got %d", cfg.Replication.FDLeaseSeconds)
	}
	if !reflect.DeepEqual(cfg.Server.Unmapped, []string{"rocksdb_num_levels"}) {
		t.Errorf("unmapped %v", cfg.Server.Unmapped)
	}
	if _, ok := cfg.Server.Settings["rocksdb_write_bufer_size"]; !ok {
		t.Error("unknown [pegasus.server] key not kept in Settings")
	}
}

func TestBadValues(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		section string
		key     string
		line    int
		want    string // in the message
	}{
		{"not an integer", "[replication]\nfd_lease_seconds = 20s\n", "replication", "fd_lease_seconds", 2,
			`test.ini:2: [replication] fd_lease_seconds = "20s": not an integer`},
		{"out of range", "[zookeeper]\ntimeout_ms = 99999999999999999999\n", "zookeeper", "timeout_ms", 2, "integer out of range"},
		{"negative", "[meta_server]\nhold_seconds_for_dropped_app = -1\n", "meta_server", "hold_seconds_for_dropped_app", 2, "must not be negative"},
		{"zero", "[replication]\ngc_interval_ms = 0\n", "replication", "gc_interval_ms", 2, "must be greater than 0"},
		{"percentage", "[replication]\ndisk_min_available_space_ratio = 101\n", "replication", "disk_min_available_space_ratio", 2, "between 0 and 100"},
		{"bool", "[replication]\nplog_force_flush = yes please\n", "replication", "plog_force_flush", 2, "not a boolean"},
		{"function level", "[meta_server]\nmeta_function_level_on_start = foo\n", "meta_server", "meta_function_level_on_start", 2,
			`test.ini:2: [meta_server] meta_function_level_on_start = "foo": unknown value, want one of: stopped, blind, freezed, steady, lively`},
		{"lock type", "[meta_server]\ndistributed_lock_service_type = etcd\n", "meta_server", "distributed_lock_service_type", 2, "unknown value"},
		{"log level", "[core]\nlogging_start_level = LOUD\n", "core", "logging_start_level", 2, "unknown value"},
		{"cluster root", "[meta_server]\ncluster_root = pegasus/c1\n", "meta_server", "cluster_root", 2, "absolute ZooKeeper path"},
		{"compression", "[pegasus.server]\nrocksdb_compression_type = lz5\n", "pegasus.server", "rocksdb_compression_type", 2, `"lz5": unknown compression`},
		{"level multiplier", "[pegasus.server]\nrocksdb_max_bytes_for_level_multiplier = 1\n", "pegasus.server", "rocksdb_max_bytes_for_level_multiplier", 2, "between 2 and 1000"},
		{"block cache", "[pegasus.server]\nrocksdb_block_cache_capacity = 0\n", "pegasus.server", "rocksdb_block_cache_capacity", 2, "must be greater than 0"},
		{"enable_auth", "[security]\nenable_auth = true\n", "security", "enable_auth", 2, "Kerberos SASL is not supported"},
		{"enable_acl", "[security]\nenable_acl = true\n", "security", "enable_acl", 2, "admin_allow_list"},
		{"super_users", "[security]\nsuper_users = alice\n", "security", "super_users", 2, "list administrators' addresses"},
		{"admin allow list", "[security]\nadmin_allow_list = 10.0.0.0/8, ops-host\n", "security", "admin_allow_list", 2, "host names are not accepted"},
		{"frame budget", "[network]\nmax_frame_size_mb = 64\npending_frame_mb = 32\n", "network", "pending_frame_mb", 3, "at least max_frame_size_mb (64)"},
		{"frame size", "[network]\nmax_frame_size_mb = 0\n", "network", "max_frame_size_mb", 2, "between 1 and 1024"},
		{"explicit host", "[network]\nexplicit_host_address = pegasus-0.svc\n", "network", "explicit_host_address", 2, "hostname; only IP addresses are supported"},
		{"zk hosts", "[zookeeper]\nhosts_list = zk1:2181,zk2\n", "zookeeper", "hosts_list", 2, `item 2 "zk2": want host:port`},
		{"zk port", "[zookeeper]\nhosts_list = zk1:0\n", "zookeeper", "hosts_list", 2, `bad port "0"`},
		{"app ports", "[apps.meta]\nports = 34601,x\n", "apps.meta", "ports", 2, `bad port "x"`},
		{"inherited app value", "[apps..default]\ncount = many\n[apps.meta]\ntype = meta\n", "apps..default", "count", 2,
			`test.ini:2: [apps..default] count = "many": not an integer`},
		{"envs", "[meta_server.apps.t]\napp_name = t\nenvs = a=1,b\n", "meta_server.apps.t", "envs", 3, `item 2 "b": want key=value`},
		{"app type", "[meta_server.apps.t]\napp_name = t\napp_type = redis\n", "meta_server.apps.t", "app_type", 3, "unknown value"},
		{"duplicate table", "[meta_server.apps.a]\napp_name = t\n[meta_server.apps.b]\napp_name = t\n", "meta_server.apps.b", "app_name", 4,
			"table already defined in [meta_server.apps.a]"},
		{"empty cluster", "[pegasus.clusters]\nc1 =\n", "pegasus.clusters", "c1", 2, "cluster has no meta servers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.ini", []byte(tc.text), Options{})
			if err == nil {
				t.Fatal("no error")
			}
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Fatalf("want *ValueError, got %T: %v", err, err)
			}
			if ve.Section != tc.section || ve.Key != tc.key || ve.Line != tc.line {
				t.Errorf("got [%s] %s line %d, want [%s] %s line %d", ve.Section, ve.Key, ve.Line, tc.section, tc.key, tc.line)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := Parse("test.ini", []byte("[replication]\nfd_lease_seconds = x\ngc_interval_ms = y\n[core]\nlogging_start_level = z\n"), Options{})
	for _, key := range []string{"fd_lease_seconds", "gc_interval_ms", "logging_start_level"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error %v does not mention %s", err, key)
		}
	}
	// A bad fd_lease_seconds must not also trigger the grace > lease check
	// against the default it was replaced by.
	if strings.Contains(err.Error(), "must be greater than fd_lease_seconds") {
		t.Errorf("spurious cross-key error: %v", err)
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		{"[core\ndata_dir = /x\n", "test.ini:1: section header without closing ']'"},
		{"[core]\ndata_dir /x\n", `test.ini:2: expected "key = value", got "data_dir /x"`},
		{"[core]\n = /x\n", "test.ini:2: empty key name"},
		{"[]\n", "test.ini:1: empty section name"},
		{"[core]\ndata_dir = \"\"\"/x\n/y\"\"\"\n", `test.ini:2: multi-line value for "data_dir" is not supported`},
	}
	for _, tc := range tests {
		_, err := Parse("test.ini", []byte(tc.text), Options{})
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.text, err, tc.want)
		}
	}
}

func TestValueSyntax(t *testing.T) {
	cfg := mustParse(t, `[ core ]
data_dir = "/quoted/dir" ; inline comment
[meta_server.apps.t]
app_name = t
envs = a=1;2,b=x=y
[replication]
cluster_name = c#1
`)
	if cfg.Core.DataDir != "/quoted/dir" {
		t.Errorf("data_dir %q", cfg.Core.DataDir)
	}
	if want := map[string]string{"a": "1;2", "b": "x=y"}; !reflect.DeepEqual(cfg.DefaultTables[0].Envs, want) {
		t.Errorf("envs %v", cfg.DefaultTables[0].Envs)
	}
	if cfg.Replication.ClusterName != "c#1" {
		t.Errorf("cluster_name %q", cfg.Replication.ClusterName)
	}
}

func TestCrossKeyChecks(t *testing.T) {
	tests := []struct {
		name string
		text string
		key  string
		want string
	}{
		{"grace equals lease", "[replication]\nfd_lease_seconds = 22\n", "fd_grace_seconds",
			`[replication] fd_grace_seconds = "22": must be greater than fd_lease_seconds (22) (default value)`},
		{"grace below lease", "[replication]\nfd_lease_seconds = 20\nfd_grace_seconds = 10\n", "fd_grace_seconds",
			`test.ini:3: [replication] fd_grace_seconds = "10": must be greater than fd_lease_seconds (20)`},
		{"lease not above beacon", "[replication]\nfd_beacon_interval_seconds = 5\nfd_lease_seconds = 5\nfd_grace_seconds = 6\n", "fd_lease_seconds",
			"must be greater than fd_beacon_interval_seconds (5)"},
		{"partition count", "[meta_server.apps.t]\napp_name = t\npartition_count = 6\n", "partition_count", "must be a power of two"},
		{"replica count", "[meta_server]\nmax_allowed_replica_count = 3\n[meta_server.apps.t]\napp_name = t\nmax_replica_count = 4\n", "max_replica_count",
			"must be between [meta_server] min_allowed_replica_count (1) and max_allowed_replica_count (3)"},
		{"replica range", "[meta_server]\nmin_allowed_replica_count = 4\nmax_allowed_replica_count = 3\n", "min_allowed_replica_count",
			"must not exceed max_allowed_replica_count (3)"},
		{"l0 triggers", "[pegasus.server]\nrocksdb_level0_slowdown_writes_trigger = 70\n", "rocksdb_level0_stop_writes_trigger",
			"must not be less than rocksdb_level0_slowdown_writes_trigger (70)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.ini", []byte(tc.text), Options{})
			var ve *ValueError
			if !errors.As(err, &ve) || ve.Key != tc.key || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error on %s containing %q", err, tc.key, tc.want)
			}
		})
	}
	for _, n := range []int{1, 2, 4, 8, 16, 1024} {
		text := "[meta_server.apps.t]\napp_name = t\npartition_count = " + strconv.Itoa(n) + "\n"
		if cfg := mustParse(t, text); cfg.DefaultTables[0].PartitionCount != n {
			t.Errorf("partition_count %d not kept", n)
		}
	}
}

func TestApps(t *testing.T) {
	cfg := mustParse(t, `[apps..default]
run = false
count = 1
ports = 40000
[apps.meta]
type = meta
[apps.replica]
type = replica
run = true
count = 3
ports = 34801,34802
[apps.collector]
type = collector
ports =
`)
	meta := cfg.Apps["meta"]
	if meta.Run || meta.Port() != 40000 {
		t.Errorf("meta should inherit [apps..default]: %+v", meta)
	}
	col := cfg.Apps["collector"]
	if col.Port() != 40000 {
		t.Errorf("empty ports should fall back to [apps..default]: %+v", col)
	}
	rep := cfg.Apps["replica"]
	want := []AppInstance{
		{Name: "replica1", Index: 1, Ports: []int{34801, 34802}},
		{Name: "replica2", Index: 2, Ports: []int{34803, 34804}},
		{Name: "replica3", Index: 3, Ports: []int{34805, 34806}},
	}
	if got := rep.Instances(); !reflect.DeepEqual(got, want) {
		t.Errorf("instances %+v", got)
	}

	cfg = mustParse(t, "[apps.meta]\n[apps.replica]\n[apps.collector]\n")
	for name, port := range map[string]int{"meta": DefaultMetaPort, "replica": DefaultReplicaPort, "collector": DefaultCollectorPort} {
		a := cfg.Apps[name]
		if a.Type != name || a.Port() != port || !a.Run || a.Count != 1 {
			t.Errorf("%s: %+v", name, a)
		}
		if in := a.Instances(); len(in) != 1 || in[0].Name != name || in[0].Ports[0] != port {
			t.Errorf("%s instances %+v", name, in)
		}
	}
}

func TestLegacyDefaultTable(t *testing.T) {
	cfg := mustParse(t, "[replication.app]\napp_name = temp\napp_type = pegasus\npartition_count = 8\nstateful = true\n")
	want := []DefaultTable{{Section: "replication.app", AppName: "temp", AppType: "pegasus", PartitionCount: 8, MaxReplicaCount: 3, Stateful: true}}
	if !reflect.DeepEqual(cfg.DefaultTables, want) {
		t.Errorf("got %+v", cfg.DefaultTables)
	}
}

func TestMutation2PCMinReplicas(t *testing.T) {
	tests := []struct{ configured, replicas, want int }{
		{2, 3, 2}, {1, 5, 1}, {0, 1, 1}, {0, 2, 1}, {0, 3, 2}, {-1, 4, 3}, {0, 5, 3},
	}
	for _, tc := range tests {
		r := Replication{Mutation2PCMinReplicaCount: tc.configured}
		if got := r.Mutation2PCMinReplicas(tc.replicas); got != tc.want {
			t.Errorf("configured %d, %d replicas: got %d, want %d", tc.configured, tc.replicas, got, tc.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.ini", Options{})
	if err == nil || !strings.Contains(err.Error(), "does-not-exist.ini") {
		t.Errorf("got %v", err)
	}
}

func TestSecuritySection(t *testing.T) {
	cfg, err := Parse("test.ini", []byte("[security]\nenable_auth = false\nenable_acl = false\nsuper_users =\ncluster_secret_file = /etc/pegasus/secret\nadmin_allow_list = 10.1.0.0/16, 192.168.7.7 ::1\nkrb5_keytab = /etc/krb5.keytab\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	sec := cfg.Security
	if sec.ClusterSecretFile != "/etc/pegasus/secret" || sec.InsecureCluster {
		t.Errorf("security = %+v", sec)
	}
	want := []string{"10.1.0.0/16", "192.168.7.7/32", "::1/128"}
	if len(sec.AdminAllowList) != len(want) {
		t.Fatalf("admin_allow_list = %v, want %v", sec.AdminAllowList, want)
	}
	for i, p := range sec.AdminAllowList {
		if p.String() != want[i] {
			t.Errorf("admin_allow_list[%d] = %v, want %s", i, p, want[i])
		}
	}
	found := false
	for _, w := range cfg.Warnings {
		if w.Key == "krb5_keytab" {
			found = true
		}
	}
	if !found {
		t.Error("krb5_keytab not reported as unused")
	}
}

func TestBlockServices(t *testing.T) {
	for _, tc := range []struct {
		name, ini string
		want      map[string]BlockService
		wantErr   string
	}{
		{"local", "[block_service.local]\ntype = local_service\nargs = /mnt/backup\n",
			map[string]BlockService{"local": {Type: "local_service", Args: []string{"/mnt/backup"}}}, ""},
		{"two providers", "[block_service.a]\ntype = local_service\n[block_service.b]\ntype = hdfs_service\nargs = nn:9000 /root\n",
			map[string]BlockService{"a": {Type: "local_service"}, "b": {Type: "hdfs_service", Args: []string{"nn:9000", "/root"}}}, ""},
		{"unknown type", "[block_service.x]\ntype = s3\n", nil, "unknown value"},
		{"missing type", "[block_service.x]\nargs = /tmp\n", nil, "required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("t.ini", []byte(tc.ini), Options{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.BlockServices, tc.want) {
				t.Fatalf("got %+v, want %+v", cfg.BlockServices, tc.want)
			}
			for _, w := range cfg.Warnings {
				if strings.HasPrefix(w.Section, "block_service") {
					t.Errorf("unexpected warning %v", w)
				}
			}
		})
	}
}
