package actors

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/arcavm/arca/guest/vm/underlay"
	"github.com/arcavm/arca/guest/wire"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

// Guest-side names and ports of the network plumbing.
const (
	underlayIfName = "arca0"
	wgPortBase     = 51820 // interface ethN listens on wgPortBase+N
	wgMTU          = underlay.MTU - 80
)

// containerEndpoints turns a create request's network mode and endpoint
// configs into the record's endpoints, checked as dockerd checks them at
// create.
func containerEndpoints(hc *container.HostConfig, nc *network.NetworkingConfig, idx *networkIndex) (map[string]*network.EndpointSettings, error) {
	mode := string(hc.NetworkMode)
	if mode == "" || mode == network.NetworkDefault {
		mode = netBridge
		hc.NetworkMode = netBridge
	}
	if strings.HasPrefix(mode, "container:") {
		return nil, messages.InvalidParameter("network mode %q is not supported: containers cannot share a network stack, as each runs in its own machine", mode)
	}
	requested := map[string]*network.EndpointSettings{}
	if nc != nil {
		for ref, es := range nc.EndpointsConfig {
			if ref == network.NetworkDefault {
				ref = netBridge
			}
			requested[ref] = es
		}
	}
	out := map[string]*network.EndpointSettings{}
	add := func(ref string, es *network.EndpointSettings) error {
		r, err := idx.lookup(ref)
		if err != nil {
			return err
		}
		if r.Driver == "host" && mode != netHost {
			return messages.InvalidParameter("%s", errConnectToHost)
		}
		var s network.EndpointSettings
		if es != nil {
			s = *es.Copy()
		}
		s.NetworkID = r.ID
		s.EndpointID, s.IPAddress, s.Gateway, s.IPPrefixLen = "", netip.Addr{}, netip.Addr{}, 0
		if err := checkEndpoint(r, &s); err != nil {
			return err
		}
		if _, dup := out[r.Name]; !dup {
			out[r.Name] = &s
		}
		return nil
	}
	if err := add(mode, requested[mode]); err != nil {
		return nil, err
	}
	for _, ref := range slices.Sorted(maps.Keys(requested)) {
		if ref == mode {
			continue
		}
		if err := add(ref, requested[ref]); err != nil {
			return nil, err
		}
	}
	if _, none := out[netNone]; none && len(out) > 1 {
		return nil, messages.InvalidParameter("container cannot be connected to multiple networks with one of the networks in private (none) mode")
	}
	if _, host := out[netHost]; host && len(out) > 1 {
		return nil, messages.InvalidParameter("%s", errSharedNetwork)
	}
	return out, nil
}

// dockerd's words (runconfig) for what host networking cannot be mixed
// with.
const (
	errSharedNetwork      = "container sharing network namespace with another container or host cannot be connected to any other network"
	errConnectToHost      = "cannot connect container to host network - container must be created in host network mode"
	errDisconnectFromHost = "cannot disconnect container from host network - container was created in host network mode"
)

// hostNetworking tells whether the container was created with --network
// host: its machine's own uplink (the host network's gateway), with no
// mesh, no embedded DNS and no published ports.
func hostNetworking(hc *container.HostConfig) bool {
	return hc != nil && string(hc.NetworkMode) == netHost
}

// checkEndpoint applies dockerd's rules for aliases and fixed addresses.
func checkEndpoint(r *persistence.NetworkRecord, s *network.EndpointSettings) error {
	if (r.Name == netBridge || r.Driver == "host") && len(s.Aliases) > 0 {
		return messages.InvalidParameter("network-scoped alias is supported only for containers in user defined networks")
	}
	if s.IPAMConfig == nil || !s.IPAMConfig.IPv4Address.IsValid() {
		return nil
	}
	ip := s.IPAMConfig.IPv4Address
	if !r.SubnetGiven {
		return messages.InvalidParameter("user specified IP address is supported only when connecting to networks with user configured subnets")
	}
	if subnet, err := netip.ParsePrefix(r.Subnet); err != nil || !subnet.Contains(ip) {
		return messages.InvalidParameter("no configured subnet or ip-range contain the IP address %s", ip)
	}
	return nil
}

