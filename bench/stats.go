package main

import (
	"math"
	"slices"
	"time"
)

// Summary describes a sample of durations, in milliseconds so the JSON reads
// without unit conversions.
type Summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P95  float64 `json:"p95_ms"`
	P99  float64 `json:"p99_ms"`
	Min  float64 `json:"min_ms"`
	Max  float64 `json:"max_ms"`
}

// Percentile returns the p-th percentile (0..100) of sorted values by linear
// interpolation between the closest ranks (the "R-7" rule of most tools),
// so small samples still give a p95 between their two largest values rather
// than jumping to the maximum. An empty sample gives NaN.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	rank := p / 100 * float64(n-1)
	lo := int(math.Floor(rank))
	hi := min(lo+1, n-1)
	frac := rank - float64(lo)
	return sorted[lo] + frac*(sorted[hi]-sorted[lo])
}

// Summarize sorts a copy of ds and describes it.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	ms := make([]float64, len(ds))
	var sum float64
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
		sum += ms[i]
	}
	slices.Sort(ms)
	return Summary{
		N:    len(ms),
		Mean: sum / float64(len(ms)),
		P50:  Percentile(ms, 50),
		P95:  Percentile(ms, 95),
		P99:  Percentile(ms, 99),
		Min:  ms[0],
		Max:  ms[len(ms)-1],
	}
}

// ratio is a/b, or 0 when either side is missing, so a table cell can say
// "-" instead of Inf or NaN.
func ratio(a, b float64) float64 {
	if a <= 0 || b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return 0
	}
	return a / b
}
