// Command testtime is the second half of `make testtime`: it reads a `go test -json`
// stream (a file, or stdin) and prints where the suite's wall time went, so that cutting
// the suite is decided by numbers rather than guesses:
//
//   - each package's wall time, with when it started and ended on the run's clock (go test
//     runs GOMAXPROCS packages at once, so the run's length is set by the last to end);
//   - the slowest tests, subtests included, and for each the lines it logged that carry a
//     duration (bed start, install and hand-off times, waits), which is where a test's own
//     time goes as far as the test can see it;
//   - the e2e bed pool's report (beds started, rewinds);
//   - each package's CPU seconds, when its test binary ran under time(1) (e2e/testtime.sh
//     passes go test -exec '/usr/bin/time -f testtime-cpu:%U+%S'): the binary's own and
//     that of every process it started and reaped — beds, Argo CDs, the binaries under
//     test. On 2 cores the sum over packages bounds the run's wall time from below;
//   - with -cpulog (the file every process e2e starts appends to when cpulog.Env names it), the
//     CPU seconds per process kind — kube-apiserver, etcd, Argo CD's controller and
//     repo-server, moto, Pebble, the binaries under test — and, with -gotime (go test's
//     own time(1) line), what go itself spent building and linking: which consumer to cut.
//
// Parallel tests' times exclude the wait for a -parallel slot (testing restarts a test's
// clock when t.Parallel releases it), so a package's tests can add up to more than its
// wall time.
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/cpulog"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent).
type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type pkgTimes struct {
	name       string
	first      time.Time
	last       time.Time
	elapsed    float64
	result     string
	tests      int
	poolReport string
	cpu        float64 // user + system seconds, from a testtime-cpu: line; -1 if none
}

type testTimes struct {
	pkg, name string
	elapsed   float64
	result    string
	timings   []string
}

// cpuLine is what time(1) prints after a test binary under e2e/testtime.sh's -exec.
var cpuLine = regexp.MustCompile(`testtime-cpu:([0-9.]+)\+([0-9.]+)`)

// timed matches a logged line that reports a duration: "in 4.9s", "1m23.4s", "took 812ms".
var timed = regexp.MustCompile(`\b\d+(\.\d+)?(ms|s)\b|\b\d+m\d+(\.\d+)?s\b|\bin \d`)

func main() {
	top := flag.Int("top", 30, "how many of the slowest tests to print")
	lines := flag.Int("lines", 6, "logged timing lines to print per slow test")
	cpuLog := flag.String("cpulog", "", "the bed's per-process CPU log (cpulog.Env)")
	goTime := flag.String("gotime", "", "a file holding go test's time(1) line ('… s user + … s system CPU')")
	flag.Parse()
	var in io.Reader = os.Stdin
	if flag.NArg() > 0 {
		f, err := os.Open(flag.Arg(0))
		if err != nil {
			fmt.Fprintln(os.Stderr, "testtime:", err)
			os.Exit(1)
		}
		defer f.Close()
		in = f
	}
	binCPU, err := report(os.Stdout, in, *top, *lines)
	if err == nil && *cpuLog != "" {
		err = cpuReport(os.Stdout, *cpuLog, *goTime, binCPU)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testtime:", err)
		os.Exit(1)
	}
}

