package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/guest/wire"
)

func TestKernelParamInt(t *testing.T) {
	for _, tc := range []struct {
		cmdline string
		want    int
	}{
		{"console=ttyS0 arca.disks=2 -- -vm", 2},
		{"arca.disks=0", 0},
		{"console=ttyS0", 0},
		{"arca.disksx=3 arca.disks=1", 1},
		{"-- arca.disks=5", 0}, // init's arguments, not the kernel's
		{"arca.disks=x", 0},
	} {
		if got := kernelParamInt(tc.cmdline, wire.VMDiskParam); got != tc.want {
			t.Errorf("kernelParamInt(%q) = %d, want %d", tc.cmdline, got, tc.want)
		}
	}
}

// The qemu driver asks for a reset (its -no-reboot makes that qemu's
// exit): Arca's amd64 kernel has no ACPI to power off with.
func TestPowerOffCmd(t *testing.T) {
	for cmdline, want := range map[string]string{
		"console=ttyS0 arca.poweroff=reset -- -vm": "reset",
		"console=ttyS0 -- -vm":                     "",
		"arca.poweroff=halt":                       "",
		"-- arca.poweroff=reset":                   "",
	} {
		if got := powerOffCmd(cmdline); got != want {
			t.Errorf("powerOffCmd(%q) = %q, want %q", cmdline, got, want)
		}
	}
}

func TestVMStream(t *testing.T) {
	port := func() (string, error) { return "/dev/vport1p1", nil }
	noPort := func() (string, error) { return "", errors.New("no virtio-serial port") }
	for _, tc := range []struct {
		cmdline  string
		findPort func() (string, error)
		want     string
		wantErr  string
	}{
		{"console=hvc0 arca.disks=2 arca.stream=vsock:1024 -- -vm", noPort, "vsock:1024", ""},
		{"console=ttyS0 arca.disks=2 -- -vm", port, "file:/dev/vport1p1", ""},
		// init's arguments, not the kernel's: the port is looked for.
		{"console=ttyS0 -- arca.stream=vsock:1024", port, "file:/dev/vport1p1", ""},
		{"arca.streamx=vsock:1 arca.stream=vsock:7", noPort, "vsock:7", ""},
		{"console=ttyS0", noPort, "", "no virtio-serial port"},
		{"arca.stream=vsock:x", port, "", "arca.stream"},
		{"arca.stream=tcp:1", port, "", "unknown kind"},
		{"arca.stream=", port, "", "arca.stream"},
	} {
		got, err := vmStream(tc.cmdline, tc.findPort)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("vmStream(%q) = %q, %v; want an error mentioning %q", tc.cmdline, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("vmStream(%q) = %q, %v; want %q", tc.cmdline, got, err, tc.want)
		}
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLinkDisks(t *testing.T) {
	dir := t.TempDir()
	sys, byID := filepath.Join(dir, "sys/block"), filepath.Join(dir, "dev/disk/by-id")
	write(t, filepath.Join(sys, "vda/serial"), "arca-rw\n")
	write(t, filepath.Join(sys, "vdb/serial"), "arca-image")
	write(t, filepath.Join(sys, "loop0/serial"), "nope")
	os.MkdirAll(filepath.Join(sys, "vdc"), 0o755) // no serial: not linked
	if err := linkDisks(sys, "/dev", byID, 2, time.Second); err != nil {
		t.Fatal(err)
	}
	for link, want := range map[string]string{"virtio-arca-rw": "/dev/vda", "virtio-arca-image": "/dev/vdb"} {
		if got, err := os.Readlink(filepath.Join(byID, link)); err != nil || got != want {
			t.Errorf("%s -> %q (%v), want %q", link, got, err, want)
		}
	}
	if entries, _ := os.ReadDir(byID); len(entries) != 2 {
		t.Errorf("links: %v", entries)
	}
	err := linkDisks(sys, "/dev", byID, 3, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "2 of 3 disks") {
		t.Errorf("a missing disk: %v", err)
	}
}

func TestWaitPort(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "vport0p1/name"), "other\n")
	// The port's device must exist in /dev: use one that always does.
	write(t, filepath.Join(dir, "null/name"), wire.VMPortName+"\n")
	dev, err := waitPort(dir, wire.VMPortName, time.Second)
	if err != nil || dev != "/dev/null" {
		t.Errorf("waitPort = %q, %v; want /dev/null", dev, err)
	}
	if _, err := waitPort(dir, "absent", 30*time.Millisecond); err == nil {
		t.Error("an absent port was found")
	}
}

func TestLoadModulesList(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "modules.boot")
	write(t, list, "# comment\n\n")
	if n, err := loadModules(list, dir, nil); err != nil || n != 0 {
		t.Errorf("empty list: %d, %v", n, err)
	}
	write(t, list, "missing.ko\n")
	if _, err := loadModules(list, dir, nil); err == nil || !strings.Contains(err.Error(), "missing.ko") {
		t.Errorf("missing module: %v", err)
	}
	// A template defers a module: it is not loaded, so its absence here
	// is no error.
	if n, err := loadModules(list, dir, []string{"missing"}); err != nil || n != 0 {
		t.Errorf("skipped module: %d, %v", n, err)
	}
	if _, err := loadModules(filepath.Join(dir, "none"), dir, nil); err == nil {
		t.Error("missing list: no error")
	}
}

func TestHasVirtioDevice(t *testing.T) {
	dir := t.TempDir()
	for name, id := range map[string]string{"virtio0": "0x0002\n", "virtio1": "0x0003\n"} {
		os.MkdirAll(filepath.Join(dir, name), 0o755)
		os.WriteFile(filepath.Join(dir, name, "device"), []byte(id), 0o644)
	}
	if hasVirtioDevice(dir, virtioBalloonID) {
		t.Fatal("a balloon found among a block device and a console")
	}
	os.MkdirAll(filepath.Join(dir, "virtio2"), 0o755)
	os.WriteFile(filepath.Join(dir, "virtio2", "device"), []byte("0x0005\n"), 0o644)
	if !hasVirtioDevice(dir, virtioBalloonID) {
		t.Fatal("the balloon not found")
	}
	if hasVirtioDevice(filepath.Join(dir, "none"), virtioBalloonID) {
		t.Fatal("a balloon found on no bus")
	}
}
