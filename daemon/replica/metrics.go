package replica

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/daemon/remotecmd"
	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/daemon/role"
	"github.com/pegasusgo/pegasus/daemon/version"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/storage"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// serverMetrics are the figures served at /metrics (upstream's JSON shape): one
// server entity, one replica entity per hosted replica (request counts and
// latencies per operation), one disk entity per data disk.
type serverMetrics struct {
	s   *Stub
	reg *metrics.Registry

	readFailed, writeFailed, writeBusy, readBusy, beaconFailed *metrics.Counter
	writeDiskRejected                                          *metrics.Counter // refused: the primary's disk is not NORMAL
	peerRefused                                                *metrics.Counter // cluster messages refused: the sender is not who they need (peercheck.go)

	// readSeen is, per replica, its store's ReadCounts at the last refresh: the
	// store counts since it opened, and a learner's new store starts again.
	readMu   sync.Mutex
	readSeen map[base.Gpid]readCounts
}

type readCounts struct {
	store             *storage.Store
	expired, filtered int64
}

func newServerMetrics(s *Stub) *serverMetrics {
	_, port, _ := strings.Cut(s.opts.Self, ":")
	p, _ := strconv.Atoi(port)
	reg := metrics.NewRegistry(s.opts.ClusterName, "replica", p)
	srv := reg.Entity("server", "server", nil)
	m := &serverMetrics{
		s:            s,
		reg:          reg,
		readFailed:   srv.Counter("read_failed_requests"),
		writeFailed:  srv.Counter("write_failed_requests"),
		writeBusy:    srv.Counter("write_busy_requests"),
		readBusy:     srv.Counter("read_busy_requests"),
		beaconFailed: srv.Counter("beacon_failed_count"),

		writeDiskRejected: srv.Counter("write_disk_rejected_requests"),
		peerRefused:       srv.Counter("cluster_peer_refused_requests"),
		readSeen:          map[base.Gpid]readCounts{},
	}
	count := func(st pacifica.Status) func() float64 {
		return func() float64 {
			n := 0
			for _, p := range s.all() {
				if pacifica.Status(p.status.Load()) == st {
					n++
				}
			}
			return float64(n)
		}
	}
	srv.GaugeFunc("total_replicas", func() float64 { return float64(len(s.all())) })
	metrics.ProcessGauges(srv)
	role.NetworkMetrics(srv, s.opts.NetStats)
	srv.GaugeFunc("primary_replicas", count(pacifica.StatusPrimary))
	srv.GaugeFunc("secondary_replicas", count(pacifica.StatusSecondary))
	srv.GaugeFunc("inactive_replicas", count(pacifica.StatusInactive))
	srv.GaugeFunc("learning_replicas", count(pacifica.StatusLearner))
	return m
}

func (m *serverMetrics) entity(p *partition) *metrics.Entity {
	// Cached on the replica: every request asks for it several times (its
	// count, latency, bytes, capacity units), and building the lookup key and
	// attributes allocates. The registry never changes an entity's
	// attributes, so the cache sees what a lookup would; a reopened replica
	// is a new partition with an empty cache.
	if e := p.metricsEntity.Load(); e != nil {
		return e
	}
	info := p.appInfo()
	e := m.reg.Entity("replica", p.gpid.String(), map[string]string{
		"table_id":     strconv.Itoa(int(p.gpid.Appid)),
		"partition_id": strconv.Itoa(int(p.gpid.PartitionIndex)),
		"table_name":   info.AppName,
	})
	p.metricsEntity.Store(e)
	return e
}

// observe counts one served request and records its latency.
func (m *serverMetrics) observe(p *partition, op string, start time.Time) {
	e := m.entity(p)
	e.Counter(op + "_requests").Inc()
	e.Percentile(op + "_latency_ns").ObserveSince(start)
}

// commit counts applied mutations and the writes they carried.
func (m *serverMetrics) commit(p *partition, writes int) {
	e := m.entity(p)
	e.Counter("committed_mutations").Inc()
	e.Counter("committed_writes").Add(int64(writes))
}

