package agent

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestModuleDepends(t *testing.T) {
	for _, tc := range []struct {
		name string
		ko   string
		want []string
	}{
		{"several", "\x7fELF...\x00license=GPL\x00depends=udp_tunnel,curve25519-x86_64\x00name=wireguard\x00", []string{"udp_tunnel", "curve25519-x86_64"}},
		{"none", "\x00license=GPL\x00depends=\x00name=virtio\x00", nil},
		{"no entry", "\x00license=GPL\x00name=x\x00", nil},
		{"at the end", "\x00depends=a", []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := moduleDepends([]byte(tc.ko)); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestLoadWithDeps loads modules in dependency order, each once, with
// dashes and underscores as one, skipping what the kit lacks.
func TestLoadWithDeps(t *testing.T) {
	dir := t.TempDir()
	mods := map[string]string{
		"wireguard.ko":     "udp_tunnel,chacha-x86_64,builtin_thing",
		"udp_tunnel.ko":    "",
		"chacha-x86_64.ko": "libchacha",
		"libchacha.ko":     "",
		"virtio_net.ko":    "virtio,net_failover",
		"virtio.ko":        "",
		"net_failover.ko":  "failover",
		"failover.ko":      "",
		"loop_a.ko":        "loop_b",
		"loop_b.ko":        "loop_a",
		"not-a-module.txt": "",
	}
	for name, deps := range mods {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("\x00license=GPL\x00depends="+deps+"\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := moduleFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["chacha_x86_64"]; !ok || len(files) != len(mods)-1 {
		t.Fatalf("files = %v", files)
	}
	for _, tc := range []struct {
		name   string
		loaded []string // already loaded (at boot)
		load   []string
		want   []string
	}{
		{"deps first", nil, []string{"wireguard"}, []string{"udp_tunnel.ko", "libchacha.ko", "chacha-x86_64.ko", "wireguard.ko"}},
		{"each once", []string{"virtio"}, []string{"virtio_net", "wireguard", "virtio_net"},
			[]string{"failover.ko", "net_failover.ko", "virtio_net.ko", "udp_tunnel.ko", "libchacha.ko", "chacha-x86_64.ko", "wireguard.ko"}},
		{"absent is skipped", nil, []string{"virtiofs"}, nil},
		{"a cycle ends", nil, []string{"loop_a"}, []string{"loop_b.ko", "loop_a.ko"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := map[string]bool{}
			for _, n := range tc.loaded {
				done[n] = true
			}
			var got []string
			load := func(p string) error { got = append(got, filepath.Base(p)); return nil }
			for _, n := range tc.load {
				if err := loadWithDeps(files, n, done, load); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("loaded %q, want %q", got, tc.want)
			}
		})
	}
}
