package testbed

import "syscall"

// childSysProcAttr puts a child in its own process group and has the kernel
// SIGKILL it when the bed's process dies, even by SIGKILL.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
