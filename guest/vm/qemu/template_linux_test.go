package qemu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/internal/prereq"
	"golang.org/x/sys/unix"
)

// machineLaunch is a container's launch as Boot makes it, in stateDir.
func machineLaunch(stateDir string) launch {
	return launch{Accel: AccelTCG, Kernel: "/kit/vmlinux", Initrd: "/kit/initrd",
		Console: filepath.Join(stateDir, consoleLog), MemoryBytes: 512 << 20, CPUs: 1, StreamFD: 3, TSCkHz: 2500000,
		ImageDisk: "/disks/" + filepath.Base(stateDir) + ".ext4", RWDisk: filepath.Join(stateDir, "disk.ext4"),
		NIC:    &nic{FD: 4, MAC: "02:42:ac:11:00:" + filepath.Base(stateDir)},
		Shares: []vm.Share{{HostPath: filepath.Join(stateDir, "vol"), ReadOnly: true}},
		Disks:  []vm.Disk{{Image: filepath.Join(stateDir, "blk.ext4")}},
	}
}

// Machines differing only in what is theirs (paths, addresses, inherited
// descriptors) restore one template; any difference in the devices or
// the size is another.
func TestTemplateKey(t *testing.T) {
	a, b := machineLaunch("/c/01"), machineLaunch("/c/02")
	b.NIC.FD = 5
	b.NIC.Dgram = true // a switch's socket where a has a tap: the card is the same
	if a.shape().key() != b.shape().key() {
		t.Fatalf("two machines of one shape: keys %s and %s", a.shape().key(), b.shape().key())
	}
	for _, tc := range []struct {
		name   string
		change func(*launch)
	}{
		{"memory", func(l *launch) { l.MemoryBytes = 256 << 20 }},
		{"cpus", func(l *launch) { l.CPUs = 2 }},
		{"no nic", func(l *launch) { l.NIC = nil }},
		{"share read-write", func(l *launch) { l.Shares[0].ReadOnly = false }},
		{"another share", func(l *launch) { l.Shares = append(l.Shares, vm.Share{HostPath: "/x"}) }},
		{"no volume disk", func(l *launch) { l.Disks = nil }},
		{"root dir", func(l *launch) {
			l.ImageDisk, l.RWDisk = "", ""
			l.Shares, l.RootShare = append(l.Shares, vm.Share{HostPath: "/build/root"}), true
		}},
		{"volume read-only", func(l *launch) { l.Disks[0].ReadOnly = true }},
		{"kernel", func(l *launch) { l.Kernel = "/kit2/vmlinux" }},
		{"initramfs", func(l *launch) { l.Initrd = "/root2/initrd" }},
		{"accel", func(l *launch) { l.Accel = AccelKVM }},
	} {
		c := machineLaunch("/c/03")
		c.Shares = slices.Clone(c.Shares)
		c.Disks = slices.Clone(c.Disks)
		tc.change(&c)
		if c.shape().key() == a.shape().key() {
			t.Errorf("%s: same template as the base shape", tc.name)
		}
	}
	// The shape is the machine's own launch unchanged.
	if a.Console != "/c/01/console.log" || a.NIC.MAC != "02:42:ac:11:00:01" || a.Shares[0].HostPath != "/c/01/vol" {
		t.Errorf("shape changed the machine's launch: %+v", a)
	}
}

func TestTemplateArgs(t *testing.T) {
	shape := machineLaunch("/c/01").shape()
	args := shape.args()
	if got := argValues(args, "-netdev"); !slices.Equal(got, []string{"hubport,id=ul,hubid=0"}) {
		t.Errorf("a template's NIC: %q, want one connected to nothing", got)
	}
	if !strings.Contains(strings.Join(argValues(args, "-device"), " "), "mac="+templateMAC) {
		t.Errorf("a template's NIC has not the template's address: %q", args)
	}
	if got := argValues(args, "-append"); len(got) != 1 || !strings.Contains(got[0], templateParam+"=1") {
		t.Errorf("kernel command line %q, want %s=1", got, templateParam)
	}
	for _, a := range args {
		if strings.Contains(a, "/c/01") {
			t.Errorf("the shape names the machine's own path: %q", a)
		}
	}

	l := machineLaunch("/c/01")
	r, err := l.restore(t.TempDir(), 5)
	if err == nil {
		r.close()
		t.Fatal("restore of a directory with no template: no error")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, templateState), []byte("state"), 0o600)
	r, err = l.restore(dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if len(r.resume.Seed) < 32 || r.resume.TemplateMAC != templateMAC || r.stateFD != 6 || len(r.files()) != 2 {
		t.Errorf("restoring: %+v", r)
	}
	args = l.args()
	want := map[string][]string{
		"-object":   {"memory-backend-file,id=ram,size=512M,mem-path=" + filepath.Join(dir, templateRAM) + ",share=off"},
		"-machine":  {"memory-backend=ram"},
		"-incoming": {"defer"},
		"-mon":      {"chardev=qmp,mode=control"},
		"-netdev":   {"tap,id=ul,fd=4"},
	}
	for flag, v := range want {
		if got := argValues(args, flag); !slices.Equal(got, v) {
			t.Errorf("%s: %q, want %q", flag, got, v)
		}
	}
	if !slices.Contains(argValues(args, "-chardev"), "socket,id=qmp,fd=5") {
		t.Errorf("no QMP on fd 5: %q", argValues(args, "-chardev"))
	}
	if l.key() == shape.key() || l.shape().key() != shape.key() {
		t.Error("a restore's own launch must be of the template's shape, not be it")
	}
}

