package freshness

import (
	"math"
	"slices"
	"time"
)

// Summary is the distribution of a set of stalenesses.
type Summary struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

// Summarize sorts ds in place and returns its percentiles.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	slices.Sort(ds)
	return Summary{
		N:   len(ds),
		P50: Percentile(ds, 50),
		P90: Percentile(ds, 90),
		P99: Percentile(ds, 99),
		Max: ds[len(ds)-1],
	}
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted: the smallest value that at least p% of the values do not exceed.
// It is an observed value, never an interpolation, so a p99 of 11 s means
// that 1% of the changes waited 11 s or more. Empty input gives 0.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
