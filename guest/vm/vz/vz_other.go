//go:build !darwin

package vz

import (
	"context"
	"errors"

	"github.com/arcavm/arca/guest/vm"
)

// Driver is a stub off macOS: the Virtualization framework is Apple's.
type Driver struct{}

var _ vm.Driver = (*Driver)(nil)

// New fails: the vz driver needs macOS.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	return nil, errors.New("the vz driver needs macOS (Apple's Virtualization framework)")
}

// Name implements vm.Driver.
func (d *Driver) Name() string { return "vz" }

// Boot implements vm.Driver.
func (d *Driver) Boot(ctx context.Context, spec vm.MachineSpec) (vm.Machine, error) {
	return nil, errors.New("the vz driver needs macOS")
}
