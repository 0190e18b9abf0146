package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/arcavm/arca/internal/testenv"
)

// TestNetworkAPI covers docker network create, ls, inspect, rm and prune,
// and the errors dockerd gives for bad requests.
func TestNetworkAPI(t *testing.T) {
	d := testenv.SharedDaemon(t)
	n := testenv.Name(t)
	ls := d.Docker(t, "network", "ls", "--format", "{{.Name}} {{.Driver}}").Must(t).Stdout
	for _, want := range []string{"bridge bridge", "host host", "none null"} {
		if !strings.Contains(ls, want+"\n") {
			t.Errorf("network ls lacks %q:\n%s", want, ls)
		}
	}

	d.Docker(t, "network", "create", "--label", "team=a", n+"-auto").Must(t)
	d.Docker(t, "network", "create", "--subnet", "10.91.0.0/24", "--gateway", "10.91.0.254",
		"--ip-range", "10.91.0.128/25", "--internal", "-o", "x=y", n+"-fixed").Must(t)
	defer d.Docker(t, "network", "rm", n+"-auto", n+"-fixed")

	var nets []struct {
		Name     string
		Driver   string
		Internal bool
		Options  map[string]string
		Labels   map[string]string
		IPAM     struct {
			Config []struct{ Subnet, Gateway, IPRange string }
		}
	}
	out := d.Docker(t, "network", "inspect", n+"-auto", n+"-fixed").Must(t).Stdout
	if err := json.Unmarshal([]byte(out), &nets); err != nil || len(nets) != 2 {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	if c := nets[0].IPAM.Config; len(c) != 1 || !strings.HasPrefix(c[0].Subnet, "172.") || c[0].Gateway == "" || nets[0].Labels["team"] != "a" {
		t.Errorf("auto network: %+v", nets[0])
	}
	if c := nets[1].IPAM.Config; len(c) != 1 || c[0].Subnet != "10.91.0.0/24" || c[0].Gateway != "10.91.0.254" ||
		c[0].IPRange != "10.91.0.128/25" || !nets[1].Internal || nets[1].Options["x"] != "y" {
		t.Errorf("fixed network: %+v", nets[1])
	}

	filtered := d.Docker(t, "network", "ls", "-q", "--filter", "label=team=a").Must(t).Stdout
	if strings.Count(filtered, "\n") != 1 {
		t.Errorf("label filter: %q", filtered)
	}
	custom := d.Docker(t, "network", "ls", "--format", "{{.Name}}", "--filter", "type=custom").Must(t).Stdout
	if strings.Contains(custom, "bridge\n") || !strings.Contains(custom, n+"-auto\n") {
		t.Errorf("type=custom: %q", custom)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "create", n + "-auto"}, "network with name " + n + "-auto already exists"},
		{[]string{"network", "create", "--subnet", "10.91.0.0/16", n + "-overlap"}, "Pool overlaps with other one on this address space"},
		{[]string{"network", "create", "--subnet", "10.92.0.0/24", "--gateway", "10.93.0.1", n + "-gw"}, "no matching subnet for gateway 10.93.0.1"},
		{[]string{"network", "create", "-d", "overlay", n + "-drv"}, `plugin "overlay" not found`},
		{[]string{"network", "rm", "bridge"}, "bridge is a pre-defined network and cannot be removed"},
		{[]string{"network", "inspect", n + "-missing"}, "network " + n + "-missing not found"},
		{[]string{"network", "ls", "--filter", "bogus=1"}, "invalid filter 'bogus'"},
	} {
		r := d.Docker(t, c.args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", c.args, r.Code, r.Stderr, c.want)
		}
	}
	if got := d.Docker(t, "network", "ls", "-q", "--filter", "name="+n+"-overlap").Stdout; got != "" {
		t.Errorf("a refused create left a network: %q", got)
	}

	// prune removes unused custom networks only.
	d.Docker(t, "network", "create", "--label", "prune="+n, n+"-prune").Must(t)
	pr := d.Docker(t, "network", "prune", "-f", "--filter", "label=prune="+n).Must(t).Stdout
	if !strings.Contains(pr, n+"-prune") || strings.Contains(pr, n+"-auto") {
		t.Errorf("prune: %q", pr)
	}
}

