// Package metrics keeps a process's metrics and serves them at /metrics in the JSON
// shape of upstream Pegasus servers, which the collector and the admin tools parse:
//
//	{"cluster": ..., "role": ..., "host": ..., "port": ..., "timestamp_ns": ...,
//	 "entities": [{"type": "replica", "id": "1.3", "attributes": {...},
//	               "metrics": [{"name": "get_requests", "value": 12},
//	                           {"name": "get_latency_ns", "p50": ..., "p99": ...}]}]}
//
// Entities group metrics of one thing (the server, a replica, a disk, a table).
// Counters and gauges are lock-free; percentiles keep a bounded window of recent
// samples.
package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Snapshot is the /metrics document.
type Snapshot struct {
	Cluster     string           `json:"cluster"`
	Role        string           `json:"role"`
	Host        string           `json:"host"`
	Port        int              `json:"port"`
	TimestampNS int64            `json:"timestamp_ns"`
	Entities    []EntitySnapshot `json:"entities"`
}

// EntitySnapshot is one entity of a Snapshot.
type EntitySnapshot struct {
	Type       string            `json:"type"`
	ID         string            `json:"id"`
	Attributes map[string]string `json:"attributes"`
	Metrics    []MetricSnapshot  `json:"metrics"`
}

// MetricSnapshot is one metric: Value for counters and gauges, the percentiles for
// percentile metrics. Type, Unit and Desc appear with detail=true.
type MetricSnapshot struct {
	Name  string   `json:"name"`
	Type  string   `json:"type,omitempty"`
	Unit  string   `json:"unit,omitempty"`
	Desc  string   `json:"desc,omitempty"`
	Value *float64 `json:"value,omitempty"`
	P50   *float64 `json:"p50,omitempty"`
	P90   *float64 `json:"p90,omitempty"`
	P95   *float64 `json:"p95,omitempty"`
	P99   *float64 `json:"p99,omitempty"`
	P999  *float64 `json:"p999,omitempty"`
}

// Find returns the metric named name.
func (e *EntitySnapshot) Find(name string) (MetricSnapshot, bool) {
	for _, m := range e.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return MetricSnapshot{}, false
}

// ValueOf returns the value of a counter or gauge, 0 when absent.
func (e *EntitySnapshot) ValueOf(name string) float64 {
	if m, ok := e.Find(name); ok && m.Value != nil {
		return *m.Value
	}
	return 0
}

// Registry holds the entities of one process.
type Registry struct {
	cluster, role, host string
	port                int

	mu       sync.RWMutex
	entities map[string]*Entity
}

// NewRegistry returns an empty registry describing the process.
func NewRegistry(cluster, role string, port int) *Registry {
	host, _ := os.Hostname()
	return &Registry{cluster: cluster, role: role, host: host, port: port, entities: map[string]*Entity{}}
}

// Entity returns the entity of that type and id, creating it with attrs.
func (r *Registry) Entity(typ, id string, attrs map[string]string) *Entity {
	key := typ + "@" + id
	r.mu.RLock()
	e, ok := r.entities[key]
	r.mu.RUnlock()
	if ok {
		return e
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.entities[key]; ok {
		return e
	}
	if attrs == nil {
		attrs = map[string]string{}
	}
	e = &Entity{typ: typ, id: id, attrs: attrs, metrics: map[string]metric{}}
	r.entities[key] = e
	return e
}

// Remove drops an entity (a closed replica, a dropped table).
func (r *Registry) Remove(typ, id string) {
	r.mu.Lock()
	delete(r.entities, typ+"@"+id)
	r.mu.Unlock()
}

// Filter selects what a snapshot contains; empty fields select everything.
type Filter struct {
	Types, IDs, Names []string
	Detail            bool
}

// Snapshot reads every selected metric now.
func (r *Registry) Snapshot(f Filter) Snapshot {
	r.mu.RLock()
	ents := make([]*Entity, 0, len(r.entities))
	for _, e := range r.entities {
		ents = append(ents, e)
	}
	r.mu.RUnlock()
	sort.Slice(ents, func(i, j int) bool {
		if ents[i].typ != ents[j].typ {
			return ents[i].typ < ents[j].typ
		}
		return ents[i].id < ents[j].id
	})
	s := Snapshot{Cluster: r.cluster, Role: r.role, Host: r.host, Port: r.port, TimestampNS: time.Now().UnixNano(), Entities: []EntitySnapshot{}}
	for _, e := range ents {
		if len(f.Types) > 0 && !slices.Contains(f.Types, e.typ) || len(f.IDs) > 0 && !slices.Contains(f.IDs, e.id) {
			continue
		}
		es := e.snapshot(f)
		if len(es.Metrics) > 0 {
			s.Entities = append(s.Entities, es)
		}
	}
	return s
}

// ServeHTTP serves /metrics with upstream's query filters: types, ids, metrics
// (comma lists) and detail=true.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	list := func(k string) []string {
		v := q.Get(k)
		if v == "" {
			return nil
		}
		return strings.Split(v, ",")
	}
	f := Filter{Types: list("types"), IDs: list("ids"), Names: list("metrics"), Detail: q.Get("detail") == "true"}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	_ = enc.Encode(r.Snapshot(f))
}

// Entity is a group of metrics.
type Entity struct {
	typ, id string
	attrs   map[string]string

	mu      sync.RWMutex
	metrics map[string]metric
}

type metric interface {
	kind() string
	fill(*MetricSnapshot)
}

