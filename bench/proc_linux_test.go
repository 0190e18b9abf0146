package main

import (
	"os"
	"testing"
)

func TestParsePPID(t *testing.T) {
	tests := []struct {
		stat string
		want int
		ok   bool
	}{
		{"42 (arca) S 7 42 42 0", 7, true},
		{"43 (a b) c) R 1 43 43 0", 1, true},
		{"garbage", 0, false},
		{"44 (x)", 0, false},
	}
	for _, tt := range tests {
		got, ok := parsePPID([]byte(tt.stat))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parsePPID(%q) = %d, %v; want %d, %v", tt.stat, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDescendants(t *testing.T) {
	procs := map[int]procInfo{
		1: {ppid: 0}, 10: {ppid: 1}, 11: {ppid: 10}, 12: {ppid: 11},
		20: {ppid: 1}, 21: {ppid: 20}, 30: {ppid: 1},
	}
	tests := []struct {
		name  string
		roots []int
		want  []int
	}{
		{"subtree", []int{10}, []int{10, 11, 12}},
		{"two roots", []int{11, 20}, []int{11, 12, 20, 21}},
		{"leaf", []int{30}, []int{30}},
		{"overlapping roots", []int{10, 12}, []int{10, 11, 12}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := descendants(procs, tt.roots)
			if len(got) != len(tt.want) {
				t.Fatalf("descendants(%v) = %v, want %v", tt.roots, got, tt.want)
			}
			for _, pid := range tt.want {
				if !got[pid] {
					t.Errorf("descendants(%v) lacks %d", tt.roots, pid)
				}
			}
		})
	}
}

func TestMeasureTreeSelf(t *testing.T) {
	m, err := measureTree(os.Getpid(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.DaemonRSS <= 0 || m.RSS < m.DaemonRSS || m.PSS <= 0 || m.Procs < 1 {
		t.Errorf("measureTree(self) = %+v", m)
	}
	if _, err := measureTree(1<<30, nil); err == nil {
		t.Error("measureTree of a pid that cannot exist did not fail")
	}
}
