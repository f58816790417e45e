// Package startup measures the command's start-up: one `BIN --help` run, which is almost
// all package initialization and cobra printing the usage (issue #19). `make startbench`
// (e2e/cmd/startbench) and `make bench` (e2e/cmd/bench) both take their figures from it.
package startup

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// Sample is one run's cost.
type Sample struct {
	// Wall is the wall-clock time from start to exit.
	Wall time.Duration
	// CPU is user + system time of every thread, so it can exceed Wall.
	CPU time.Duration
	// Faults are the minor page faults, which depend on the binary and hardly on the load.
	Faults int64
}

// Help runs `bin --help` once and returns what it cost.
func Help(ctx context.Context, bin string) (Sample, error) {
	cmd := exec.CommandContext(ctx, bin, "--help")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		return Sample{}, fmt.Errorf("%s --help: %w\n%s", bin, err, out)
	}
	s := Sample{Wall: wall, CPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.Faults = ru.Minflt
	}
	return s, nil
}
