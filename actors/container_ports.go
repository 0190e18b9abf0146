package actors

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"sync/atomic"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/internal/portmap"
	"github.com/arcavm/arca/messages"
)

// portRun is one run's published ports: bound before the machine boots,
// so a taken port fails the start before anything is made, and carried to
// the agent once its session is up.
type portRun struct {
	pub    *portmap.Published
	target atomic.Pointer[wire.Client]
}

// errNotUp refuses a connection that arrives before the machine is up.
var errNotUp = errors.New("container is not running")

// publishPorts binds the container's published ports for a new run.
func (a *containerActor) publishPorts() (*portRun, error) {
	rec := a.rt.rec
	if hostNetworking(rec.HostConfig) {
		return nil, nil // discarded, as dockerd warned at create
	}
	bs, err := portmap.Bindings(rec.Config, rec.HostConfig)
	if err != nil {
		return nil, messages.InvalidParameter("%v", err)
	}
	if len(bs) == 0 {
		return nil, nil
	}
	pr := &portRun{}
	pub, err := portmap.Publish(bs, func(ctx context.Context, proto string, port int) (net.Conn, error) {
		c := pr.target.Load()
		if c == nil {
			return nil, errNotUp
		}
		return c.Dial(ctx, proto, port)
	})
	if err != nil {
		return nil, messages.Internal("driver failed programming external connectivity on endpoint %s (%s): %v", rec.Name, rec.ID, err)
	}
	pr.pub = pub
	return pr, nil
}

// closePorts frees the host ports of the run.
func (a *containerActor) closePorts() {
	if p := a.rt.ports; p != nil {
		a.rt.ports = nil
		p.target.Store(nil)
		p.pub.Close()
	}
}

// portMap is NetworkSettings.Ports: the ports bound for this run, and
// exposed ones without a binding as null, as dockerd shows them.
func (a *containerActor) portMap() network.PortMap {
	out := network.PortMap{}
	if !a.running() || hostNetworking(a.rt.rec.HostConfig) {
		return out
	}
	for p := range a.rt.rec.Config.ExposedPorts {
		out[p] = nil
	}
	if a.rt.ports != nil {
		for p, b := range a.rt.ports.pub.Ports {
			out[p] = b
		}
	}
	return out
}

// portSummaries is docker ps's PORTS column.
func portSummaries(pm network.PortMap) []container.PortSummary {
	out := []container.PortSummary{}
	for p, bs := range pm {
		if len(bs) == 0 {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
			continue
		}
		for _, b := range bs {
			n, _ := strconv.Atoi(b.HostPort)
			ip := b.HostIP
			if !ip.IsValid() {
				ip = netip.IPv4Unspecified()
			}
			out = append(out, container.PortSummary{IP: ip, PrivatePort: p.Num(), PublicPort: uint16(n), Type: string(p.Proto())})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PrivatePort != out[j].PrivatePort {
			return out[i].PrivatePort < out[j].PrivatePort
		}
		return out[i].Type < out[j].Type
	})
	return out
}
