package replica

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
	"github.com/pegasusgo/pegasus/storage"
)

// The manual_compact.* table envs (spec: operations.md 1.6).
const (
	envCompactDisabled      = "manual_compact.disabled"
	envCompactMaxRunning    = "manual_compact.max_concurrent_running_count"
	envCompactOnceTrigger   = "manual_compact.once.trigger_time"
	envCompactPeriodicTimes = "manual_compact.periodic.trigger_time"
)

// manualCompactCheckEvery is how often each replica's manual-compaction rules
// are evaluated. Upstream evaluates them on each config sync (30 s); a shorter
// period lets a periodic trigger fire closer to its time and costs a map
// lookup per replica.
const manualCompactCheckEvery = 5 * time.Second

// manualCompactWorkers is how many manual compactions one replica server runs
// at a time (upstream's compaction thread pool); the others wait, QUEUING.
const manualCompactWorkers = 2

// compactDue decides whether a replica's manual compaction is due (upstream's
// start_manual_compact_if_needed): not when manual_compact.disabled is "true"
// or max_concurrent_running_count is <= 0; then the once rule, a trigger time
// (Unix seconds) later than the last finish (not compared with now: a future
// trigger fires at once, as upstream); then the periodic rule, a list of local
// H:MM times of which one is between the last finish and now. rule is "once"
// or "periodic".
func compactDue(envs map[string]string, lastFinish, now time.Time) (rule string, due bool) {
	if envs[envCompactDisabled] == "true" {
		return "", false
	}
	if v, ok := envs[envCompactMaxRunning]; ok {
		if n, err := strconv.ParseInt(v, 10, 32); err == nil && n <= 0 {
			return "", false
		}
	}
	if v := envs[envCompactOnceTrigger]; v != "" {
		if t, err := strconv.ParseInt(v, 10, 64); err == nil && t > 0 && t > lastFinish.Unix() {
			return "once", true
		}
	}
	for _, at := range periodicTimes(envs[envCompactPeriodicTimes], now) {
		if at.After(lastFinish) && at.Before(now) {
			return "periodic", true
		}
	}
	return "", false
}

// periodicTimes maps a "H:MM,H:MM" list to today's times in now's location;
// malformed items are skipped.
func periodicTimes(v string, now time.Time) []time.Time {
	var out []time.Time
	for _, item := range strings.Split(v, ",") {
		h, m, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok {
			continue
		}
		hour, err1 := strconv.Atoi(h)
		minute, err2 := strconv.Atoi(m)
		if err1 != nil || err2 != nil || hour < 0 || hour > 23 || minute < 0 || minute > 59 {
			continue
		}
		y, mo, d := now.Date()
		out = append(out, time.Date(y, mo, d, hour, minute, 0, 0, now.Location()))
	}
	return out
}

// maxRunning is a table's manual_compact.max_concurrent_running_count: how
// many of its replicas one server compacts at a time (0: no cap). Upstream
// keeps that count per replica, which caps nothing; here it is per server.
func maxRunning(envs map[string]string) int {
	if n, err := strconv.Atoi(envs[envCompactMaxRunning]); err == nil && n > 0 {
		return n
	}
	return 0
}

// compactState is one replica's manual compaction, as reported to the meta
// server in config syncs and by replica.query-compact.
type compactState struct {
	mu         sync.Mutex
	enqueuedAt time.Time // zero when not queued
	startedAt  time.Time // zero when not running
	lastFinish time.Time // in-memory, as upstream: IDLE again after a restart
	lastUsed   time.Duration
}

func (c *compactState) status() metadata.ManualCompactionStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.startedAt.IsZero():
		return metadata.ManualCompactionStatus_RUNNING
	case !c.enqueuedAt.IsZero():
		return metadata.ManualCompactionStatus_QUEUING
	case !c.lastFinish.IsZero():
		return metadata.ManualCompactionStatus_FINISHED
	}
	return metadata.ManualCompactionStatus_IDLE
}

// compactor runs the manual compactions of one replica server.
type compactor struct {
	s       *Stub
	workers chan struct{}

	mu      sync.Mutex
	running map[int32]int // per table: compactions running on this server
}

func newCompactor(s *Stub) *compactor {
	return &compactor{s: s, workers: make(chan struct{}, manualCompactWorkers), running: map[int32]int{}}
}

