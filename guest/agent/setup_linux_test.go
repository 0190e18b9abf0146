package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/arcavm/arca/guest/vm"
)

func TestOverlayOptions(t *testing.T) {
	tests := []struct {
		name string
		spec vm.RootfsSpec
		want string
	}{
		{"writable", vm.RootfsSpec{Lower: []string{"/l/2", "/l/1"}, Upper: "/c/u", Work: "/c/w"},
			"lowerdir=/l/2:/l/1,upperdir=/c/u,workdir=/c/w"},
		{"read-only", vm.RootfsSpec{Lower: []string{"/l/2", "/l/1"}}, "lowerdir=/l/2:/l/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := overlayOptions(tt.spec); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestShortLinks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "links")
	spec := vm.RootfsSpec{Lower: []string{"/layers/top", "/layers/base"}, Upper: "/c/upper", Work: "/c/work"}
	short, err := shortLinks(spec, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := vm.RootfsSpec{Lower: []string{"0", "1"}, Upper: "u", Work: "w"}
	if !reflect.DeepEqual(short, want) {
		t.Fatalf("got %+v, want %+v", short, want)
	}
	for name, target := range map[string]string{"0": "/layers/top", "1": "/layers/base", "u": "/c/upper", "w": "/c/work"} {
		if got, err := os.Readlink(filepath.Join(dir, name)); err != nil || got != target {
			t.Errorf("link %s -> %q (%v), want %q", name, got, err, target)
		}
	}
}
