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

// Kit is a guest kit: a kernel and the modules the agent loads. Either
// Debian's generic kernel with its modules (scripts/kit.sh) or Arca's own
// kernel, compiled from Debian's linux-source with everything built in and
// no modules (scripts/kernel.sh).
type Kit struct {
	Dir     string
	Release string // the kernel's release, e.g. 6.1.0-56-amd64
	// Source is what a compiled kernel was made from, e.g.
	// "linux-source-6.1 6.1.192-3"; "" for Debian's packaged kernel.
	Source string
	// Arch is the guest's architecture: ArchAMD64 or ArchARM64.
	Arch string
	// Kernel is the kernel file: an ELF vmlinux on amd64 (booted through
	// its PVH note), a plain Image on arm64.
	Kernel string
	Boot   []string // module files loaded at boot, in order
	Extra  []string // module files packed but loaded on demand
}

// Guest architectures, as Debian and GOARCH name them.
const (
	ArchAMD64 = "amd64"
	ArchARM64 = "arm64"
)

// Kit files. The kernel's file is named in kitKernelName; kits made
// before it was recorded hold an amd64 vmlinux.
const (
	kitComplete   = ".complete"
	kitRelease    = "release"
	kitArch       = "arch"
	kitKernelName = "kernel"
	kitKernel     = "vmlinux"
	kitModules    = "modules"
	kitBoot       = "modules.boot"
	kitExtra      = "modules.extra"
	kitSource     = "source"
)

// A kit root (KIT_ROOT of the scripts) holds kits and links to them:
// BuiltLink to the kit of the kernel compiled for Arca (make kit), which
// is preferred, and CurrentLink to Debian's (the fallback).
const (
	BuiltLink   = "arca"
	CurrentLink = "current"
)

// Load reads the kit in dir: a kit, a link to one, or a kit root, where
// the kit of the compiled kernel is taken when it is complete and Debian's
// otherwise. Links are resolved, so a rebuilt kit is not swapped under a
// running daemon.
func Load(dir string) (*Kit, error) {
	built, current := filepath.Join(dir, BuiltLink), filepath.Join(dir, CurrentLink)
	if !exists(filepath.Join(dir, kitComplete)) && (exists(built) || exists(current)) {
		k, errB := loadKit(built)
		if errB == nil {
			return k, nil
		}
		k, errC := loadKit(current)
		if errC == nil {
			return k, nil
		}
		if !exists(built) {
			return nil, errC
		}
		return nil, errors.Join(errB, errC)
	}
	return loadKit(dir)
}

// exists tells whether path is there (a link is, even a dangling one).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// loadKit reads the kit in dir, or the one a link names.
func loadKit(dir string) (*Kit, error) {
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
	k := &Kit{Dir: real, Release: strings.TrimSpace(string(rel)), Arch: ArchAMD64, Kernel: filepath.Join(real, kitKernel)}
	if k.Release == "" {
		return nil, fmt.Errorf("guest kit %s: empty release", dir)
	}
	if b, err := os.ReadFile(filepath.Join(real, kitSource)); err == nil {
		k.Source = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(real, kitArch)); err == nil {
		k.Arch = strings.TrimSpace(string(b))
	}
	if k.Arch != ArchAMD64 && k.Arch != ArchARM64 {
		return nil, fmt.Errorf("guest kit %s: unknown architecture %q", dir, k.Arch)
	}
	if b, err := os.ReadFile(filepath.Join(real, kitKernelName)); err == nil {
		name := strings.TrimSpace(string(b))
		if name == "" || strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
			return nil, fmt.Errorf("guest kit %s: bad kernel file name %q", dir, name)
		}
		k.Kernel = filepath.Join(real, name)
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

// Describe names the kit's kernel for docker info and the actor tree:
// its release and where it came from.
func (k *Kit) Describe() string {
	if k.Source != "" {
		return k.Release + " (compiled for Arca from " + k.Source + ")"
	}
	return k.Release + " (Debian's packaged kernel)"
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
