package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/arcavm/arca/guest/vm"
	"github.com/arcavm/arca/guest/vm/underlay"
)

// Drivers that take one underlay, the other, or both.
type plainDriver struct{}

func (plainDriver) Name() string { return "plain" }
func (plainDriver) Boot(context.Context, vm.MachineSpec) (vm.Machine, error) {
	return nil, nil
}

type switchDriver struct {
	plainDriver
	sw *underlay.Switch
}

func (d *switchDriver) UseSwitch(s *underlay.Switch) { d.sw = s }

type bridgeDriver struct{ plainDriver }

func (bridgeDriver) UseUnderlay(*underlay.Bridge) {}

// auto puts a driver that takes the switch on it (qemu, vz); a kind the
// driver cannot use is an error, not a silent network-less daemon.
func TestAttachUnderlay(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	d := &switchDriver{}
	ul, err := attachUnderlay(underlayAuto, d, log)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.close()
	if ul.name() != underlaySwitch || d.sw == nil || ul.listen == nil {
		t.Fatalf("auto on a driver that takes the switch: %q, switch %v", ul.name(), d.sw)
	}
	c, err := ul.listen(0)
	if err != nil {
		t.Fatalf("a gateway's socket on the switch: %v", err)
	}
	c.Close()

	for _, tc := range []struct {
		kind string
		d    vm.Driver
		want string
	}{
		{underlaySwitch, bridgeDriver{}, "cannot use it"},
		{underlayBridge, &switchDriver{}, "cannot use it"},
		{"tap", &switchDriver{}, "unknown kind"},
	} {
		if _, err := attachUnderlay(tc.kind, tc.d, log); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--underlay %s on %T: %v, want %q", tc.kind, tc.d, err, tc.want)
		}
	}
	// A driver with no underlay support runs without networks.
	if ul, err := attachUnderlay(underlayAuto, plainDriver{}, log); err != nil || ul != nil || ul.name() != "" {
		t.Errorf("auto on a driver without underlays: %v, %v", ul, err)
	}
}
