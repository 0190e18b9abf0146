package actors

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/arcavm/arca/internal/ipam"
	"github.com/arcavm/arca/messages"
	"github.com/arcavm/arca/persistence"
)

// networksSupervisor owns the set of networks: names, ID resolution,
// create, remove and prune, and which containers hold an endpoint on each.
// Each network with addresses (driver bridge) is a child actor that owns
// its IPAM and its WireGuard mesh membership.
type networksSupervisor struct {
	env  *Env
	byID map[string]*networkEntry
	// members: container IDs with an endpoint, or a join in flight, per
	// network. Joins and leaves pass through here, so remove and prune
	// decide without asking the children.
	members map[string]map[string]bool
}

type networkEntry struct {
	pid *actor.PID // nil for none
	rec *persistence.NetworkRecord
}

// networkIndex is a read-only snapshot of the networks by ID, which the
// containers supervisor consults at create without a round trip. It is
// replaced, never changed.
type networkIndex struct {
	byID map[string]*persistence.NetworkRecord
}

// lookup resolves a network the way dockerd does: full ID, name, then a
// unique ID prefix.
func (x *networkIndex) lookup(ref string) (*persistence.NetworkRecord, error) {
	if x == nil || ref == "" {
		return nil, messages.NotFound("network %s not found", ref)
	}
	if r, ok := x.byID[ref]; ok {
		return r, nil
	}
	for _, r := range x.byID {
		if r.Name == ref {
			return r, nil
		}
	}
	var found *persistence.NetworkRecord
	for id, r := range x.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, messages.InvalidParameter("network %s is ambiguous (%d matches found based on ID prefix)", ref, 2)
			}
			found = r
		}
	}
	if found == nil {
		return nil, messages.NotFound("network %s not found", ref)
	}
	return found, nil
}

// Predefined network names; they cannot be created or removed.
const (
	netBridge = "bridge"
	netHost   = "host"
	netNone   = "none"
)

func isPredefined(name string) bool { return name == netBridge || name == netHost || name == netNone }

func newNetworksSupervisor(env *Env) actor.Producer {
	return func() actor.Actor {
		return &networksSupervisor{env: env, byID: map[string]*networkEntry{}, members: map[string]map[string]bool{}}
	}
}

func (s *networksSupervisor) Kind() string  { return "supervisor" }
func (s *networksSupervisor) State() string { return fmt.Sprintf("%d networks", len(s.byID)) }

func (s *networksSupervisor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.restore(ctx)
	case *messages.CreateNetwork:
		s.create(ctx, m)
	case *messages.InspectNetwork:
		e, err := s.resolve(m.Ref)
		if err != nil {
			ctx.Respond(err)
			return
		}
		if e.pid == nil {
			ctx.Respond(&messages.InspectNetworkReply{Network: network.Inspect{Network: networkSummary(e.rec), Containers: map[string]network.EndpointResource{}}})
			return
		}
		ctx.Forward(e.pid)
	case *messages.ListNetworks:
		s.list(ctx, m)
	case *messages.RemoveNetwork:
		s.remove(ctx, m)
	case *messages.PruneNetworks:
		s.prune(ctx, m)
	case *messages.ConnectNetwork:
		e, err := s.resolve(m.Network)
		if err != nil {
			ctx.Respond(err)
			return
		}
		if e.rec.Driver == "host" {
			ctx.Respond(messages.InvalidParameter("%s", errConnectToHost))
			return
		}
		if e.pid == nil {
			ctx.Respond(messages.Forbidden("container cannot be disconnected from host network or connected to host network"))
			return
		}
		m.NetworkID, m.NetworkName = e.rec.ID, e.rec.Name
		ctx.RequestWithCustomSender(s.env.containers, m, ctx.Sender())
	case *messages.DisconnectNetwork:
		e, err := s.resolve(m.Network)
		if err != nil {
			ctx.Respond(err)
			return
		}
		m.NetworkID, m.NetworkName = e.rec.ID, e.rec.Name
		ctx.RequestWithCustomSender(s.env.containers, m, ctx.Sender())
	case *networkJoin:
		e, err := s.resolve(m.network)
		if err != nil {
			ctx.Respond(err)
			return
		}
		if e.pid == nil {
			ctx.Respond(messages.InvalidParameter("network %s has no addresses to join", e.rec.Name))
			return
		}
		if s.members[e.rec.ID] == nil {
			s.members[e.rec.ID] = map[string]bool{}
		}
		s.members[e.rec.ID][m.containerID] = true
		ctx.Forward(e.pid)
	case *networkLeave:
		delete(s.members[m.networkID], m.containerID)
		if e := s.byID[m.networkID]; e != nil && e.pid != nil {
			ctx.Forward(e.pid)
		}
	}
}

