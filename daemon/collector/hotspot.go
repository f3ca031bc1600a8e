package collector

import (
	"math"
	"sort"
)

// rateKind separates reads from writes: a partition can be hot for either.
type rateKind int

const (
	readKind rateKind = iota
	writeKind
	numKinds
)

func (k rateKind) String() string {
	return [...]string{"read", "write"}[k]
}

// hotspotConfig tunes the detector.
type hotspotConfig struct {
	// History is how many rounds of per-partition rates are kept per table
	// ([pegasus.collector] max_hotspot_store_size).
	History int
	// Threshold is the z-score from which a partition is hot
	// (hot_partition_threshold).
	Threshold float64
	// MinRate is the rate (operations per second) below which a partition is
	// never hot, whatever its score: on an idle table a handful of requests
	// would otherwise stand out.
	MinRate float64
}

// minStddevShare is the smallest standard deviation a baseline is given, as a
// share of its mean. Partitions of a busy, evenly loaded table have nearly equal
// rates; without a floor a partition 5 % above the others would score as an
// outlier. With it, a score of 3 needs at least 1.75 times the others' mean.
const minStddevShare = 0.25

// PartitionScore is one partition's standing for one kind of operation.
type PartitionScore struct {
	Partition int     `json:"partition"`
	Rate      float64 `json:"ops_per_second"`
	Score     float64 `json:"score"`
	Hot       bool    `json:"hot"`
	// Consecutive counts the rounds in a row the partition has been hot.
	Consecutive int `json:"consecutive"`
}

// hotTable is the rate history of one table.
type hotTable struct {
	partitions int
	// rounds[kind] holds the last rounds of rates, oldest first; each round
	// has one rate per partition.
	rounds [numKinds][][]float64
	streak [numKinds][]int
}

// hotspotDetector flags partitions whose rate stands out from the rest of
// their table. It does no I/O and is not safe for concurrent use.
type hotspotDetector struct {
	cfg    hotspotConfig
	tables map[int32]*hotTable
}

func newHotspotDetector(cfg hotspotConfig) *hotspotDetector {
	if cfg.History <= 0 {
		cfg.History = 1
	}
	return &hotspotDetector{cfg: cfg, tables: map[int32]*hotTable{}}
}

// observe adds one round of per-partition rates of table appID (rates[kind]
// has one entry per partition) and scores every partition. A table whose
// partition count changed starts a new history.
func (h *hotspotDetector) observe(appID int32, rates [numKinds][]float64) [numKinds][]PartitionScore {
	n := len(rates[readKind])
	t := h.tables[appID]
	if t == nil || t.partitions != n {
		t = &hotTable{partitions: n}
		for k := range numKinds {
			t.streak[k] = make([]int, n)
		}
		h.tables[appID] = t
	}
	var out [numKinds][]PartitionScore
	for k := range numKinds {
		round := make([]float64, n)
		copy(round, rates[k])
		t.rounds[k] = append(t.rounds[k], round)
		if len(t.rounds[k]) > h.cfg.History {
			t.rounds[k] = t.rounds[k][len(t.rounds[k])-h.cfg.History:]
		}
		scores := zScores(t.rounds[k])
		out[k] = make([]PartitionScore, n)
		for p := range n {
			s := PartitionScore{Partition: p, Rate: round[p], Score: scores[p]}
			s.Hot = s.Score >= h.cfg.Threshold && s.Rate >= h.cfg.MinRate
			if s.Hot {
				t.streak[k][p]++
			} else {
				t.streak[k][p] = 0
			}
			s.Consecutive = t.streak[k][p]
			out[k][p] = s
		}
	}
	return out
}

// forget drops the history of tables not in keep (dropped tables).
func (h *hotspotDetector) forget(keep map[int32]bool) {
	for id := range h.tables {
		if !keep[id] {
			delete(h.tables, id)
		}
	}
}

// zScores scores the latest rate of every partition against the rates of the
// table's other partitions over every stored round: (x - mean) / stddev, with
// the standard deviation floored (minStddevShare of the mean, and at least one
// operation per second). Leaving the partition itself out of its baseline keeps
// a lone hot partition from raising the mean and deviation it is measured
// against, which with few partitions would hide it.
func zScores(rounds [][]float64) []float64 {
	if len(rounds) == 0 {
		return nil
	}
	n := len(rounds[0])
	out := make([]float64, n)
	if n < 2 {
		return out
	}
	sum, sumSq := make([]float64, n), make([]float64, n)
	var totalSum, totalSq float64
	for _, r := range rounds {
		for p, v := range r {
			sum[p] += v
			sumSq[p] += v * v
			totalSum += v
			totalSq += v * v
		}
	}
	latest := rounds[len(rounds)-1]
	others := float64(len(rounds) * (n - 1))
	for p := range n {
		mean := (totalSum - sum[p]) / others
		variance := max(0, (totalSq-sumSq[p])/others-mean*mean)
		sd := max(math.Sqrt(variance), minStddevShare*mean, 1)
		out[p] = (latest[p] - mean) / sd
	}
	return out
}

// hotList returns the hot partitions of scores, highest score first.
func hotList(scores []PartitionScore) []PartitionScore {
	var out []PartitionScore
	for _, s := range scores {
		if s.Hot {
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	return out
}