// netRun is a container's networking for one run: its underlay link and
// one WireGuard interface per joined network.
type netRun struct {
	underlayAddr netip.Prefix
	mac          string
	ifaces       map[string]*netIface // by network ID
	// dns are the container's --dns servers; none: its default
	// network's gateway, where the host's resolvers answer.
	dns    []netip.Addr
	pusher *netPusher
	// uplink: host networking, the machine's one interface to the host
	// network's gateway and nothing else (no embedded DNS).
	uplink bool
}

type netIface struct {
	networkName string
	index       int // ethN
	key         wgtypes.Key
	fixedIP     netip.Addr
	aliases     []string
	joined      *networkJoined // nil until the join is answered
	members     []memberInfo
	gw          gatewayPeer
	fresh       bool // members came from a broadcast newer than the join
}

func (n *netRun) nextIndex() int {
	for i := 0; ; i++ {
		used := false
		for _, f := range n.ifaces {
			used = used || f.index == i
		}
		if !used {
			return i
		}
	}
}

// planNetworks decides, on the actor, what this run will join: the
// underlay address, and a key and interface name per network. The joins
// themselves happen in the boot goroutine.
func (a *containerActor) planNetworks() (*netRun, error) {
	rec := a.rt.rec
	names := endpointOrder(rec)
	if len(names) == 0 || a.env.Underlay == nil {
		return nil, nil
	}
	addr, err := a.env.Underlay.Allocate()
	if err != nil {
		return nil, err
	}
	n := &netRun{underlayAddr: addr, mac: underlay.NewMAC().String(), ifaces: map[string]*netIface{}, dns: rec.HostConfig.DNS,
		uplink: hostNetworking(rec.HostConfig)}
	for _, name := range names {
		es := rec.Networks[name]
		f, err := newNetIface(name, es, n.nextIndex())
		if err != nil {
			a.env.Underlay.Release(addr.Addr())
			return nil, err
		}
		n.ifaces[es.NetworkID] = f
	}
	return n, nil
}

func newNetIface(name string, es *network.EndpointSettings, index int) (*netIface, error) {
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return nil, fmt.Errorf("wireguard key: %w", err)
	}
	f := &netIface{networkName: name, index: index, key: key, aliases: es.Aliases}
	if es.IPAMConfig != nil {
		f.fixedIP = es.IPAMConfig.IPv4Address
	}
	return f, nil
}

// endpointOrder is the order of a container's interfaces: the network
// mode's network first (eth0), the rest by name. none joins nothing;
// host is the only network of a container that has it.
func endpointOrder(rec *persistence.ContainerRecord) []string {
	var out []string
	mode := ""
	if rec.HostConfig != nil {
		mode = string(rec.HostConfig.NetworkMode)
	}
	if _, ok := rec.Networks[mode]; ok && mode != netNone {
		out = append(out, mode)
	}
	for _, name := range slices.Sorted(maps.Keys(rec.Networks)) {
		if name != mode && name != netNone && name != netHost {
			out = append(out, name)
		}
	}
	return out
}

// joinAll joins every planned network, from the boot goroutine. On error
// it leaves what it joined.
func joinAll(sys *actor.ActorSystem, env *Env, self *actor.PID, rec *persistence.ContainerRecord, n *netRun) (map[string]*networkJoined, error) {
	joins := map[string]*networkJoined{}
	if n == nil {
		return joins, nil
	}
	for _, id := range n.order() {
		f := n.ifaces[id]
		j, err := joinOne(sys, env, self, rec, n, f)
		if err != nil {
			leaveAll(sys, env, rec.ID, n)
			return nil, err
		}
		joins[id] = j
	}
	return joins, nil
}

