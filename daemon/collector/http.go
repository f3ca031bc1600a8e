package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pegasusgo/pegasus/daemon/version"
)

// AppsReport is the /apps document: the last collection, per table and node.
type AppsReport struct {
	Cluster string `json:"cluster"`
	// UpdatedAt is when the last collection ran, empty before the first.
	UpdatedAt       string      `json:"updated_at"`
	IntervalSeconds int         `json:"interval_seconds"`
	Tables          []TableView `json:"tables"`
	Nodes           []NodeStats `json:"nodes"`
}

// TableView is a table in /apps: its statistics, its hot partitions and, with
// ?history, its recent rounds.
type TableView struct {
	TableStats
	HotPartitions int            `json:"hot_partitions"`
	History       []HistoryPoint `json:"history,omitempty"`
}

// HotspotsReport is the /hotspots document.
type HotspotsReport struct {
	UpdatedAt   string         `json:"updated_at"`
	Threshold   float64        `json:"threshold"`
	MinOPS      float64        `json:"min_ops_per_second"`
	HistorySize int            `json:"history_size"`
	Hot         []HotPartition `json:"hot"`
	Tables      []HotTable     `json:"tables"`
}

// HotPartition is one partition flagged hot.
type HotPartition struct {
	Table   string `json:"table"`
	AppID   int32  `json:"app_id"`
	Kind    string `json:"kind"` // "read" or "write"
	Primary string `json:"primary"`
	PartitionScore
}

// HotTable has the scores of every partition of one table.
type HotTable struct {
	Table string           `json:"table"`
	AppID int32            `json:"app_id"`
	Read  []PartitionScore `json:"read"`
	Write []PartitionScore `json:"write"`
}

// Apps returns the /apps document.
func (c *Collector) Apps(withHistory bool) AppsReport {
	st := c.snapshot(withHistory)
	r := AppsReport{Cluster: c.opts.ClusterName, IntervalSeconds: int(c.opts.StatInterval.Seconds()), Tables: []TableView{}, Nodes: []NodeStats{}}
	if !st.round.Time.IsZero() {
		r.UpdatedAt = st.round.Time.Format(timeLayout)
	}
	for _, t := range st.round.Tables {
		v := TableView{TableStats: t, History: st.history[t.AppID]}
		for _, s := range st.scores[t.AppID] {
			v.HotPartitions += len(hotList(s))
		}
		r.Tables = append(r.Tables, v)
	}
	r.Nodes = append(r.Nodes, st.round.Nodes...)
	return r
}

// Hotspots returns the /hotspots document.
func (c *Collector) Hotspots() HotspotsReport {
	st := c.snapshot(false)
	r := HotspotsReport{Threshold: c.opts.HotThreshold, MinOPS: c.opts.HotMinRate, HistorySize: c.opts.HotHistory,
		Hot: []HotPartition{}, Tables: []HotTable{}}
	if !st.round.Time.IsZero() {
		r.UpdatedAt = st.round.Time.Format(timeLayout)
	}
	for _, t := range st.round.Tables {
		s := st.scores[t.AppID]
		r.Tables = append(r.Tables, HotTable{Table: t.Table, AppID: t.AppID, Read: nonNil(s[readKind]), Write: nonNil(s[writeKind])})
		for k := range numKinds {
			for _, p := range hotList(s[k]) {
				r.Hot = append(r.Hot, HotPartition{Table: t.Table, AppID: t.AppID, Kind: k.String(), Primary: t.primaryOf(p.Partition), PartitionScore: p})
			}
		}
	}
	sort.SliceStable(r.Hot, func(i, j int) bool { return r.Hot[i].Score > r.Hot[j].Score })
	return r
}

func nonNil(s []PartitionScore) []PartitionScore {
	if s == nil {
		return []PartitionScore{}
	}
	return s
}

// HTTPHandler serves the collector's HTTP API.
func (c *Collector) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	paths := map[string]string{
		"/":                "this list",
		"/version":         "the server version",
		"/recentStartTime": "when the server started",
		"/metrics":         "Prometheus text: availability, per-table, per-partition and per-node series",
		"/availability":    "availability of the detect table (JSON; the shell's availability command)",
		"/apps":            "per-table and per-node statistics of the last collection (JSON); ?history adds the recent rounds",
		"/hotspots":        "hot partitions and every partition's score (JSON)",
	}
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"Version": version.Version, "GitCommit": version.GitSHA})
	})
	mux.HandleFunc("/recentStartTime", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"RecentStartTime": c.opts.StartTime.Format(timeLayout)})
	})
	mux.Handle("/metrics", promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/availability", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, c.AvailabilityWithHistory(r.Context()))
	})
	mux.HandleFunc("/apps", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, c.Apps(r.URL.Query().Has("history")))
	})
	mux.HandleFunc("/hotspots", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, c.Hotspots())
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.Error(w, fmt.Sprintf("service not found for %q", r.URL.Path), http.StatusNotFound)
			return
		}
		writeJSON(w, paths)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (c *Collector) registerCommands() {
	jsonCmd := func(v func(ctx context.Context) any) func(ctx context.Context, args []string) string {
		return func(ctx context.Context, args []string) string {
			b, err := json.Marshal(v(ctx))
			if err != nil {
				return "ERR: " + err.Error()
			}
			return string(b)
		}
	}
	c.cmds.Register("availability", "availability: availability of the detect table, as GET /availability (JSON)",
		jsonCmd(func(ctx context.Context) any { return c.AvailabilityWithHistory(ctx) }))
	c.cmds.Register("hotspots", "hotspots: hot partitions, as GET /hotspots (JSON)",
		jsonCmd(func(context.Context) any { return c.Hotspots() }))
	c.cmds.Register("app-stat", "app-stat [table]: statistics of every table, or one, as GET /apps (JSON)", func(ctx context.Context, args []string) string {
		r := c.Apps(false)
		if len(args) > 0 {
			var keep []TableView
			for _, t := range r.Tables {
				if t.Table == args[0] || strconv.Itoa(int(t.AppID)) == args[0] {
					keep = append(keep, t)
				}
			}
			r.Tables = keep
		}
		b, err := json.Marshal(r)
		if err != nil {
			return "ERR: " + err.Error()
		}
		return string(b)
	})
}
