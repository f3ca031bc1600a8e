package collector

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/pegasusgo/pegasus/config"
	"github.com/pegasusgo/pegasus/daemon/role"
	"github.com/pegasusgo/pegasus/rpc"
)

// OptionsFromConfig maps config.ini onto collector options. Like upstream's
// collector it is a client of its own cluster: the meta servers come from
// [pegasus.clusters] under [replication] cluster_name, else from
// [meta_server] server_list.
func OptionsFromConfig(cfg *config.Config, env role.Env) (Options, error) {
	name := cfg.Replication.ClusterName
	if name == "" {
		name = filepath.Base(cfg.MetaServer.ClusterRoot)
	}
	var metas []string
	list := cfg.Clusters[name]
	if len(list) == 0 {
		list = cfg.MetaServer.ServerList
	}
	for _, a := range list {
		metas = append(metas, a.String())
	}
	if len(metas) == 0 {
		return Options{}, fmt.Errorf("no meta servers for cluster %q: set [pegasus.clusters] %s or [meta_server] server_list", name, name)
	}
	col := cfg.Collector
	return Options{
		ClusterName:    name,
		MetaServers:    metas,
		DetectTable:    col.AvailableDetectApp,
		DetectInterval: col.AvailableDetectInterval(),
		DetectTimeout:  col.AvailableDetectTimeout(),
		AlertFailCount: col.AvailableDetectAlertFailCount,
		RecordTTL:      time.Duration(col.CapacityUnitSavingTTLDays) * 24 * time.Hour,
		HistoryTable:   col.AvailableDetectHistoryApp,
		StatInterval:   col.AppStatInterval(),
		// Upstream keeps its usage records in usage_stat_app; unset (the
		// default) writes nothing.
		StatTable:          col.UsageStatApp,
		StatRecordInterval: time.Duration(col.StorageSizeFetchIntervalSeconds) * time.Second,
		HotThreshold:       float64(col.HotPartitionThreshold),
		HotHistory:         col.MaxHotspotStoreSize,
		HotOccurrence:      col.OccurrenceThreshold,
		StartTime:          env.Start,
		NetStats:           env.Net.Stats,
		Logger:             env.Logger.With("role", "collector"),
	}, nil
}

// Run is the collector role: it probes the detect table, collects the nodes'
// metrics and serves them on the role's port until ctx ends.
func Run(ctx context.Context, env role.Env, ready func()) error {
	opts, err := OptionsFromConfig(env.Config, env)
	if err != nil {
		return err
	}
	ln, err := role.Listen(env)
	if err != nil {
		return err
	}
	defer ln.Close()
	c, err := New(opts)
	if err != nil {
		return err
	}
	defer c.Close()
	mux := rpc.NewMux()
	c.Register(mux)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(runCtx)
	}()
	ready()
	env.Logger.Info("collector started", "addr", env.Addr(), "cluster", opts.ClusterName, "meta_servers", opts.MetaServers,
		"detect_table", opts.DetectTable, "detect_interval", opts.DetectInterval, "stat_interval", opts.StatInterval)
	err = role.Serve(ctx, ln, env, mux, c.HTTPHandler(), opts.Logger, nil)
	cancel()
	<-done
	return err
}
