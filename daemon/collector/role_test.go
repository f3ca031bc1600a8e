package collector

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/config"
	"github.com/pegasusgo/pegasus/daemon/role"
)

func loadConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.ini")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestOptionsFromConfig(t *testing.T) {
	env := role.Env{Logger: slog.New(slog.DiscardHandler), Start: time.Unix(100, 0)}
	cfg := loadConfig(t, `
[meta_server]
server_list = 127.0.0.1:34601

[replication]
cluster_name = prod

[pegasus.clusters]
prod = 10.0.0.1:34601,10.0.0.2:34601
other = 10.9.9.9:34601

[pegasus.collector]
available_detect_app = probe
available_detect_interval_seconds = 5
available_detect_timeout = 1500
available_detect_alert_fail_count = 10
app_stat_interval_seconds = 20
usage_stat_app = stat
available_detect_history_app = history
storage_size_fetch_interval_seconds = 600
capacity_unit_saving_ttl_days = 7
hot_partition_threshold = 4
occurrence_threshold = 5
max_hotspot_store_size = 50
`)
	o, err := OptionsFromConfig(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	if o.ClusterName != "prod" || !reflect.DeepEqual(o.MetaServers, []string{"10.0.0.1:34601", "10.0.0.2:34601"}) ||
		o.DetectTable != "probe" || o.DetectInterval != 5*time.Second || o.DetectTimeout != 1500*time.Millisecond ||
		o.AlertFailCount != 10 || o.StatInterval != 20*time.Second || o.StatTable != "stat" ||
		o.StatRecordInterval != 10*time.Minute || o.RecordTTL != 7*24*time.Hour || o.HotThreshold != 4 ||
		o.HotOccurrence != 5 || o.HotHistory != 50 || !o.StartTime.Equal(env.Start) || o.HistoryTable != "history" {
		t.Errorf("options = %+v", o)
	}

	// Without [pegasus.clusters] the meta list of the cluster itself is used,
	// and the defaults are upstream's.
	cfg = loadConfig(t, "[meta_server]\nserver_list = 127.0.0.1:34601,127.0.0.1:34602\ncluster_root = /pegasus/onebox\n")
	o, err = OptionsFromConfig(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	if o.ClusterName != "onebox" || len(o.MetaServers) != 2 || o.DetectTable != "temp" || o.DetectInterval != 3*time.Second ||
		o.StatInterval != 10*time.Second || o.StatTable != "" || o.HotThreshold != 3 || o.HotHistory != 100 ||
		o.HistoryTable != "stat" {
		t.Errorf("default options = %+v", o)
	}
}
