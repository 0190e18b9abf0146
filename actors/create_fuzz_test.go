package actors

import (
	"encoding/json"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"

	"github.com/arcavm/arca/internal/portmap"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

// FuzzCreateContainer runs a POST /containers/create body through what the
// daemon does with it before anything is stored: httpfront's decode (plain
// json.Unmarshal into a CreateRequest, as decodeJSON does) and every check
// the containers supervisor makes at create, in its order. Whatever the
// body, the answer is a record or a client error (400, or 404 for a network
// that does not exist), never a panic or a 500; and a record that passes
// must be one the store can write and read back, since create persists it
// before it answers.
func FuzzCreateContainer(f *testing.F) {
	for _, s := range []string{
		`{"Image":"busybox","Cmd":["echo","hi"],"HostConfig":{"AutoRemove":true}}`,
		`{"Image":"nginx","ExposedPorts":{"80/tcp":{}},"HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]},"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}}}`,
		`{"Image":"busybox","Entrypoint":[""],"Cmd":["sh"],"Tty":true,"OpenStdin":true,"Env":["A=b","PATH=/x"],"WorkingDir":"/w","User":"1000:1000","Labels":{"com.example":"x"}}`,
		`{"Image":"busybox","HostConfig":{"Binds":["data:/data:ro,nocopy","/srv/www:/www:rw"],"Mounts":[{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1048576,"Mode":1023}},{"Type":"volume","Target":"/v"}],"Tmpfs":{"/run":"rw,size=64m"}}}`,
		`{"Image":"busybox","HostConfig":{"NetworkMode":"appnet","ExtraHosts":["db:10.0.0.5","gw:host-gateway"]},"NetworkingConfig":{"EndpointsConfig":{"appnet":{"Aliases":["web"],"IPAMConfig":{"IPv4Address":"172.30.0.9"}},"none":{}}}}`,
		`{"Image":"busybox","HostConfig":{"NetworkMode":"host"}}`,
		`{"Image":"busybox","HostConfig":{"NetworkMode":"container:abc"}}`,
		`{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"always"},"AutoRemove":true}}`,
		`{"Image":"busybox","Healthcheck":{"Test":["CMD","true"],"Interval":1000000000},"StopSignal":"SIGTERM","Volumes":{"/data":{}}}`,
		`{"Image":""}`,
		`{}`,
		`{"Image":1}`,
		`null`,
	} {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`{"Image":"busybox"}`), "/web_1")
	f.Add([]byte(`{"Image":"busybox"}`), "bad name!")

	// Bind sources are host paths that create makes when missing, as
	// dockerd does for -v: the fuzzer's are moved under a directory of
	// its own, so it never makes directories anywhere else on the host.
	hostDir := f.TempDir()
	idx := &networkIndex{byID: map[string]*persistence.NetworkRecord{}}
	for i, r := range []persistence.NetworkRecord{
		{Name: netBridge, Driver: "bridge", Subnet: "172.17.0.0/16", Gateway: "172.17.0.1"},
		{Name: netHost, Driver: "host"},
		{Name: netNone, Driver: "null"},
		{Name: "appnet", Driver: "bridge", Subnet: "172.30.0.0/16", Gateway: "172.30.0.1", SubnetGiven: true},
	} {
		r.ID = strings.Repeat(string(rune('a'+i)), 64)
		idx.byID[r.ID] = &r
	}
	img := &messages.ResolveImageReply{
		Image:  &persistence.ImageRecord{ID: digest.Digest("sha256:" + strings.Repeat("0", 64))},
		Config: &dockerspec.DockerOCIImage{Config: dockerspec.DockerOCIImageConfig{}},
	}
	img.Config.Config.Env = []string{"PATH=/usr/bin:/bin", "HOME=/root"}
	img.Config.Config.Cmd = []string{"sh"}
	img.Config.Config.Volumes = map[string]struct{}{"/var/lib/data": {}}
	img.Config.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}, "bogus": {}}
	img.Config.Config.Labels = map[string]string{"maintainer": "x"}

	f.Fuzz(func(t *testing.T, body []byte, name string) {
		var req container.CreateRequest
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				return // httpfront answers 400 "invalid JSON"
			}
		}
		if req.Config == nil {
			return // httpfront answers 400 before asking the supervisor
		}
		if req.HostConfig != nil {
			for i, b := range req.HostConfig.Binds {
				if strings.HasPrefix(b, "/") {
					b = hostDir + b
					if src, _, _ := strings.Cut(b, ":"); !strings.HasPrefix(filepath.Clean(src)+"/", hostDir+"/") {
						t.Skip("bind source climbs out of the fuzzer's directory")
					}
					req.HostConfig.Binds[i] = b
				}
			}
		}
		m := &messages.CreateContainer{Name: name, Config: req.Config, HostConfig: req.HostConfig, NetworkingConfig: req.NetworkingConfig}
		rec, err := createChecks(m, img, idx)
		if err != nil {
			switch messages.KindOf(err) {
			case messages.KindInvalidParameter, messages.KindNotFound:
			default:
				t.Fatalf("create answers kind %v (not a client error): %v", messages.KindOf(err), err)
			}
			return
		}
		// An empty argv is refused; an empty program name is not (dockerd
		// too fails that one at start, not at create).
		argv := append(append([]string{}, rec.Config.Entrypoint...), rec.Config.Cmd...)
		if len(argv) == 0 || rec.Path != argv[0] || !slices.Equal(rec.Args, argv[1:]) {
			t.Fatalf("path %q args %q for entrypoint %q cmd %q", rec.Path, rec.Args, rec.Config.Entrypoint, rec.Config.Cmd)
		}
		if rec.Config.Hostname == "" || rec.HostConfig.NetworkMode == "" || rec.HostConfig.LogConfig.Type == "" {
			t.Fatalf("defaults not filled: %+v %+v", rec.Config, rec.HostConfig)
		}
		seen := map[string]bool{}
		for _, mt := range rec.Mounts {
			if !path.IsAbs(mt.Destination) || path.Clean(mt.Destination) != mt.Destination || seen[mt.Destination] {
				t.Fatalf("mount destination %q: not absolute, not clean or twice", mt.Destination)
			}
			seen[mt.Destination] = true
			if mt.Type == "bind" && !strings.HasPrefix(mt.Source+"/", hostDir+"/") {
				t.Fatalf("bind source %q outside %s", mt.Source, hostDir)
			}
		}
		// Create writes the record before answering: it must encode, and
		// decode to what encodes the same again (what inspect shows after
		// a restart is what it showed before).
		b1, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("record does not encode (create would answer 500): %v", err)
		}
		var back persistence.ContainerRecord
		if err := json.Unmarshal(b1, &back); err != nil {
			t.Fatalf("stored record does not decode: %v\n%s", err, b1)
		}
		b2, err := json.Marshal(&back)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		if string(b1) != string(b2) {
			t.Fatalf("record changes through the store:\n%s\n%s", b1, b2)
		}
	})
}