// TestNetworkEndpoints checks what containers get on their networks:
// addresses from the network's pool, fixed addresses and aliases, inspect
// on both sides, and the refusals.
func TestNetworkEndpoints(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	n := testenv.Name(t)
	d.Docker(t, "network", "create", "--subnet", "10.94.0.0/24", n).Must(t)
	defer d.Docker(t, "network", "rm", n)

	d.Docker(t, "run", "-d", "--name", n+"-a", "--network", n, "--ip", "10.94.0.50", "--network-alias", "db", img, "sleep", "300").Must(t)
	defer d.Docker(t, "rm", "-f", n+"-a")
	d.Docker(t, "run", "-d", "--name", n+"-b", "--network", n, img, "sleep", "300").Must(t)
	defer d.Docker(t, "rm", "-f", n+"-b")

	ip := d.Docker(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+n+"\").IPAddress}}", n+"-a").Must(t).Stdout
	if strings.TrimSpace(ip) != "10.94.0.50" {
		t.Errorf("fixed ip: %q", ip)
	}
	aliases := d.Docker(t, "inspect", "-f", "{{json (index .NetworkSettings.Networks \""+n+"\").DNSNames}}", n+"-a").Must(t).Stdout
	if !strings.Contains(aliases, `"db"`) || !strings.Contains(aliases, `"`+n+`-a"`) {
		t.Errorf("DNSNames: %s", aliases)
	}
	members := d.Docker(t, "network", "inspect", "-f", "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}", n).Must(t).Stdout
	if !strings.Contains(members, n+"-a=10.94.0.50/24") || !strings.Contains(members, n+"-b=10.94.0.") {
		t.Errorf("network inspect Containers: %q", members)
	}
	hosts := d.Docker(t, "exec", n+"-b", "cat", "/etc/hosts").Must(t).Stdout
	if !strings.Contains(hosts, "10.94.0.") {
		t.Errorf("/etc/hosts lacks the container's address:\n%s", hosts)
	}
	resolv := d.Docker(t, "exec", n+"-b", "cat", "/etc/resolv.conf").Must(t).Stdout
	if !strings.Contains(resolv, "nameserver 127.0.0.11") {
		t.Errorf("/etc/resolv.conf:\n%s", resolv)
	}

	// A network with running members cannot go; a stopped member frees it.
	if r := d.Docker(t, "network", "rm", n); r.Code == 0 || !strings.Contains(r.Stderr, "has active endpoints") {
		t.Errorf("rm in use: %d %q", r.Code, r.Stderr)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--rm", "--network", n, "--ip", "10.94.0.50", img, "true"}, "Address already in use"},
		{[]string{"run", "--rm", "--network", n, "--ip", "10.95.0.5", img, "true"}, "no configured subnet or ip-range contain the IP address 10.95.0.5"},
		{[]string{"run", "--rm", "--ip", "172.17.0.9", img, "true"}, "user specified IP address is supported only when connecting to networks with user configured subnets"},
		{[]string{"run", "--rm", "--network-alias", "x", img, "true"}, "network-scoped alias"},
		{[]string{"run", "--rm", "--network", n + "-missing", img, "true"}, "network " + n + "-missing not found"},
		{[]string{"run", "--rm", "--network", "container:" + n, img, "true"}, `network mode "container:` + n + `" is not supported`},
	} {
		r := d.Docker(t, c.args...)
		if r.Code == 0 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", c.args, r.Code, r.Stderr, c.want)
		}
	}

	// --network none: no interfaces but loopback.
	links := d.Docker(t, "run", "--rm", "--network", "none", img, "ls", "/sys/class/net").Must(t).Stdout
	if strings.TrimSpace(links) != "lo" {
		t.Errorf("--network none has links %q", links)
	}
}

