package replica

import (
	"context"
	"maps"
	"strings"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/internal/throttle"
	"github.com/pegasusgo/pegasus/rpc"
)

// The table envs this file acts on (spec: operations.md 1.3 and 1.4).
const (
	envDenyClient        = "replica.deny_client_request"
	envWriteThrottling   = "replica.write_throttling"
	envWriteBySize       = "replica.write_throttling_by_size"
	envReadThrottling    = "replica.read_throttling"
	envReadBySize        = "replica.read_throttling_by_size"
	envBackupThrottling  = "replica.backup_request_throttling"
	controlsEnvKeyPrefix = "replica."
)

// tableControls are a replica's request controls built from its table's envs:
// deny_client_request and the throttles. A replica rebuilds them when its
// AppInfo changes (a config sync or proposal carrying new envs) and keeps the
// old ones, counters and all, when the envs that matter did not change.
type tableControls struct {
	info       *layer2.AppInfo   // what they were built from
	envs       map[string]string // the replica.* envs of info
	partitions int32

	denyReads, denyWrites bool
	denyDrop              bool // timeout*...: no reply at all; reconfig*...: ERR_INVALID_STATE

	writeQPS, writeSize, readQPS, backupQPS *throttle.Controller // nil: off
	readBytes                               *throttle.Bucket     // nil: off
}

// controls returns the replica's current table controls.
func (p *partition) controls() *tableControls {
	info := p.appInfo()
	cur := p.ctl.Load()
	if cur != nil && cur.info == info {
		return cur
	}
	next := buildControls(info, cur, p)
	if p.ctl.CompareAndSwap(cur, next) {
		return next
	}
	return p.ctl.Load()
}

func controlEnvs(info *layer2.AppInfo) map[string]string {
	out := map[string]string{}
	for k, v := range info.Envs {
		if strings.HasPrefix(k, controlsEnvKeyPrefix) {
			out[k] = v
		}
	}
	return out
}

// buildControls makes the controls of info, reusing prev when nothing they
// depend on changed. A value that does not parse (the meta server validates
// them, but an older meta or a create-time env is not checked) is logged and
// leaves that control off.
func buildControls(info *layer2.AppInfo, prev *tableControls, p *partition) *tableControls {
	envs := controlEnvs(info)
	if prev != nil && prev.partitions == info.PartitionCount && maps.Equal(prev.envs, envs) {
		c := *prev
		c.info = info
		return &c
	}
	c := &tableControls{info: info, envs: envs, partitions: info.PartitionCount}
	n := int(info.PartitionCount)
	if v, ok := envs[envDenyClient]; ok && v != "" {
		kind, what, _ := strings.Cut(v, "*")
		switch {
		case (kind == "timeout" || kind == "reconfig") && (what == "all" || what == "read" || what == "write"):
			c.denyDrop = kind == "timeout"
			c.denyReads = what == "all" || what == "read"
			c.denyWrites = what == "all" || what == "write"
		default:
			p.log.Warn("ignoring table env: want timeout|reconfig*all|read|write", "env", envDenyClient, "value", v)
		}
	}
	controller := func(key string) *throttle.Controller {
		v, ok := envs[key]
		if !ok || v == "" {
			return nil
		}
		spec, err := throttle.Parse(v)
		if err != nil {
			p.log.Warn("ignoring table env", "env", key, "value", v, "err", err)
			return nil
		}
		if !spec.Enabled() {
			return nil
		}
		return throttle.NewController(spec, n)
	}
	c.writeQPS = controller(envWriteThrottling)
	c.writeSize = controller(envWriteBySize)
	c.readQPS = controller(envReadThrottling)
	c.backupQPS = controller(envBackupThrottling)
	if v, ok := envs[envReadBySize]; ok && v != "" {
		rate, err := throttle.ParseRate(v)
		switch {
		case err != nil:
			p.log.Warn("ignoring table env", "env", envReadBySize, "value", v, "err", err)
		case rate > 0:
			c.readBytes = throttle.NewBucket(rate, n)
		}
	}
	if prev != nil || len(envs) > 0 {
		p.log.Info("table controls set", "envs", envs, "partitions", n)
	}
	return c
}