func joinOne(sys *actor.ActorSystem, env *Env, self *actor.PID, rec *persistence.ContainerRecord, n *netRun, f *netIface) (*networkJoined, error) {
	res, err := sys.Root.RequestFuture(env.networks, &networkJoin{
		network: f.networkName, containerID: rec.ID, name: rec.Name, aliases: f.aliases, fixedIP: f.fixedIP,
		publicKey: f.key.PublicKey().String(),
		endpoint:  netip.AddrPortFrom(n.underlayAddr.Addr(), uint16(wgPortBase+f.index)).String(),
		member:    self,
	}, 30*time.Second).Result()
	if err == nil {
		if e, ok := res.(error); ok {
			err = e
		}
	}
	if err != nil {
		return nil, fmt.Errorf("join network %s: %w", f.networkName, err)
	}
	return res.(*networkJoined), nil
}

// leaveAll gives back every endpoint of the run; sending a leave for a
// network that was never joined is harmless.
func leaveAll(sys *actor.ActorSystem, env *Env, containerID string, n *netRun) {
	if n == nil {
		return
	}
	for id := range n.ifaces {
		sys.Root.Send(env.networks, &networkLeave{networkID: id, containerID: containerID})
	}
}

func (n *netRun) order() []string {
	ids := slices.Collect(maps.Keys(n.ifaces))
	sort.Slice(ids, func(i, j int) bool { return n.ifaces[ids[i]].index < n.ifaces[ids[j]].index })
	return ids
}

// applyJoins records the join replies once the machine is up.
func (n *netRun) applyJoins(joins map[string]*networkJoined) {
	for id, j := range joins {
		if f := n.ifaces[id]; f != nil {
			f.joined = j
			if !f.fresh {
				f.members, f.gw = j.members, j.gw
			}
		}
	}
}

// primaryAddress is eth0's address, for /etc/hosts.
func (n *netRun) primaryAddress(joins map[string]*networkJoined) netip.Addr {
	if n == nil {
		return netip.Addr{}
	}
	for _, id := range n.order() {
		if j := joins[id]; j != nil {
			return j.address.Addr()
		}
	}
	return netip.Addr{}
}

// defaultIface is the interface whose gateway carries the default route:
// the first, in Docker's order, on a network with a gateway (internal
// networks have none). Nil: the container reaches only its networks.
func (n *netRun) defaultIface() *netIface {
	if n == nil {
		return nil
	}
	for _, id := range n.order() {
		if f := n.ifaces[id]; f.joined != nil && f.gw.PublicKey != "" {
			return f
		}
	}
	return nil
}

// hostGateway is the host's address as the container reaches it, for
// host.docker.internal and --add-host's host-gateway.
func (n *netRun) hostGateway() netip.Addr {
	if f := n.defaultIface(); f != nil {
		return f.gw.Address
	}
	return netip.Addr{}
}

