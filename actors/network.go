package actors

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/network"

	"github.com/arcavm/arca/guest/vm/underlay"
	"github.com/arcavm/arca/internal/gateway"
	"github.com/arcavm/arca/internal/ipam"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

// networkActor is one Docker network with addresses: its IPAM and the
// members of its WireGuard mesh. Every change of membership is pushed to
// every member, which reconfigures its guest; the mesh has no hub.
type networkActor struct {
	env *Env
	st  *networkState
}

// networkState survives a restart of the actor, so a panic does not make
// the network forget who is connected.
type networkState struct {
	rec     *persistence.NetworkRecord
	pool    *ipam.Pool
	members map[string]*netMember // by container ID
	// gw is the host's member, there while the network has members (and
	// the host can make one).
	gw *gateway.Gateway
	// uplink: the host network. Each member is alone with the gateway
	// (no mesh, no names); its addresses are the machines' own business
	// and not shown.
	uplink bool
}

// uplinkSubnet addresses the host network's machines on their link to
// its gateway. Never seen outside the guests (the gateway dials from the
// host), it only has to stay clear of what containers dial: a block
// reserved for benchmarking, beside the underlay's 198.18.0.0/16.
var uplinkSubnet = netip.MustParsePrefix("198.19.0.0/16")

// gatewayPeer is what a container needs of the network's gateway for a
// WireGuard peer; zero when the network has none.
type gatewayPeer struct {
	Address   netip.Addr // on the network
	PublicKey string
	Endpoint  string // underlay ip:port
}

type netMember struct {
	info memberInfo
	pid  *actor.PID
}

// memberInfo is what other members learn of one member: enough for a
// WireGuard peer and for DNS. It is a value, shared read-only.
type memberInfo struct {
	ContainerID string
	Name        string   // container name, without "/"
	DNSNames    []string // name, aliases, short ID: what DNS answers for
	Aliases     []string // as the user gave them
	IP          netip.Addr
	PublicKey   string
	Endpoint    string // underlay ip:port
	EndpointID  string
}

// networkJoin asks for an endpoint on a network for a starting (or
// connecting) container. Sent to the networks supervisor, which forwards
// it; the reply is a *networkJoined or an error.
type networkJoin struct {
	network     string // ID or name
	containerID string
	name        string
	aliases     []string
	fixedIP     netip.Addr // zero: dynamic
	publicKey   string
	endpoint    string
	member      *actor.PID
}

type networkJoined struct {
	networkID   string
	networkName string
	userDefined bool // DNS between containers, as on dockerd's user networks
	internal    bool
	address     netip.Prefix // the container's address, with the subnet's length
	gateway     netip.Addr
	endpointID  string
	members     []memberInfo
	gw          gatewayPeer
}

// networkLeave gives the endpoint back. Fire and forget.
type networkLeave struct {
	networkID   string
	containerID string
}

// networkMembers is pushed to every member when membership changes.
type networkMembers struct {
	networkID string
	members   []memberInfo
	gw        gatewayPeer
}

func newNetworkState(r *persistence.NetworkRecord) (*networkState, error) {
	var gw netip.Addr
	var rng netip.Prefix
	if r.Gateway != "" {
		gw = netip.MustParseAddr(r.Gateway)
	}
	if r.IPRange != "" {
		rng = netip.MustParsePrefix(r.IPRange)
	}
	subnet, err := netip.ParsePrefix(r.Subnet)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", r.Name, err)
	}
	pool, err := ipam.New(subnet, gw, rng)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", r.Name, err)
	}
	return &networkState{rec: r, pool: pool, members: map[string]*netMember{}}, nil
}

// newUplinkState is the host network's: addresses from uplinkSubnet,
// the gateway at its first.
func newUplinkState(r *persistence.NetworkRecord) (*networkState, error) {
	pool, err := ipam.New(uplinkSubnet, netip.Addr{}, netip.Prefix{})
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", r.Name, err)
	}
	return &networkState{rec: r, pool: pool, members: map[string]*netMember{}, uplink: true}, nil
}

func newNetworkActor(env *Env, st *networkState) actor.Producer {
	return func() actor.Actor { return &networkActor{env: env, st: st} }
}

func (a *networkActor) Kind() string { return "network" }
func (a *networkActor) State() string {
	return fmt.Sprintf("%s %s, %d members", a.st.rec.Name, a.st.rec.Subnet, len(a.st.members))
}

func (a *networkActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *networkJoin:
		a.join(ctx, m)
	case *networkLeave:
		a.leave(ctx, m)
	case *messages.InspectNetwork:
		ctx.Respond(&messages.InspectNetworkReply{Network: a.inspect()})
	case *actor.Stopping:
		a.closeGateway()
	}
}

// ensureGateway starts the network's gateway for its first member. An
// internal network has none: nothing leaves its mesh, not even for the
// host. A network whose gateway fails still works as a mesh; its
// containers just reach nothing outside it, which the log says.
func (a *networkActor) ensureGateway() {
	st := a.st
	if st.gw != nil || st.rec.Internal || a.env.Gateway == nil || !st.pool.Gateway().IsValid() {
		return
	}
	gw, err := a.env.Gateway(st.pool.Gateway())
	if err != nil {
		a.env.Log.Warn("network has no gateway: its containers reach nothing outside it", "network", st.rec.Name, "err", err)
		return
	}
	st.gw = gw
}

