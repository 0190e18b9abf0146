package qemu

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/arcavm/arca/guest/vm"
)

// A template is a snapshot of a guest booted to the point where its agent
// waits for the host: its memory in a file and its device state in
// another. A machine of the same shape (memory, CPUs, which disks, NIC
// and shares it has) restores it instead of booting: its memory maps the
// template's file copy-on-write, and the agent, told by the host's
// wire.Resume, renews its clock and random state and only then finds the
// machine's own disks. See docs/qemu.md.

// templateMAC is a template's network card's address: a restored
// machine's card keeps it until the agent gives it the machine's.
const templateMAC = "02:00:00:00:00:01"

// consoleLog is the file in a machine's StateDir that its console goes to.
const consoleLog = "console.log"

// Files in a template's directory.
const (
	templateRAM   = "ram"
	templateState = "state"
)

// shape is l without what is one machine's own: the template machines
// like l restore, its disks, shares and console named relative to the
// template's directory (placeholders makes them), its NIC on nothing.
func (l launch) shape() launch {
	s := l
	s.Console = consoleLog
	if s.ImageDisk != "" {
		s.ImageDisk = "image"
	}
	if s.RWDisk != "" {
		s.RWDisk = "rw"
	}
	s.Disks = nil
	for i, d := range l.Disks {
		s.Disks = append(s.Disks, vm.Disk{Image: "vol" + strconv.Itoa(i), ReadOnly: d.ReadOnly})
	}
	s.Shares = nil
	for i, sh := range l.Shares {
		s.Shares = append(s.Shares, vm.Share{HostPath: "share" + strconv.Itoa(i), ReadOnly: sh.ReadOnly})
	}
	if l.NIC != nil {
		s.NIC = &nic{MAC: templateMAC}
	}
	s.Template = true
	s.RAM, s.Incoming, s.QMPFD = nil, false, 0
	return s
}

// key names a shape's template: its command line, which holds all a
// restore must match (the kernel, the initramfs and so the agent, the
// devices in order), hashed.
func (l launch) key() string {
	h := sha256.New()
	for _, a := range l.args() {
		h.Write([]byte(a))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
