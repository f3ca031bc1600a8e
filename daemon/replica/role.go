package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pegasusgo/pegasus/config"
	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/daemon/role"
	"github.com/pegasusgo/pegasus/internal/coldbackup"
	"github.com/pegasusgo/pegasus/rpc"
)

// OptionsFromConfig maps config.ini onto replica server options.
func OptionsFromConfig(cfg *config.Config, env role.Env) (Options, []string, error) {
	rep := cfg.Replication
	var metas []string
	for _, a := range cfg.MetaServer.ServerList {
		metas = append(metas, a.String())
	}
	black, err := readBlackList(rep.DataDirsBlackListFile)
	if err != nil {
		return Options{}, nil, err
	}
	var dirs []DataDir
	for _, d := range rep.DataDirs {
		if black[filepath.Clean(d.Path)] {
			env.Logger.Warn("data dir skipped: it is in the black list", "tag", d.Tag, "path", d.Path, "black_list", rep.DataDirsBlackListFile)
			continue
		}
		dirs = append(dirs, DataDir{Tag: d.Tag, Dir: d.ReplicaDir(env.Instance)})
	}
	if len(dirs) == 0 && len(rep.DataDirs) > 0 {
		return Options{}, nil, fmt.Errorf("every data dir of [replication] data_dirs is in the black list %s", rep.DataDirsBlackListFile)
	}
	// An empty slog_dir, as the guide allows, reads as [core] data_dir: no warning.
	if rep.SlogDir != "" && rep.SlogDir != filepath.Clean(cfg.Core.DataDir) {
		env.Logger.Warn("config: [replication] slog_dir is deprecated and ignored (the shared log was removed; only per-replica logs are kept)", "slog_dir", rep.SlogDir)
	}
	if len(dirs) == 0 {
		dirs = []DataDir{{Tag: config.DefaultDataDirTag, Dir: filepath.Join(env.DataDir, "reps")}}
	}
	sopts, ignored := storageOptions(cfg.Server)
	name := rep.ClusterName
	if name == "" {
		name = filepath.Base(cfg.MetaServer.ClusterRoot)
	}
	return Options{
		Self:                env.Addr(),
		NetStats:            env.Net.Stats,
		Dial:                env.Dial(),
		ClusterName:         name,
		MetaServers:         metas,
		DataDirs:            dirs,
		BeaconInterval:      rep.FDBeaconInterval(),
		Lease:               rep.FDLease(),
		LeaseCheckInterval:  rep.FDCheckInterval(),
		ConfigSyncInterval:  rep.ConfigSyncInterval(),
		CheckpointInterval:  rep.CheckpointInterval(),
		MaxAllowedWriteSize: rep.MaxAllowedWriteSize,
		GarbageRetention:    rep.GCDiskGarbageReplicaInterval(),
		ErrorRetention:      rep.GCDiskErrorReplicaInterval(),
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
		Storage:    sopts,
		ColdBackup: coldbackup.FromConfig(cfg),
		ClientAuth: env.ClientAuth(),
		Logger:     env.Logger.With("role", "replica"),
		StartTime:  env.Start,

		DiskMinAvailableSpaceRatio:      rep.DiskMinAvailableSpaceRatio,
		RejectWriteWhenDiskInsufficient: rep.RejectWriteWhenDiskInsufficient,
		PerfCounterInterval:             time.Duration(cfg.Server.PerfCounterUpdateIntervalSeconds) * time.Second,
		ReadCapacityUnitSize:            cfg.Server.ReadCapacityUnitSize,
		WriteCapacityUnitSize:           cfg.Server.WriteCapacityUnitSize,
	}, ignored, nil
}

// readBlackList reads data_dirs_black_list_file: one path per line, the data dirs
// an operator took out of use (a failing disk). A missing file means none.
func readBlackList(path string) (map[string]bool, error) {
	out := map[string]bool{}
	if path == "" {
		return out, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read data_dirs_black_list_file: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			out[filepath.Clean(line)] = true
		}
	}
	return out, nil
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
	fatal := make(chan error, 1)
	go func() {
		defer close(done)
		if err := stub.Run(runCtx); err != nil && runCtx.Err() == nil {
			fatal <- err
			cancel()
		}
	}()
	ready()
	env.Logger.Info("replica server started", "addr", env.Addr(), "disks", len(opts.DataDirs))
	err = role.Serve(runCtx, ln, env, mux, stub.HTTPHandler(), opts.Logger, nil)
	cancel()
	<-done
	select {
	case ferr := <-fatal:
		return ferr
	default:
	}
	return err
}
