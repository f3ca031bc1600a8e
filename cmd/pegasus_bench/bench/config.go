package bench

import (
	"fmt"
	"strconv"
	"time"
)

// Workload names a kind of run.
type Workload string

// The workloads.
const (
	// Fill writes every record of the key space once, in index order spread over
	// the callers, or until Config.Duration.
	Fill Workload = "fill"
	// Read reads uniformly random records for Config.Duration.
	Read Workload = "read"
	// Write overwrites uniformly random records for Config.Duration: the timed write
	// phase, whose length does not depend on how fast the key space fills.
	Write Workload = "write"
	// Mixed reads (with probability Config.ReadRatio) or writes uniformly random
	// records for Config.Duration.
	Mixed Workload = "mixed"
)

// ParseWorkload checks a workload name.
func ParseWorkload(s string) (Workload, error) {
	switch w := Workload(s); w {
	case Fill, Read, Write, Mixed:
		return w, nil
	}
	return "", fmt.Errorf("unknown workload %q (want fill, read, write or mixed)", s)
}

// Config describes one run.
type Config struct {
	Workload Workload
	// ReadRatio is the share of reads in the mixed workload, in [0, 1].
	ReadRatio float64
	// ValueSize is the size of every written value in bytes.
	ValueSize int
	// Keys is the size of the key space.
	Keys int
	// HashKeys is the number of distinct hash keys (see the package doc); 0 or more
	// than Keys means one per record.
	HashKeys int
	// Concurrency is the number of callers, each with at most one operation in flight.
	Concurrency int
	// Duration bounds the run; a fill also ends when every record is written. Fill
	// may use 0 for no bound.
	Duration time.Duration
	// Seed makes the random key choices and values reproducible.
	Seed uint64
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	if _, err := ParseWorkload(string(c.Workload)); err != nil {
		return err
	}
	switch {
	case c.ReadRatio < 0 || c.ReadRatio > 1:
		return fmt.Errorf("read ratio %v is outside [0, 1]", c.ReadRatio)
	case c.ValueSize < 0:
		return fmt.Errorf("negative value size %d", c.ValueSize)
	case c.Keys <= 0:
		return fmt.Errorf("key space must hold at least one key, got %d", c.Keys)
	case c.HashKeys < 0:
		return fmt.Errorf("negative hash key count %d", c.HashKeys)
	case c.Concurrency <= 0:
		return fmt.Errorf("concurrency must be positive, got %d", c.Concurrency)
	case c.Duration < 0:
		return fmt.Errorf("negative duration %v", c.Duration)
	case c.Duration == 0 && c.Workload != Fill:
		return fmt.Errorf("the %s workload needs a positive duration", c.Workload)
	}
	return nil
}

// layout maps record indexes to keys.
type layout struct {
	hashKeys int
	// wide is set when several records share a hash key, which then need distinct
	// sort keys.
	wide bool
}

func (c Config) layout() layout {
	if c.HashKeys <= 0 || c.HashKeys >= c.Keys {
		return layout{hashKeys: c.Keys}
	}
	return layout{hashKeys: c.HashKeys, wide: true}
}

// key appends the hash key and sort key of record i to the given buffers, which the
// caller reuses so that building keys does not allocate on every operation.
func (l layout) key(i int, hk, sk []byte) (hashKey, sortKey []byte) {
	hk = strconv.AppendInt(append(hk[:0], "bench"...), int64(i%l.hashKeys), 10)
	sk = append(sk[:0], 's')
	if l.wide {
		sk = strconv.AppendInt(sk, int64(i/l.hashKeys), 10)
	}
	return hk, sk
}
