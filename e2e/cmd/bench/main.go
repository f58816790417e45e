// Command bench is `make bench`: on the local test bed it measures, in one run,
//
//   - a full rehearsal's wall time with the simulator's latencies set to a real cluster's
//     (simulator.RealWorld, each figure with its source), scaled down by -scale, once with
//     the phase graph's concurrency and once with --max-parallel 1;
//   - the critical-path lower bound of each graph run: the longest path through the phase
//     graph (the binary's own DependsOn edges) of each phase's duration in that run, and
//     the ratios graph / lower bound and graph / serial;
//   - the modelled real-world bootstrap (scale 1) on the same graph;
//   - the API requests (reads, watches, writes) of a full rehearsal, and a converged
//     re-run's wall time and mutating requests;
//   - the binary's peak RSS (over every rehearsal), with a heap profile of the last graph
//     run (-memprofile), `--help` latency and size.
//
// The figures go to stdout, one per line, so they can be compared across commits.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/simulator"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/startup"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

func main() {
	scale := flag.Float64("scale", 0.05, "factor applied to the realistic latencies (and to every wait timeout)")
	flag.IntVar(&runs, "runs", 3, "full rehearsals per mode (the medians are printed)")
	flag.StringVar(&eventsDir, "events", "", "keep each measured run's JSON events in this folder")
	flag.StringVar(&memProfile, "memprofile", "", "write a heap profile of the last graph run's peak here (go tool pprof)")
	flag.Parse()
	if err := run(*scale); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

var (
	eventsDir  string
	memProfile string
	runs       int
)

// median returns the run with the median wall time.
func median(rs []runResult) runResult {
	slices.SortFunc(rs, func(a, b runResult) int { return int(a.wall - b.wall) })
	return rs[len(rs)/2]
}

// run is one rhoai-bootstrap invocation's outcome.
type runResult struct {
	wall                    time.Duration
	maxRSSKB                int64
	mutating, reads, watchs int64
	outcome                 string
	phases                  map[string]time.Duration
	handOff                 harness.HandOff
	// lower is the critical-path lower bound of this run's phase durations.
	lower time.Duration
}

func run(scale float64) error {
	ctx := context.Background()
	root, err := testbed.ModuleRoot()
	if err != nil {
		return err
	}
	bin, err := os.MkdirTemp("", "rhoai-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	if err := harness.Build(ctx, root, bin); err != nil {
		return err
	}
	// The shipped binary: stripped, as `make build` makes it.
	strip := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(bin, "rhoai-bootstrap"), "./cmd/rhoai-bootstrap")
	strip.Dir = root
	if out, err := strip.CombinedOutput(); err != nil {
		return fmt.Errorf("building: %v\n%s", err, out)
	}
	pool := harness.NewPool(1, bin, nil)
	defer pool.Close()

	scaled := func(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }
	real := simulator.RealWorld()
	opts := func(dir string) harness.Options {
		return harness.Options{
			WorkDir: dir,
			// The bench measures the phase graph, whose timeouts it scales down with the
			// latencies: the bed's small overlay keeps the hand-off inside them. The dev
			// overlay's hand-off is TestFreshInstallThenConvergedRerun's figure.
			Overlay:        testbed.BedOverlay,
			Latencies:      real.Scaled(scale),
			DNSPropagation: scaled(simulator.RealDNSPropagation),
		}
	}
	deps, err := graphEdges(root)
	if err != nil {
		return err
	}
	fmt.Printf("bench: latencies ×%g of a real cluster's (sources in e2e/simulator RealWorld); wait timeouts ×%g\n", scale, scale)
	for _, l := range []struct {
		name string
		d    time.Duration
	}{
		{"operator install (each)", real.OperatorInstall},
		{"kube-apiserver rollout", real.APIServerRollout},
		{"ingress rollout", real.IngressRollout},
		{"authentication rollout", real.OAuthRollout},
		{"Route53 DNS propagation", simulator.RealDNSPropagation},
	} {
		fmt.Printf("bench:   %-24s real %8s   scaled %7s\n", l.name, l.d, scaled(l.d).Round(time.Millisecond))
	}

	work, err := os.MkdirTemp("", "rhoai-bench-work-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	install := func(r *harness.Rehearsal, state string, extra ...string) (runResult, error) {
		args := []string{"install", "-f", r.Config(), "-o", "json", "--state-dir", state, "--timeout-factor", fmt.Sprint(scale), "--poll-interval", "200ms", "--non-interactive"}
		return invoke(ctx, r, append(args, extra...))
	}

	// Each mode runs -runs times, alternating, on a rewound bed; the figures are medians:
	// a run's certificates phase alone varies by several seconds (DNS-01 polling).
	var dags, serials []runResult
	var converged runResult
	for n := range runs * 2 {
		mode := []string{"dag", "serial"}[n%2]
		r, err := pool.Start(ctx, opts(filepath.Join(work, fmt.Sprintf("%s-%d", mode, n))))
		if err != nil {
			return err
		}
		state := filepath.Join(r.WorkDir, "state")
		// Warm-up, not measured: moto answers its first EC2 calls of a process slowly
		// (~1.5 s loading instance-type data), which would land on whichever run is first.
		if _, err := install(r, filepath.Join(r.WorkDir, "warm-up"), "--only", "preflight"); err != nil {
			return errors.Join(err, r.Stop())
		}
		var extra []string
		if mode == "serial" {
			extra = []string{"--max-parallel", "1"}
		}
		if mode == "dag" && memProfile != "" && n == runs*2-2 {
			extra = append(extra, "--memprofile", memProfile)
		}
		res, err := install(r, state, extra...)
		if err == nil && res.outcome != "done" {
			err = fmt.Errorf("%s install ended %q", mode, res.outcome)
		}
		res.lower = lowerBound(deps, res.phases)
		if err == nil && mode == "dag" {
			var h harness.HandOff
			if h, err = r.HandOff(ctx); err == nil {
				res.handOff = h
				fmt.Printf("bench: run %d hand-off (root Application created → %d children Synced+Healthy): %s by Argo CD's clocks, root-app phase %s, %.0f sync operations\n",
					n+1, h.Children, h.Took, res.phases["root-app"].Round(10*time.Millisecond), h.Syncs)
			}
			dags = append(dags, res)
			if n == 0 {
				converged, err = install(r, state)
			}
		} else if err == nil {
			serials = append(serials, res)
		}
		if stopErr := r.Stop(); err == nil {
			err = stopErr
		}
		if err != nil {
			return err
		}
		fmt.Printf("bench: run %d (%s): %s (lower bound %s, peak RSS %.1f MiB)\n", n+1, mode, res.wall.Round(10*time.Millisecond), res.lower.Round(10*time.Millisecond), float64(res.maxRSSKB)/1024)
	}
	var peakKB int64
	for _, r := range append(append([]runResult{}, dags...), serials...) {
		peakKB = max(peakKB, r.maxRSSKB)
	}
	dag, serial := median(dags), median(serials)
	help, err := helpLatency(ctx, filepath.Join(bin, "rhoai-bootstrap"))
	if err != nil {
		return err
	}
	fi, err := os.Stat(filepath.Join(bin, "rhoai-bootstrap"))
	if err != nil {
		return err
	}
	fmt.Printf("bench: medians of %d runs each:\n", runs)
	fmt.Printf("bench: full rehearsal, phase graph concurrency: %s\n", dag.wall.Round(10*time.Millisecond))
	fmt.Printf("bench: full rehearsal, --max-parallel 1:        %s\n", serial.wall.Round(10*time.Millisecond))
	for _, p := range phaseOrder {
		fmt.Printf("bench:   %-20s graph %6s   serial %6s\n", p, dag.phases[p].Round(10*time.Millisecond), serial.phases[p].Round(10*time.Millisecond))
	}
	var ratios []float64
	for _, r := range dags {
		ratios = append(ratios, r.wall.Seconds()/r.lower.Seconds())
	}
	slices.Sort(ratios)
	fmt.Printf("bench: critical-path lower bound (this run's phase durations, longest path): %s\n", dag.lower.Round(10*time.Millisecond))
	fmt.Printf("bench: graph/lower bound:                       %.2f (median of %d: %s)\n", ratios[len(ratios)/2], len(ratios), fmtRatios(ratios))
	fmt.Printf("bench: graph/serial:                            %.2f\n", dag.wall.Seconds()/serial.wall.Seconds())
	inst, day2, serialDay2 := modelled(deps, real)
	fmt.Printf("bench: modelled real bootstrap: install %.0f min + day-2 %.1f min (serial %.1f min)\n", inst.Minutes(), day2.Minutes(), serialDay2.Minutes())
	fmt.Printf("bench: hand-off of the bed overlay (root-app phase, real Argo CD): %s, %d child applications, %.0f sync operations\n",
		dag.phases["root-app"].Round(10*time.Millisecond), dag.handOff.Children, dag.handOff.Syncs)
	fmt.Printf("bench: API requests of a full rehearsal (graph, median run): %d reads, %d watches, %d writes\n", dag.reads, dag.watchs, dag.mutating)
	fmt.Printf("bench: converged re-run:                        %s, %d mutating requests (%d reads, %d watches)\n", converged.wall.Round(time.Millisecond), converged.mutating, converged.reads, converged.watchs)
	fmt.Printf("bench: peak RSS (highest of all rehearsals):    %.1f MiB\n", float64(peakKB)/1024)
	if memProfile != "" {
		fmt.Printf("bench: heap profile of the last graph run:      %s (go tool pprof -sample_index=inuse_space)\n", memProfile)
	}
	fmt.Printf("bench: --help latency (median of 10):           %s\n", help.Round(100*time.Microsecond))
	fmt.Printf("bench: binary size (stripped):                  %.1f MiB\n", float64(fi.Size())/(1<<20))
	return nil
}

