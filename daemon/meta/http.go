package meta

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/daemon/remotecmd"
	"github.com/pegasusgo/pegasus/daemon/role"
	"github.com/pegasusgo/pegasus/daemon/version"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// health classifies a partition configuration as upstream does.
type health int

const (
	healthDead        health = iota // no member at all
	healthUnreadable                // no primary
	healthUnwritable                // fewer members than a write needs
	healthWritableIll               // fewer members than wanted
	healthHealthy
)

func partitionHealth(pc *layer2.PartitionConfiguration, min2pc int32) health {
	n := int32(len(pc.Secondaries))
	switch {
	case !pc.Primary.IsValid() && n == 0:
		return healthDead
	case !pc.Primary.IsValid():
		return healthUnreadable
	case n+1 < min(min2pc, pc.MaxReplicaCount):
		return healthUnwritable
	case n+1 < pc.MaxReplicaCount:
		return healthWritableIll
	default:
		return healthHealthy
	}
}

type appHealth struct {
	healthy, unhealthy, writeUnhealthy, readUnhealthy int
}

func countHealth(a *app, min2pc int32) appHealth {
	var h appHealth
	for _, pc := range a.partitions {
		switch partitionHealth(pc, min2pc) {
		case healthHealthy:
			h.healthy++
		case healthWritableIll:
			h.unhealthy++
		case healthUnwritable:
			h.unhealthy++
			h.writeUnhealthy++
		default:
			h.unhealthy++
			h.writeUnhealthy++
			h.readUnhealthy++
		}
	}
	return h
}

func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"Version": version.Version, "GitCommit": version.GitSHA})
	})
	mux.HandleFunc("/recentStartTime", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"RecentStartTime": s.opts.StartTime.Format("2006-01-02 15:04:05")})
	})
	mux.HandleFunc("/meta/cluster", s.leaderOnly(s.httpCluster))
	mux.HandleFunc("/meta/apps", s.leaderOnly(s.httpApps))
	mux.HandleFunc("/meta/app", s.leaderOnly(s.httpApp))
	mux.HandleFunc("/meta/nodes", s.leaderOnly(s.httpNodes))
	mux.HandleFunc("/meta/app_envs", s.leaderOnly(s.httpAppEnvs))
	mux.HandleFunc("/metrics", s.httpMetrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.Error(w, fmt.Sprintf("service not found for %q", r.URL.Path), http.StatusNotFound)
			return
		}
		writeJSON(w, map[string]string{
			"/version":         "the server version",
			"/recentStartTime": "when the server started",
			"/meta/cluster":    "cluster info (leader only)",
			"/meta/apps":       "tables, ?detail for health (leader only)",
			"/meta/app":        "?name=<table>[&detail]: one table (leader only)",
			"/meta/nodes":      "replica servers, ?detail for replica counts (leader only)",
			"/meta/app_envs":   "?name=<table>: table envs (leader only)",
			"/metrics":         "metrics as JSON",
		})
	})
	return mux
}

// leaderOnly serves a /meta/* path on the leader and redirects it there from a
// follower.
func (s *Server) leaderOnly(h func(w http.ResponseWriter, r *http.Request, lt *leaderTerm)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if lt := s.currentTerm(); lt != nil {
			h(w, r, lt)
			return
		}
		leader := s.LeaderAddr()
		if leader == "" {
			http.Error(w, "no meta leader is known", http.StatusServiceUnavailable)
			return
		}
		target := "http://" + leader + r.URL.Path
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusTemporaryRedirect)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	_ = enc.Encode(v)
}

// has reports a query flag given bare ("?detail") or with a value.
func has(r *http.Request, key string) bool {
	_, ok := r.URL.Query()[key]
	return ok
}

func (s *Server) httpCluster(w http.ResponseWriter, r *http.Request, lt *leaderTerm) {
	out := map[string]string{}
	for _, kv := range s.clusterInfoPairs(lt) {
		out[kv[0]] = kv[1]
	}
	writeJSON(w, out)
}

func timeString(sec int64) string {
	if sec == 0 {
		return "-"
	}
	return time.Unix(sec, 0).Format("2006-01-02_15:04:05")
}

