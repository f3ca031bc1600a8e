package collector

import (
	"math"
	"testing"
)

func rates(read, write []float64) [numKinds][]float64 {
	return [numKinds][]float64{read, write}
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestHotspotEvenLoadIsNotHot(t *testing.T) {
	h := newHotspotDetector(hotspotConfig{History: 10, Threshold: 3, MinRate: 100})
	for round := range 10 {
		read := []float64{1000, 1010, 990, 1005, 995, 1000, 1020, 980}
		// A partition 4 % above the others is not an outlier: the
		// deviation floor (a quarter of the mean) keeps its score small.
		read[round%8] = 1040
		s := h.observe(1, rates(read, repeat(0, 8)))
		for k := range numKinds {
			if hot := hotList(s[k]); len(hot) != 0 {
				t.Fatalf("round %d: %s hot %+v", round, k, hot)
			}
		}
	}
}

func TestHotspotSkewOfSmallTablesIsNotHot(t *testing.T) {
	h := newHotspotDetector(hotspotConfig{History: 10, Threshold: 3, MinRate: 100})
	// Two partitions with ordinary hash-key skew: one and a half times the
	// other is not a hotspot; twice is.
	s := h.observe(1, rates([]float64{1000, 1500}, []float64{1000, 2100}))
	if s[readKind][1].Hot || !s[writeKind][1].Hot {
		t.Errorf("read %+v write %+v", s[readKind][1], s[writeKind][1])
	}
}

func TestHotspotOneHotPartition(t *testing.T) {
	h := newHotspotDetector(hotspotConfig{History: 5, Threshold: 3, MinRate: 100})
	// Four partitions: with the partition inside its own baseline the best
	// score one outlier among n can reach is sqrt(n-1), under 3 here.
	for round := 1; round <= 3; round++ {
		read := []float64{12, 9, 2000, 11}
		write := []float64{5, 6, 4, 400}
		s := h.observe(7, rates(read, write))
		hot := hotList(s[readKind])
		if len(hot) != 1 || hot[0].Partition != 2 || hot[0].Consecutive != round || hot[0].Rate != 2000 {
			t.Fatalf("round %d: read hot = %+v", round, hot)
		}
		if hw := hotList(s[writeKind]); len(hw) != 1 || hw[0].Partition != 3 {
			t.Fatalf("round %d: write hot = %+v", round, hw)
		}
		for _, p := range s[readKind] {
			if p.Partition != 2 && (p.Hot || p.Score > 1) {
				t.Errorf("round %d: cold partition scored %+v", round, p)
			}
		}
	}
	// The load moves away: the partition cools down at once.
	s := h.observe(7, rates([]float64{10, 10, 10, 10}, []float64{5, 5, 5, 5}))
	if hot := hotList(s[readKind]); len(hot) != 0 || s[readKind][2].Consecutive != 0 {
		t.Errorf("after the load stopped: %+v", s[readKind])
	}
}

func TestHotspotMinRate(t *testing.T) {
	h := newHotspotDetector(hotspotConfig{History: 5, Threshold: 3, MinRate: 100})
	s := h.observe(1, rates([]float64{0, 0, 60, 0}, repeat(0, 4)))
	if s[readKind][2].Score < 3 {
		t.Fatalf("score = %v, want an outlier", s[readKind][2].Score)
	}
	if s[readKind][2].Hot {
		t.Error("a partition under the minimum rate is hot")
	}
}

func TestHotspotHistoryAndReset(t *testing.T) {
	h := newHotspotDetector(hotspotConfig{History: 3, Threshold: 3, MinRate: 1})
	for range 5 {
		h.observe(1, rates(repeat(10, 4), repeat(10, 4)))
	}
	if n := len(h.tables[1].rounds[readKind]); n != 3 {
		t.Errorf("kept %d rounds, want 3", n)
	}
	// A new partition count (table recreated or split) starts over.
	h.observe(1, rates(repeat(10, 8), repeat(10, 8)))
	if n := len(h.tables[1].rounds[readKind]); n != 1 {
		t.Errorf("after a partition count change kept %d rounds, want 1", n)
	}
	h.observe(2, rates(repeat(1, 2), repeat(1, 2)))
	h.forget(map[int32]bool{2: true})
	if _, ok := h.tables[1]; ok {
		t.Error("a dropped table's history was kept")
	}
	// One partition has no others to stand out from.
	if s := h.observe(3, rates([]float64{5000}, []float64{5000})); s[readKind][0].Hot || s[readKind][0].Score != 0 {
		t.Errorf("single partition: %+v", s[readKind][0])
	}
}

// TestZScoresMatchTheDefinition checks the running sums against a direct
// computation over the other partitions' samples.
func TestZScoresMatchTheDefinition(t *testing.T) {
	rounds := [][]float64{{10, 20, 30, 400}, {12, 18, 35, 500}, {8, 25, 28, 450}}
	got := zScores(rounds)
	for p := range 4 {
		var xs []float64
		for _, r := range rounds {
			for q, v := range r {
				if q != p {
					xs = append(xs, v)
				}
			}
		}
		var mean, sq float64
		for _, x := range xs {
			mean += x
		}
		mean /= float64(len(xs))
		for _, x := range xs {
			sq += (x - mean) * (x - mean)
		}
		sd := max(math.Sqrt(sq/float64(len(xs))), minStddevShare*mean, 1)
		want := (rounds[2][p] - mean) / sd
		if math.Abs(got[p]-want) > 1e-9 {
			t.Errorf("z[%d] = %v, want %v", p, got[p], want)
		}
	}
}