func (a *networkActor) closeGateway() {
	if a.st.gw != nil {
		a.st.gw.Close()
		a.st.gw = nil
	}
}

// syncGateway gives the gateway the network's members as its peers, and
// closes it once there are none.
func (a *networkActor) syncGateway(members []memberInfo) {
	st := a.st
	if st.gw == nil {
		return
	}
	if len(members) == 0 {
		a.closeGateway()
		return
	}
	peers := make([]gateway.Peer, 0, len(members))
	for _, m := range members {
		ep, err := netip.ParseAddrPort(m.Endpoint)
		if err != nil {
			continue
		}
		peers = append(peers, gateway.Peer{PublicKey: m.PublicKey, Endpoint: ep, IP: m.IP})
	}
	if err := st.gw.SetPeers(peers); err != nil {
		a.env.Log.Warn("network gateway peers", "network", st.rec.Name, "err", err)
	}
}

func (a *networkActor) gatewayPeer() gatewayPeer {
	gw := a.st.gw
	if gw == nil {
		return gatewayPeer{}
	}
	return gatewayPeer{
		Address: a.st.pool.Gateway(), PublicKey: gw.PublicKey(),
		Endpoint: netip.AddrPortFrom(underlay.HostAddress, gw.Port()).String(),
	}
}

func (a *networkActor) join(ctx actor.Context, m *networkJoin) {
	st := a.st
	userDefined := st.rec.Name != netBridge && !st.uplink
	if old := st.members[m.containerID]; old != nil {
		// A new run of the same container: its old endpoint is stale.
		st.pool.Release(old.info.IP)
		delete(st.members, m.containerID)
	}
	if len(m.aliases) > 0 && !userDefined {
		ctx.Respond(messages.InvalidParameter("network-scoped alias is supported only for containers in user defined networks"))
		return
	}
	var ip netip.Addr
	var err error
	if m.fixedIP.IsValid() {
		if !st.rec.SubnetGiven {
			ctx.Respond(messages.InvalidParameter("user specified IP address is supported only when connecting to networks with user configured subnets"))
			return
		}
		ip = m.fixedIP
		if err = st.pool.Claim(ip, m.containerID); err != nil {
			ctx.Respond(messages.InvalidParameter("failed to set up container networking: %v", err))
			return
		}
	} else if ip, err = st.pool.Allocate(m.containerID); err != nil {
		ctx.Respond(messages.Unavailable("failed to set up container networking: network %s: %v", st.rec.Name, err))
		return
	}
	endpointID, _ := newContainerID()
	names := []string{m.name}
	names = append(names, m.aliases...)
	names = append(names, shortID(m.containerID))
	info := memberInfo{
		ContainerID: m.containerID, Name: m.name, DNSNames: dedupe(names), Aliases: m.aliases,
		IP: ip, PublicKey: m.publicKey, Endpoint: m.endpoint, EndpointID: endpointID,
	}
	st.members[m.containerID] = &netMember{info: info, pid: m.member}
	members := a.snapshot()
	a.ensureGateway()
	a.syncGateway(members)
	joined := &networkJoined{
		networkID: st.rec.ID, networkName: st.rec.Name, userDefined: userDefined, internal: st.rec.Internal,
		address: netip.PrefixFrom(ip, st.pool.Subnet().Bits()), gateway: st.pool.Gateway(),
		endpointID: endpointID, members: members, gw: a.gatewayPeer(),
	}
	if st.uplink {
		// Only the gateway is its peer; the others never hear of it.
		joined.members = nil
		ctx.Respond(joined)
		return
	}
	ctx.Respond(joined)
	a.broadcast(ctx, members, m.containerID)
}

func (a *networkActor) leave(ctx actor.Context, m *networkLeave) {
	st := a.st
	old := st.members[m.containerID]
	if old == nil {
		return
	}
	st.pool.Release(old.info.IP)
	delete(st.members, m.containerID)
	members := a.snapshot()
	a.syncGateway(members)
	if !st.uplink {
		a.broadcast(ctx, members, "")
	}
}

// broadcast tells every member but skip (which has the list in its join
// reply) who is on the network now.
func (a *networkActor) broadcast(ctx actor.Context, members []memberInfo, skip string) {
	for id, mem := range a.st.members {
		if id == skip || mem.pid == nil {
			continue
		}
		ctx.Send(mem.pid, &networkMembers{networkID: a.st.rec.ID, members: members, gw: a.gatewayPeer()})
	}
}

func (a *networkActor) snapshot() []memberInfo {
	out := make([]memberInfo, 0, len(a.st.members))
	for _, m := range a.st.members {
		out = append(out, m.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}

func (a *networkActor) inspect() network.Inspect {
	in := network.Inspect{Network: networkSummary(a.st.rec), Containers: map[string]network.EndpointResource{}}
	for id, m := range a.st.members {
		r := network.EndpointResource{Name: m.info.Name, EndpointID: m.info.EndpointID}
		if !a.st.uplink {
			r.IPv4Address = netip.PrefixFrom(m.info.IP, a.st.pool.Subnet().Bits())
		}
		in.Containers[id] = r
	}
	return in
}

func dedupe(s []string) []string {
	out := make([]string, 0, len(s))
	for _, v := range s {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
