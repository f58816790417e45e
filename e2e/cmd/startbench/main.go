// Command startbench is `make startbench`: it measures the command's start-up, which
// `--help` is almost all of (package initialization, then cobra printing the usage), so a
// dependency that does heavy work at init shows here first (issue #19: `--help` < 50 ms).
//
// It runs `BIN --help` -n times for each binary given, alternating between them so that a
// change in the machine's load during the measurement hits every binary alike, and prints
// per binary the median wall-clock time (with the fastest and the 90th percentile), the
// median CPU time (user + system: every thread's, so it can exceed the wall time) and the
// median minor page faults, which depend on the binary and hardly on the load. Give the
// binary of another commit as a second argument to compare the two on the same machine
// state; one warm-up run per binary is not counted (page cache).
//
//	go run ./e2e/cmd/startbench [-n 20] BIN [BIN...]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/startup"
)

func main() {
	n := flag.Int("n", 20, "runs per binary")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: startbench [-n runs] BIN [BIN...]   (runs each `BIN --help`, alternating)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *n < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(context.Background(), flag.Args(), *n); err != nil {
		fmt.Fprintln(os.Stderr, "startbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bins []string, n int) error {
	fmt.Printf("startbench: `--help`, %d runs per binary, alternating; load average %s at the start\n", n, loadavg())
	samples := make([][]startup.Sample, len(bins))
	for i := -1; i < n; i++ {
		for b, bin := range bins {
			s, err := startup.Help(ctx, bin)
			if err != nil {
				return err
			}
			if i >= 0 { // i == -1 is the warm-up
				samples[b] = append(samples[b], s)
			}
		}
	}
	for b, bin := range bins {
		walls := pick(samples[b], func(s startup.Sample) time.Duration { return s.Wall })
		cpus := pick(samples[b], func(s startup.Sample) time.Duration { return s.CPU })
		faults := pick(samples[b], func(s startup.Sample) int64 { return s.Faults })
		fmt.Printf("startbench: %s: wall median %s (fastest %s, p90 %s), CPU median %s, %d page faults\n",
			bin, ms(walls[n/2]), ms(walls[0]), ms(walls[(9*n+9)/10-1]), ms(cpus[n/2]), faults[n/2])
	}
	fmt.Printf("startbench: load average %s at the end\n", loadavg())
	return nil
}

// pick returns one field of every sample, sorted.
func pick[T int64 | time.Duration](ss []startup.Sample, f func(startup.Sample) T) []T {
	out := make([]T, 0, len(ss))
	for _, s := range ss {
		out = append(out, f(s))
	}
	slices.Sort(out)
	return out
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// loadavg is /proc/loadavg's 1-minute figure, "?" where there is none.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
