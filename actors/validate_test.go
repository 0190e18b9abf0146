package actors

import (
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

func TestValidateSettings(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	nc := runtime.NumCPU()
	cases := []struct {
		name   string
		cfg    container.Config
		r      container.Resources
		hc     func(*container.HostConfig)
		update bool
		want   string // "" is valid
	}{
		{name: "none"},
		{name: "memory ok", r: container.Resources{Memory: 6 << 20}},
		{name: "memory small", r: container.Resources{Memory: 1 << 20}, want: "Minimum memory limit allowed is 6MB"},
		{name: "memory negative", r: container.Resources{Memory: -1}, want: "Minimum memory limit allowed is 6MB"},
		{name: "swap below memory", r: container.Resources{Memory: 64 << 20, MemorySwap: 32 << 20}, want: "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{name: "swap without memory", r: container.Resources{MemorySwap: 64 << 20}, want: "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{name: "swap without memory on update", r: container.Resources{MemorySwap: 64 << 20}, update: true},
		{name: "swap unlimited", r: container.Resources{Memory: 64 << 20, MemorySwap: -1}},
		{name: "swap negative", r: container.Resources{Memory: 64 << 20, MemorySwap: -2}, want: "Invalid value -2 for memory swap: it is -1 (unlimited) or at least the memory limit"},
		{name: "swappiness", r: container.Resources{MemorySwappiness: i64(101)}, want: "Invalid value: 101, valid memory swappiness range is 0-100"},
		{name: "swappiness default", r: container.Resources{MemorySwappiness: i64(-1)}},
		{name: "reservation small", r: container.Resources{MemoryReservation: 1024}, want: "Minimum memory reservation allowed is 6MB"},
		{name: "reservation negative", r: container.Resources{MemoryReservation: -1}, want: "Minimum memory reservation allowed is 6MB"},
		{name: "reservation above limit", r: container.Resources{Memory: 8 << 20, MemoryReservation: 16 << 20}, want: "Minimum memory limit can not be less than memory reservation limit, see usage"},
		{name: "nano and period", r: container.Resources{NanoCPUs: 1e9, CPUPeriod: 100000}, want: "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{name: "nano and quota", r: container.Resources{NanoCPUs: 1e9, CPUQuota: 50000}, want: "Conflicting options: Nano CPUs and CPU Quota cannot both be set"},
		{name: "nano negative", r: container.Resources{NanoCPUs: -1}, want: fmt.Sprintf("range of CPUs is from 0.01 to %[1]d.00, as there are only %[1]d CPUs available", nc)},
		{name: "nano too many", r: container.Resources{NanoCPUs: int64(nc+1) * 1e9}, want: fmt.Sprintf("range of CPUs is from 0.01 to %[1]d.00, as there are only %[1]d CPUs available", nc)},
		{name: "nano ok", r: container.Resources{NanoCPUs: 5e8}},
		{name: "shares negative", r: container.Resources{CPUShares: -5}, want: "range of CPUShares is from 2 to 262144"},
		{name: "shares huge", r: container.Resources{CPUShares: 1 << 40}, want: "range of CPUShares is from 2 to 262144"},
		{name: "shares ok", r: container.Resources{CPUShares: 512}},
		{name: "period", r: container.Resources{CPUPeriod: 10}, want: "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"},
		{name: "quota", r: container.Resources{CPUQuota: 10}, want: "CPU cfs quota can not be less than 1ms (i.e. 1000)"},
		{name: "blkio weight", r: container.Resources{BlkioWeight: 5}, want: "Range of blkio weight is from 10 to 1000"},
		{name: "blkio weight high", r: container.Resources{BlkioWeight: 1001}, want: "Range of blkio weight is from 10 to 1000"},
		{name: "pids negative is unlimited", r: container.Resources{PidsLimit: i64(-5)}},
		{name: "ulimit name", r: container.Resources{Ulimits: []*container.Ulimit{{Name: "bogus", Soft: 1, Hard: 1}}}, want: "invalid ulimit type: bogus"},
		{name: "ulimit soft above hard", r: container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 200, Hard: 100}}}, want: "ulimit soft limit must be less than or equal to hard limit: 200 > 100"},
		{name: "ulimit soft unlimited", r: container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile", Soft: -1, Hard: 100}}}, want: "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: 100"},
		{name: "ulimit negative", r: container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile", Soft: -7, Hard: -7}}}, want: "invalid ulimit nofile: a limit is -1 (unlimited) or not negative, got -7:-7"},
		{name: "ulimit ok", r: container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 100, Hard: 200}, {Name: "core", Soft: -1, Hard: -1}}}},
		{name: "shm negative", hc: func(h *container.HostConfig) { h.ShmSize = -1 }, want: "SHM size can not be less than 0"},
		{name: "oom score low", hc: func(h *container.HostConfig) { h.OomScoreAdj = -1001 }, want: "Invalid value -1001, range for oom score adj is [-1000, 1000]"},
		{name: "oom score high", hc: func(h *container.HostConfig) { h.OomScoreAdj = 1001 }, want: "Invalid value 1001, range for oom score adj is [-1000, 1000]"},
		{name: "workdir relative", cfg: container.Config{WorkingDir: "rel"}, want: "the working directory 'rel' is invalid, it needs to be an absolute path"},
		{name: "stop signal", cfg: container.Config{StopSignal: "SIGBOGUS"}, want: "invalid signal: SIGBOGUS"},
		{name: "stop signal ok", cfg: container.Config{StopSignal: "SIGUSR1"}},
		{name: "env without name", cfg: container.Config{Env: []string{"A=1", "=x"}}, want: "invalid environment variable: =x"},
		{name: "health interval", cfg: container.Config{Healthcheck: &container.HealthConfig{Interval: 5}}, want: "Interval in Healthcheck cannot be less than 1ms"},
		{name: "health retries", cfg: container.Config{Healthcheck: &container.HealthConfig{Retries: -1}}, want: "Retries in Healthcheck cannot be negative"},
		{name: "cap add unknown", hc: func(h *container.HostConfig) { h.CapAdd = []string{"BOGUS"} }, want: `invalid CapAdd: unknown capability: "CAP_BOGUS"`},
		{name: "cap drop unknown", hc: func(h *container.HostConfig) { h.CapDrop = []string{"cap_nope"} }, want: `invalid CapDrop: unknown capability: "CAP_NOPE"`},
		{name: "caps ok", hc: func(h *container.HostConfig) {
			h.CapAdd = []string{"net_admin", "CAP_SYS_PTRACE"}
			h.CapDrop = []string{"all"}
		}},
		{name: "ipc mode", hc: func(h *container.HostConfig) { h.IpcMode = "bogus" }, want: "invalid IPC mode: bogus"},
		{name: "pid mode", hc: func(h *container.HostConfig) { h.PidMode = "bogus" }, want: "invalid PID mode: bogus"},
		{name: "uts mode", hc: func(h *container.HostConfig) { h.UTSMode = "bogus" }, want: "invalid UTS mode: bogus"},
		{name: "cgroupns mode", hc: func(h *container.HostConfig) { h.CgroupnsMode = "bogus" }, want: "invalid cgroup namespace mode: bogus"},
		{name: "nul in cmd", cfg: container.Config{Cmd: []string{"true\x00x"}}, want: `invalid command "true\x00x": it contains a NUL byte`},
		{name: "nul in env", cfg: container.Config{Env: []string{"A=\x00"}}, want: `invalid environment variable "A=\x00": it contains a NUL byte`},
		{name: "nul in user", cfg: container.Config{User: "a\x00"}, want: `invalid user "a\x00": it contains a NUL byte`},
		{name: "long workdir", cfg: container.Config{WorkingDir: "/" + strings.Repeat("a", 300)}, want: "invalid working directory: file name too long (a name of 300 bytes, at most 255)"},
		{name: "long domainname", cfg: container.Config{Domainname: strings.Repeat("a", 65)}, want: fmt.Sprintf("domainname %q is too long (maximum 64 bytes)", strings.Repeat("a", 65))},
		{name: "nul in bind", hc: func(h *container.HostConfig) { h.Binds = []string{"/tmp/x\x00:/x"} }, want: `invalid bind "/tmp/x\x00:/x": it contains a NUL byte`},
		{name: "long bind", hc: func(h *container.HostConfig) { h.Binds = []string{"/tmp:/" + strings.Repeat("a/", 2100)} }, want: "invalid bind: file name too long (4206 bytes, at most 4095)"},
		{name: "tmpfs size", hc: func(h *container.HostConfig) { h.Tmpfs = map[string]string{"/t": "size=abc"} }, want: `invalid tmpfs option "size=abc" for /t: want a size like 64m`},
		{name: "tmpfs mode", hc: func(h *container.HostConfig) { h.Tmpfs = map[string]string{"/t": "mode=999"} }, want: `invalid tmpfs option "mode=999" for /t: want an octal mode like 1777`},
		{name: "tmpfs ok", hc: func(h *container.HostConfig) { h.Tmpfs = map[string]string{"/t": "rw,size=64m,mode=1777,noexec"} }},
		{name: "tmpfs percent", hc: func(h *container.HostConfig) { h.Tmpfs = map[string]string{"/t": "size=50%"} }},
		{name: "hostname", cfg: container.Config{Hostname: strings.Repeat("h", 65)}, want: fmt.Sprintf("hostname %q is too long (maximum 64 bytes)", strings.Repeat("h", 65))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hc := &container.HostConfig{Resources: c.r}
			if c.hc != nil {
				c.hc(hc)
			}
			cfg := c.cfg
			err := validateSettings(&cfg, hc, c.update)
			if c.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || err.Error() != c.want || messages.KindOf(err) != messages.KindInvalidParameter {
				t.Fatalf("got %v (kind %v), want 400 %q", err, messages.KindOf(err), c.want)
			}
		})
	}
}