// config is the guest's whole network state.
func (n *netRun) config(self string) wire.NetworkConfig {
	cfg := wire.NetworkConfig{DNS: wire.DNSConfig{Forward: true}}
	if n == nil {
		return cfg
	}
	def := n.defaultIface()
	cfg.Underlay = &wire.UnderlayConfig{MAC: n.mac, Name: underlayIfName, Address: n.underlayAddr.String(), MTU: underlay.MTU}
	records := map[string][]string{}
	var names []string
	allInternal := true
	for _, id := range n.order() {
		f := n.ifaces[id]
		if f.joined == nil {
			continue
		}
		allInternal = allInternal && f.joined.internal
		iface := wire.Interface{
			Name: "eth" + strconv.Itoa(f.index), PrivateKey: f.key.String(), ListenPort: wgPortBase + f.index,
			Address: f.joined.address.String(), MTU: wgMTU, Peers: []wire.Peer{},
		}
		for _, m := range f.members {
			if m.ContainerID == self {
				continue
			}
			iface.Peers = append(iface.Peers, wire.Peer{
				PublicKey: m.PublicKey, Endpoint: m.Endpoint, AllowedIPs: []string{netip.PrefixFrom(m.IP, 32).String()},
			})
		}
		if f.gw.PublicKey != "" {
			// The host: on every network at its gateway address, and the
			// way out for everything else on the default one.
			allowed := netip.PrefixFrom(f.gw.Address, 32).String()
			if f == def {
				allowed = "0.0.0.0/0"
				iface.Gateway = f.gw.Address.String()
			}
			iface.Peers = append(iface.Peers, wire.Peer{PublicKey: f.gw.PublicKey, Endpoint: f.gw.Endpoint, AllowedIPs: []string{allowed}})
		}
		cfg.Interfaces = append(cfg.Interfaces, iface)
		if !f.joined.userDefined {
			continue // the default bridge has no name resolution, as on dockerd
		}
		for _, m := range f.members {
			for _, name := range m.DNSNames {
				key := strings.ToLower(name)
				if _, ok := records[key]; !ok {
					names = append(names, key)
				}
				if ip := m.IP.String(); !slices.Contains(records[key], ip) {
					records[key] = append(records[key], ip)
				}
			}
		}
	}
	if def != nil {
		if _, taken := records[hostDockerInternal]; !taken {
			names = append(names, hostDockerInternal)
			records[hostDockerInternal] = []string{def.gw.Address.String()}
		}
		for _, ip := range n.dns {
			cfg.DNS.Servers = append(cfg.DNS.Servers, netip.AddrPortFrom(ip, 53).String())
		}
		if len(n.dns) == 0 {
			cfg.DNS.Servers = []string{netip.AddrPortFrom(def.gw.Address, 53).String()}
		}
	}
	for _, name := range names {
		cfg.DNS.Records = append(cfg.DNS.Records, wire.DNSRecord{Name: name, IPs: records[name]})
	}
	cfg.DNS.Forward = !allInternal || len(cfg.Interfaces) == 0
	if n.uplink {
		// The host's resolvers are in its resolv.conf, as dockerd copies
		// them for host networking: no resolver at 127.0.0.11.
		cfg.DNS = wire.DNSConfig{Off: true}
	}
	return cfg
}

// hostDockerInternal names the host in every container that can reach
// it, as Docker Desktop does.
const hostDockerInternal = "host.docker.internal"

// netPusher sends network configurations to one run's agent, one at a
// time and only the newest: peers change often, each config is whole.
type netPusher struct {
	client *wire.Client
	log    func(err error)

	mu      sync.Mutex
	pending *wire.NetworkConfig
	// last is what the guest has, nil when unsure (a push failed): the
	// same again is not sent. Every member hears of every join and
	// leave on its networks, and a configuration costs the guest tens
	// of milliseconds of CPU (far more under TCG) even when nothing in
	// it changed.
	last    *wire.NetworkConfig
	gen     uint64 // of the newest configuration pushed
	applied uint64 // the newest configuration the guest has taken
	waiters []genWaiter
	busy    bool
	closed  bool
}

// genWaiter waits until configuration gen (or a newer one) was applied.
type genWaiter struct {
	gen  uint64
	done chan struct{}
}

// push sends cfg to the guest after whatever is in flight, replacing any
// configuration still waiting; the returned channel closes once cfg or a
// newer one is applied (or the machine is gone).
func (p *netPusher) push(cfg wire.NetworkConfig) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	done := make(chan struct{})
	if p.closed {
		close(done)
		return done
	}
	p.gen++
	p.pending = &cfg
	p.waiters = append(p.waiters, genWaiter{p.gen, done})
	if !p.busy {
		p.busy = true
		go p.loop()
	}
	return done
}