// TestNetworkMesh drives the data plane: containers on one network reach
// each other by address, name and alias over the WireGuard mesh; a
// container on another network cannot; connect and disconnect while
// running change that at once.
func TestNetworkMesh(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	n := testenv.Name(t)
	d.Docker(t, "network", "create", n+"-app").Must(t)
	d.Docker(t, "network", "create", n+"-other").Must(t)
	defer d.Docker(t, "network", "rm", n+"-app", n+"-other")
	for _, c := range []struct{ name, net, alias string }{
		{n + "-db", n + "-app", "database"},
		{n + "-web", n + "-app", ""},
		{n + "-out", n + "-other", ""},
	} {
		args := []string{"run", "-d", "--name", c.name, "--network", c.net}
		if c.alias != "" {
			args = append(args, "--network-alias", c.alias)
		}
		d.Docker(t, append(args, img, "sleep", "300")...).Must(t)
		defer d.Docker(t, "rm", "-f", c.name)
	}
	dbIP := strings.TrimSpace(d.Docker(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+n+"-app\").IPAddress}}", n+"-db").Must(t).Stdout)

	ping := func(from, to string) testenv.Result {
		return d.Docker(t, "exec", from, "ping", "-c", "1", "-W", "3", to)
	}
	for _, to := range []string{dbIP, n + "-db", "database"} {
		if r := ping(n+"-web", to); r.Code != 0 {
			t.Errorf("web -> %s: %s %s", to, r.Stdout, r.Stderr)
		}
	}
	// A short ID resolves too, as on dockerd's user networks.
	id := strings.TrimSpace(d.Docker(t, "inspect", "-f", "{{.Id}}", n+"-db").Must(t).Stdout)
	if r := d.Docker(t, "exec", n+"-web", "nslookup", id[:12], "127.0.0.11"); !strings.Contains(r.Stdout, dbIP) {
		t.Errorf("short ID lookup: %s %s", r.Stdout, r.Stderr)
	}
	if r := d.Docker(t, "exec", n+"-web", "nslookup", n+"-nothere", "127.0.0.11"); r.Code == 0 {
		t.Errorf("unknown name resolved: %s", r.Stdout)
	}
	// Separate networks are separate.
	if r := ping(n+"-out", dbIP); r.Code == 0 {
		t.Errorf("a container on another network reached %s", dbIP)
	}
	if r := d.Docker(t, "exec", n+"-out", "nslookup", n+"-db", "127.0.0.11"); strings.Contains(r.Stdout, dbIP) {
		t.Errorf("a container on another network resolved db: %s", r.Stdout)
	}

	// Connect while running: reachable at once, under a new alias too.
	d.Docker(t, "network", "connect", "--alias", "late", n+"-app", n+"-out").Must(t)
	if r := ping(n+"-out", "database"); r.Code != 0 {
		t.Errorf("after connect: %s %s", r.Stdout, r.Stderr)
	}
	if r := ping(n+"-web", "late"); r.Code != 0 {
		t.Errorf("alias of a connected container: %s %s", r.Stdout, r.Stderr)
	}
	if r := d.Docker(t, "network", "connect", n+"-app", n+"-out"); r.Code == 0 || !strings.Contains(r.Stderr, "already exists in network") {
		t.Errorf("connect twice: %d %q", r.Code, r.Stderr)
	}
	d.Docker(t, "network", "disconnect", n+"-app", n+"-out").Must(t)
	if r := ping(n+"-out", dbIP); r.Code == 0 {
		t.Errorf("still reachable after disconnect")
	}
	links := d.Docker(t, "exec", n+"-out", "ls", "/sys/class/net").Must(t).Stdout
	if strings.Contains(links, "eth1") {
		t.Errorf("interface left after disconnect: %q", links)
	}

	// A stopped member leaves the mesh; started again, it is back.
	d.Docker(t, "stop", "-t", "1", n+"-db").Must(t)
	if r := ping(n+"-web", dbIP); r.Code == 0 {
		t.Errorf("stopped container still answers")
	}
	d.Docker(t, "start", n+"-db").Must(t)
	if r := ping(n+"-web", "database"); r.Code != 0 {
		t.Errorf("after restart: %s %s", r.Stdout, r.Stderr)
	}
}