func (s *Server) httpApps(w http.ResponseWriter, r *http.Request, lt *leaderTerm) {
	s.mu.RLock()
	apps := lt.state.sortedApps()
	s.mu.RUnlock()
	general := map[string]map[string]string{}
	healthy := map[string]map[string]string{}
	var fully, notFully int
	for _, a := range apps {
		id := strconv.Itoa(int(a.info.AppID))
		general[id] = map[string]string{
			"app_id":          id,
			"status":          a.info.Status.String(),
			"app_name":        a.info.AppName,
			"app_type":        a.info.AppType,
			"partition_count": strconv.Itoa(int(a.info.PartitionCount)),
			"replica_count":   strconv.Itoa(int(a.info.MaxReplicaCount)),
			"is_stateful":     strconv.FormatBool(a.info.IsStateful),
			"create_time":     timeString(a.info.CreateSecond),
			"drop_time":       timeString(a.info.DropSecond),
			"drop_expire":     timeString(a.info.ExpireSecond),
			"envs_count":      strconv.Itoa(len(a.info.Envs)),
		}
		if a.info.Status != layer2.AppStatus_AS_AVAILABLE {
			continue
		}
		h := countHealth(a, s.opts.Min2PCReplicas)
		if h.unhealthy == 0 {
			fully++
		} else {
			notFully++
		}
		healthy[id] = map[string]string{
			"app_id":          id,
			"app_name":        a.info.AppName,
			"partition_count": strconv.Itoa(int(a.info.PartitionCount)),
			"fully_healthy":   strconv.Itoa(h.healthy),
			"unhealthy":       strconv.Itoa(h.unhealthy),
			"write_unhealthy": strconv.Itoa(h.writeUnhealthy),
			"read_unhealthy":  strconv.Itoa(h.readUnhealthy),
		}
	}
	out := map[string]any{
		"general_info": general,
		"summary":      map[string]string{"total_app_count": strconv.Itoa(len(apps))},
	}
	if has(r, "detail") {
		out["healthy_info"] = healthy
		out["summary"] = map[string]string{
			"total_app_count":           strconv.Itoa(len(apps)),
			"fully_healthy_app_count":   strconv.Itoa(fully),
			"unhealthy_app_count":       strconv.Itoa(notFully),
			"write_unhealthy_app_count": strconv.Itoa(countApps(apps, s.opts.Min2PCReplicas, func(h appHealth) bool { return h.writeUnhealthy > 0 })),
			"read_unhealthy_app_count":  strconv.Itoa(countApps(apps, s.opts.Min2PCReplicas, func(h appHealth) bool { return h.readUnhealthy > 0 })),
		}
	}
	writeJSON(w, out)
}

func countApps(apps []*app, min2pc int32, pred func(appHealth) bool) int {
	n := 0
	for _, a := range apps {
		if a.info.Status == layer2.AppStatus_AS_AVAILABLE && pred(countHealth(a, min2pc)) {
			n++
		}
	}
	return n
}

func (s *Server) httpApp(w http.ResponseWriter, r *http.Request, lt *leaderTerm) {
	name := r.URL.Query().Get("name")
	s.mu.RLock()
	a := lt.state.lookup(name)
	s.mu.RUnlock()
	if a == nil {
		http.Error(w, fmt.Sprintf("table %q not found", name), http.StatusNotFound)
		return
	}
	out := map[string]any{
		"general": map[string]string{
			"app_name":          a.info.AppName,
			"app_id":            strconv.Itoa(int(a.info.AppID)),
			"partition_count":   strconv.Itoa(int(a.info.PartitionCount)),
			"max_replica_count": strconv.Itoa(int(a.info.MaxReplicaCount)),
		},
	}
	if has(r, "detail") {
		replicas := map[string]map[string]string{}
		type counts struct{ p, s int }
		nodes := map[string]*counts{}
		for _, pc := range a.partitions {
			n := 0
			if pc.Primary.IsValid() {
				n++
				c := nodes[pc.Primary.String()]
				if c == nil {
					c = &counts{}
					nodes[pc.Primary.String()] = c
				}
				c.p++
			}
			for _, sec := range pc.Secondaries {
				n++
				c := nodes[sec.String()]
				if c == nil {
					c = &counts{}
					nodes[sec.String()] = c
				}
				c.s++
			}
			pidx := strconv.Itoa(int(pc.Pid.PartitionIndex))
			primary := "-"
			if pc.Primary.IsValid() {
				primary = pc.Primary.String()
			}
			replicas[pidx] = map[string]string{
				"pidx":          pidx,
				"ballot":        strconv.FormatInt(pc.Ballot, 10),
				"replica_count": fmt.Sprintf("%d/%d", n, pc.MaxReplicaCount),
				"primary":       primary,
				"secondaries":   "[" + strings.Join(addrStrings(pc.Secondaries), ",") + "]",
			}
		}
		nodeOut := map[string]map[string]string{}
		for addr, c := range nodes {
			nodeOut[addr] = map[string]string{"node": addr, "primary": strconv.Itoa(c.p), "secondary": strconv.Itoa(c.s), "total": strconv.Itoa(c.p + c.s)}
		}
		h := countHealth(a, s.opts.Min2PCReplicas)
		out["replicas"] = replicas
		out["nodes"] = nodeOut
		out["healthy"] = map[string]string{
			"fully_healthy_partition_count":   strconv.Itoa(h.healthy),
			"unhealthy_partition_count":       strconv.Itoa(h.unhealthy),
			"write_unhealthy_partition_count": strconv.Itoa(h.writeUnhealthy),
			"read_unhealthy_partition_count":  strconv.Itoa(h.readUnhealthy),
		}
	}
	writeJSON(w, out)
}