func (p *netPusher) loop() {
	for {
		p.mu.Lock()
		cfg, gen := p.pending, p.gen
		p.pending = nil
		if cfg == nil || p.closed {
			p.busy = false
			p.releaseLocked(p.closed)
			p.mu.Unlock()
			return
		}
		last := p.last
		p.mu.Unlock()
		if last == nil || !reflect.DeepEqual(*cfg, *last) {
			last = cfg
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if err := p.client.ConfigureNetwork(ctx, *cfg); err != nil {
				last = nil
				select {
				case <-p.client.Done(): // the machine stopped meanwhile: nothing to configure
				default:
					p.log(err)
				}
			}
			cancel()
		}
		p.mu.Lock()
		p.last = last
		p.applied = gen
		p.releaseLocked(false)
		p.mu.Unlock()
	}
}

// releaseLocked wakes the waiters whose configuration was applied, or
// all of them.
func (p *netPusher) releaseLocked(all bool) {
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if all || w.gen <= p.applied {
			close(w.done)
		} else {
			kept = append(kept, w)
		}
	}
	p.waiters = kept
}

func (p *netPusher) close() {
	p.mu.Lock()
	p.closed = true
	if !p.busy {
		p.releaseLocked(true)
	}
	p.mu.Unlock()
}

// pushNetwork sends the current configuration to the running guest; the
// channel closes once the guest has it.
func (a *containerActor) pushNetwork() <-chan struct{} {
	n := a.rt.net
	if n == nil || n.pusher == nil {
		done := make(chan struct{})
		close(done)
		return done
	}
	return n.pusher.push(n.config(a.rt.rec.ID))
}

// onNetworkMembers takes a network's new membership.
func (a *containerActor) onNetworkMembers(m *networkMembers) {
	n := a.rt.net
	if n == nil {
		return
	}
	f := n.ifaces[m.networkID]
	if f == nil {
		return
	}
	f.members, f.gw, f.fresh = m.members, m.gw, true
	a.pushNetwork()
}

// startNetworkPusher begins pushing for a run whose machine is up; booted
// is the configuration the start gave the guest.
func (a *containerActor) startNetworkPusher(c *wire.Client, joins map[string]*networkJoined, booted *wire.NetworkConfig) {
	n := a.rt.net
	if n == nil {
		return
	}
	n.applyJoins(joins)
	id := a.rt.rec.ID
	log := a.env.Log
	n.pusher = &netPusher{client: c, last: booted, log: func(err error) { log.Warn("configure network", "container", id, "err", err) }}
	a.pushNetwork()
}

// releaseNetworks ends the run's networking: endpoints back to their
// networks, the underlay address back to the pool.
func (a *containerActor) releaseNetworks(ctx actor.Context) {
	n := a.rt.net
	a.rt.net = nil
	if n == nil {
		return
	}
	if n.pusher != nil {
		n.pusher.close()
	}
	leaveAll(ctx.ActorSystem(), a.env, a.rt.rec.ID, n)
	if a.env.Underlay != nil {
		a.env.Underlay.Release(n.underlayAddr.Addr())
	}
}

// netJoinDone reports a join made for docker network connect.
type netJoinDone struct {
	run       int
	networkID string
	joined    *networkJoined
	err       error
	replyTo   *actor.PID
}

