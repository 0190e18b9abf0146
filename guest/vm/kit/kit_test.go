package kit

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// fakeKit writes a kit with the given files to a temp dir.
func fakeKit(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "6.1.0-test-amd64")
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(filepath.Dir(dir), "current")
	os.Symlink(filepath.Base(dir), link)
	return link
}

func goodKit() map[string]string {
	return map[string]string{
		kitComplete: "", kitRelease: "6.1.0-test-amd64\n", kitKernel: "ELF",
		kitBoot: "virtio.ko\nvirtio_mmio.ko\n", kitExtra: "9p.ko\n",
		"modules/virtio.ko": "a", "modules/virtio_mmio.ko": "bb", "modules/9p.ko": "ccc",
	}
}

func TestLoad(t *testing.T) {
	without := func(name string) map[string]string {
		m := goodKit()
		delete(m, name)
		return m
	}
	with := func(name, data string) map[string]string {
		m := goodKit()
		m[name] = data
		return m
	}
	for _, tc := range []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{"good", goodKit(), ""},
		{"no extras list", without(kitExtra), ""},
		{"incomplete", without(kitComplete), "incomplete"},
		{"no kernel", without(kitKernel), "vmlinux"},
		{"missing module", without("modules/virtio.ko"), "virtio.ko"},
		{"bad module name", with(kitBoot, "../evil.ko\n"), "bad module name"},
		{"empty release", with(kitRelease, "\n"), "empty release"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := Load(fakeKit(t, tc.files))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load error = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Release != "6.1.0-test-amd64" || filepath.Base(k.Kernel) != "vmlinux" ||
				strings.Contains(k.Dir, "current") || !slices.Equal(k.Boot, []string{"virtio.ko", "virtio_mmio.ko"}) {
				t.Errorf("kit = %+v", k)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "make kit") {
		t.Errorf("a missing kit must say how to build one: %v", err)
	}
}

// readCPIO parses a newc archive: name -> entry.
func readCPIO(t *testing.T, b []byte) map[string]cpioEntry {
	t.Helper()
	out := map[string]cpioEntry{}
	off := 0
	align := func(n int) int { return (n + 3) &^ 3 }
	for {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("bad header at %d", off)
		}
		field := func(i int) int {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			return int(v)
		}
		mode, size, rmaj, rmin, namesize := field(1), field(6), field(9), field(10), field(11)
		name := string(b[off+110 : off+110+namesize-1])
		off = align(off + 110 + namesize)
		if name == "TRAILER!!!" {
			if off != len(b) {
				t.Errorf("%d bytes after the trailer", len(b)-off)
			}
			return out
		}
		var fm fs.FileMode = fs.FileMode(mode & 0o777)
		switch mode & 0o170000 {
		case 0o040000:
			fm |= fs.ModeDir
		case 0o020000:
			fm |= fs.ModeDevice | fs.ModeCharDevice
		}
		out[name] = cpioEntry{Name: name, Mode: fm, Data: b[off : off+size], Major: uint32(rmaj), Minor: uint32(rmin)}
		off = align(off + size)
	}
}

func TestInitramfs(t *testing.T) {
	k, err := Load(fakeKit(t, goodKit()))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeInitramfs(&buf, k, []byte("AGENT")); err != nil {
		t.Fatal(err)
	}
	entries := readCPIO(t, buf.Bytes())
	for name, want := range map[string]string{
		"init":                            "AGENT",
		"lib/modules/arca/virtio.ko":      "a",
		"lib/modules/arca/virtio_mmio.ko": "bb",
		"lib/modules/arca/9p.ko":          "ccc",
		"etc/arca/modules.boot":           "virtio.ko\nvirtio_mmio.ko\n",
	} {
		if e, ok := entries[name]; !ok || string(e.Data) != want {
			t.Errorf("%s = %q (present %v), want %q", name, e.Data, ok, want)
		}
	}
	if e := entries["init"]; e.Mode.Perm() != 0o755 {
		t.Errorf("/init mode %v", e.Mode)
	}
	if e := entries["dev/console"]; e.Mode&fs.ModeCharDevice == 0 || e.Major != 5 || e.Minor != 1 {
		t.Errorf("dev/console = %+v", e)
	}
	for _, d := range []string{"dev", "proc", "sys", "run", "lib/modules/arca"} {
		if !entries[d].Mode.IsDir() {
			t.Errorf("no directory %s", d)
		}
	}

	// Packed once per agent: the same inputs give the same file.
	agentPath := filepath.Join(t.TempDir(), "arca-agent")
	os.WriteFile(agentPath, []byte("AGENT"), 0o755)
	dir := t.TempDir()
	p1, err := Initramfs(k, agentPath, dir)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := Initramfs(k, agentPath, dir)
	os.WriteFile(agentPath, []byte("AGENT v2"), 0o755)
	p3, _ := Initramfs(k, agentPath, dir)
	if p1 != p2 || p1 == p3 {
		t.Errorf("initramfs paths %s %s %s: want the same for one agent, another for a new one", p1, p2, p3)
	}
}

