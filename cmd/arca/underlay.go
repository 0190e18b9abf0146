package main

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/underlay"
)

// Kinds of underlay (--underlay).
const (
	underlayAuto   = "auto"   // the switch if the driver takes it, else the bridge
	underlaySwitch = "switch" // user space: the VM drivers' (qemu, vz)
	underlayBridge = "bridge" // a kernel bridge in a namespace: the sandbox's veths, or qemu's taps
)

// joinedUnderlay is the underlay the driver's machines were given.
type joinedUnderlay struct {
	kind   string // underlaySwitch or underlayBridge
	listen func(port uint16) (net.PacketConn, error)
	close  func()
}

// attachUnderlay makes the underlay kind asks for and gives it to driver.
// It returns nil, with a warning logged, when the driver's machines get
// no network (no underlay support, or no bridge can be made here); an
// error only for a kind the driver cannot use.
func attachUnderlay(kind string, driver vm.Driver, log *slog.Logger) (*joinedUnderlay, error) {
	sw, takesSwitch := driver.(interface{ UseSwitch(*underlay.Switch) })
	br, takesBridge := driver.(interface{ UseUnderlay(*underlay.Bridge) })
	switch kind {
	case underlayAuto:
		kind = underlayBridge
		if takesSwitch {
			kind = underlaySwitch
		}
	case underlaySwitch:
		if !takesSwitch {
			return nil, fmt.Errorf("--underlay switch: the %s driver cannot use it", driver.Name())
		}
	case underlayBridge:
		if !takesBridge {
			return nil, fmt.Errorf("--underlay bridge: the %s driver cannot use it", driver.Name())
		}
	default:
		return nil, fmt.Errorf("--underlay: unknown kind %q (auto, switch or bridge)", kind)
	}
	if kind == underlaySwitch {
		s, err := underlay.NewSwitch(log)
		if err != nil {
			log.Warn("no underlay network: containers get no network interfaces", "err", err)
			return nil, nil
		}
		sw.UseSwitch(s)
		return &joinedUnderlay{kind: kind, listen: s.ListenUDP, close: s.Close}, nil
	}
	if !takesBridge {
		log.Warn("driver has no underlay support yet: containers get no network interfaces", "driver", driver.Name())
		return nil, nil
	}
	b, err := underlay.NewBridge()
	if err != nil {
		log.Warn("no underlay network: containers get no network interfaces", "err", err)
		return nil, nil
	}
	br.UseUnderlay(b)
	return &joinedUnderlay{kind: kind, listen: b.ListenUDP, close: b.Close}, nil
}

// name is what docker info shows: the kind, or "" for no underlay.
func (u *joinedUnderlay) name() string {
	if u == nil {
		return ""
	}
	return u.kind
}
