package wire

// Where a VM driver's initramfs (guest/vm/kit) puts things for the
// agent's VMInit, and what the kernel command line tells it. Plain constants, in a file
// every platform builds: the host packs what the guest reads.
const (
	// VMModuleDir holds the kernel modules, flat: those of VMModuleList
	// and the extras the agent loads by name, with the dependencies each
	// module's .modinfo names, when a machine first needs them (a NIC and
	// WireGuard, shares, vsock): most machines boot without them.
	VMModuleDir = "/lib/modules/arca"
	// VMModuleList names the modules to load at boot, one a line, each
	// after its dependencies.
	VMModuleList = "/etc/arca/modules.boot"
	// VMPortName is the virtio-serial port the agent serves the host on,
	// unless VMStreamParam says otherwise.
	VMPortName = "arca"
	// VMStreamParam on the kernel command line names the agent's stream
	// as Config.Stream does (vz: "vsock:PORT"); without it VMInit looks
	// for the virtio-serial port VMPortName.
	VMStreamParam = "arca.stream"
	// VMDiskParam on the kernel command line says how many disks the host
	// attached, so VMInit knows when all have appeared.
	VMDiskParam = "arca.disks"
	// VMTemplateParam=1 on the kernel command line boots a template: a
	// guest the host snapshots once its agent waits on the stream, and
	// restores as many machines (docs/qemu.md).
	VMTemplateParam = "arca.template"
	// VMPowerOffParam=reset on the kernel command line ends the machine
	// with a reset instead of a power-off: for a kernel that cannot power
	// off (Arca's amd64 kernel has no ACPI) on a hypervisor that turns a
	// reset into its exit (qemu's -no-reboot).
	VMPowerOffParam = "arca.poweroff"
	// VMDiskByID is where VMInit links each disk by its serial, as udev
	// would: the driver names disks by serial since probe order varies.
	VMDiskByID = "/dev/disk/by-id"
)