// restore loads the networks and makes the predefined ones on first start.
func (s *networksSupervisor) restore(ctx actor.Context) {
	recs, err := s.env.Store.Networks()
	if err != nil {
		panic(fmt.Sprintf("load networks: %v", err))
	}
	have := map[string]bool{}
	for _, r := range recs {
		have[r.Name] = true
	}
	for _, name := range []string{netBridge, netHost, netNone} {
		if have[name] {
			continue
		}
		r := predefinedNetwork(name)
		if err := s.env.Store.PutNetwork(r); err != nil {
			panic(fmt.Sprintf("create network %s: %v", name, err))
		}
		recs = append(recs, r)
	}
	for _, r := range recs {
		if err := s.spawn(ctx, r); err != nil {
			s.env.Log.Error("restore network", "name", r.Name, "err", err)
		}
	}
	s.publishIndex()
}

func predefinedNetwork(name string) *persistence.NetworkRecord {
	id, _ := newContainerID()
	r := &persistence.NetworkRecord{ID: id, Name: name, Created: time.Now().UTC(), IPAMDriver: "default"}
	switch name {
	case netBridge:
		r.Driver = "bridge"
		r.Subnet = ipam.DefaultBridge.String()
		r.Gateway = "172.17.0.1"
		r.Options = map[string]string{
			"com.docker.network.bridge.default_bridge":       "true",
			"com.docker.network.bridge.enable_icc":           "true",
			"com.docker.network.bridge.enable_ip_masquerade": "true",
			"com.docker.network.bridge.name":                 "docker0",
			"com.docker.network.driver.mtu":                  "1420",
		}
	case netHost:
		r.Driver = "host"
	case netNone:
		r.Driver = "null"
	}
	return r
}

func (s *networksSupervisor) spawn(ctx actor.Context, r *persistence.NetworkRecord) error {
	e := &networkEntry{rec: r}
	if r.Driver == "bridge" || r.Driver == "host" {
		newState := newNetworkState
		if r.Driver == "host" {
			newState = newUplinkState
		}
		st, err := newState(r)
		if err != nil {
			return err
		}
		pid, err := ctx.SpawnNamed(s.env.props(newNetworkActor(s.env, st)), "network-"+r.ID[:12])
		if err != nil {
			return err
		}
		e.pid = pid
	}
	s.byID[r.ID] = e
	return nil
}

func (s *networksSupervisor) publishIndex() {
	x := &networkIndex{byID: map[string]*persistence.NetworkRecord{}}
	for id, e := range s.byID {
		x.byID[id] = e.rec
	}
	s.env.netIndex.Store(x)
}

func (s *networksSupervisor) index() *networkIndex { return s.env.netIndex.Load() }

func (s *networksSupervisor) resolve(ref string) (*networkEntry, error) {
	r, err := s.index().lookup(ref)
	if err != nil {
		return nil, err
	}
	return s.byID[r.ID], nil
}

func (s *networksSupervisor) create(ctx actor.Context, m *messages.CreateNetwork) {
	req := m.Request
	rec, err := s.newNetworkRecord(req)
	if err != nil {
		ctx.Respond(err)
		return
	}
	if err := s.env.Store.PutNetwork(rec); err != nil {
		ctx.Respond(messages.Internal("persist network: %v", err))
		return
	}
	if err := s.spawn(ctx, rec); err != nil {
		_ = s.env.Store.DeleteNetwork(rec.ID)
		ctx.Respond(messages.Internal("create network: %v", err))
		return
	}
	s.publishIndex()
	s.event(ctx, events.ActionCreate, rec, nil)
	ctx.Respond(&messages.CreateNetworkReply{ID: rec.ID})
}

