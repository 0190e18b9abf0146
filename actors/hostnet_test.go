package actors

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/arcavm/arca/persistence"
)

func TestHostNetResolvConf(t *testing.T) {
	gw := netip.MustParseAddr("198.19.0.1")
	host := "# from the host\nsearch corp.example\nnameserver 10.0.0.2\nnameserver 127.0.0.53\noptions edns0\n"
	for _, c := range []struct {
		name string
		host string
		hc   container.HostConfig
		gw   netip.Addr
		want string
	}{
		{"host's servers, loopback through the gateway", host, container.HostConfig{}, gw,
			"# from the host\nsearch corp.example\noptions edns0\nnameserver 10.0.0.2\nnameserver 198.19.0.1\n"},
		{"no gateway drops a loopback server", host, container.HostConfig{}, netip.Addr{},
			"# from the host\nsearch corp.example\noptions edns0\nnameserver 10.0.0.2\n"},
		{"--dns replaces the servers", host, container.HostConfig{DNS: []netip.Addr{netip.MustParseAddr("9.9.9.9")}}, gw,
			"# from the host\nsearch corp.example\noptions edns0\nnameserver 9.9.9.9\n"},
		{"--dns-search and --dns-option replace their lines", host,
			container.HostConfig{DNSSearch: []string{"a.example", "b.example"}, DNSOptions: []string{"ndots:2"}}, gw,
			"# from the host\nnameserver 10.0.0.2\nnameserver 198.19.0.1\nsearch a.example b.example\noptions ndots:2\n"},
		{"two loopback servers give the gateway once", "nameserver 127.0.0.1\nnameserver ::1\n", container.HostConfig{}, gw,
			"nameserver 198.19.0.1\n"},
		{"empty", "", container.HostConfig{}, gw, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := string(hostNetResolvConf([]byte(c.host), &c.hc, c.gw)); got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

func TestHostNetHosts(t *testing.T) {
	gw := netip.MustParseAddr("198.19.0.1")
	host := "127.0.0.1 localhost\n127.0.0.1 vm"
	for _, c := range []struct {
		name  string
		host  string
		extra []string
		gw    netip.Addr
		want  string
	}{
		{"a copy of the host's, and the host by name", host, nil, gw,
			"127.0.0.1 localhost\n127.0.0.1 vm\n198.19.0.1\thost.docker.internal\n"},
		{"no gateway, no host name", host, nil, netip.Addr{}, "127.0.0.1 localhost\n127.0.0.1 vm\n"},
		{"the host's own entry kept", "10.1.1.1 host.docker.internal # mine\n", nil, gw, "10.1.1.1 host.docker.internal # mine\n"},
		{"--add-host: dockerd's defaults and the entries", host, []string{"db:10.0.0.5", "me:host-gateway"}, gw,
			defaultHostsLines + "10.0.0.5\tdb\n198.19.0.1\tme\n198.19.0.1\thost.docker.internal\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := string(hostNetHosts([]byte(c.host), c.extra, c.gw)); got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

func TestContainerEndpointsHost(t *testing.T) {
	idx := &networkIndex{byID: map[string]*persistence.NetworkRecord{}}
	for i, r := range []persistence.NetworkRecord{
		{Name: netBridge, Driver: "bridge", Subnet: "172.17.0.0/16", Gateway: "172.17.0.1"},
		{Name: netHost, Driver: "host"},
		{Name: netNone, Driver: "null"},
		{Name: "appnet", Driver: "bridge", Subnet: "172.30.0.0/16", Gateway: "172.30.0.1"},
	} {
		r.ID = strings.Repeat(string(rune('a'+i)), 64)
		idx.byID[r.ID] = &r
	}
	for _, c := range []struct {
		name      string
		mode      string
		endpoints map[string]*network.EndpointSettings
		want      []string // networks; nil: an error
		err       string
	}{
		{"host", "host", nil, []string{"host"}, ""},
		{"host as the CLI sends it", "host", map[string]*network.EndpointSettings{"host": {}}, []string{"host"}, ""},
		{"host and another network", "host", map[string]*network.EndpointSettings{"appnet": {}}, nil, errSharedNetwork},
		{"host joined from bridge mode", "bridge", map[string]*network.EndpointSettings{"host": {}}, nil, errConnectToHost},
		{"an alias on host", "host", map[string]*network.EndpointSettings{"host": {Aliases: []string{"x"}}}, nil, "network-scoped alias"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hc := &container.HostConfig{NetworkMode: container.NetworkMode(c.mode)}
			got, err := containerEndpoints(hc, &network.NetworkingConfig{EndpointsConfig: c.endpoints}, idx)
			if c.want == nil {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if names := slices.Sorted(maps.Keys(got)); !slices.Equal(names, c.want) {
				t.Errorf("networks %v, want %v", names, c.want)
			}
			rec := &persistence.ContainerRecord{HostConfig: hc, Networks: got}
			if order := endpointOrder(rec); !slices.Equal(order, c.want) {
				t.Errorf("interfaces %v, want %v", order, c.want)
			}
		})
	}
}
