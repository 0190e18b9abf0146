package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/arcavm/arca/internal/testenv"
)

// TestNetworkHost: --network host on the sandbox driver (the qemu test
// runs the same checks in VMs).
func TestNetworkHost(t *testing.T) {
	d := testenv.SharedDaemon(t)
	checkHostNetwork(t, d, pulled(t, d))
}

// checkHostNetwork drives --network host through the CLI: the machine's
// own uplink, which reaches what the host reaches (its loopback as
// host.docker.internal, its other addresses as they are), the host's
// name and resolvers, no embedded DNS, no mesh, no published ports, and
// the "host" network in inspect, as dockerd shows it.
func checkHostNetwork(t *testing.T, d *testenv.Daemon, img string) {
	t.Helper()
	// A server on every host address: the loopback is reached through
	// the gateway that stands for it, any other address as addressed.
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "host here") }))
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	targets := []string{"host.docker.internal"}
	if ip := hostAddress(); ip.IsValid() {
		targets = append(targets, ip.String())
	}
	script := "hostname; echo ---; cat /etc/resolv.conf; echo ---; ls /sys/class/net; echo ---"
	for _, h := range targets {
		script += "; timeout 10 wget -q -O - http://" + h + ":" + port + "/; echo"
	}
	out := d.Docker(t, "run", "--rm", "--network", "host", img, "sh", "-c", script).Must(t).Stdout
	parts := strings.Split(out, "---\n")
	if len(parts) != 4 {
		t.Fatalf("output: %q", out)
	}
	if want, _ := os.Hostname(); strings.TrimSpace(parts[0]) != want {
		t.Errorf("hostname %q, want the host's %q", parts[0], want)
	}
	resolv := parts[1]
	if strings.Contains(resolv, "127.0.0.11") {
		t.Errorf("resolv.conf names the embedded resolver:\n%s", resolv)
	}
	for _, ns := range hostNameservers(t) {
		if !ns.IsLoopback() && !strings.Contains(resolv, "nameserver "+ns.String()+"\n") {
			t.Errorf("resolv.conf lacks the host's nameserver %s:\n%s", ns, resolv)
		}
	}
	// One uplink and loopback: no interface per network, no mesh.
	if links := strings.Fields(parts[2]); strings.Join(links, " ") != "eth0 lo" {
		t.Errorf("links %q, want eth0 and lo", links)
	}
	if want := strings.Repeat("host here\n", len(targets)); parts[3] != want {
		t.Errorf("reaching the host at %v: %q, want %q", targets, parts[3], want)
	}

	// Published ports are discarded, with dockerd's warning.
	name := testenv.Name(t, "hostnet")
	r := d.Docker(t, "run", "-d", "--name", name, "--network", "host", "-p", "127.0.0.1::80", img, "sleep", "60").Must(t)
	defer d.Docker(t, "rm", "-f", name)
	if !strings.Contains(r.Stderr, "Published ports are discarded when using host network mode") {
		t.Errorf("run -p --network host: stderr %q", r.Stderr)
	}
	if out := d.Docker(t, "port", name).Stdout; strings.TrimSpace(out) != "" {
		t.Errorf("docker port: %q", out)
	}
	got := d.Docker(t, "inspect", "--format",
		`{{.HostConfig.NetworkMode}} {{range $k, $v := .NetworkSettings.Networks}}{{$k}}:{{$v.IPAddress}}:{{if $v.EndpointID}}ep{{end}} {{end}}{{len .NetworkSettings.Ports}}`, name).Must(t).Stdout
	if strings.TrimSpace(got) != "host host::ep 0" {
		t.Errorf("inspect: %q, want NetworkMode host, the host network with no address, no ports", got)
	}
	if got := d.Docker(t, "network", "inspect", "host", "--format", "{{range .Containers}}{{.Name}} {{end}}").Must(t).Stdout; !strings.Contains(got, name) {
		t.Errorf("network inspect host lists %q", got)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "connect", "bridge", name}, "cannot be connected to any other network"},
		{[]string{"network", "disconnect", "host", name}, "cannot disconnect container from host network"},
		{[]string{"run", "--rm", "--network", "host", "--network", "bridge", img, "true"}, "cannot be connected to any other network"},
	} {
		if r := d.Docker(t, c.args...); r.Code == 0 || !strings.Contains(r.Stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", c.args, r.Code, r.Stderr, c.want)
		}
	}
}

// hostAddress is one of the host's own IPv4 addresses other than
// loopback, if it has one.
func hostAddress() netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() {
			return p.Addr()
		}
	}
	return netip.Addr{}
}

// hostNameservers are the host's resolv.conf's.
func hostNameservers(t *testing.T) []netip.Addr {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []netip.Addr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == "nameserver" {
			if ip, err := netip.ParseAddr(fs[1]); err == nil {
				out = append(out, ip)
			}
		}
	}
	return out
}