// newNetworkRecord checks a create request as dockerd does and fills in
// the defaults.
func (s *networksSupervisor) newNetworkRecord(req network.CreateRequest) (*persistence.NetworkRecord, error) {
	name := req.Name
	if name == "" {
		return nil, messages.InvalidParameter("network name is required")
	}
	for _, e := range s.byID {
		if e.rec.Name == name {
			if isPredefined(name) {
				return nil, messages.Forbidden("%s is a pre-defined network and cannot be created", name)
			}
			return nil, messages.Conflict("network with name %s already exists", name)
		}
	}
	driver := req.Driver
	if driver == "" {
		driver = "bridge"
	}
	if driver != "bridge" {
		return nil, messages.NotFound("plugin %q not found", driver)
	}
	if req.Scope != "" && req.Scope != "local" {
		return nil, messages.Forbidden("network scope %q is not supported: networks are local to this daemon", req.Scope)
	}
	if req.ConfigOnly || req.ConfigFrom != nil || req.Ingress {
		return nil, messages.NotImplemented("config-only, config-from and ingress networks are not supported")
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return nil, messages.NotImplemented("IPv6 networks are not supported yet")
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		return nil, messages.NotImplemented("networks without IPv4 are not supported")
	}
	id, err := newContainerID()
	if err != nil {
		return nil, messages.Internal("network id: %v", err)
	}
	rec := &persistence.NetworkRecord{
		ID: id, Name: name, Driver: driver, Created: time.Now().UTC(),
		Internal: req.Internal, Attachable: req.Attachable,
		Labels: req.Labels, Options: req.Options, IPAMDriver: "default",
	}
	var cfg network.IPAMConfig
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return nil, messages.NotFound("plugin %q not found", req.IPAM.Driver)
		}
		rec.IPAMOptions = req.IPAM.Options
		var v4 []network.IPAMConfig
		for _, c := range req.IPAM.Config {
			if c.Subnet.IsValid() && !c.Subnet.Addr().Is4() {
				return nil, messages.NotImplemented("IPv6 subnets are not supported yet")
			}
			v4 = append(v4, c)
		}
		if len(v4) > 1 {
			return nil, messages.NotImplemented("more than one IPv4 subnet per network is not supported")
		}
		if len(v4) == 1 {
			cfg = v4[0]
		}
	}
	if !cfg.Subnet.IsValid() && (cfg.Gateway.IsValid() || cfg.IPRange.IsValid()) {
		return nil, messages.InvalidParameter("a subnet is required with --gateway or --ip-range")
	}
	var taken []netip.Prefix
	for _, e := range s.byID {
		if e.rec.Subnet != "" {
			taken = append(taken, netip.MustParsePrefix(e.rec.Subnet))
		}
	}
	subnet := cfg.Subnet
	if subnet.IsValid() {
		rec.SubnetGiven = true
		for _, t := range taken {
			if t.Overlaps(subnet) {
				return nil, messages.Forbidden("invalid pool request: Pool overlaps with other one on this address space")
			}
		}
	} else if subnet, err = ipam.PickSubnet(taken); err != nil {
		return nil, messages.Forbidden("%v", err)
	}
	pool, err := ipam.New(subnet, cfg.Gateway, cfg.IPRange)
	if err != nil {
		return nil, messages.InvalidParameter("%v", err)
	}
	rec.Subnet = pool.Subnet().String()
	rec.Gateway = pool.Gateway().String()
	if cfg.IPRange.IsValid() {
		rec.IPRange = pool.Range().String()
	}
	return rec, nil
}

func (s *networksSupervisor) remove(ctx actor.Context, m *messages.RemoveNetwork) {
	e, err := s.resolve(m.Ref)
	if err != nil {
		ctx.Respond(err)
		return
	}
	if isPredefined(e.rec.Name) {
		ctx.Respond(messages.Forbidden("%s is a pre-defined network and cannot be removed", e.rec.Name))
		return
	}
	if len(s.members[e.rec.ID]) > 0 {
		ctx.Respond(messages.Forbidden("error while removing network: network %s id %s has active endpoints", e.rec.Name, e.rec.ID))
		return
	}
	if err := s.drop(ctx, e); err != nil {
		ctx.Respond(err)
		return
	}
	ctx.Respond(&messages.Accepted{})
}

// drop deletes a network that nothing is connected to.
func (s *networksSupervisor) drop(ctx actor.Context, e *networkEntry) error {
	if err := s.env.Store.DeleteNetwork(e.rec.ID); err != nil {
		return messages.Internal("remove network %s: %v", e.rec.Name, err)
	}
	if e.pid != nil {
		ctx.Stop(e.pid)
	}
	delete(s.byID, e.rec.ID)
	delete(s.members, e.rec.ID)
	s.publishIndex()
	s.event(ctx, events.ActionDestroy, e.rec, nil)
	return nil
}

func (s *networksSupervisor) prune(ctx actor.Context, m *messages.PruneNetworks) {
	for k := range m.Filters {
		if k != "until" && k != "label" && k != "label!" {
			ctx.Respond(messages.InvalidParameter("invalid filter '%s'", k))
			return
		}
	}
	until, err := pruneUntil(m.Filters["until"])
	if err != nil {
		ctx.Respond(err)
		return
	}
	deleted := []string{}
	for _, e := range s.sorted() {
		if isPredefined(e.rec.Name) || len(s.members[e.rec.ID]) > 0 {
			continue
		}
		if !until.IsZero() && !e.rec.Created.Before(until) {
			continue
		}
		if !labelsMatch(e.rec.Labels, m.Filters) {
			continue
		}
		if s.drop(ctx, e) == nil {
			deleted = append(deleted, e.rec.Name)
		}
	}
	s.env.publish(ctx, messages.NewEvent(events.NetworkEventType, events.ActionPrune, "", nil))
	ctx.Respond(&messages.PruneNetworksReply{Report: network.PruneReport{NetworksDeleted: deleted}})
}

