package actors

import (
	"sort"
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/messages"
)

// What the live page shows of containers, networks and pulls beyond their
// state. Kept apart from the actors' own files: each Detail only reads
// what its actor already keeps.

// Detail is a container's name, image and restart count.
func (a *containerActor) Detail() *messages.NodeDetail {
	if a.rt == nil || a.rt.rec == nil {
		return nil
	}
	rec := a.rt.rec
	return &messages.NodeDetail{
		Name:         rec.Name,
		Image:        rec.Image,
		RestartCount: rec.RestartCount,
		ExitCode:     rec.State.ExitCode,
	}
}

// Detail names the kernel the containers' machines boot.
func (s *containersSupervisor) Detail() *messages.NodeDetail {
	if s.env == nil || s.env.Driver == nil {
		return nil
	}
	if k := vm.GuestKernel(s.env.Driver); k != "" {
		return &messages.NodeDetail{Kernel: k}
	}
	return nil
}

// Detail is a network's name, subnet and running members.
func (a *networkActor) Detail() *messages.NodeDetail {
	if a.st == nil || a.st.rec == nil {
		return nil
	}
	d := &messages.NodeDetail{Name: a.st.rec.Name, Subnet: a.st.rec.Subnet}
	for id, m := range a.st.members {
		nm := messages.NetworkMember{ID: id, Name: m.info.Name}
		if m.info.IP.IsValid() && !a.st.uplink {
			nm.IP = m.info.IP.String()
		}
		d.Members = append(d.Members, nm)
	}
	sort.Slice(d.Members, func(i, j int) bool { return d.Members[i].Name < d.Members[j].Name })
	return d
}

// detailOf is the actor's own Detail, or for a pull what the middleware
// followed of its progress.
func detailOf(a actor.Actor, last *lastState) *messages.NodeDetail {
	switch a := a.(type) {
	case Detailed:
		return a.Detail()
	case *imagePull:
		return &messages.NodeDetail{Ref: a.ref, Layers: append([]messages.LayerProgress(nil), last.layers...)}
	}
	return nil
}

// follow keeps each layer's newest status and byte counts from a pull's
// progress messages as they pass through the middleware: the pull actor
// forwards them to its clients and keeps no counts itself.
func (l *lastState) follow(msg any) {
	p, ok := msg.(*pullProgress)
	if !ok || p.msg.ID == "" || strings.HasPrefix(p.msg.Status, "Pulling from") {
		return
	}
	i := 0
	for i < len(l.layers) && l.layers[i].ID != p.msg.ID {
		i++
	}
	if i == len(l.layers) {
		l.layers = append(l.layers, messages.LayerProgress{ID: p.msg.ID})
	}
	lp := &l.layers[i]
	lp.Status = p.msg.Status
	if pr := p.msg.Progress; pr != nil && pr.Total > 0 {
		lp.Current, lp.Total = pr.Current, pr.Total
	}
}