// loop evaluates every replica's manual compaction rules and usage scenario
// until ctx ends, and waits for the compactions it started.
func (c *compactor) loop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(manualCompactCheckEvery)
	defer tick.Stop()
	for {
		for _, p := range c.s.all() {
			p.checkScenario()
			if c.shouldStart(p, time.Now()) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.run(ctx, p)
				}()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// shouldStart reports whether p's compaction is due and not already queued
// or running, and if so marks it queued.
func (c *compactor) shouldStart(p *partition, now time.Time) bool {
	switch pacifica.Status(p.status.Load()) {
	case pacifica.StatusPrimary, pacifica.StatusSecondary:
	default:
		return false
	}
	last, err := p.st().LastManualCompactFinish()
	if err != nil {
		return false // closing, or a store the next check reads again
	}
	rule, due := compactDue(p.appInfo().Envs, last, now)
	if !due {
		return false
	}
	p.compact.mu.Lock()
	defer p.compact.mu.Unlock()
	if !p.compact.enqueuedAt.IsZero() {
		return false
	}
	p.compact.enqueuedAt = now
	p.log.Info("manual compaction queued", "rule", rule, "last_finish", last)
	return true
}

// run waits for a worker and the table's running cap, then compacts.
func (c *compactor) run(ctx context.Context, p *partition) {
	defer func() {
		p.compact.mu.Lock()
		p.compact.enqueuedAt, p.compact.startedAt = time.Time{}, time.Time{}
		p.compact.mu.Unlock()
	}()
	select {
	case c.workers <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-c.workers }()
	table := p.gpid.Appid
	for !c.claim(table, maxRunning(p.appInfo().Envs)) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	defer c.unclaim(table)
	// Disabled while queued: upstream checks again when the task starts.
	if p.appInfo().Envs[envCompactDisabled] == "true" || p.closing.Load() {
		return
	}
	start := time.Now()
	p.compact.mu.Lock()
	p.compact.startedAt = start
	p.compact.mu.Unlock()
	finish, err := p.st().ManualCompact(ctx)
	if err != nil {
		p.log.Warn("manual compaction failed", "err", err)
		return
	}
	p.compact.mu.Lock()
	p.compact.lastFinish, p.compact.lastUsed = finish, time.Since(start)
	p.compact.mu.Unlock()
	p.log.Info("manual compaction finished", "took", time.Since(start).Round(time.Millisecond), "size_on_disk", p.st().SizeOnDisk())
}

func (c *compactor) claim(table int32, limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if limit > 0 && c.running[table] >= limit {
		return false
	}
	c.running[table]++
	return true
}

func (c *compactor) unclaim(table int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running[table]--; c.running[table] <= 0 {
		delete(c.running, table)
	}
}

// compactReport is one replica's line of replica.query-compact, in upstream's
// field names and local-time format ("-" for never).
type compactReport struct {
	RecentEnqueueAt string `json:"recent_enqueue_at"`
	RecentStartAt   string `json:"recent_start_at"`
	LastFinish      string `json:"last_finish"`
	LastUsedMS      string `json:"last_used_ms"`
}

func (c *compactState) report() compactReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format("2006-01-02 15:04:05")
	}
	return compactReport{at(c.enqueuedAt), at(c.startedAt), at(c.lastFinish), strconv.FormatInt(c.lastUsed.Milliseconds(), 10)}
}

// registerCommands adds replica.query-compact [app_id|app_id.pidx,...]: the
// manual compaction of each primary and secondary, in upstream's shape
// ("<n> processed, <m> not found" then one "<gpid>@<addr>@P|S : <json>" line
// per replica).
func (c *compactor) registerCommands() {
	c.s.cmds.Register("replica.query-app-envs", "replica.query-app-envs [app_id|app_id.pidx,...]: the storage options each replica runs with", func(ctx context.Context, args []string) string {
		var b strings.Builder
		processed := 0
		for _, p := range c.s.all() {
			if !matchesReplica(p, args) {
				continue
			}
			processed++
			o := c.s.storeOptions(p.storeScenario(), p.disk, p.log)
			fmt.Fprintf(&b, "\n    %s@%s : rocksdb.usage_scenario=%s,rocksdb.write_buffer_size=%d,rocksdb.num_levels=%d",
				p.gpid.String(), c.s.self, p.storeScenario(), o.MemTableSize, storage.NumLevels)
		}
		return fmt.Sprintf("%d processed, 0 not found", processed) + b.String()
	})
	c.s.cmds.Register("replica.query-compact", "replica.query-compact [app_id|app_id.pidx,...]: manual compaction of each replica", func(ctx context.Context, args []string) string {
		var b strings.Builder
		processed := 0
		for _, p := range c.s.all() {
			role := ""
			switch pacifica.Status(p.status.Load()) {
			case pacifica.StatusPrimary:
				role = "P"
			case pacifica.StatusSecondary:
				role = "S"
			}
			if role == "" || !matchesReplica(p, args) {
				continue
			}
			processed++
			js, _ := json.Marshal(p.compact.report())
			fmt.Fprintf(&b, "\n    %s@%s@%s : %s", p.gpid.String(), c.s.self, role, js)
		}
		return fmt.Sprintf("%d processed, 0 not found", processed) + b.String()
	})
}

// matchesReplica reports whether a replica is among the app_id or
// app_id.pidx items of a remote command's arguments (comma- or
// space-separated; none means all).
func matchesReplica(p *partition, args []string) bool {
	filtered := false
	for _, a := range args {
		for _, w := range strings.Split(a, ",") {
			if w = strings.TrimSpace(w); w == "" {
				continue
			}
			filtered = true
			if w == p.gpid.String() || w == strconv.Itoa(int(p.gpid.Appid)) {
				return true
			}
		}
	}
	return !filtered
}
