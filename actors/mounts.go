package actors

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

var validVolumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// resolveMounts turns -v (Binds), --mount, --tmpfs and the image's VOLUMEs
// into the container's mounts, checked as dockerd checks them at create.
// newAnon makes names for anonymous volumes.
func resolveMounts(cfg *container.Config, hc *container.HostConfig, newAnon func() string) ([]persistence.Mount, error) {
	var out []persistence.Mount
	seen := map[string]bool{}
	add := func(m persistence.Mount) error {
		m.Destination = path.Clean(m.Destination)
		if seen[m.Destination] {
			return messages.InvalidParameter("Duplicate mount point: %s", m.Destination)
		}
		seen[m.Destination] = true
		out = append(out, m)
		return nil
	}
	for _, b := range hc.Binds {
		m, err := parseBind(b)
		if err != nil {
			return nil, err
		}
		if err := add(m); err != nil {
			return nil, err
		}
	}
	for _, mt := range hc.Mounts {
		m, err := parseMount(mt, newAnon)
		if err != nil {
			return nil, err
		}
		if err := add(m); err != nil {
			return nil, err
		}
	}
	for dst, opts := range hc.Tmpfs {
		if !path.IsAbs(dst) {
			return nil, messages.InvalidParameter("invalid mount config for type \"tmpfs\": mount path must be absolute")
		}
		rw := true
		var keep []string
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "":
			case "ro":
				rw = false
			case "rw":
			default:
				keep = append(keep, o)
			}
		}
		if err := add(persistence.Mount{Type: "tmpfs", Destination: dst, RW: rw, TmpfsOptions: strings.Join(keep, ",")}); err != nil {
			return nil, err
		}
	}
	// The image's VOLUMEs (and -v /path): anonymous volumes where nothing
	// else is mounted.
	var anon []string
	for dst := range cfg.Volumes {
		anon = append(anon, dst)
	}
	sort.Strings(anon)
	for _, dst := range anon {
		if !path.IsAbs(dst) {
			return nil, messages.InvalidParameter("invalid volume specification: '%s': volume path must be absolute", dst)
		}
		if seen[path.Clean(dst)] {
			continue
		}
		if err := add(persistence.Mount{Type: "volume", Name: newAnon(), Destination: dst, RW: true, Anonymous: true}); err != nil {
			return nil, err
		}
	}
	// Parents before children, so a mount inside another lands on it.
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].Destination, "/") < strings.Count(out[j].Destination, "/")
	})
	return out, nil
}

// parseBind reads one -v: "name:/dst[:opts]" or "/host:/dst[:opts]". A
// missing host directory is created, as dockerd does for -v.
func parseBind(spec string) (persistence.Mount, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return persistence.Mount{}, messages.InvalidParameter("invalid volume specification: '%s'", spec)
	}
	m := persistence.Mount{Destination: parts[1], RW: true}
	if !path.IsAbs(m.Destination) {
		return m, messages.InvalidParameter("invalid volume specification: '%s': invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", spec, m.Destination)
	}
	if len(parts) == 3 {
		m.Mode = parts[2]
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				m.RW = false
			case "rw", "z", "Z", "private", "rprivate", "shared", "rshared", "slave", "rslave", "consistent", "cached", "delegated":
			case "nocopy":
				m.NoCopy = true
			default:
				return m, messages.InvalidParameter("invalid volume specification: '%s': invalid mode: %s", spec, o)
			}
		}
	}
	src := parts[0]
	if filepath.IsAbs(src) {
		m.Type, m.Source = "bind", filepath.Clean(src)
		if _, err := os.Stat(m.Source); os.IsNotExist(err) {
			if err := os.MkdirAll(m.Source, 0o755); err != nil {
				return m, messages.InvalidParameter("error while creating mount source path '%s': %v", m.Source, err)
			}
		}
		return m, nil
	}
	if !validVolumeName.MatchString(src) {
		return m, messages.InvalidParameter("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", src, src)
	}
	m.Type, m.Name = "volume", src
	return m, nil
}

