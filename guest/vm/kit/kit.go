// Package kit reads a guest kit (a kernel and the modules its agent loads,
// built from Debian packages by scripts/kit.sh) and packs the initramfs a
// VM boots from. It is plain Go, so every VM driver uses it on every host:
// qemu on Linux, vz on macOS.
package kit

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Kit is a guest kit: a kernel and the modules the agent loads, built from
// Debian packages by scripts/kit.sh.
type Kit struct {
	Dir     string
	Release string   // the kernel's release, e.g. 6.1.0-56-amd64
	Kernel  string   // the ELF vmlinux (booted through its PVH note)
	Boot    []string // module files loaded at boot, in order
	Extra   []string // module files packed but loaded on demand
}

// Kit files.
const (
	kitComplete = ".complete"
	kitRelease  = "release"
	kitKernel   = "vmlinux"
	kitModules  = "modules"
	kitBoot     = "modules.boot"
	kitExtra    = "modules.extra"
)

// Load reads the kit in dir (a "current" link is resolved, so a rebuilt
// kit is not swapped under a running daemon).
func Load(dir string) (*Kit, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("guest kit %s: %w (build it with make kit)", dir, err)
	}
	if _, err := os.Stat(filepath.Join(real, kitComplete)); err != nil {
		return nil, fmt.Errorf("guest kit %s is incomplete (rebuild it with make kit)", dir)
	}
	rel, err := os.ReadFile(filepath.Join(real, kitRelease))
	if err != nil {
		return nil, fmt.Errorf("guest kit %s: %w", dir, err)
	}
	k := &Kit{Dir: real, Release: strings.TrimSpace(string(rel)), Kernel: filepath.Join(real, kitKernel)}
	if k.Release == "" {
		return nil, fmt.Errorf("guest kit %s: empty release", dir)
	}
	if k.Boot, err = readModuleList(filepath.Join(real, kitBoot)); err != nil {
		return nil, fmt.Errorf("guest kit %s: %w", dir, err)
	}
	if k.Extra, err = readModuleList(filepath.Join(real, kitExtra)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("guest kit %s: %w", dir, err)
	}
	for _, f := range append([]string{k.Kernel}, k.ModulePaths()...) {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("guest kit %s: %w", dir, err)
		}
	}
	return k, nil
}

// ModulePaths are the host paths of every module in the kit.
func (k *Kit) ModulePaths() []string {
	var out []string
	for _, m := range append(append([]string{}, k.Boot...), k.Extra...) {
		out = append(out, filepath.Join(k.Dir, kitModules, m))
	}
	return out
}

// readModuleList reads one module file name a line; names must be plain.
func readModuleList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.Contains(l, "/") || !strings.HasSuffix(l, ".ko") {
			return nil, fmt.Errorf("%s: bad module name %q", filepath.Base(path), l)
		}
		out = append(out, l)
	}
	return out, sc.Err()
}
