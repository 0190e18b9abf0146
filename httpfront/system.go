package httpfront

import (
	"bufio"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/arcavm/arca/actors/security"
	"github.com/arcavm/arca/messages"
)

func (s *Server) ping(ctx *fasthttp.RequestCtx) {
	h := &ctx.Response.Header
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	// 2 sends the CLI's builds to BuildKit (/grpc, /session).
	if s.buildkit != nil {
		h.Set("Builder-Version", "2")
	} else {
		h.Set("Builder-Version", "1")
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	if ctx.IsHead() {
		h.SetContentLength(0)
		return
	}
	ctx.SetBodyString("OK")
}

func (s *Server) version(ctx *fasthttp.RequestCtx) {
	kernel := kernelVersion()
	v := system.VersionResponse{
		Platform: struct{ Name string }{Name: "Arca"},
		Components: []system.ComponentVersion{{
			Name:    "Engine",
			Version: s.info.Version,
			Details: map[string]string{
				"ApiVersion":    APIVersion,
				"MinAPIVersion": MinAPIVersion,
				"GitCommit":     s.info.GitCommit,
				"GoVersion":     runtime.Version(),
				"Os":            "linux",
				"Arch":          runtime.GOARCH,
				"KernelVersion": kernel,
				"Driver":        s.info.Driver,
			},
		}},
		Version:       s.info.Version,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		GitCommit:     s.info.GitCommit,
		GoVersion:     runtime.Version(),
		Os:            "linux",
		Arch:          runtime.GOARCH,
		KernelVersion: kernel,
	}
	writeJSON(ctx, fasthttp.StatusOK, v)
}

func (s *Server) systemInfo(ctx *fasthttp.RequestCtx) {
	res, err := s.ask(s.sys.Containers, &messages.ContainerCounts{}, 10*time.Second)
	if err != nil {
		writeError(ctx, err)
		return
	}
	counts := res.(*messages.ContainerCountsReply)
	res, err = s.ask(s.sys.Images, &messages.ImageCount{}, 10*time.Second)
	if err != nil {
		writeError(ctx, err)
		return
	}
	images := res.(*messages.ImageCountReply)
	hostname, _ := os.Hostname()
	driverStatus := [][2]string{{"Guest driver", s.info.Driver}}
	if s.info.DriverNote != "" {
		driverStatus = append(driverStatus, [2]string{"Acceleration", s.info.DriverNote})
	}
	if s.info.BootMode != "" {
		driverStatus = append(driverStatus, [2]string{"Boot", s.info.BootMode})
	}
	if s.info.Underlay != "" {
		driverStatus = append(driverStatus, [2]string{"Underlay", s.info.Underlay})
	}
	if s.info.GuestKernel != "" {
		driverStatus = append(driverStatus, [2]string{"Guest kernel", s.info.GuestKernel})
	}
	info := system.Info{
		ID:                 machineID(),
		Containers:         counts.Total,
		ContainersRunning:  counts.Running,
		ContainersPaused:   counts.Paused,
		ContainersStopped:  counts.Stopped,
		Images:             images.Count,
		Driver:             "overlayfs (" + s.info.Driver + ")",
		DriverStatus:       driverStatus,
		MemoryLimit:        true,
		SwapLimit:          false,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		IPv4Forwarding:     true,
		Debug:              s.info.Debug,
		NFd:                openFDs(),
		NGoroutines:        runtime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      "2",
		NEventsListener:    0,
		KernelVersion:      kernelVersion(),
		OperatingSystem:    operatingSystem(),
		OSVersion:          osVersion(),
		OSType:             "linux",
		Architecture:       arch(),
		IndexServerAddress: "https://index.docker.io/v1/",
		RegistryConfig: &registry.ServiceConfig{
			InsecureRegistryCIDRs: nil,
			IndexConfigs:          map[string]*registry.IndexInfo{},
		},
		NCPU:              runtime.NumCPU(),
		MemTotal:          memTotal(),
		DockerRootDir:     s.info.Root,
		Name:              hostname,
		Labels:            []string{},
		ExperimentalBuild: false,
		ServerVersion:     s.info.Version,
		Runtimes:          map[string]system.RuntimeWithStatus{s.info.Driver: {}},
		DefaultRuntime:    s.info.Driver,
		Isolation:         "",
		InitBinary:        "arca-agent",
		SecurityOptions:   append([]string{"name=vm-per-container"}, security.InfoOptions...),
		Warnings:          []string{},
		Swarm:             swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
	}
	writeJSON(ctx, fasthttp.StatusOK, info)
}

func (s *Server) actorTree(ctx *fasthttp.RequestCtx) {
	res, err := s.ask(s.sys.Registry, &messages.ActorTree{}, 5*time.Second)
	if err != nil {
		writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, res.(*messages.ActorTreeReply).Root)
}

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func arch() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return runtime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

// osRelease reads a key of /etc/os-release.
func osRelease(key string) string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && k == key {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func operatingSystem() string {
	if v := osRelease("PRETTY_NAME"); v != "" {
		return v
	}
	return "Linux"
}

func osVersion() string { return osRelease("VERSION_ID") }

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

func machineID() string {
	b, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		return "arca"
	}
	return strings.TrimSpace(string(b))
}
