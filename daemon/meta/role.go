package meta

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/pegasusgo/pegasus/config"
	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/daemon/role"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/internal/coldbackup"
	"github.com/pegasusgo/pegasus/rpc"
)

// leaderLockName is the lock directory name of upstream's election recipe.
const leaderLockName = "dsn.meta.server.leader"

// OptionsFromConfig maps config.ini onto meta server options (store and elector
// are opened by OpenStore).
func OptionsFromConfig(cfg *config.Config, self string) Options {
	ms := cfg.MetaServer
	rep := cfg.Replication
	var metas []string
	for _, a := range ms.ServerList {
		metas = append(metas, a.String())
	}
	level, err := admin.MetaFunctionLevelFromString("fl_" + string(ms.MetaFunctionLevelOnStart))
	if err != nil {
		level = admin.MetaFunctionLevel_fl_steady
	}
	var tables []DefaultTable
	for _, t := range cfg.DefaultTables {
		tables = append(tables, DefaultTable{
			Name:           t.AppName,
			AppType:        t.AppType,
			PartitionCount: int32(t.PartitionCount),
			ReplicaCount:   int32(t.MaxReplicaCount),
			Envs:           t.Envs,
		})
	}
	clusterName := rep.ClusterName
	if clusterName == "" {
		clusterName = filepath.Base(ms.ClusterRoot)
	}
	return Options{
		Self:            self,
		MetaServers:     metas,
		ClusterName:     clusterName,
		ClusterRoot:     ms.ClusterRoot,
		StoreHosts:      cfg.ZooKeeper.HostsList,
		FDGrace:         rep.FDGrace(),
		FDCheckInterval: rep.FDCheckInterval(),
		StableRunTime:   ms.StableRSMinRunning(),
		MaxUnstable:     ms.MaxSuccessiveUnstableRestart,
		LBInterval:      rep.LBInterval(),
		LevelOnStart:    level,
		MinLiveNodes:    ms.MinLiveNodeCountForUnfreeze,
		LivePercentage:  ms.NodeLivePercentageThresholdForUpdate,
		HoldDroppedApp:  ms.HoldForDroppedApp(),
		MinReplicaCount: int32(ms.MinAllowedReplicaCount),
		MaxReplicaCount: int32(ms.MaxAllowedReplicaCount),
		Min2PCReplicas:  int32(rep.Mutation2PCMinReplicas(3)),
		DefaultTables:   tables,
		WhiteList:       whiteList(ms),
		AssignDelay:     ms.ReplicaAssignDelayForDropouts(),
		BalanceMoves:    ms.BalanceOpCountPerRound,
		SendHostPort:    ms.SendHostPortFields,

		ColdBackupDisabled: ms.ColdBackupDisabled,
		ColdBackup:         coldbackup.FromConfig(cfg),
		MinBackupInterval:  time.Duration(ms.MinBackupIntervalSeconds) * time.Second,
	}
}

func whiteList(ms config.MetaServer) []string {
	if !ms.EnableWhiteList {
		return nil
	}
	return ms.ReplicaWhiteList
}

// OpenStore opens the metadata store and the elector the configuration names:
// ZooKeeper ([meta_server] meta_state_service_type = meta_state_service_zookeeper) or
// the local directory shared by the meta servers of this machine
// (meta_state_service_simple, at meta_state_service_parameters or the meta data dir).
func OpenStore(ctx context.Context, env role.Env) (metastore.Store, metastore.Elector, error) {
	cfg := env.Config
	ms := cfg.MetaServer
	self := env.Addr()
	switch ms.MetaStateServiceType {
	case config.StateServiceSimple:
		if ms.DistributedLockServiceType != config.LockServiceSimple {
			return nil, nil, fmt.Errorf("[meta_server] meta_state_service_type = %s needs distributed_lock_service_type = %s", config.StateServiceSimple, config.LockServiceSimple)
		}
		dir := ms.MetaStateServiceParameters
		if dir == "" {
			dir = env.DataDir
		}
		st, err := metastore.NewLocal(dir)
		if err != nil {
			return nil, nil, fmt.Errorf("open local meta store %s: %w", dir, err)
		}
		return st, st.NewElector(self), nil
	default:
		if len(cfg.ZooKeeper.HostsList) == 0 {
			return nil, nil, fmt.Errorf("[zookeeper] hosts_list is empty")
		}
		if ms.DistributedLockServiceType != config.LockServiceZooKeeper {
			return nil, nil, fmt.Errorf("[meta_server] meta_state_service_type = %s needs distributed_lock_service_type = %s", config.StateServiceZooKeeper, config.LockServiceZooKeeper)
		}
		// A meta server that cannot reach ZooKeeper cannot start: say so after a
		// bounded wait instead of hanging.
		wait := max(2*cfg.ZooKeeper.SessionTimeout(), 10*time.Second)
		zctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		st, err := metastore.NewZK(zctx, cfg.ZooKeeper.HostsList, cfg.ZooKeeper.SessionTimeout(), env.Logger)
		if err != nil {
			return nil, nil, fmt.Errorf("cannot reach ZooKeeper at %s within %v ([zookeeper] hosts_list): %w", strings.Join(cfg.ZooKeeper.HostsList, ","), wait, err)
		}
		lockRoot := ms.DistributedLockServiceParameters
		if lockRoot == "" {
			lockRoot = ms.ClusterRoot
		}
		return st, st.NewElector(strings.TrimRight(lockRoot, "/")+"/"+leaderLockName, self), nil
	}
}

// Run is the meta role: it serves the meta RPCs and HTTP API on the role's port and
// takes part in the leader election until ctx ends.
func Run(ctx context.Context, env role.Env, ready func()) error {
	ln, err := role.Listen(env)
	if err != nil {
		return err
	}
	defer ln.Close()
	store, elector, err := OpenStore(ctx, env)
	if err != nil {
		return err
	}
	defer store.Close()
	defer elector.Close()
	opts := OptionsFromConfig(env.Config, env.Addr())
	opts.Store, opts.Elector = store, elector
	opts.ClientAuth = env.ClientAuth()
	opts.Logger = env.Logger.With("role", "meta")
	opts.StartTime = env.Start
	opts.NetStats = env.Net.Stats
	opts.Dial = env.Dial()
	srv, err := New(opts)
	if err != nil {
		return err
	}
	mux := rpc.NewMux()
	srv.Register(mux)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Run(runCtx)
	}()
	ready()
	env.Logger.Info("meta server started", "addr", env.Addr(), "cluster_root", opts.ClusterRoot)
	err = role.Serve(ctx, ln, env, mux, srv.HTTPHandler(), opts.Logger, srv.IsClusterHost)
	cancel()
	<-done
	return err
}
