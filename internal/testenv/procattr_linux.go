package testenv

import "syscall"

// dieWithTest makes a child get sig when the test binary dies.
func dieWithTest(sig syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: sig}
}