func TestPlaceholders(t *testing.T) {
	dir := t.TempDir()
	l, err := machineLaunch("/c/01").shape().placeholders(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{l.ImageDisk, l.RWDisk, l.Disks[0].Image} {
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() || filepath.Dir(p) != dir {
			t.Errorf("placeholder disk %s: %v", p, err)
		}
	}
	if st, err := os.Stat(l.Shares[0].HostPath); err != nil || !st.IsDir() {
		t.Errorf("placeholder share: %v", err)
	}
	if l.Console != filepath.Join(dir, consoleLog) {
		t.Errorf("console %s", l.Console)
	}
}

// copyMemory keeps what the guest wrote where it wrote it, and the holes.
func TestCopyMemory(t *testing.T) {
	fd, err := unix.MemfdCreate("test", unix.MFD_CLOEXEC)
	if err != nil {
		prereq.Missing(t, "memfd: %v", err)
	}
	src := os.NewFile(uintptr(fd), "memfd")
	defer src.Close()
	const size = 64 << 20
	src.Truncate(size)
	page := bytes.Repeat([]byte{0xa5}, 4096)
	for _, off := range []int64{0, 3 << 20, 3<<20 + 4096, size - 4096} {
		src.WriteAt(page, off)
	}
	dst := filepath.Join(t.TempDir(), "ram")
	if err := copyMemory(dst, src); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	want := make([]byte, size)
	src.ReadAt(want, 0)
	if !bytes.Equal(got, want) {
		t.Fatal("copy differs from the memory")
	}
	var st unix.Stat_t
	unix.Stat(dst, &st)
	if used := st.Blocks * 512; used > 1<<20 {
		t.Errorf("copy of 16 KiB written takes %d bytes on disk: holes filled", used)
	}
}

// The store: one build a shape however many machines ask at once, a
// failed build not retried (they boot cold), a discarded template made
// anew, and what other kernels or crashed builds left removed.
func TestTemplateStore(t *testing.T) {
	parent := t.TempDir()
	os.MkdirAll(filepath.Join(parent, "oldidentity", "k"), 0o700)
	os.MkdirAll(filepath.Join(parent, "id", ".build-123"), 0o700)
	var builds atomic.Int32
	fail := atomic.Bool{}
	build := func(ctx context.Context, shape launch, dir string) error {
		builds.Add(1)
		time.Sleep(50 * time.Millisecond)
		if fail.Load() {
			return errors.New("no boot")
		}
		os.MkdirAll(dir, 0o700)
		os.WriteFile(filepath.Join(dir, templateRAM), nil, 0o600)
		return os.WriteFile(filepath.Join(dir, templateState), nil, 0o600)
	}
	s, err := openTemplates(parent, "id", testLogger(t), build)
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(parent); len(left) != 1 || left[0].Name() != "id" {
		t.Errorf("other identities kept: %v", left)
	}
	if _, err := os.Stat(filepath.Join(parent, "id", ".build-123")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a crashed build kept")
	}

	shape := machineLaunch("/c/01").shape()
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], _ = s.get(context.Background(), shape)
		}()
	}
	wg.Wait()
	if builds.Load() != 1 || dirs[0] == "" || slices.ContainsFunc(dirs, func(d string) bool { return d != dirs[0] }) {
		t.Fatalf("4 machines at once: %d builds, dirs %q", builds.Load(), dirs)
	}

	// A daemon started anew finds it made.
	s2, _ := openTemplates(parent, "id", testLogger(t), build)
	if dir, err := s2.get(context.Background(), shape); err != nil || dir != dirs[0] || builds.Load() != 1 {
		t.Errorf("template of a previous daemon: %q, %v, %d builds", dir, err, builds.Load())
	}

	s.discard(dirs[0])
	if dir, err := s.get(context.Background(), shape); err != nil || dir != dirs[0] || builds.Load() != 2 {
		t.Errorf("after discard: %q, %v, %d builds", dir, err, builds.Load())
	}

	fail.Store(true)
	other := machineLaunch("/c/01")
	other.CPUs = 2
	for range 2 {
		if _, err := s.get(context.Background(), other.shape()); err == nil {
			t.Error("failed build: no error")
		}
	}
	if builds.Load() != 3 {
		t.Errorf("a failed build was retried: %d builds", builds.Load())
	}
	// Until templateRetry has passed.
	fail.Store(false)
	s.mu.Lock()
	s.entries[other.shape().key()].at = time.Now().Add(-templateRetry - time.Second)
	s.mu.Unlock()
	if _, err := s.get(context.Background(), other.shape()); err != nil || builds.Load() != 4 {
		t.Errorf("retry of a failed build: %v, %d builds", err, builds.Load())
	}
	fail.Store(true)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	third := machineLaunch("/c/01")
	third.CPUs = 3
	if _, err := s.get(ctx, third.shape()); !errors.Is(err, context.Canceled) {
		t.Errorf("a machine that stops waiting: %v", err)
	}
	// The build goes on for the machines after it.
	if _, err := s.get(context.Background(), third.shape()); err == nil || errors.Is(err, context.Canceled) || builds.Load() != 5 {
		t.Errorf("build after a machine stopped waiting: %v, %d builds", err, builds.Load())
	}
}