// deny applies replica.deny_client_request to one request.
func (c *tableControls) deny(write bool) error {
	if write && !c.denyWrites || !write && !c.denyReads {
		return nil
	}
	if c.denyDrop {
		return rpc.ErrNoReply
	}
	return rpc.NewError(base.ErrInvalidState)
}

// clientTimeout is the timeout the request's header carries, or 0. Only a
// plausible one is believed (the Go client sends garbage above ~4.29 s).
func clientTimeout(c *rpc.Call) time.Duration {
	if ms := c.Header.ClientTimeoutMS; ms > 0 && ms < 3_600_000 {
		return time.Duration(ms) * time.Millisecond
	}
	return 0
}

// throttleWrite applies the write QPS then size throttles of a primary. It
// returns after any delay; a non-nil error is the answer to send.
func (s *Stub) throttleWrite(ctx context.Context, c *rpc.Call, p *partition, ctl *tableControls, size int) error {
	if ctl.writeQPS == nil && ctl.writeSize == nil {
		return nil
	}
	if pacifica.Status(p.status.Load()) != pacifica.StatusPrimary {
		return nil // refused as not the primary right after, uncounted
	}
	now, timeout := time.Now(), clientTimeout(c)
	for _, t := range []struct {
		ctl   *throttle.Controller
		units uint64
	}{{ctl.writeQPS, 1}, {ctl.writeSize, uint64(size)}} {
		if t.ctl == nil {
			continue
		}
		if err := s.throttled(ctx, p, "write", t.ctl, now, t.units, timeout); err != nil {
			s.metrics.writeFailed.Inc()
			s.metrics.writeBusy.Inc()
			return err
		}
	}
	return nil
}

// throttled runs one controller: it waits out a delay (the request then
// passes: upstream re-executes a delayed request with throttling bypassed),
// and for a reject waits its time then answers ERR_BUSY.
func (s *Stub) throttled(ctx context.Context, p *partition, kind string, ctl *throttle.Controller, now time.Time, units uint64, timeout time.Duration) error {
	outcome, wait := ctl.Control(now, units, timeout)
	switch outcome {
	case throttle.Delay:
		s.metrics.entity(p).Counter("throttling_delayed_" + kind + "_requests").Inc()
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	case throttle.Reject:
		s.metrics.entity(p).Counter("throttling_rejected_" + kind + "_requests").Inc()
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
		return rpc.NewError(base.ErrBusy)
	}
	return nil
}

// throttleRead applies the read controls before a read is served: the QPS
// throttle of ordinary reads (before the primary check, as upstream), the
// backup-request throttle, whose rejects go unanswered, and the admission of
// the read-bytes bucket.
func (s *Stub) throttleRead(ctx context.Context, c *rpc.Call, p *partition, ctl *tableControls) error {
	now, timeout := time.Now(), clientTimeout(c)
	if c.Header.IsBackupRequest {
		if ctl.backupQPS != nil {
			if err := s.throttled(ctx, p, "backup", ctl.backupQPS, now, 1, timeout); err != nil {
				s.metrics.readFailed.Inc()
				if rpc.ErrorCode(err) == base.ErrBusy {
					return rpc.ErrNoReply
				}
				return err
			}
		}
	} else if ctl.readQPS != nil {
		if err := s.throttled(ctx, p, "read", ctl.readQPS, now, 1, timeout); err != nil {
			s.metrics.readFailed.Inc()
			s.metrics.readBusy.Inc()
			return err
		}
	}
	if ctl.readBytes != nil && !ctl.readBytes.Admit(now) {
		s.metrics.entity(p).Counter("throttling_rejected_read_requests").Inc()
		s.metrics.readFailed.Inc()
		s.metrics.readBusy.Inc()
		return rpc.NewError(base.ErrBusy)
	}
	return nil
}

// afterRead records a served read: its bytes and capacity units in the
// metrics, and its bytes in the read-bytes bucket when the table has one.
func (s *Stub) afterRead(p *partition, ctl *tableControls, req, resp any) {
	op, n := readSize(req, resp)
	if op != "" {
		s.metrics.entity(p).Counter(op + "_bytes").Add(int64(n))
	}
	s.countReadUnits(p, resp, n)
	if ctl.readBytes != nil && n > 0 {
		ctl.readBytes.Consume(time.Now(), uint64(n))
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