func (s *Server) httpAppEnvs(w http.ResponseWriter, r *http.Request, lt *leaderTerm) {
	name := r.URL.Query().Get("name")
	s.mu.RLock()
	a := lt.state.lookup(name)
	s.mu.RUnlock()
	if a == nil {
		http.Error(w, fmt.Sprintf("table %q not found", name), http.StatusNotFound)
		return
	}
	writeJSON(w, a.info.Envs)
}

func (s *Server) httpNodes(w http.ResponseWriter, r *http.Request, lt *leaderTerm) {
	s.mu.RLock()
	nodes := lt.nodesOfState()
	l := countLoad(lt.state, 0)
	s.mu.RUnlock()
	details := map[string]map[string]string{}
	alive := 0
	for _, n := range nodes {
		st := "UNALIVE"
		if n.alive {
			st = "ALIVE"
			alive++
		}
		d := map[string]string{"address": n.addr, "status": st}
		if has(r, "detail") {
			d["replica_count"] = strconv.Itoa(l.allReplicas[n.addr])
			d["primary_count"] = strconv.Itoa(l.allPrimaries[n.addr])
			d["secondary_count"] = strconv.Itoa(l.allReplicas[n.addr] - l.allPrimaries[n.addr])
		}
		details[n.addr] = d
	}
	writeJSON(w, map[string]any{
		"details": details,
		"summary": map[string]string{
			"total_node_count":   strconv.Itoa(len(nodes)),
			"alive_node_count":   strconv.Itoa(alive),
			"unalive_node_count": strconv.Itoa(len(nodes) - alive),
		},
	})
}

// httpMetrics serves the cluster gauges in the /metrics JSON shape (a follower
// reports only its server entity).
func (s *Server) httpMetrics(w http.ResponseWriter, r *http.Request) {
	s.metricsRegistry().ServeHTTP(w, r)
}

// metricsRegistry builds the metrics of this moment: the server entity with the
// replica server counts, and one table entity per available table with its
// partitions by health.
func (s *Server) metricsRegistry() *metrics.Registry {
	_, port, _ := strings.Cut(s.opts.Self, ":")
	p, _ := strconv.Atoi(port)
	reg := metrics.NewRegistry(s.opts.ClusterName, "meta", p)
	srv := reg.Entity("server", "server", nil)
	leader := 0.0
	lt := s.currentTerm()
	if lt != nil {
		leader = 1
	}
	srv.Gauge("is_leader").Set(leader)
	metrics.ProcessGauges(srv)
	role.NetworkMetrics(srv, s.opts.NetStats)
	if lt == nil {
		return reg
	}
	s.mu.RLock()
	nodes := lt.nodesOfState()
	apps := lt.state.sortedApps()
	s.mu.RUnlock()
	alive := 0
	for _, n := range nodes {
		if n.alive {
			alive++
		}
	}
	srv.Gauge("alive_replica_servers").Set(float64(alive))
	srv.Gauge("unalive_replica_servers").Set(float64(len(nodes) - alive))
	for _, a := range apps {
		if a.info.Status != layer2.AppStatus_AS_AVAILABLE {
			continue
		}
		id := strconv.Itoa(int(a.info.AppID))
		e := reg.Entity("table", id, map[string]string{"table_id": id, "table_name": a.info.AppName})
		var byHealth [5]int
		for _, pc := range a.partitions {
			byHealth[partitionHealth(pc, s.opts.Min2PCReplicas)]++
		}
		e.Gauge("dead_partitions").Set(float64(byHealth[healthDead]))
		e.Gauge("unreadable_partitions").Set(float64(byHealth[healthUnreadable]))
		e.Gauge("unwritable_partitions").Set(float64(byHealth[healthUnwritable]))
		e.Gauge("writable_ill_partitions").Set(float64(byHealth[healthWritableIll]))
		e.Gauge("healthy_partitions").Set(float64(byHealth[healthHealthy]))
	}
	return reg
}