// createChecks is containersSupervisor.create's validation, in its order,
// without the actors around it.
func createChecks(m *messages.CreateContainer, img *messages.ResolveImageReply, idx *networkIndex) (*persistence.ContainerRecord, error) {
	if m.Config.Image == "" {
		return nil, messages.InvalidParameter("no image specified")
	}
	if m.HostConfig != nil {
		if err := validateRestartPolicy(m.HostConfig); err != nil {
			return nil, err
		}
	}
	name := strings.TrimPrefix(m.Name, "/")
	if m.Name != "" && !validName.MatchString(m.Name) {
		return nil, messages.InvalidParameter("invalid name")
	}
	if name == "" {
		name = "fuzzy_name"
	}
	rec, err := newContainerRecord(name, m, img)
	if err != nil {
		return nil, err
	}
	if rec.Networks, err = containerEndpoints(rec.HostConfig, m.NetworkingConfig, idx); err != nil {
		return nil, err
	}
	if _, err := parseExtraHosts(rec.HostConfig.ExtraHosts); err != nil {
		return nil, err
	}
	if _, err := portmap.Bindings(rec.Config, rec.HostConfig); err != nil {
		return nil, messages.InvalidParameter("%v", err)
	}
	n := 0
	rec.Mounts, err = resolveMounts(rec.Config, rec.HostConfig, func() string { n++; return strings.Repeat("f", 63) + string(rune('0'+n%10)) })
	if err != nil {
		return nil, err
	}
	return rec, nil
}