// invoke runs rhoai-bootstrap and reads its run-finished summary and resource usage.
func invoke(ctx context.Context, r *harness.Rehearsal, args []string) (runResult, error) {
	cmd := r.Command(ctx, r.Env(), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return runResult{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return runResult{}, err
	}
	res := runResult{phases: map[string]time.Duration{}}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	var keep *os.File
	if eventsDir != "" {
		_ = os.MkdirAll(eventsDir, 0o755)
		keep, _ = os.Create(filepath.Join(eventsDir, fmt.Sprintf("run-%d.jsonl", time.Now().UnixNano())))
		defer keep.Close()
	}
	for sc.Scan() {
		if keep != nil {
			fmt.Fprintf(keep, "%s\n", sc.Bytes())
		}
		var e harness.Event
		var d struct {
			DurationMS int64 `json:"durationMs"`
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil || json.Unmarshal(sc.Bytes(), &d) != nil {
			continue
		}
		switch {
		case e.Type == "run-finished" && e.Summary != nil:
			res.outcome, res.mutating = e.Summary.Outcome, e.Summary.Mutating
			res.reads, res.watchs = e.Summary.Reads, e.Summary.Watches
		case e.Type == "phase-done":
			res.phases[e.Phase] = time.Duration(d.DurationMS) * time.Millisecond
		}
	}
	_ = cmd.Wait()
	res.wall = time.Since(start)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.maxRSSKB = ru.Maxrss
	}
	if res.outcome == "" {
		return res, fmt.Errorf("%v: no summary (exit %d)", args, cmd.ProcessState.ExitCode())
	}
	return res, nil
}

// helpLatency is the median wall time of 10 `--help` runs (e2e/cmd/startbench, `make
// startbench`, prints more: CPU, page faults, two binaries alternated).
func helpLatency(ctx context.Context, bin string) (time.Duration, error) {
	var ds []time.Duration
	for range 10 {
		s, err := startup.Help(ctx, bin)
		if err != nil {
			return 0, err
		}
		ds = append(ds, s.Wall)
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}