func TestTemplatePrune(t *testing.T) {
	parent := t.TempDir()
	s, err := openTemplates(parent, "id", testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-time.Hour)
	for i := range maxTemplates + 2 {
		dir := filepath.Join(s.dir, string(rune('a'+i)))
		os.Mkdir(dir, 0o700)
		at := base.Add(time.Duration(i) * time.Minute)
		os.Chtimes(dir, at, at)
	}
	s.prune("a") // the oldest, but just made
	left, _ := os.ReadDir(s.dir)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if want := []string{"a", "d", "e", "f", "g", "h", "i", "j"}; !slices.Equal(names, want) {
		t.Errorf("after prune: %q, want %q", names, want)
	}
}

// Machines restored from one template are each their own: each resumed
// (not booted cold), each with its own random state (the agent reseeds
// the kernel's generator with the host's bytes: without it two restores
// would draw the same numbers), its own disk, and the memory and CPUs
// its spec asks for (another shape, another template).
func TestTemplateRestoresFresh(t *testing.T) {
	kit := testKit(t)
	root := t.TempDir()
	d := newDriver(t, kit, root)
	if d.templates == nil {
		t.Fatal("a TCG driver without templates")
	}
	layers := newImage(t)
	spec := func(name string, mem, nanoCPUs int64) vm.MachineSpec {
		return vm.MachineSpec{ID: name, StateDir: filepath.Join(root, "containers", name), Layers: layers, Hostname: name,
			MemoryBytes: mem, NanoCPUs: nanoCPUs}
	}
	type seen struct{ random, bootID, nproc, mem, note string }
	look := func(name string, mem, nanoCPUs int64) seen {
		s := spec(name, mem, nanoCPUs)
		m, c, ready := session(t, d, s)
		defer m.Kill()
		t.Logf("%s: boot to agent %s", name, ready)
		console, _ := os.ReadFile(filepath.Join(s.StateDir, consoleLog))
		if !strings.Contains(string(console), "resumed from template") {
			t.Errorf("%s booted cold; console:\n%s", name, console)
		}
		if got := run(t, c, "write", nil, "sh", "-c", "cat /root/note 2>/dev/null; echo "+name+" > /root/note; sync"); got.code != 0 {
			t.Errorf("%s: write: %+v", name, got)
		}
		return seen{
			random: run(t, c, "random", nil, "sh", "-c", "head -c 32 /dev/urandom | od -An -tx1").out,
			bootID: run(t, c, "bootid", nil, "cat", "/proc/sys/kernel/random/boot_id").out,
			nproc:  strings.TrimSpace(run(t, c, "nproc", nil, "nproc").out),
			mem:    strings.Fields(run(t, c, "mem", nil, "grep", "MemTotal", "/proc/meminfo").out + " x x")[1],
			note:   run(t, c, "note", nil, "cat", "/root/note").out,
		}
	}
	var a, b seen
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a = look("a", 0, 0) }()
	go func() { defer wg.Done(); b = look("b", 0, 0) }()
	wg.Wait()
	if a.random == "" || a.random == b.random {
		t.Errorf("two machines of one template read the same random bytes: %q, %q", a.random, b.random)
	}
	if a.bootID == "" || a.bootID == b.bootID {
		t.Errorf("two machines of one template share a boot id: %q, %q", a.bootID, b.bootID)
	}
	if a.note != "a\n" || b.note != "b\n" {
		t.Errorf("each machine's own disk: a %q, b %q", a.note, b.note)
	}
	if a.nproc != "1" {
		t.Errorf("default machine: %s CPUs, want 1", a.nproc)
	}
	// Another shape: 256 MiB and 2 CPUs.
	c := look("c", 256<<20, 2e9)
	if c.nproc != "2" {
		t.Errorf("--cpus 2: %s CPUs in the guest", c.nproc)
	}
	memKiB := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	if am, cm := memKiB(a.mem), memKiB(c.mem); cm >= 256<<10 || cm < 128<<10 || am <= 256<<10 {
		t.Errorf("MemTotal: default %d KiB, --memory 256m %d KiB", am, cm)
	}
	keys, _ := os.ReadDir(d.templates.dir)
	if len(keys) != 2 {
		t.Errorf("templates for two shapes: %d", len(keys))
	}
}