// parseMount reads one --mount. Unlike -v, a bind source must exist.
func parseMount(mt mount.Mount, newAnon func() string) (persistence.Mount, error) {
	typ := string(mt.Type)
	if !path.IsAbs(mt.Target) {
		return persistence.Mount{}, messages.InvalidParameter("invalid mount config for type %q: mount path must be absolute", typ)
	}
	m := persistence.Mount{Type: typ, Destination: mt.Target, RW: !mt.ReadOnly}
	switch mt.Type {
	case mount.TypeBind:
		if mt.Source == "" {
			return m, messages.InvalidParameter("invalid mount config for type \"bind\": field Source must not be empty")
		}
		if _, err := os.Stat(mt.Source); err != nil {
			return m, messages.InvalidParameter("invalid mount config for type \"bind\": bind source path does not exist: %s", mt.Source)
		}
		m.Source = filepath.Clean(mt.Source)
	case mount.TypeVolume:
		m.Name = mt.Source
		if m.Name == "" {
			m.Name, m.Anonymous = newAnon(), true
		} else if !validVolumeName.MatchString(m.Name) {
			return m, messages.InvalidParameter("invalid mount config for type \"volume\": invalid volume name %q", m.Name)
		}
		if mt.VolumeOptions != nil {
			m.NoCopy = mt.VolumeOptions.NoCopy
		}
	case mount.TypeTmpfs:
		if mt.Source != "" {
			return m, messages.InvalidParameter("invalid mount config for type \"tmpfs\": field Source must not be specified")
		}
		var opts []string
		if o := mt.TmpfsOptions; o != nil {
			if o.SizeBytes > 0 {
				opts = append(opts, fmt.Sprintf("size=%dk", (o.SizeBytes+1023)/1024))
			}
			if o.Mode != 0 {
				mode := uint32(o.Mode.Perm())
				if o.Mode&os.ModeSticky != 0 {
					mode |= 0o1000
				}
				opts = append(opts, fmt.Sprintf("mode=%o", mode))
			}
		}
		m.TmpfsOptions = strings.Join(opts, ",")
	default:
		return m, messages.InvalidParameter("mount type %q is not supported", typ)
	}
	return m, nil
}

// volumeNames lists the volumes a container's mounts use.
func volumeNames(ms []persistence.Mount) (named, anonymous []string) {
	for _, m := range ms {
		if m.Type != "volume" {
			continue
		}
		if m.Anonymous {
			anonymous = append(anonymous, m.Name)
		} else {
			named = append(named, m.Name)
		}
	}
	return named, anonymous
}

// wireMounts is what the agent mounts: volumes become binds of their data
// directories.
func (e *Env) wireMounts(ms []persistence.Mount) []wire.Mount {
	out := make([]wire.Mount, 0, len(ms))
	for _, m := range ms {
		switch m.Type {
		case "volume":
			if m.Driver == blockDriver {
				// The image's path until the machine says where its
				// filesystem is (guestMountSources); no copy-up, as a
				// new filesystem is not empty (lost+found).
				out = append(out, wire.Mount{Type: "bind", Source: e.blockImage(m.Name), Target: m.Destination, ReadOnly: !m.RW})
				continue
			}
			out = append(out, wire.Mount{Type: "bind", Source: e.volumeData(m.Name), Target: m.Destination, ReadOnly: !m.RW, CopyUp: !m.NoCopy})
		case "bind":
			out = append(out, wire.Mount{Type: "bind", Source: m.Source, Target: m.Destination, ReadOnly: !m.RW})
		case "tmpfs":
			out = append(out, wire.Mount{Type: "tmpfs", Target: m.Destination, ReadOnly: !m.RW, Options: m.TmpfsOptions})
		}
	}
	return out
}

