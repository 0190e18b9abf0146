//go:build !linux

package underlay

import (
	"errors"
	"net"
	"os"
)

// Bridge is Linux only; elsewhere the driver brings its own underlay.
type Bridge struct{}

func NewBridge() (*Bridge, error) { return nil, errors.New("underlay: linux only") }

func (b *Bridge) Close() {}

func (b *Bridge) AttachVeth(int, net.HardwareAddr) (func(), error) {
	return nil, errors.New("underlay: linux only")
}

func (b *Bridge) OpenTap() (*os.File, func(), error) {
	return nil, nil, errors.New("underlay: linux only")
}

func (b *Bridge) ListenUDP(uint16) (net.PacketConn, error) {
	return nil, errors.New("underlay: linux only")
}