func TestValidateSettingsPidsLimitUnlimited(t *testing.T) {
	v := int64(-1)
	hc := &container.HostConfig{Resources: container.Resources{PidsLimit: &v}}
	if err := validateSettings(nil, hc, false); err != nil || hc.PidsLimit != nil {
		t.Fatalf("err %v, PidsLimit %v: want nil (unlimited)", err, hc.PidsLimit)
	}
}

func TestProcessSpecRlimits(t *testing.T) {
	rec := recordWith(&container.HostConfig{Resources: container.Resources{Ulimits: []*container.Ulimit{
		{Name: "nofile", Soft: 100, Hard: 100},
		{Name: "nproc", Soft: -1, Hard: -1},
		{Name: "nofile", Soft: 50, Hard: 60},
	}}})
	want := []wire.Rlimit{{Name: "nofile", Soft: 50, Hard: 60}, {Name: "nproc", Soft: ^uint64(0), Hard: ^uint64(0)}}
	if got := processSpec(rec).Rlimits; !reflect.DeepEqual(got, want) {
		t.Errorf("main rlimits %+v, want %+v", got, want)
	}
	if got := processSpec(recordWith(&container.HostConfig{})).Rlimits; got != nil {
		t.Errorf("no --ulimit: %+v, want none", got)
	}
}