// TestNetworkOutside covers what lies beyond a container's networks: the
// host's loopback through host.docker.internal (and --add-host
// host-gateway), names forwarded to the daemon's resolvers (the test's
// own, on loopback), internal networks that reach none of it, and a
// container that cannot see or touch the underlay its mesh runs on.
func TestNetworkOutside(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	n := testenv.Name(t)

	// A server on the host's loopback, which only the gateway can reach.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host says hi to %s", r.URL.Path)
	}))
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	d.Docker(t, "network", "create", n+"-app").Must(t)
	d.Docker(t, "network", "create", "--internal", n+"-sealed").Must(t)
	defer d.Docker(t, "network", "rm", n+"-app", n+"-sealed")

	for _, network := range []string{"bridge", n + "-app"} {
		r := d.Docker(t, "run", "--rm", "--network", network, img, "timeout", "10", "wget", "-q", "-O", "-", "http://host.docker.internal:"+port+"/"+network)
		if r.Code != 0 || r.Stdout != "host says hi to /"+network {
			t.Errorf("%s: host.docker.internal: %d %q %q", network, r.Code, r.Stdout, r.Stderr)
		}
	}
	// --add-host, with host-gateway standing for the same address.
	hosts := d.Docker(t, "run", "--rm", "--network", n+"-app", "--add-host", "db.example:10.1.2.3",
		"--add-host", "myhost:host-gateway", img, "sh", "-c", "cat /etc/hosts; timeout 10 wget -q -O - http://myhost:"+port+"/added").Must(t).Stdout
	if !strings.Contains(hosts, "10.1.2.3\tdb.example\n") || !strings.Contains(hosts, "\tmyhost\n") || !strings.HasSuffix(hosts, "host says hi to /added") {
		t.Errorf("--add-host: %q", hosts)
	}
	if r := d.Docker(t, "run", "--rm", "--add-host", "bad:not-an-ip", img, "true"); r.Code == 0 || !strings.Contains(r.Stderr, "invalid IP address in add-host") {
		t.Errorf("bad --add-host: %d %q", r.Code, r.Stderr)
	}

	// Names the networks do not know go to the daemon's resolvers. The
	// first query also waits on WireGuard's first handshake with the
	// gateway, which a loaded CI machine (and -race) can make slow enough
	// for nslookup to give up once: it asks a few times, as a resolver
	// library would retry.
	out := d.Docker(t, "run", "--rm", "--network", n+"-app", img, "sh", "-c",
		"for i in 1 2 3; do nslookup www."+testenv.ResolverDomain+" && exit 0; done; exit 1").Stdout
	if !strings.Contains(out, testenv.ResolverAnswer) {
		t.Errorf("forwarded name: %q", out)
	}
	if r := d.Docker(t, "run", "--rm", "--network", n+"-app", img, "nslookup", "nowhere.invalid"); r.Code == 0 {
		t.Errorf("an unknown name resolved: %q", r.Stdout)
	}

	// An internal network reaches neither the host nor the resolvers.
	r := d.Docker(t, "run", "--rm", "--network", n+"-sealed", img, "sh", "-c",
		"timeout 5 wget -q -O - http://host.docker.internal:"+port+"/ || echo no-host; nslookup www."+testenv.ResolverDomain+" || echo no-dns")
	if strings.Contains(r.Stdout, "host says hi") || !strings.Contains(r.Stdout, "no-host") || strings.Contains(r.Stdout, testenv.ResolverAnswer) {
		t.Errorf("internal network: %q %q", r.Stdout, r.Stderr)
	}

	// The container sees loopback and its WireGuard interfaces, never the
	// underlay link, and cannot reach another machine's underlay address.
	d.Docker(t, "run", "-d", "--name", n+"-a", "--network", n+"-app", img, "httpd", "-f", "-p", "8080").Must(t)
	defer d.Docker(t, "rm", "-f", n+"-a")
	links := d.Docker(t, "run", "--rm", "--network", n+"-app", img, "sh", "-c", "ls /sys/class/net; cat /proc/net/dev; ip -o addr").Must(t).Stdout
	if strings.Contains(links, "arca0") || strings.Contains(links, "198.18.") || !strings.Contains(links, "eth0") {
		t.Errorf("the container sees the underlay:\n%s", links)
	}
	if r := d.Docker(t, "run", "--rm", "--network", n+"-app", img, "timeout", "5", "wget", "-q", "-O", "-", "http://198.18.0.2:8080/"); r.Code == 0 {
		t.Errorf("reached an underlay address: %q", r.Stdout)
	}
}

// TestNetworkVolumeEvents: network and volume events as dockerd sends
// them, in order: create, connect and mount as a container starts,
// disconnect and unmount as it ends, destroy.
func TestNetworkVolumeEvents(t *testing.T) {
	d := testenv.SharedDaemon(t)
	img := pulled(t, d)
	n := testenv.Name(t)
	since := strconv.FormatInt(time.Now().Unix()-1, 10)
	d.Docker(t, "network", "create", n+"-net").Must(t)
	d.Docker(t, "volume", "create", n+"-vol").Must(t)
	d.Docker(t, "run", "--rm", "--network", n+"-net", "-v", n+"-vol:/data", img, "true").Must(t)
	d.Docker(t, "network", "rm", n+"-net").Must(t)
	d.Docker(t, "volume", "rm", n+"-vol").Must(t)
	until := strconv.FormatInt(time.Now().Unix()+1, 10)
	out := d.Docker(t, "events", "--since", since, "--until", until, "--filter", "type=network", "--filter", "type=volume",
		"--format", "{{.Type}} {{.Action}} {{if eq .Type \"volume\"}}{{.Actor.ID}}{{else}}{{.Actor.Attributes.name}}{{end}}").Must(t).Stdout
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasSuffix(line, n+"-net") || strings.HasSuffix(line, n+"-vol") {
			got = append(got, line)
		}
	}
	want := []string{
		"network create " + n + "-net", "volume create " + n + "-vol",
		"network connect " + n + "-net", "volume mount " + n + "-vol",
		"network disconnect " + n + "-net", "volume unmount " + n + "-vol",
		"network destroy " + n + "-net", "volume destroy " + n + "-vol",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