func TestUnsignedModule(t *testing.T) {
	mod := []byte("\x7fELF module body")
	sig := bytes.Repeat([]byte{0xab}, 40)
	desc := make([]byte, 12)
	binary.BigEndian.PutUint32(desc[8:], uint32(len(sig)))
	signed := append(append(append(append([]byte{}, mod...), sig...), desc...), moduleSigMagic...)
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"signed", signed, mod},
		{"unsigned", mod, mod},
		{"marker only", []byte(moduleSigMagic), []byte(moduleSigMagic)},
		{"length past the start", append(append(append([]byte("x"), make([]byte, 8)...), 0, 0, 1, 0), moduleSigMagic...), nil},
	} {
		got := unsignedModule(tc.in)
		want := tc.want
		if want == nil {
			want = tc.in
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, want)
		}
	}
}

// An arm64 kit names its kernel file and architecture; kits from before
// those were recorded are amd64 with a vmlinux.
func TestLoadKitArch(t *testing.T) {
	arm := func() map[string]string {
		m := goodKit()
		delete(m, kitKernel)
		m[kitArch], m[kitKernelName], m["Image"] = "arm64\n", "Image\n", "ARMd"
		return m
	}
	k, err := Load(fakeKit(t, arm()))
	if err != nil {
		t.Fatal(err)
	}
	if k.Arch != ArchARM64 || filepath.Base(k.Kernel) != "Image" {
		t.Errorf("arm64 kit = %+v", k)
	}
	if k, err := Load(fakeKit(t, goodKit())); err != nil || k.Arch != ArchAMD64 || filepath.Base(k.Kernel) != kitKernel {
		t.Errorf("a kit without arch and kernel files: %+v, %v", k, err)
	}
	for _, tc := range []struct {
		name, file, data, wantErr string
	}{
		{"unknown arch", kitArch, "riscv64\n", "unknown architecture"},
		{"kernel outside the kit", kitKernelName, "../vmlinux\n", "bad kernel file name"},
		{"missing kernel", kitKernelName, "Other\n", "Other"},
	} {
		m := arm()
		m[tc.file] = tc.data
		if _, err := Load(fakeKit(t, m)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.wantErr)
		}
	}
}

// A kit root holds Debian's kit (current) and the compiled kernel's
// (arca): Load of the root takes the compiled one while it is complete,
// else Debian's; the compiled kit has no modules and says its source.
func TestLoadRootPrefersBuilt(t *testing.T) {
	root := filepath.Dir(fakeKit(t, goodKit()))
	write := func(name, data string) {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if k, err := Load(root); err != nil || k.Release != "6.1.0-test-amd64" || k.Source != "" {
		t.Fatalf("root without a compiled kit: %+v, %v", k, err)
	}
	builtDir := "6.1.192-arca-0123abcd-k1"
	for name, data := range map[string]string{
		kitRelease: "6.1.192-arca-0123abcd\n", kitKernel: "ELF", kitKernelName: "vmlinux\n", kitArch: "amd64\n",
		kitSource: "linux-source-6.1 6.1.192-3\n", kitBoot: "", kitExtra: "",
	} {
		write(filepath.Join(builtDir, name), data)
	}
	os.Symlink(builtDir, filepath.Join(root, BuiltLink))
	// Not complete yet: Debian's.
	if k, err := Load(root); err != nil || k.Source != "" {
		t.Fatalf("incomplete compiled kit: %+v, %v", k, err)
	}
	write(filepath.Join(builtDir, kitComplete), "")
	k, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if k.Release != "6.1.192-arca-0123abcd" || len(k.Boot)+len(k.Extra) != 0 || len(k.ModulePaths()) != 0 ||
		!strings.Contains(k.Describe(), "compiled for Arca from linux-source-6.1 6.1.192-3") {
		t.Errorf("compiled kit = %+v (%s)", k, k.Describe())
	}
	var buf bytes.Buffer
	if err := writeInitramfs(&buf, k, []byte("agent")); err != nil {
		t.Fatal(err)
	}
	if list := readCPIO(t, buf.Bytes())["etc/arca/modules.boot"]; strings.TrimSpace(string(list.Data)) != "" {
		t.Errorf("a kit without modules packs a boot list %q", list.Data)
	}
	// The link named directly is that kit; current is still Debian's.
	if k, err := Load(filepath.Join(root, CurrentLink)); err != nil || k.Source != "" || !strings.Contains(k.Describe(), "Debian") {
		t.Errorf("current: %+v, %v", k, err)
	}
	// Debian's kit gone: the compiled one alone serves.
	os.Remove(filepath.Join(root, CurrentLink))
	if k, err := Load(root); err != nil || k.Source == "" {
		t.Errorf("compiled kit alone: %+v, %v", k, err)
	}
	// Neither: the error says how to build one.
	os.RemoveAll(filepath.Join(root, builtDir))
	if _, err := Load(root); err == nil || !strings.Contains(err.Error(), "make kit") {
		t.Errorf("no kit in the root: %v", err)
	}
}
