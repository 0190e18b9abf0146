package vm

import (
	"slices"
	"strings"
	"testing"
)

func TestImageKey(t *testing.T) {
	chain := strings.Repeat("ab", 32)
	other := strings.Repeat("cd", 32)
	for _, tc := range []struct {
		name   string
		layers []string
		want   string // "" means a paths- hash
	}{
		{"store layout", []string{"/r/layers/" + other + "/diff", "/r/layers/" + chain + "/diff"}, chain},
		{"bare chain dir", []string{"/r/layers/" + chain}, chain},
		{"trailing slash", []string{"/r/layers/" + chain + "/diff/"}, chain},
		{"ad hoc dir", []string{"/tmp/x/layer"}, ""},
	} {
		got := ImageKey(tc.layers)
		if tc.want != "" && got != tc.want {
			t.Errorf("%s: imageKey = %q, want %q", tc.name, got, tc.want)
		}
		if tc.want == "" && (!strings.HasPrefix(got, "paths-") || got != ImageKey(slices.Clone(tc.layers))) {
			t.Errorf("%s: imageKey = %q, want a stable paths- hash", tc.name, got)
		}
	}
	if ImageKey([]string{"/a"}) == ImageKey([]string{"/b"}) {
		t.Error("different ad hoc layers share a key")
	}
}
