package main

import (
	"slices"
	"time"
)

// median of the samples (the mean of the two middle ones for an even count).
func median(samples []float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }
