package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckKVM(t *testing.T) {
	dir := t.TempDir()
	cpuinfo := filepath.Join(dir, "cpuinfo")
	missing := filepath.Join(dir, "kvm")
	for flags, want := range map[string]string{
		"fpu vme de pse": "nested virtualization",
		"fpu vmx sse":    "modprobe kvm_intel",
		"fpu svm sse":    "modprobe kvm_amd",
	} {
		if err := os.WriteFile(cpuinfo, []byte("processor\t: 0\nflags\t\t: "+flags+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		f := checkKVM(missing, cpuinfo, filepath.Join(dir, "probe"))
		if f.level != levelWarn || !strings.Contains(f.fix, want) {
			t.Errorf("flags %q: %+v, want a warning saying %q", flags, f, want)
		}
	}
	// A device that is not KVM's.
	if f := checkKVM("/dev/null", cpuinfo, filepath.Join(dir, "probe")); f.level != levelFail || !strings.Contains(f.msg, "KVM_GET_API_VERSION") {
		t.Errorf("/dev/null as KVM: %+v", f)
	}
}

func TestCgroupFinding(t *testing.T) {
	cases := []struct {
		v2    string
		v2ctl []string
		v1    []string
		level level
		says  string
	}{
		{"/sys/fs/cgroup", []string{"cpuset", "cpu", "io", "memory", "pids"}, nil, levelOK, "unified"},
		{"/sys/fs/cgroup", []string{"cpu", "io"}, nil, levelWarn, "no memory, pids controller"},
		{"/sys/fs/cgroup/unified", nil, []string{"cpu", "memory", "pids"}, levelOK, "hybrid (cgroup2 at /sys/fs/cgroup/unified, v1 for cpu, memory, pids)"},
		{"/sys/fs/cgroup/unified", nil, []string{"cpu"}, levelWarn, "no memory, pids"},
		{"", nil, []string{"cpu", "memory", "pids"}, levelWarn, "cgroup v1 only"},
		{"", nil, nil, levelFail, "no cgroup"},
	}
	for _, c := range cases {
		f := cgroupFinding(c.v2, c.v2ctl, c.v1)
		if f.level != c.level || !strings.Contains(f.msg, c.says) {
			t.Errorf("%+v: %v %q", c, f.level, f.msg)
		}
	}
}

func TestCgroupLayout(t *testing.T) {
	mi := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(mi, []byte(`22 1 0:21 / /sys rw - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`), 0o644)
	v2, v1, err := cgroupLayout(mi)
	if err != nil || v2 != "/sys/fs/cgroup/unified" || strings.Join(v1, ",") != "cpu,memory" {
		t.Fatalf("layout: %q %q %v", v2, v1, err)
	}
}