// labelsMatch: every label filter present, every label! filter absent.
func labelsMatch(labels map[string]string, f map[string][]string) bool {
	has := func(v string) bool {
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := labels[k]
		return ok && (!hasValue || got == want)
	}
	for _, v := range f["label"] {
		if !has(v) {
			return false
		}
	}
	for _, v := range f["label!"] {
		if has(v) {
			return false
		}
	}
	return true
}

// anyValue: a filter key that is absent matches; else any of its values
// must (values of one key are ORed, keys ANDed, as in dockerd).
func anyValue(f map[string][]string, key string, match func(string) bool) bool {
	vals, ok := f[key]
	if !ok {
		return true
	}
	for _, v := range vals {
		if match(v) {
			return true
		}
	}
	return false
}

var networkFilterKeys = map[string]bool{"driver": true, "id": true, "label": true, "name": true, "scope": true, "type": true, "dangling": true}

func (s *networksSupervisor) list(ctx actor.Context, m *messages.ListNetworks) {
	for k, vals := range m.Filters {
		if !networkFilterKeys[k] {
			ctx.Respond(messages.InvalidParameter("invalid filter '%s'", k))
			return
		}
		for _, v := range vals {
			switch {
			case k == "type" && v != "custom" && v != "builtin":
				ctx.Respond(messages.InvalidParameter("invalid filter: 'type'='%s'", v))
				return
			case k == "dangling" && v != "true" && v != "false" && v != "1" && v != "0":
				ctx.Respond(messages.InvalidParameter("invalid filter 'dangling=%s'", v))
				return
			}
		}
	}
	out := []network.Summary{}
	for _, e := range s.sorted() {
		if s.listed(e, m.Filters) {
			out = append(out, network.Summary{Network: networkSummary(e.rec)})
		}
	}
	ctx.Respond(&messages.ListNetworksReply{Networks: out})
}

// listed applies docker network ls filters: values of one key are ORed,
// keys are ANDed.
func (s *networksSupervisor) listed(e *networkEntry, f map[string][]string) bool {
	anyOf := func(key string, match func(string) bool) bool { return anyValue(f, key, match) }
	r := e.rec
	return anyOf("driver", func(v string) bool { return r.Driver == v }) &&
		anyOf("id", func(v string) bool { return strings.HasPrefix(r.ID, v) }) &&
		anyOf("name", func(v string) bool { return strings.Contains(r.Name, v) }) &&
		anyOf("scope", func(v string) bool { return v == "local" }) &&
		anyOf("type", func(v string) bool { return (v == "builtin") == isPredefined(r.Name) }) &&
		anyOf("dangling", func(v string) bool {
			dangling := len(s.members[r.ID]) == 0 && !isPredefined(r.Name)
			return dangling == (v == "true" || v == "1")
		}) &&
		labelsMatch(r.Labels, map[string][]string{"label": f["label"]})
}

func (s *networksSupervisor) sorted() []*networkEntry {
	out := make([]*networkEntry, 0, len(s.byID))
	for _, e := range s.byID {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rec.Name < out[j].rec.Name })
	return out
}

func (s *networksSupervisor) event(ctx actor.Context, action events.Action, r *persistence.NetworkRecord, extra map[string]string) {
	attrs := map[string]string{"name": r.Name, "type": r.Driver}
	for k, v := range extra {
		attrs[k] = v
	}
	s.env.publish(ctx, messages.NewEvent(events.NetworkEventType, action, r.ID, attrs))
}

// networkSummary is a network as docker network ls and inspect show it.
func networkSummary(r *persistence.NetworkRecord) network.Network {
	n := network.Network{
		Name: r.Name, ID: r.ID, Scope: "local", Driver: r.Driver,
		EnableIPv4: r.Driver != "null" && r.Driver != "host", EnableIPv6: r.EnableIPv6,
		Internal: r.Internal, Attachable: r.Attachable,
		Options: nonNilMap(r.Options), Labels: nonNilMap(r.Labels),
		IPAM: network.IPAM{Driver: "default", Options: r.IPAMOptions, Config: []network.IPAMConfig{}},
	}
	n.Created = r.Created
	if r.Subnet != "" {
		c := network.IPAMConfig{Subnet: netip.MustParsePrefix(r.Subnet)}
		if r.Gateway != "" {
			c.Gateway = netip.MustParseAddr(r.Gateway)
		}
		if r.IPRange != "" {
			c.IPRange = netip.MustParsePrefix(r.IPRange)
		}
		n.IPAM.Config = append(n.IPAM.Config, c)
	}
	return n
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