// refresh updates the gauges read from the stores and disks.
func (m *serverMetrics) refresh() {
	parts := m.s.all()
	m.countSkippedReads(parts)
	if c := m.s.opts.Storage.Cache; c != nil {
		m.reg.Entity("server", "server", nil).Gauge("rdb_block_cache_mem_usage_bytes").Set(float64(c.Size()))
	}
	for _, p := range parts {
		e := m.entity(p)
		st := p.st().Stats()
		e.Gauge("rdb_total_sst_size_mb").Set(float64(st.SSTBytes) / (1 << 20))
		e.Gauge("rdb_total_sst_files").Set(float64(st.SSTFiles))
		e.Gauge("rdb_memtable_mem_usage_bytes").Set(float64(st.MemtableBytes))
		e.Gauge("rdb_block_cache_hit_count").Set(float64(st.BlockCacheHits))
		e.Gauge("rdb_block_cache_total_count").Set(float64(st.BlockCacheHits + st.BlockCacheMisses))
		e.Gauge("rdb_estimated_keys").Set(float64(st.EstimatedKeys))
		e.Gauge("rdb_index_and_filter_blocks_mem_usage_bytes").Set(float64(st.IndexFilterBytes))
		e.Gauge("private_log_size_mb").Set(float64(p.plog.Size()) / (1 << 20))
		e.Gauge("last_committed_decree").Set(float64(p.st().LastAppliedDecree()))
		e.Gauge("ballot").Set(float64(p.ballot.Load()))
		e.Gauge("status").Set(float64(p.status.Load()))
	}
	for _, d := range m.s.disks {
		// As of the disk watcher's last check, so that the space and the status agree.
		capMB, availMB, st := d.snapshot()
		e := m.reg.Entity("disk", d.tag, map[string]string{"tag": d.tag, "data_dir": d.dir})
		e.Gauge("disk_capacity_total_mb").Set(float64(capMB))
		e.Gauge("disk_capacity_avail_mb").Set(float64(availMB))
		// 0 NORMAL, 1 SPACE_INSUFFICIENT, 2 IO_ERROR (upstream's disk_status).
		e.Gauge("disk_status").Set(float64(st))
	}
}

// countSkippedReads adds what the replicas' reads skipped since the last
// refresh to read_expired_values and read_filtered_values.
func (m *serverMetrics) countSkippedReads(parts []*partition) {
	m.readMu.Lock()
	defer m.readMu.Unlock()
	seen := make(map[base.Gpid]readCounts, len(parts))
	for _, p := range parts {
		st := p.st()
		now := readCounts{store: st}
		now.expired, now.filtered = st.ReadCounts()
		before := m.readSeen[p.gpid]
		if before.store != st {
			before = readCounts{}
		}
		e := m.entity(p)
		e.Counter("read_expired_values").Add(now.expired - before.expired)
		e.Counter("read_filtered_values").Add(now.filtered - before.filtered)
		seen[p.gpid] = now
	}
	m.readSeen = seen
}

// dropEntity forgets a closed replica's metrics.
func (m *serverMetrics) dropEntity(p *partition) {
	m.reg.Remove("replica", p.gpid.String())
}

// HTTPHandler serves /version, /recentStartTime, /metrics and
// /replica/data_version (dataversion.go).
func (s *Stub) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"Version": version.Version, "GitCommit": version.GitSHA})
	})
	mux.HandleFunc("/recentStartTime", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"RecentStartTime": s.opts.StartTime.Format("2006-01-02 15:04:05")})
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		s.metrics.refresh()
		s.metrics.reg.ServeHTTP(w, r)
	})
	mux.HandleFunc("/replica/data_version", s.httpDataVersion)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, fmt.Sprintf("service not found for %q", r.URL.Path), http.StatusNotFound)
	})
	return mux
}

func (s *Stub) registerCommands() {
	s.cmds.SetLogger(s.log)
	s.cmds.RegisterAs("flush-log", "flush-log: write every replica's pending log and memtable to disk", remotecmd.Admin, func(ctx context.Context, args []string) string {
		for _, p := range s.all() {
			if err := p.st().Flush(ctx); err != nil {
				return "ERR: " + err.Error()
			}
		}
		return "Flush done."
	})
	s.cmds.Register("replica.info", "replica.info: the replicas of this server with role, ballot and decrees (JSON)", func(ctx context.Context, args []string) string {
		type row struct {
			Gpid      string `json:"gpid"`
			Table     string `json:"table"`
			Status    string `json:"status"`
			Ballot    int64  `json:"ballot"`
			Committed int64  `json:"last_committed_decree"`
			Durable   int64  `json:"last_durable_decree"`
			Disk      string `json:"disk"`
		}
		var out []row
		for _, p := range s.all() {
			out = append(out, row{p.gpid.String(), p.appInfo().AppName, pacifica.Status(p.status.Load()).String(), p.ballot.Load(),
				p.st().LastAppliedDecree(), p.st().LastDurableDecree(), p.disk.tag})
		}
		b, _ := json.Marshal(out)
		return string(b)
	})
	s.cmds.Register("replica.digest", "replica.digest [gpid...]: a digest of every live record of each replica, with its decree (JSON)", func(ctx context.Context, args []string) string {
		type row struct {
			Decree int64  `json:"decree"`
			Digest string `json:"digest"`
			Status string `json:"status"`
		}
		out := map[string]row{}
		now := keys.Epoch2016(time.Now())
		for _, p := range s.all() {
			if len(args) > 0 && !slices.Contains(args, p.gpid.String()) {
				continue
			}
			decree := p.st().LastAppliedDecree()
			d, err := p.st().Digest(ctx, now)
			if err != nil {
				return "ERR: " + err.Error()
			}
			out[p.gpid.String()] = row{Decree: decree, Digest: hex.EncodeToString(d[:]), Status: pacifica.Status(p.status.Load()).String()}
		}
		b, _ := json.Marshal(out)
		return string(b)
	})
}
