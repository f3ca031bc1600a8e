package shell

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/pegasusgo/pegasus/daemon/metrics"
)

// fetchMetrics reads the /metrics document of a server (HTTP on its RPC port),
// selecting entity types and metric names as upstream's shell does.
func (s *Shell) fetchMetrics(ctx context.Context, addr string, types, names []string) (*metrics.Snapshot, error) {
	q := url.Values{}
	q.Set("with_metric_fields", "name,value,p99")
	if len(types) > 0 {
		q.Set("types", strings.Join(types, ","))
	}
	if len(names) > 0 {
		q.Set("metrics", strings.Join(names, ","))
	}
	var snap metrics.Snapshot
	if err := s.getJSON(ctx, "http://"+addr+"/metrics?"+q.Encode(), &snap); err != nil {
		return nil, err
	}
	return &snap, nil
}

// getJSON fetches and decodes one JSON document.
func (s *Shell) getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.NodeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	resp, err := s.opts.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: bad JSON: %w", u, err)
	}
	return nil
}

// metricsResult is one server's snapshot or why it could not be read.
type metricsResult struct {
	snap *metrics.Snapshot
	err  error
}

// fetchAll reads /metrics from every address in parallel.
func (s *Shell) fetchAll(ctx context.Context, addrs []string, types, names []string) map[string]metricsResult {
	out := make(map[string]metricsResult, len(addrs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			snap, err := s.fetchMetrics(ctx, a, types, names)
			mu.Lock()
			out[a] = metricsResult{snap: snap, err: err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// sumOf adds a metric over the entities of one type, optionally filtered.
func sumOf(snap *metrics.Snapshot, typ, name string, keep func(e *metrics.EntitySnapshot) bool) float64 {
	var v float64
	for i := range snap.Entities {
		e := &snap.Entities[i]
		if e.Type != typ || (keep != nil && !keep(e)) {
			continue
		}
		v += e.ValueOf(name)
	}
	return v
}

// p99Of returns the p99 of a percentile metric of the first matching entity.
func p99Of(snap *metrics.Snapshot, typ, name string, keep func(e *metrics.EntitySnapshot) bool) float64 {
	for i := range snap.Entities {
		e := &snap.Entities[i]
		if e.Type != typ || (keep != nil && !keep(e)) {
			continue
		}
		if m, ok := e.Find(name); ok && m.P99 != nil {
			return *m.P99
		}
	}
	return 0
}
