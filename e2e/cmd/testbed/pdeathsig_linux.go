package main

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// stopWithParent asks the kernel for SIGTERM when our parent dies. Under
// `go run`, a SIGTERM to the go command kills it without passing the signal
// on; this turns that into an orderly stop instead of an orphaned bed.
func stopWithParent() error {
	return unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0)
}
