package bench

import (
	"math"
	"math/bits"
	"time"
)

// subBucketBits sets the histogram's precision: every power-of-two range of values
// is split into 2^subBucketBits equal buckets, so a recorded latency is known to
// within 1/128 (0.8%) of itself, and values below 256 ns exactly.
const subBucketBits = 7

const (
	subBuckets = 1 << subBucketBits
	// A positive int64 has at most 63 significant bits: ranges [2^k, 2^(k+1)) for
	// k = subBucketBits..62 each take subBuckets buckets after the exact [0, 2^(subBucketBits+1)).
	numBuckets = (63 - subBucketBits + 1) * subBuckets
)

// Histogram is a log-linear latency histogram in the spirit of HdrHistogram: a fixed
// array of counters with constant relative precision over the whole int64 range, so
// recording is O(1) without allocation and two histograms merge by adding counters.
// Quantiles are therefore accurate to the bucket width (< 1% of the value) while
// the count, minimum, maximum and mean are exact. The zero value is not usable; use
// NewHistogram. A Histogram is not safe for concurrent use: give each worker its own
// and Merge them.
type Histogram struct {
	counts   []int64
	total    int64
	sum      float64
	min, max int64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]int64, numBuckets), min: math.MaxInt64}
}

// bucketOf returns the index of the bucket holding v (v >= 0).
func bucketOf(v int64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	// v lies in [2^k, 2^(k+1)) with k > subBucketBits; dropping the low shift bits
	// leaves a top part in [subBuckets, 2*subBuckets).
	shift := bits.Len64(uint64(v)) - 1 - subBucketBits
	top := int(v >> uint(shift))
	return (shift+1)*subBuckets + top - subBuckets
}

// bucketRange returns the smallest value of bucket b and its width.
func bucketRange(b int) (lo, width int64) {
	if b < 2*subBuckets {
		return int64(b), 1
	}
	shift := b/subBuckets - 1
	top := int64(b%subBuckets + subBuckets)
	return top << uint(shift), int64(1) << uint(shift)
}

// Record adds one value; negative values count as 0.
func (h *Histogram) Record(v int64) {
	v = max(v, 0)
	h.counts[bucketOf(v)]++
	h.total++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// RecordDuration adds one latency.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Merge adds every value of o into h.
func (h *Histogram) Merge(o *Histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is the number of recorded values.
func (h *Histogram) Count() int64 { return h.total }

// Min is the smallest recorded value, 0 when empty.
func (h *Histogram) Min() int64 {
	if h.total == 0 {
		return 0
	}
	return h.min
}

// Max is the largest recorded value, 0 when empty.
func (h *Histogram) Max() int64 { return h.max }

// Mean is the average recorded value, 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Quantile returns the value at quantile q (0 < q <= 1): the largest value that
// falls in the same bucket as the ceil(q*count)-th smallest recorded value, capped
// by the exact maximum, so that a reported p99 is never below the true one by more
// than the bucket width and quantiles never decrease as q grows. It returns 0 when
// empty.
func (h *Histogram) Quantile(q float64) int64 {
	if h.total == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := max(int64(math.Ceil(q*float64(h.total))), 1)
	var seen int64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, width := bucketRange(b)
			return min(max(lo+width-1, h.min), h.max)
		}
	}
	return h.max
}

// QuantileDuration is Quantile for latencies.
func (h *Histogram) QuantileDuration(q float64) time.Duration { return time.Duration(h.Quantile(q)) }
