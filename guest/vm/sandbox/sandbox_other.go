//go:build !linux

// Package sandbox is the namespace driver; it exists only on Linux.
package sandbox

import (
	"context"
	"errors"

	"github.com/arcavm/arca/guest/vm"
)

// Driver is a stub off Linux: Boot always fails.
type Driver struct{}

var _ vm.Driver = (*Driver)(nil)

// New returns the stub driver.
func New(agentPath string) *Driver { return &Driver{} }

// Name implements vm.Driver.
func (d *Driver) Name() string { return "sandbox" }

// Boot implements vm.Driver.
func (d *Driver) Boot(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	return nil, errors.New("the sandbox driver needs linux")
}