func (e *Entity) get(name string, mk func() metric) metric {
	e.mu.RLock()
	m, ok := e.metrics[name]
	e.mu.RUnlock()
	if ok {
		return m
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if m, ok := e.metrics[name]; ok {
		return m
	}
	m = mk()
	e.metrics[name] = m
	return m
}

// Counter returns the counter named name.
func (e *Entity) Counter(name string) *Counter {
	return e.get(name, func() metric { return &Counter{} }).(*Counter)
}

// Gauge returns the gauge named name.
func (e *Entity) Gauge(name string) *Gauge {
	return e.get(name, func() metric { return &Gauge{} }).(*Gauge)
}

// GaugeFunc registers a gauge computed when read.
func (e *Entity) GaugeFunc(name string, fn func() float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.metrics[name] = gaugeFunc(fn)
}

// CounterFunc registers a counter read from fn when read (fn must not
// decrease).
func (e *Entity) CounterFunc(name string, fn func() int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.metrics[name] = counterFunc(fn)
}

// Percentile returns the percentile metric named name.
func (e *Entity) Percentile(name string) *Percentile {
	return e.get(name, func() metric { return newPercentile(1024) }).(*Percentile)
}

func (e *Entity) snapshot(f Filter) EntitySnapshot {
	e.mu.RLock()
	names := make([]string, 0, len(e.metrics))
	for n := range e.metrics {
		if len(f.Names) == 0 || slices.Contains(f.Names, n) {
			names = append(names, n)
		}
	}
	ms := make([]metric, len(names))
	sort.Strings(names)
	for i, n := range names {
		ms[i] = e.metrics[n]
	}
	e.mu.RUnlock()
	out := EntitySnapshot{Type: e.typ, ID: e.id, Attributes: e.attrs, Metrics: make([]MetricSnapshot, 0, len(names))}
	for i, n := range names {
		s := MetricSnapshot{Name: n}
		ms[i].fill(&s)
		if f.Detail {
			s.Type = ms[i].kind()
		}
		out.Metrics = append(out.Metrics, s)
	}
	return out
}

func f64(v float64) *float64 { return &v }

// Counter is a monotonically increasing count.
type Counter struct{ v atomic.Int64 }

// Add adds n.
func (c *Counter) Add(n int64) { c.v.Add(n) }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Load returns the count.
func (c *Counter) Load() int64 { return c.v.Load() }

func (c *Counter) kind() string              { return "Counter" }
func (c *Counter) fill(s *MetricSnapshot)    { s.Value = f64(float64(c.v.Load())) }
func (g *Gauge) kind() string                { return "Gauge" }
func (g *Gauge) fill(s *MetricSnapshot)      { s.Value = f64(g.Load()) }
func (g gaugeFunc) kind() string             { return "Gauge" }
func (g gaugeFunc) fill(s *MetricSnapshot)   { s.Value = f64(g()) }
func (c counterFunc) kind() string           { return "Counter" }
func (c counterFunc) fill(s *MetricSnapshot) { s.Value = f64(float64(c())) }
func (p *Percentile) kind() string           { return "Percentile" }
func (p *Percentile) fill(s *MetricSnapshot) { p.fillPercentiles(s) }

// Gauge is a value that goes up and down.
type Gauge struct{ bits atomic.Uint64 }

// Set sets the value.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Load returns the value.
func (g *Gauge) Load() float64 { return math.Float64frombits(g.bits.Load()) }

type gaugeFunc func() float64

type counterFunc func() int64

// Percentile keeps the last samples of a distribution (e.g. latencies in ns).
type Percentile struct {
	mu      sync.Mutex
	samples []float64
	next    int
	full    bool
}

func newPercentile(n int) *Percentile { return &Percentile{samples: make([]float64, n)} }

// Observe records one sample.
func (p *Percentile) Observe(v float64) {
	p.mu.Lock()
	p.samples[p.next] = v
	p.next++
	if p.next == len(p.samples) {
		p.next, p.full = 0, true
	}
	p.mu.Unlock()
}

// ObserveSince records the time elapsed since start, in nanoseconds.
func (p *Percentile) ObserveSince(start time.Time) {
	p.Observe(float64(time.Since(start).Nanoseconds()))
}

func (p *Percentile) fillPercentiles(s *MetricSnapshot) {
	p.mu.Lock()
	n := p.next
	if p.full {
		n = len(p.samples)
	}
	vs := append([]float64(nil), p.samples[:n]...)
	p.mu.Unlock()
	sort.Float64s(vs)
	q := func(x float64) *float64 {
		if len(vs) == 0 {
			return f64(0)
		}
		i := int(math.Ceil(x*float64(len(vs)))) - 1
		return f64(vs[max(0, min(i, len(vs)-1))])
	}
	s.P50, s.P90, s.P95, s.P99, s.P999 = q(0.5), q(0.9), q(0.95), q(0.99), q(0.999)
}

// ProcessGauges adds the process's memory figures (from /proc/self/status on Linux)
// to an entity: resident_mem_usage_mb and virtual_mem_usage_mb.
func ProcessGauges(e *Entity) {
	e.GaugeFunc("resident_mem_usage_mb", func() float64 { return procStatusMB("VmRSS:") })
	e.GaugeFunc("virtual_mem_usage_mb", func() float64 { return procStatusMB("VmSize:") })
}

func procStatusMB(field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, field) {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, field)), "%f", &kb); err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}
