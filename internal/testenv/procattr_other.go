//go:build !linux

package testenv

import "syscall"

// dieWithTest: only Linux has a parent-death signal. Elsewhere a test
// binary killed by a timeout leaves its children for cleanup by hand.
func dieWithTest(syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}