func (a *containerActor) connect(ctx actor.Context, m *messages.ConnectNetwork) {
	rec := a.rt.rec
	if hostNetworking(rec.HostConfig) {
		ctx.Respond(messages.InvalidParameter("%s", errSharedNetwork))
		return
	}
	if _, ok := rec.Networks[m.NetworkName]; ok {
		ctx.Respond(messages.Forbidden("endpoint with name %s already exists in network %s", rec.Name, m.NetworkName))
		return
	}
	if _, none := rec.Networks[netNone]; none || m.NetworkName == netNone {
		ctx.Respond(messages.Forbidden("container cannot be connected to multiple networks with one of the networks in private (none) mode"))
		return
	}
	r, err := a.env.netIndex.Load().lookup(m.NetworkID)
	if err != nil {
		ctx.Respond(err)
		return
	}
	var es network.EndpointSettings
	if m.Endpoint != nil {
		es = *m.Endpoint.Copy()
	}
	es.NetworkID = r.ID
	if err := checkEndpoint(r, &es); err != nil {
		ctx.Respond(err)
		return
	}
	if rec.Networks == nil {
		rec.Networks = map[string]*network.EndpointSettings{}
	}
	rec.Networks[r.Name] = &es
	if !a.persistOrFail(ctx, ctx.Sender(), "connect", func() { delete(rec.Networks, r.Name) }) {
		return
	}
	n := a.rt.net
	if !a.running() || n == nil {
		a.netEvent(ctx, events.ActionConnect, r)
		ctx.Respond(&messages.Accepted{})
		return
	}
	f, err := newNetIface(r.Name, &es, n.nextIndex())
	if err != nil {
		ctx.Respond(messages.Internal("connect %s: %v", rec.ID, err))
		return
	}
	n.ifaces[r.ID] = f
	sys, env, self, run, replyTo := ctx.ActorSystem(), a.env, ctx.Self(), a.rt.run, ctx.Sender()
	recCopy := *rec
	goSafe(sys, self, func() any {
		j, err := joinOne(sys, env, self, &recCopy, n, f)
		return &netJoinDone{run: run, networkID: r.ID, joined: j, err: err, replyTo: replyTo}
	})
}

func (a *containerActor) onNetJoinDone(ctx actor.Context, m *netJoinDone) {
	n := a.rt.net
	r, _ := a.env.netIndex.Load().lookup(m.networkID)
	if m.err != nil || m.run != a.rt.run || n == nil || n.ifaces[m.networkID] == nil {
		ctx.Send(a.env.networks, &networkLeave{networkID: m.networkID, containerID: a.rt.rec.ID})
		if n != nil && m.run == a.rt.run {
			delete(n.ifaces, m.networkID)
		}
		err := m.err
		if err == nil {
			err = messages.Conflict("container %s stopped while connecting", a.rt.rec.ID)
		}
		if r != nil {
			// The requester hears of the failed join either way.
			delete(a.rt.rec.Networks, r.Name)
			a.persistUnasked(ctx)
		}
		ctx.Send(m.replyTo, err)
		return
	}
	n.applyJoins(map[string]*networkJoined{m.networkID: m.joined})
	configured := a.pushNetwork()
	if r != nil {
		a.netEvent(ctx, events.ActionConnect, r)
	}
	a.publish(ctx)
	// Done when the guest has the interface, its address and the names:
	// an exec right after connect reaches the network, as on dockerd.
	sys, replyTo := ctx.ActorSystem(), m.replyTo
	goSafe(sys, nil, func() any {
		select {
		case <-configured:
		case <-time.After(30 * time.Second):
		}
		sys.Root.Send(replyTo, &messages.Accepted{})
		return nil
	})
}

func (a *containerActor) disconnect(ctx actor.Context, m *messages.DisconnectNetwork) {
	rec := a.rt.rec
	if m.NetworkName == netHost && hostNetworking(rec.HostConfig) {
		ctx.Respond(messages.InvalidParameter("%s", errDisconnectFromHost))
		return
	}
	if _, ok := rec.Networks[m.NetworkName]; !ok {
		ctx.Respond(messages.Forbidden("container %s is not connected to network %s", rec.ID, m.NetworkName))
		return
	}
	es := rec.Networks[m.NetworkName]
	delete(rec.Networks, m.NetworkName)
	if !a.persistOrFail(ctx, ctx.Sender(), "disconnect", func() { rec.Networks[m.NetworkName] = es }) {
		return
	}
	done := make(chan struct{})
	close(done)
	var configured <-chan struct{} = done
	if n := a.rt.net; n != nil && n.ifaces[m.NetworkID] != nil {
		delete(n.ifaces, m.NetworkID)
		ctx.Send(a.env.networks, &networkLeave{networkID: m.NetworkID, containerID: rec.ID})
		configured = a.pushNetwork()
	}
	if r, err := a.env.netIndex.Load().lookup(m.NetworkID); err == nil {
		a.netEvent(ctx, events.ActionDisconnect, r)
	}
	// Done when the guest no longer has the interface.
	respondLater(ctx, func() any {
		select {
		case <-configured:
		case <-time.After(30 * time.Second):
		}
		return &messages.Accepted{}
	})
}

