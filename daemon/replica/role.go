package replica

import (
	"context"
	"path/filepath"

	"github.com/pegasusgo/pegasus/config"
	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/daemon/role"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage"
)

// OptionsFromConfig maps config.ini onto replica server options.
func OptionsFromConfig(cfg *config.Config, env role.Env) (Options, []string, error) {
	rep := cfg.Replication
	var metas []string
	for _, a := range cfg.MetaServer.ServerList {
		metas = append(metas, a.String())
	}
	var dirs []DataDir
	for _, d := range rep.DataDirs {
		dirs = append(dirs, DataDir{Tag: d.Tag, Dir: d.ReplicaDir(env.Instance)})
	}
	if len(dirs) == 0 {
		dirs = []DataDir{{Tag: config.DefaultDataDirTag, Dir: filepath.Join(env.DataDir, "reps")}}
	}
	sopts, ignored, err := storage.OptionsFromConfig(cfg.Server.Settings)
	if err != nil {
		return Options{}, nil, err
	}
	name := rep.ClusterName
	if name == "" {
		name = filepath.Base(cfg.MetaServer.ClusterRoot)
	}
	return Options{
		Self:                env.Addr(),
		ClusterName:         name,
		MetaServers:         metas,
		DataDirs:            dirs,
		BeaconInterval:      rep.FDBeaconInterval(),
		Lease:               rep.FDLease(),
		LeaseCheckInterval:  rep.FDCheckInterval(),
		ConfigSyncInterval:  rep.ConfigSyncInterval(),
		CheckpointInterval:  rep.CheckpointInterval(),
		MaxAllowedWriteSize: rep.MaxAllowedWriteSize,
		PlogFileSize:        int64(rep.LogPrivateFileSizeMB) << 20,
		PlogForceFlush:      rep.PlogForceFlush,
		Replication: pacifica.Options{
			MaxInflight:    rep.StalenessForCommit,
			PrepareListCap: rep.MaxMutationCountInPrepareList,
			Min2PC:         rep.Mutation2PCMinReplicaCount,
			PrepareTimeout: rep.PrepareTimeoutForSecondaries(),
			// Upstream's group check period; an idle primary's empty write also
			// re-sends the commit point.
			EmptyWriteInterval: rep.GroupCheckInterval(),
		},
		Storage:   sopts,
		Logger:    env.Logger.With("role", "replica"),
		StartTime: env.Start,
	}, ignored, nil
}

// Run is the replica role: it loads the replicas on the data disks, serves the data
// and replication RPCs on the role's port, and follows the meta server until ctx
// ends.
func Run(ctx context.Context, env role.Env, ready func()) error {
	ln, err := role.Listen(env)
	if err != nil {
		return err
	}
	defer ln.Close()
	opts, ignored, err := OptionsFromConfig(env.Config, env)
	if err != nil {
		return err
	}
	for _, k := range ignored {
		opts.Logger.Warn("config: [pegasus.server] key has no equivalent on Pebble and is ignored", "key", k)
	}
	stub, err := Open(opts)
	if err != nil {
		return err
	}
	defer stub.Close()
	mux := rpc.NewMux()
	stub.Register(mux)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = stub.Run(runCtx)
	}()
	ready()
	env.Logger.Info("replica server started", "addr", env.Addr(), "disks", len(opts.DataDirs))
	err = role.Serve(ctx, ln, mux, stub.HTTPHandler(), opts.Logger)
	cancel()
	<-done
	return err
}
