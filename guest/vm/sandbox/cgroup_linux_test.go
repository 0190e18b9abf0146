package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/arcavm/arca/guest/vm"
)

func TestParseCgroupMounts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		v2   string
		v1   map[string]string
	}{
		{"hybrid", `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,nosuid,cpuacct,cpu
34 31 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
35 31 0:32 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
36 31 0:33 /sub /mnt/memory rw - cgroup cgroup rw,memory
`, "/sys/fs/cgroup/unified", map[string]string{"cpu": "/sys/fs/cgroup/cpu", "cpuacct,cpu": "/sys/fs/cgroup/cpu,cpuacct"}},
		{"v2 only", "25 20 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup", map[string]string{}},
		{"none", "20 1 0:20 / /proc rw - proc proc rw\n", "", map[string]string{}},
	}
	for _, tt := range tests {
		var v2 string
		v1 := parseCgroupMounts([]byte(tt.in), &v2)
		if v2 != tt.v2 || !reflect.DeepEqual(v1, tt.v1) {
			t.Errorf("%s: %q %v", tt.name, v2, v1)
		}
	}
}

func TestOwnCgroup(t *testing.T) {
	in := []byte("9:name=systemd:/\n4:memory:/process_api/x\n2:cpu,cpuacct:/a\n0::/\n")
	tests := []struct {
		hier, want string
		ok         bool
	}{
		{"memory", "/process_api/x", true},
		{"cpuacct,cpu", "/a", true},
		{"cpu", "", false},
		{"pids", "", false},
	}
	for _, tt := range tests {
		got, ok := ownCgroup(in, tt.hier)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: %q %v", tt.hier, got, ok)
		}
	}
}

// A daemon's stop takes its group out of every hierarchy, with a machine
// cgroup a killed run left in it.
func TestReleaseCgroupGroup(t *testing.T) {
	needRoot(t)
	group := fmt.Sprintf("%s/test-%d-%d", defaultCgroupGroup, os.Getpid(), time.Now().UnixNano())
	cg, err := newMachineCgroup(vm.MachineSpec{ID: "stale", MemoryBytes: 64 << 20, NanoCPUs: 1e9}, group)
	if err != nil {
		t.Fatal(err)
	}
	var groups []string
	for _, d := range append([]string{cg.v2}, cg.v1...) {
		if d != "" {
			groups = append(groups, filepath.Dir(d))
		}
	}
	if len(groups) == 0 {
		t.Fatal("no cgroup made (the check below would prove nothing)")
	}
	if err := ReleaseCgroupGroup(group); err != nil {
		t.Fatal(err)
	}
	for _, d := range groups {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("group %s left: %v", d, err)
		}
	}
	// A second stop (or one of a daemon that never made the group) has
	// nothing to do.
	if err := ReleaseCgroupGroup(group); err != nil {
		t.Errorf("again: %v", err)
	}
}