// report prints the run's wall time, packages and slowest tests, and returns the test
// binaries' CPU seconds (0 when no testtime-cpu: line was seen).
func report(w io.Writer, in io.Reader, top, maxLines int) (float64, error) {
	pkgs := map[string]*pkgTimes{}
	tests := map[string]*testTimes{}
	var start, end time.Time
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1024*1024), 16*1024*1024)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue // go test's own non-JSON lines (build errors) are not events
		}
		if e.Time.IsZero() {
			continue
		}
		if start.IsZero() || e.Time.Before(start) {
			start = e.Time
		}
		if e.Time.After(end) {
			end = e.Time
		}
		p := pkgs[e.Package]
		if p == nil {
			p = &pkgTimes{name: e.Package, first: e.Time, cpu: -1}
			pkgs[e.Package] = p
		}
		p.last = e.Time
		if e.Test == "" {
			switch e.Action {
			case "pass", "fail", "skip":
				p.result, p.elapsed = e.Action, e.Elapsed
			case "output":
				if strings.HasPrefix(e.Output, "test beds:") {
					p.poolReport = strings.TrimSpace(e.Output)
				}
				if m := cpuLine.FindStringSubmatch(e.Output); m != nil {
					p.cpu = userPlusSystem(m)
				}
			}
			continue
		}
		key := e.Package + " " + e.Test
		t := tests[key]
		if t == nil {
			t = &testTimes{pkg: e.Package, name: e.Test}
			tests[key] = t
			if !strings.Contains(e.Test, "/") {
				p.tests++
			}
		}
		switch e.Action {
		case "pass", "fail", "skip":
			t.result, t.elapsed = e.Action, e.Elapsed
		case "output":
			// t.Logf lines are indented and start with file:line; keep those with a duration.
			if l := strings.TrimSpace(e.Output); strings.Contains(e.Output, "_test.go:") && timed.MatchString(l) {
				t.timings = append(t.timings, l)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading the test events: %w", err)
	}
	if start.IsZero() {
		return 0, fmt.Errorf("no test events in the input")
	}

	fmt.Fprintf(w, "run: %s wall (first event → last event)\n\n", end.Sub(start).Round(time.Second))

	var ps []*pkgTimes
	for _, p := range pkgs {
		if p.tests > 0 || p.elapsed >= 1 {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *pkgTimes) int { return cmp.Compare(b.elapsed, a.elapsed) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "package wall s\tCPU s\tstarted at s\tended at s\ttests\tresult\tpackage\t")
	var cpuSum float64
	for _, p := range ps {
		cpu := "-"
		if p.cpu >= 0 {
			cpu = fmt.Sprintf("%.0f", p.cpu)
			cpuSum += p.cpu
		}
		fmt.Fprintf(tw, "%.1f\t%s\t%.0f\t%.0f\t%d\t%s\t%s\t\n", p.elapsed, cpu, p.first.Sub(start).Seconds(), p.last.Sub(start).Seconds(), p.tests, p.result, strings.TrimPrefix(p.name, module))
	}
	tw.Flush()
	if cpuSum > 0 {
		fmt.Fprintf(w, "test binaries' CPU: %.0f s in all (2 cores: no run of these can take less than %.0f s)\n", cpuSum, cpuSum/2)
	}
	for _, p := range ps {
		if p.poolReport != "" {
			fmt.Fprintf(w, "%s: %s\n", p.name, p.poolReport)
		}
	}

	var ts []*testTimes
	for _, t := range tests {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b *testTimes) int { return cmp.Compare(b.elapsed, a.elapsed) })
	fmt.Fprintf(w, "\nslowest %d tests (s, excluding the wait for a -parallel slot):\n", min(top, len(ts)))
	for _, t := range ts[:min(top, len(ts))] {
		fmt.Fprintf(w, "%7.1f  %-4s %s %s\n", t.elapsed, t.result, strings.TrimPrefix(t.pkg, module), t.name)
		for i, l := range t.timings {
			if i == maxLines {
				fmt.Fprintf(w, "           … %d more\n", len(t.timings)-maxLines)
				break
			}
			fmt.Fprintf(w, "           %s\n", firstLine(l, 150))
		}
	}
	return cpuSum, nil
}

// goTimeLine is e2e/testtime.sh's time(1) line for go test as a whole.
var goTimeLine = regexp.MustCompile(`([0-9.]+) s user \+ ([0-9.]+) s system`)

// cpuReport prints the CPU seconds per process kind from the bed's CPU log, then what is
// left of the test binaries' time(1) figure (binCPU: the test binaries themselves, the
// in-process simulator, and children nobody logged) and, from goTimePath, what go test
// spent besides the test binaries (compiling, linking, test2json).
func cpuReport(w io.Writer, cpuLogPath, goTimePath string, binCPU float64) error {
	f, err := os.Open(cpuLogPath)
	if err != nil {
		return fmt.Errorf("reading the CPU log: %w", err)
	}
	defer f.Close()
	type kind struct {
		name          string
		own, children float64
		n             int
	}
	kinds := map[string]*kind{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s cpulog.Sample
		if json.Unmarshal(sc.Bytes(), &s) != nil || s.Proc == "" {
			continue
		}
		k := kinds[s.Proc]
		if k == nil {
			k = &kind{name: s.Proc}
			kinds[s.Proc] = k
		}
		k.own += s.Own
		k.children += s.Children
		k.n++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the CPU log: %w", err)
	}
	var ks []*kind
	var logged float64
	for _, k := range kinds {
		ks = append(ks, k)
		logged += k.own + k.children
	}
	slices.SortFunc(ks, func(a, b *kind) int { return cmp.Compare(b.own+b.children, a.own+a.children) })
	var goCPU float64 = -1
	if goTimePath != "" {
		if b, err := os.ReadFile(goTimePath); err == nil {
			if m := goTimeLine.FindStringSubmatch(string(b)); m != nil {
				goCPU = userPlusSystem(m)
			}
		}
	}
	fmt.Fprintf(w, "\nCPU by process kind (s; own = the process, children = what it forked and reaped):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CPU s\town\tchildren\tprocesses\t  kind")
	for _, k := range ks {
		fmt.Fprintf(tw, "%.0f\t%.0f\t%.0f\t%d\t%s\t\n", k.own+k.children, k.own, k.children, k.n, k.name)
	}
	if binCPU > 0 {
		fmt.Fprintf(tw, "%.0f\t\t\t\t  %s\n", binCPU-logged, "test binaries themselves (simulator included) and unlogged children")
	}
	if goCPU >= 0 && binCPU > 0 {
		fmt.Fprintf(tw, "%.0f\t\t\t\t  %s\n", goCPU-binCPU, "go test itself: compile, link, test2json")
	}
	tw.Flush()
	return nil
}

// module is the module path up to the repository's root, cut from package names.
const module = "github.com/rhoai-bootstrap/rhoai-bootstrap/"

// userPlusSystem adds a time(1) match's user (m[1]) and system (m[2]) seconds.
func userPlusSystem(m []string) float64 {
	u, _ := strconv.ParseFloat(m[1], 64)
	sys, _ := strconv.ParseFloat(m[2], 64)
	return u + sys
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
