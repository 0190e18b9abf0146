package main

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"single", []float64{7}, 95, 7},
		{"median odd", []float64{1, 2, 3}, 50, 2},
		{"median even interpolates", []float64{1, 2, 3, 4}, 50, 2.5},
		{"p0 is min", []float64{1, 5, 9}, 0, 1},
		{"p100 is max", []float64{1, 5, 9}, 100, 9},
		{"p95 of 1..20", seq(1, 20), 95, 19.05},
		{"p99 of 1..100", seq(1, 100), 99, 99.01},
		{"p95 of two", []float64{10, 20}, 95, 19.5},
		{"below 0 clamps", []float64{3, 4}, -5, 3},
		{"above 100 clamps", []float64{3, 4}, 150, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
	if got := Percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("Percentile(nil) = %v, want NaN", got)
	}
}

func seq(from, to int) []float64 {
	var s []float64
	for i := from; i <= to; i++ {
		s = append(s, float64(i))
	}
	return s
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		want Summary
	}{
		{"empty", nil, Summary{}},
		{"one", []time.Duration{3 * time.Millisecond}, Summary{N: 1, Mean: 3, P50: 3, P95: 3, P99: 3, Min: 3, Max: 3}},
		{"unsorted input", []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond},
			Summary{N: 3, Mean: 20, P50: 20, P95: 29, P99: 29.8, Min: 10, Max: 30}},
		{"sub-millisecond", []time.Duration{500 * time.Microsecond, 1500 * time.Microsecond},
			Summary{N: 2, Mean: 1, P50: 1, P95: 1.45, P99: 1.49, Min: 0.5, Max: 1.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summarize(tt.in)
			if got.N != tt.want.N || !near(got.Mean, tt.want.Mean) || !near(got.P50, tt.want.P50) ||
				!near(got.P95, tt.want.P95) || !near(got.P99, tt.want.P99) || !near(got.Min, tt.want.Min) || !near(got.Max, tt.want.Max) {
				t.Errorf("Summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestSummarizeKeepsInput(t *testing.T) {
	in := []time.Duration{3, 1, 2}
	Summarize(in)
	if in[0] != 3 || in[1] != 1 || in[2] != 2 {
		t.Errorf("Summarize reordered its input: %v", in)
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		a, b, want float64
	}{
		{10, 5, 2},
		{5, 10, 0.5},
		{0, 5, 0},
		{5, 0, 0},
		{math.NaN(), 1, 0},
	}
	for _, tt := range tests {
		if got := ratio(tt.a, tt.b); got != tt.want {
			t.Errorf("ratio(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
