// Package throttle implements the table-level request throttling of Pegasus
// table envs (replica.write_throttling, replica.read_throttling,
// replica.write_throttling_by_size, replica.backup_request_throttling and
// replica.read_throttling_by_size): the value grammar, shared by the meta
// server's env validation and the replica servers, and the controllers a
// replica consults per request.
//
// The controllers are plain state machines: the caller passes the time in, so
// that they are tested without clocks, and holds whatever lock it needs (a
// Controller is safe for concurrent use; see its doc).
package throttle

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Spec is a parsed throttling value: a delay threshold and a reject
// threshold, each with its wait. Units are table-wide per second (requests,
// or bytes for the _by_size keys); 0 means that action is off.
type Spec struct {
	DelayUnits  uint64
	DelayWait   time.Duration
	RejectUnits uint64
	RejectWait  time.Duration
}

// Enabled reports whether the spec throttles at all.
func (s Spec) Enabled() bool { return s.DelayUnits > 0 || s.RejectUnits > 0 }

// Parse reads a value of the throttling grammar: a comma-separated list of
// <units>*delay*<ms> and <units>*reject*<ms> items, at most one of each, units
// an unsigned integer with an optional K (x1024) or M (x1048576) suffix.
// Surrounding blanks and empty items are ignored; an empty list is an error.
func Parse(value string) (Spec, error) {
	var spec Spec
	var sawDelay, sawReject bool
	items := 0
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		items++
		f := strings.Split(item, "*")
		if len(f) != 3 {
			return Spec{}, fmt.Errorf("%q: want <units>*delay|reject*<ms>", item)
		}
		units, err := parseUnits(f[0])
		if err != nil {
			return Spec{}, fmt.Errorf("%q: %w", item, err)
		}
		ms, err := strconv.ParseUint(f[2], 10, 63)
		if err != nil || ms > math.MaxInt64/uint64(time.Millisecond) {
			return Spec{}, fmt.Errorf("%q: %q is not a number of milliseconds", item, f[2])
		}
		wait := time.Duration(ms) * time.Millisecond
		switch f[1] {
		case "delay":
			if sawDelay {
				return Spec{}, errors.New("duplicate 'delay' config")
			}
			sawDelay, spec.DelayUnits, spec.DelayWait = true, units, wait
		case "reject":
			if sawReject {
				return Spec{}, errors.New("duplicate 'reject' config")
			}
			sawReject, spec.RejectUnits, spec.RejectWait = true, units, wait
		default:
			return Spec{}, fmt.Errorf("%q: %q is neither delay nor reject", item, f[1])
		}
	}
	if items == 0 {
		return Spec{}, errors.New("The value shouldn't be empty")
	}
	return spec, nil
}

func parseUnits(s string) (uint64, error) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an unsigned number (K and M suffixes allowed)", s)
	}
	if n > math.MaxUint64/mult {
		return 0, fmt.Errorf("%q%s overflows", s, suffix(mult))
	}
	return n * mult, nil
}

func suffix(mult uint64) string {
	switch mult {
	case 1 << 10:
		return "K"
	case 1 << 20:
		return "M"
	}
	return ""
}

// ParseRate reads replica.read_throttling_by_size: a plain positive number of
// bytes per second (K and M suffixes allowed) or the throttling grammar, of
// which only the reject item counts. A value with a delay item only is valid
// and throttles nothing (rate 0); a reject of 0, or a plain 0, is an error.
func ParseRate(value string) (uint64, error) {
	v := strings.TrimSpace(value)
	if !strings.Contains(v, "*") {
		n, err := parseUnits(v)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, errors.New("the rate should be greater than 0")
		}
		return n, nil
	}
	spec, err := Parse(v)
	if err != nil {
		return 0, err
	}
	if spec.RejectUnits == 0 && strings.Contains(v, "reject") {
		return 0, errors.New("reject value should be greater than 0")
	}
	return spec.RejectUnits, nil
}

// Outcome is what a controller decided for one request.
type Outcome int

const (
	Pass Outcome = iota
	Delay
	Reject
)

func (o Outcome) String() string {
	switch o {
	case Delay:
		return "delay"
	case Reject:
		return "reject"
	}
	return "pass"
}

// Controller enforces one Spec on one replica. The table-wide units are
// shared among the partitions: each replica allows units/partitions + 1 per
// second, as upstream does, since only one replica of a partition (its
// primary) serves that partition's writes and ordinary reads.
//
// Counting is a fixed one-second window keyed by the wall-clock second: the
// count restarts whenever a request falls into another second than the last.
// A rejected request's units are taken back; a delayed one's stay counted.
type Controller struct {
	spec        Spec
	delayLimit  uint64 // 0: no delay
	rejectLimit uint64 // 0: no reject

	mu     sync.Mutex
	second int64
	count  uint64
}

// NewController returns the controller of spec for one of partitions replicas.
func NewController(spec Spec, partitions int) *Controller {
	n := uint64(max(partitions, 1))
	c := &Controller{spec: spec}
	if spec.DelayUnits > 0 {
		c.delayLimit = spec.DelayUnits/n + 1
	}
	if spec.RejectUnits > 0 {
		c.rejectLimit = spec.RejectUnits/n + 1
	}
	return c
}

// Spec returns what the controller enforces.
func (c *Controller) Spec() Spec { return c.spec }

// Control counts units for a request at now and decides its outcome, with
// the wait to apply: the configured one, capped at half of clientTimeout when
// that is positive (a wait the client would not see the end of only turns
// the throttle into timeouts).
func (c *Controller) Control(now time.Time, units uint64, clientTimeout time.Duration) (Outcome, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if sec := now.Unix(); sec != c.second {
		c.second, c.count = sec, 0
	}
	c.count += units
	switch {
	case c.rejectLimit > 0 && c.count > c.rejectLimit:
		c.count -= units
		return Reject, capWait(c.spec.RejectWait, clientTimeout)
	case c.delayLimit > 0 && c.count > c.delayLimit:
		return Delay, capWait(c.spec.DelayWait, clientTimeout)
	}
	return Pass, 0
}

func capWait(wait, clientTimeout time.Duration) time.Duration {
	if clientTimeout > 0 && wait > clientTimeout/2 {
		return clientTimeout / 2
	}
	return wait
}

// Bucket is the token bucket of replica.read_throttling_by_size on one
// replica: rate = burst = the table-wide bytes per second divided by the
// partition count. A read is admitted while the bucket holds any token, and
// pays for what it read afterwards, so a large read may drive the bucket
// negative and hold back the reads after it until it refills.
type Bucket struct {
	rate float64 // tokens (bytes) per second, also the burst

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewBucket returns a full bucket of bytesPerSecond (table-wide) for one of
// partitions replicas.
func NewBucket(bytesPerSecond uint64, partitions int) *Bucket {
	rate := float64(bytesPerSecond) / float64(max(partitions, 1))
	return &Bucket{rate: rate, tokens: rate}
}

// Rate returns the bucket's per-replica rate in bytes per second.
func (b *Bucket) Rate() float64 { return b.rate }

func (b *Bucket) refill(now time.Time) {
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if b.last.IsZero() || now.After(b.last) {
		b.last = now
	}
}

// Admit reports whether a read may start at now.
func (b *Bucket) Admit(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	return b.tokens > 0
}

// Consume pays for bytes read at now.
func (b *Bucket) Consume(now time.Time, bytes uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	b.tokens -= float64(bytes)
}