// machineDisks are the block volumes' images a container's machine gets
// as disks of its own, and their names: one disk per volume however often
// it is mounted, read-only only if every mount of it is.
func (e *Env) machineDisks(ms []persistence.Mount) (disks []vm.Disk, names []string) {
	for _, m := range ms {
		if m.Type != "volume" || m.Driver != blockDriver {
			continue
		}
		if i := slices.Index(names, m.Name); i >= 0 {
			disks[i].ReadOnly = disks[i].ReadOnly && !m.RW
			continue
		}
		disks = append(disks, vm.Disk{Image: e.blockImage(m.Name), ReadOnly: !m.RW})
		names = append(names, m.Name)
	}
	return disks, names
}

func (e *Env) volumeData(name string) string { return filepath.Join(e.Root, "volumes", name, "_data") }

// mountPoints is inspect's Mounts.
func (e *Env) mountPoints(ms []persistence.Mount) []container.MountPoint {
	out := []container.MountPoint{}
	for _, m := range ms {
		mp := container.MountPoint{Type: mount.Type(m.Type), Destination: m.Destination, RW: m.RW, Mode: m.Mode}
		switch m.Type {
		case "volume":
			mp.Name, mp.Source, mp.Driver = m.Name, e.volumeData(m.Name), "local"
			if m.Driver == blockDriver {
				mp.Source, mp.Driver = e.blockImage(m.Name), blockDriver
			}
			if mp.Mode == "" {
				mp.Mode = "z"
			}
		case "bind":
			mp.Source, mp.Propagation = m.Source, mount.PropagationRPrivate
		}
		out = append(out, mp)
	}
	return out
}

// sharesFor is the host directories a machine needs for its binds: each
// bind's source, or the directory of a file bound alone. A share is
// read-only when every bind from it is.
func sharesFor(mounts []wire.Mount, disks []vm.Disk) []vm.Share {
	var out []vm.Share
	idx := map[string]int{}
	for _, m := range mounts {
		if m.Type != "bind" || isDisk(disks, m.Source) {
			continue
		}
		dir := m.Source
		if st, err := os.Stat(dir); err == nil && !st.IsDir() {
			dir = filepath.Dir(dir)
		}
		if i, ok := idx[dir]; ok {
			out[i].ReadOnly = out[i].ReadOnly && m.ReadOnly
			continue
		}
		idx[dir] = len(out)
		out = append(out, vm.Share{HostPath: dir, ReadOnly: m.ReadOnly})
	}
	return out
}

// guestMountSources returns the mounts with the binds' host paths turned
// into the agent's view of them, for machines that see host directories
// elsewhere (VMs).
func guestMountSources(m vm.Machine, mounts []wire.Mount, disks []vm.Disk) ([]wire.Mount, error) {
	g, shares := m.(vm.GuestPaths)
	out := slices.Clone(mounts)
	for i := range out {
		if out[i].Type != "bind" {
			continue
		}
		if isDisk(disks, out[i].Source) {
			dp, ok := m.(vm.DiskPaths)
			if !ok {
				return nil, fmt.Errorf("mount %s: the machine has no block devices for block volumes", out[i].Target)
			}
			p, ok := dp.DiskPath(out[i].Source)
			if !ok {
				return nil, fmt.Errorf("mount %s: %s was not given to the machine", out[i].Target, out[i].Source)
			}
			out[i].Source = p
			continue
		}
		if !shares {
			continue
		}
		p, ok := g.GuestPath(out[i].Source)
		if !ok {
			return nil, fmt.Errorf("mount %s: %s is not shared with the machine", out[i].Target, out[i].Source)
		}
		out[i].Source = p
	}
	return out, nil
}

func isDisk(disks []vm.Disk, path string) bool {
	return slices.ContainsFunc(disks, func(d vm.Disk) bool { return d.Image == path })
}

// hostPathMounts reports whether the driver's agent sees host paths, so a
// bind of a host directory is a plain bind mount (the sandbox), or gets
// them as shares (qemu's 9p).
func hostPathMounts(d vm.Driver) bool {
	h, ok := d.(interface{ HostPathMounts() bool })
	return ok && h.HostPathMounts()
}