// attachEvents are dockerd's events for a run's start (up) or end: a
// network connect or disconnect per network, a volume mount or unmount
// per volume.
func (a *containerActor) attachEvents(ctx actor.Context, up bool) {
	rec := a.rt.rec
	netAction, volAction := events.ActionDisconnect, events.ActionUnmount
	if up {
		netAction, volAction = events.ActionConnect, events.ActionMount
	}
	for _, name := range endpointOrder(rec) {
		if r, err := a.env.netIndex.Load().lookup(rec.Networks[name].NetworkID); err == nil {
			a.netEvent(ctx, netAction, r)
		}
	}
	for _, m := range rec.Mounts {
		if m.Type != "volume" {
			continue
		}
		attrs := map[string]string{"container": rec.ID, "driver": "local"}
		if up {
			attrs["destination"], attrs["read/write"], attrs["propagation"] = m.Destination, strconv.FormatBool(m.RW), ""
		}
		a.env.publish(ctx, messages.NewEvent(events.VolumeEventType, volAction, m.Name, attrs))
	}
}

func (a *containerActor) netEvent(ctx actor.Context, action events.Action, r *persistence.NetworkRecord) {
	a.env.publish(ctx, messages.NewEvent(events.NetworkEventType, action, r.ID,
		map[string]string{"container": a.rt.rec.ID, "name": r.Name, "type": r.Driver}))
}

// networkSettings is NetworkSettings.Networks for inspect: the record's
// endpoints, with this run's addresses where there is one.
func (a *containerActor) networkSettings() map[string]*network.EndpointSettings {
	out := map[string]*network.EndpointSettings{}
	for name, es := range a.rt.rec.Networks {
		s := es.Copy()
		if s.Aliases == nil {
			s.Aliases = nil
		}
		if n := a.rt.net; n != nil && n.uplink {
			// As dockerd shows the host network: an endpoint, no
			// address of its own (the uplink's is the machine's).
			if f := n.ifaces[es.NetworkID]; f != nil && f.joined != nil {
				s.EndpointID = f.joined.endpointID
			}
		} else if n != nil {
			if f := n.ifaces[es.NetworkID]; f != nil && f.joined != nil {
				s.EndpointID = f.joined.endpointID
				s.IPAddress = f.joined.address.Addr()
				s.IPPrefixLen = f.joined.address.Bits()
				s.Gateway = f.joined.gateway
				if f.joined.userDefined {
					for _, m := range f.members {
						if m.ContainerID == a.rt.rec.ID {
							s.DNSNames = m.DNSNames
						}
					}
				}
			}
		}
		out[name] = s
	}
	return out
}

// embeddedResolvConf points the container at the agent's DNS server, as
// dockerd does on user-defined networks; here on every network, since the
// host's resolvers are not reachable from the guest directly.
func embeddedResolvConf() []byte {
	return []byte("# Generated by Arca: the agent answers at 127.0.0.11 and forwards other names to the host.\nnameserver 127.0.0.11\noptions ndots:0\n")
}

// clone copies the plan for the boot goroutine.
func (n *netRun) clone() *netRun {
	if n == nil {
		return nil
	}
	c := *n
	c.pusher = nil
	c.ifaces = map[string]*netIface{}
	for id, f := range n.ifaces {
		fc := *f
		c.ifaces[id] = &fc
	}
	return &c
}
