package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramSmallValuesExact(t *testing.T) {
	h := NewHistogram()
	for v := int64(0); v < 2*subBuckets; v++ {
		h.Record(v)
	}
	n := h.Count()
	for v := int64(0); v < 2*subBuckets; v++ {
		// The (v+1)-th smallest value is v.
		q := float64(v+1) / float64(n)
		if got := h.Quantile(q); got != v {
			t.Fatalf("Quantile(%v) = %d, want %d", q, got, v)
		}
	}
	if h.Min() != 0 || h.Max() != 2*subBuckets-1 {
		t.Fatalf("min %d max %d", h.Min(), h.Max())
	}
}

func TestBucketBounds(t *testing.T) {
	values := []int64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 1<<20 - 1, 1<<20 + 1, math.MaxInt64, math.MaxInt64 - 1}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		values = append(values, r.Int64N(math.MaxInt64>>uint(r.IntN(63))))
	}
	for _, v := range values {
		b := bucketOf(v)
		if b < 0 || b >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d out of [0, %d)", v, b, numBuckets)
		}
		lo, width := bucketRange(b)
		if v < lo || v-lo >= width {
			t.Fatalf("value %d not in bucket %d = [%d, %d+%d)", v, b, lo, lo, width)
		}
		if width > 1 && width > v/subBuckets {
			t.Fatalf("bucket of %d is %d wide, more than 1/%d of the value", v, width, subBuckets)
		}
		if b > 0 {
			// Buckets are contiguous: the previous one ends where this one starts.
			plo, pw := bucketRange(b - 1)
			if plo+pw != lo {
				t.Fatalf("bucket %d ends at %d, bucket %d starts at %d", b-1, plo+pw, b, lo)
			}
		}
	}
}

// TestQuantileAccuracy compares the histogram's quantiles with the exact ones of a
// sorted copy: a reported quantile is never below the true one, and above it by less
// than the bucket precision.
func TestQuantileAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	h := NewHistogram()
	var all []int64
	for range 200000 {
		// Log-normal-ish latencies from ~1 us to ~1 s.
		v := int64(math.Exp(7 + 3*r.NormFloat64()))
		h.Record(v)
		all = append(all, v)
	}
	slices.Sort(all)
	for _, q := range []float64{0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
		rank := int(math.Ceil(q * float64(len(all))))
		want := all[rank-1]
		got := h.Quantile(q)
		if got < want || float64(got-want) > float64(want)/subBuckets+1 {
			t.Errorf("Quantile(%v) = %d, exact %d", q, got, want)
		}
	}
	if h.Quantile(1) != all[len(all)-1] || h.Max() != all[len(all)-1] || h.Min() != all[0] {
		t.Errorf("extremes: q1 %d max %d min %d, exact %d and %d", h.Quantile(1), h.Max(), h.Min(), all[len(all)-1], all[0])
	}
	var sum float64
	for _, v := range all {
		sum += float64(v)
	}
	if mean := sum / float64(len(all)); math.Abs(h.Mean()-mean) > 1e-6*mean {
		t.Errorf("mean %v, exact %v", h.Mean(), mean)
	}
}

func TestQuantilesOrdered(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 50 {
		h := NewHistogram()
		n := 1 + r.IntN(5000)
		for range n {
			h.Record(r.Int64N(int64(1) << uint(1+r.IntN(40))))
		}
		prev := int64(-1)
		for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
			v := h.Quantile(q)
			if v < prev {
				t.Fatalf("trial %d: quantile %v = %d below the previous %d", trial, q, v, prev)
			}
			if v < h.Min() || v > h.Max() {
				t.Fatalf("trial %d: quantile %v = %d outside [%d, %d]", trial, q, v, h.Min(), h.Max())
			}
			prev = v
		}
	}
}

func TestHistogramMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	whole := NewHistogram()
	parts := []*Histogram{NewHistogram(), NewHistogram(), NewHistogram(), NewHistogram()}
	for i := range 40000 {
		v := r.Int64N(50 * int64(time.Millisecond))
		whole.Record(v)
		// Part 3 stays empty: merging an empty histogram must not disturb min.
		parts[i%3].Record(v)
	}
	merged := NewHistogram()
	for _, p := range parts {
		merged.Merge(p)
	}
	if !slices.Equal(merged.counts, whole.counts) || merged.Count() != whole.Count() ||
		merged.Min() != whole.Min() || merged.Max() != whole.Max() || math.Abs(merged.Mean()-whole.Mean()) > 1e-6*whole.Mean() {
		t.Fatalf("merged histogram differs: count %d/%d min %d/%d max %d/%d mean %v/%v",
			merged.Count(), whole.Count(), merged.Min(), whole.Min(), merged.Max(), whole.Max(), merged.Mean(), whole.Mean())
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		if merged.Quantile(q) != whole.Quantile(q) {
			t.Errorf("Quantile(%v): merged %d, whole %d", q, merged.Quantile(q), whole.Quantile(q))
		}
	}
}

func TestHistogramEdges(t *testing.T) {
	h := NewHistogram()
	if h.Count() != 0 || h.Quantile(0.5) != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatalf("empty histogram: count %d p50 %d min %d max %d mean %v", h.Count(), h.Quantile(0.5), h.Min(), h.Max(), h.Mean())
	}
	h.Record(-5) // a clock step backwards must not corrupt the histogram
	h.Record(math.MaxInt64)
	if h.Min() != 0 || h.Max() != math.MaxInt64 || h.Quantile(0.5) != 0 || h.Quantile(1) != math.MaxInt64 {
		t.Fatalf("min %d max %d p50 %d p100 %d", h.Min(), h.Max(), h.Quantile(0.5), h.Quantile(1))
	}
	one := NewHistogram()
	one.RecordDuration(1234567 * time.Nanosecond)
	for _, q := range []float64{0, 0.5, 0.999, 1} {
		if got := one.QuantileDuration(q); got != 1234567 {
			t.Errorf("single value: Quantile(%v) = %v", q, got)
		}
	}
}
