package httpfront

import "golang.org/x/sys/unix"

// memTotal is the host's RAM in bytes; 0 if unknown.
func memTotal() int64 {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0
	}
	return int64(n)
}
