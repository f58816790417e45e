//go:build !linux

package testbed

import "syscall"

// childSysProcAttr puts a child in its own process group. Outside Linux there
// is no parent-death signal: children of a SIGKILLed bed survive it.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
