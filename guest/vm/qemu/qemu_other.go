//go:build !linux

package qemu

import (
	"context"
	"errors"
	"log/slog"

	"github.com/arcavm/arca/guest/vm"
)

// Config is how the daemon sets up the driver (see the Linux file).
type Config struct {
	Kit, Agent, Root, QEMU, Accel string
	DiskBytes                     int64
	Log                           *slog.Logger
}

// Driver is a stub off Linux.
type Driver struct{}

var _ vm.Driver = (*Driver)(nil)

// New fails: the qemu driver needs Linux.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	return nil, errors.New("the qemu driver needs linux")
}

// Name implements vm.Driver.
func (d *Driver) Name() string { return "qemu" }

// Acceleration is "" off Linux.
func (d *Driver) Acceleration() string { return "" }

// Boot implements vm.Driver.
func (d *Driver) Boot(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	return nil, errors.New("the qemu driver needs linux")
}