func (s *Server) registerCommands() {
	s.cmds.SetLogger(s.log)
	s.cmds.Register("meta.cluster_info", "meta.cluster_info: the cluster_info keys as JSON (leader only)", func(ctx context.Context, args []string) string {
		lt := s.currentTerm()
		if lt == nil {
			return "not the leader; the leader is " + s.LeaderAddr()
		}
		out := map[string]string{}
		for _, kv := range s.clusterInfoPairs(lt) {
			out[kv[0]] = kv[1]
		}
		b, _ := json.Marshal(out)
		return string(b)
	})
	// It only reads, but a form with an argument (upstream's way to set the
	// level) is kept for administrators, as with the other settings.
	s.cmds.RegisterAs("meta.level", "meta.level: the meta function level in effect (leader only)", remotecmd.Setting, func(ctx context.Context, args []string) string {
		lt := s.currentTerm()
		if lt == nil {
			return "not the leader; the leader is " + s.LeaderAddr()
		}
		s.mu.RLock()
		defer s.mu.RUnlock()
		return fmt.Sprintf("configured %s, effective %s", lt.level, s.effectiveLevel(lt))
	})
	s.cmds.RegisterAs("meta.live_percentage", "meta.live_percentage [N]: get or set node_live_percentage_threshold_for_update", remotecmd.Setting, func(ctx context.Context, args []string) string {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(args) == 0 {
			return strconv.Itoa(s.opts.LivePercentage)
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 || n > 100 {
			return "ERR: want an integer within [0, 100]"
		}
		s.opts.LivePercentage = n
		return remotecmd.OK
	})
	s.cmds.RegisterAs("meta.lb.assign_delay_ms", "meta.lb.assign_delay_ms [ms]: get or set how long a dropped secondary is waited for", remotecmd.Setting, func(ctx context.Context, args []string) string {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(args) == 0 {
			return strconv.FormatInt(s.opts.AssignDelay.Milliseconds(), 10)
		}
		n, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || n < 0 {
			return "ERR: want a number of milliseconds"
		}
		s.opts.AssignDelay = time.Duration(n) * time.Millisecond
		return remotecmd.OK
	})
	s.cmds.RegisterAs("meta.lb.assign_secondary_black_list", "meta.lb.assign_secondary_black_list [ip:port,...|clear]: replica servers taken out of service (their replicas are moved away at level lively)", remotecmd.Setting, func(ctx context.Context, args []string) string {
		lt := s.currentTerm()
		if lt == nil {
			return "not the leader; the leader is " + s.LeaderAddr()
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(args) == 0 {
			var out []string
			for n := range lt.excluded {
				out = append(out, n)
			}
			sort.Strings(out)
			return strings.Join(out, ",")
		}
		if args[0] == "clear" {
			clear(lt.excluded)
			return remotecmd.OK
		}
		next := map[string]bool{}
		for _, n := range strings.Split(strings.Join(args, ","), ",") {
			if n == "" {
				continue
			}
			if _, err := base.ParseRPCAddress(n); err != nil {
				return "ERR: " + err.Error()
			}
			next[n] = true
		}
		lt.excluded = next
		return remotecmd.OK
	})
	s.cmds.Register("meta.leader", "meta.leader: the meta leader's address", func(ctx context.Context, args []string) string {
		return s.LeaderAddr()
	})
}