func recordWith(hc *container.HostConfig) *persistence.ContainerRecord {
	return &persistence.ContainerRecord{ID: "c", Path: "sh", Config: &container.Config{}, HostConfig: hc}
}

func TestHostLimits(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	cases := []struct {
		hc   *container.HostConfig
		want wire.SetupRequest
	}{
		{nil, wire.SetupRequest{}},
		{&container.HostConfig{}, wire.SetupRequest{}},
		{&container.HostConfig{ReadonlyRootfs: true, ShmSize: 1 << 20, Resources: container.Resources{PidsLimit: i64(5)}},
			wire.SetupRequest{ReadonlyRootfs: true, ShmSize: 1 << 20, PidsLimit: 5}},
		{&container.HostConfig{Resources: container.Resources{PidsLimit: i64(-1)}}, wire.SetupRequest{}},
	}
	for i, c := range cases {
		var got wire.SetupRequest
		hostLimits(&got, c.hc)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%d: %+v, want %+v", i, got, c.want)
		}
	}
}

func TestVolumeNameLength(t *testing.T) {
	if err := volumeNameLength(strings.Repeat("v", 255)); err != nil {
		t.Error(err)
	}
	if err := volumeNameLength(strings.Repeat("v", 256)); messages.KindOf(err) != messages.KindInvalidParameter {
		t.Errorf("256 bytes: %v", err)
	}
}

func TestImagePruneUntil(t *testing.T) {
	for _, v := range []string{"24h", "2026-01-02T15:04:05Z", "1700000000"} {
		if _, ok := imagePruneUntil(v); !ok {
			t.Errorf("%s: refused", v)
		}
	}
	for _, v := range []string{"bogus", "", "24 h"} {
		if _, ok := imagePruneUntil(v); ok {
			t.Errorf("%q: accepted", v)
		}
	}
}

func TestStartErrorInvalidIsClientError(t *testing.T) {
	err := startError(fmt.Errorf("start process main: %w", wire.Errorf(wire.KindInvalid, "unable to find user nosuch: no matching entries in passwd file")))
	if messages.KindOf(err) != messages.KindInvalidParameter || err.Error() != "failed to create task for container: start process main: unable to find user nosuch: no matching entries in passwd file" {
		t.Errorf("%v (kind %v)", err, messages.KindOf(err))
	}
	if err := startError(fmt.Errorf("boot: %w", io.ErrUnexpectedEOF)); messages.KindOf(err) != messages.KindInternal {
		t.Errorf("machine failure: kind %v", messages.KindOf(err))
	}
}
