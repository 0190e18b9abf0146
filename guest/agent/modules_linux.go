package agent

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/arcavm/arca/guest/wire"
	"golang.org/x/sys/unix"
)

// What a machine loads the first time it needs it, by module name. A VM
// that only runs a process loads none of them, and one that joins a
// network does not pay for the shares' modules: under TCG every module
// costs a boot tens of milliseconds. A name the kit lacks (virtiofs in the
// amd64 kit, or a module built into the kernel) is skipped; what needed it
// then fails with the kernel's own error.
var (
	networkModules = []string{"virtio_net", "wireguard"}
	shareModules   = []string{"9pnet_virtio", "9p", "virtiofs"}
	vsockModules   = []string{"vmw_vsock_virtio_transport"}
	// balloonModules drive the memory balloon, through which a guest
	// reports the pages it frees so the host can take them back.
	balloonModules = []string{"virtio_balloon"}
)

// virtioBalloonID is the virtio device ID of a memory balloon, as
// /sys/bus/virtio/devices/*/device shows it.
const virtioBalloonID = "0x0005"

// hasVirtioDevice reports whether a virtio device of the given ID is on
// the bus under sysfs (/sys/bus/virtio/devices).
func hasVirtioDevice(devices, id string) bool {
	entries, _ := os.ReadDir(devices)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(devices, e.Name(), "device"))
		if err == nil && strings.TrimSpace(string(b)) == id {
			return true
		}
	}
	return false
}

// loadBalloon loads the balloon's driver when the machine has a balloon
// (Debian's kernel has it as a module; Arca's has it built in, and the
// kit then lacks the name). It runs after the agent is ready, off the
// boot's path: the guest only starts reporting free pages seconds after
// it is up anyway.
func loadBalloon(log *slog.Logger) {
	if !hasVirtioDevice("/sys/bus/virtio/devices", virtioBalloonID) {
		return
	}
	if err := loadModuleGroup(balloonModules); err != nil {
		log.Warn("vm: no memory balloon", "err", err)
	}
}

// loadedModules is what the agent has loaded by name; loadMu makes a
// group's loading one at a time (setup and network may ask at once).
var (
	loadMu        sync.Mutex
	loadedModules = map[string]bool{}
)

// loadModuleGroup loads the named modules from wire.VMModuleDir with their
// dependencies, each once; outside a VM the kernel is the host's and there
// is nothing to load.
func loadModuleGroup(names []string) error {
	if !inVM.Load() {
		return nil
	}
	loadMu.Lock()
	defer loadMu.Unlock()
	files, err := moduleFiles(wire.VMModuleDir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := loadWithDeps(files, n, loadedModules, nil); err != nil {
			return err
		}
	}
	return nil
}

// moduleFiles maps module names (dashes as underscores, as the kernel
// names them) to their files in dir.
func moduleFiles(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("vm init: modules: %w", err)
	}
	files := map[string]string{}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".ko"); ok {
			files[moduleName(name)] = filepath.Join(dir, e.Name())
		}
	}
	return files, nil
}

func moduleName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// loadWithDeps loads module name after the modules its .modinfo depends
// on; done holds what is loaded, and a name absent from files is taken as
// built in. load is finit_module (a test passes its own).
func loadWithDeps(files map[string]string, name string, done map[string]bool, load func(string) error) error {
	name = moduleName(name)
	if done[name] {
		return nil
	}
	path, ok := files[name]
	if !ok {
		return nil
	}
	done[name] = true // also ends a dependency cycle, which modprobe refuses too
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("vm init: load module: %w", err)
	}
	for _, dep := range moduleDepends(b) {
		if err := loadWithDeps(files, dep, done, load); err != nil {
			return err
		}
	}
	if load == nil {
		load = loadModule
	}
	return load(path)
}

// moduleDepends reads the depends= entry of a module's .modinfo (NUL-
// separated key=value strings); modpost writes one into every module,
// empty when it needs none.
func moduleDepends(ko []byte) []string {
	const key = "\x00depends="
	i := bytes.Index(ko, []byte(key))
	if i < 0 {
		return nil
	}
	v := ko[i+len(key):]
	if end := bytes.IndexByte(v, 0); end >= 0 {
		v = v[:end]
	}
	var deps []string
	for _, d := range strings.Split(string(v), ",") {
		if d != "" {
			deps = append(deps, d)
		}
	}
	return deps
}

// loadModules loads every module named in list from dir, in order: the
// boot list, which the kit wrote with each module after its dependencies.
// The modules named in skip are left for later (loadModuleGroup).
func loadModules(list, dir string, skip []string) (int, error) {
	names, err := readLines(list)
	if err != nil {
		return 0, fmt.Errorf("vm init: module list: %w", err)
	}
	n := 0
	for _, name := range names {
		if slices.Contains(skip, moduleName(strings.TrimSuffix(name, ".ko"))) {
			continue
		}
		n++
		if err := loadModule(filepath.Join(dir, name)); err != nil {
			return 0, err
		}
		loadMu.Lock()
		loadedModules[moduleName(strings.TrimSuffix(name, ".ko"))] = true
		loadMu.Unlock()
	}
	return n, nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("vm init: load module: %w", err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("vm init: load module %s: %w", filepath.Base(path), err)
	}
	return nil
}
