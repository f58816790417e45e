package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/cmd/rhoai-bootstrap/internal/tui"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer/s3store"
)

// A fleet is several cluster files given to one install, plan, status or destroy
// (`-f dev.yaml -f prod.yaml`, or a folder). Each cluster runs the single-cluster
// command as it would alone — its own state, lock, installer folder, debug log, event
// bus and redactor — with its output prefixed by its name, concurrently up to
// --max-parallel-clusters. A cluster that fails is recorded and never stops the others;
// Ctrl-C or SIGTERM cancels the command's context, which every cluster's run watches,
// so each one saves its state and stops as a lone run does. The command's exit code is
// the worst of the clusters' (worstExit).

// clusterFiles expands the -f values: a folder stands for the *.yaml and *.yml files
// directly in it, in name order (not its subfolders: a GitOps tree kept beside the
// cluster files is not taken for them). A path that cannot be read is kept as given, so
// loading it says what is wrong with it.
func clusterFiles(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil || !fi.IsDir() {
			files = append(files, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return nil, &exitError{code: ExitConfig, err: fmt.Errorf("-f %s: %w", a, err)}
		}
		n := len(files)
		for _, e := range entries {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, filepath.Join(a, e.Name()))
			}
		}
		if len(files) == n {
			return nil, &exitError{code: ExitConfig, err: fmt.Errorf("-f %s: a folder with no .yaml or .yml file in it: give cluster files or a folder of them", a)}
		}
	}
	return files, nil
}

// member is one cluster of a fleet: its file, the options of its own run (the file, its
// state folder or S3 prefix) and what its run ended with.
type member struct {
	file string
	name string
	opts globalOptions
	// skip, set before the runs start (a destroy not confirmed), is the cluster's result
	// without running it.
	skip error
	// preface are events its run emits first (install's cost estimate).
	preface []installer.Event
	err     error
}

// members loads every file and gives each cluster its own state location: with
// --state-dir DIR, DIR/<cluster name> (alone, a file's state is DIR itself); with --state
// s3://bucket/prefix, s3://bucket/prefix/<cluster name>; by default
// .rhoai-bootstrap/<cluster name>, as alone. A cluster's identity is its metadata.name:
// two files naming the same cluster, or two clusters whose state or work folders or S3
// prefixes would be the same, are refused here, naming both files, before anything is
// changed. Every file's problems are reported together.
func (o *globalOptions) members() ([]*member, error) {
	var ms []*member
	var problems []error
	for _, f := range o.expanded {
		mo := *o
		mo.file, mo.expanded, mo.memProfile, mo.member = f, nil, "", true
		c, err := mo.load()
		if err != nil {
			problems = append(problems, err)
			continue
		}
		if o.stateDir != "" {
			mo.stateDir = filepath.Join(o.stateDir, c.Metadata.Name)
		}
		if o.state != "" && s3store.IsURL(o.state) {
			mo.state = strings.TrimSuffix(o.state, "/") + "/" + c.Metadata.Name
		}
		ms = append(ms, &member{file: f, name: c.Metadata.Name, opts: mo})
	}
	if len(problems) > 0 {
		err := errors.Join(problems...)
		if len(problems) == 1 {
			err = problems[0]
		}
		return nil, &exitError{code: codeOf(problems[0]), err: err}
	}
	for i, a := range ms {
		for _, b := range ms[:i] {
			if err := collision(b, a); err != nil {
				return nil, &exitError{code: ExitConfig, err: err}
			}
		}
	}
	return ms, nil
}

// collision says why two clusters cannot run in one command, or nil.
func collision(a, b *member) error {
	both := fmt.Sprintf("%s and %s", a.file, b.file)
	if a.name == b.name {
		return fmt.Errorf("%s both name cluster %q (metadata.name): each cluster needs its own file; give one of them once", both, a.name)
	}
	abs := func(m *member) string {
		p, err := filepath.Abs(m.opts.dirOf(m.name))
		if err != nil {
			return m.opts.dirOf(m.name)
		}
		return p
	}
	if abs(a) == abs(b) {
		return fmt.Errorf("%s would share the state folder %s: give each cluster its own (they are named after metadata.name)", both, abs(a))
	}
	if a.opts.state != "" && a.opts.state == b.opts.state {
		return fmt.Errorf("%s would share the S3 state %s: give each cluster its own prefix", both, a.opts.state)
	}
	return nil
}

// fleetStep is what a fleet command does for one cluster, with a command whose output,
// errors and context are that cluster's.
type fleetStep func(cmd *cobra.Command, o *globalOptions, m *member) error

// fleet runs step for each cluster of the command line, concurrently up to
// --max-parallel-clusters (0: all at once). before, if set, runs first for each cluster
// in turn, unprefixed, before any cluster starts (destroy's confirmations, install's
// cost limit): an error from it that is not the cluster's own result (m.skip) stops the
// command with nothing changed. Each cluster's result is kept; the command ends with a
// one-line summary per cluster and the worst exit code.
func (o *globalOptions) fleet(cmd *cobra.Command, action string, before, step fleetStep) error {
	if o.maxParallelClusters < 0 {
		return &exitError{code: ExitConfig, err: fmt.Errorf("--max-parallel-clusters %d: use 0 (all at once) or more", o.maxParallelClusters)}
	}
	ms, err := o.members()
	if err != nil {
		return err
	}
	if o.memProfile != "" {
		defer profileHeapPeak(o.memProfile)()
	}
	if before != nil {
		for _, m := range ms {
			if err := before(cmd, &m.opts, m); err != nil {
				return err
			}
		}
	}
	stdout := &lockedWriter{w: cmd.OutOrStdout()}
	stderr := &lockedWriter{w: cmd.ErrOrStderr()}
	ctx := cmd.Context()
	var view *tui.Progress
	var held bytes.Buffer // the clusters' stderr while the view draws the terminal
	if (action == "install" || action == "destroy") && o.interactive() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		names := make([]string, len(ms))
		for i, m := range ms {
			names[i] = m.name
		}
		view = tui.StartFleetProgress(tui.FleetOptions{Action: action, Clusters: names, Cancel: cancel,
			ResumeCommand: resumeCommand(action), NoColor: os.Getenv("NO_COLOR") != ""})
		stderr = &lockedWriter{w: &held}
	}
	g := new(errgroup.Group)
	if o.maxParallelClusters > 0 {
		g.SetLimit(o.maxParallelClusters)
	}
	for _, m := range ms {
		if m.skip != nil {
			m.err = m.skip
			continue
		}
		g.Go(func() error {
			out := io.Writer(stdout)
			if o.output != "json" { // JSON lines carry "cluster" instead
				out = newPrefixWriter(stdout, m.name)
			}
			errOut := newPrefixWriter(stderr, m.name)
			mc := &cobra.Command{Use: cmd.Use}
			mc.SetContext(ctx)
			mc.SetIn(cmd.InOrStdin())
			mc.SetOut(out)
			mc.SetErr(errOut)
			m.opts.rawErr, m.opts.view = stderr, view
			m.err = step(mc, &m.opts, m)
			printMemberError(errOut, stderr, m.name, m.err, o.verbose)
			flushAll(out, errOut)
			return nil // one cluster's failure never stops the others
		})
	}
	_ = g.Wait()
	if view != nil {
		view.Stop(nil) // a cluster that failed before its run started sent no run-finished
		_ = view.Wait()
		_, _ = cmd.ErrOrStderr().Write(held.Bytes())
	}
	return fleetSummary(cmd.ErrOrStderr(), action, ms)
}

// printMemberError prints a cluster's error as printError does a lone run's: once, not
// again when the front-end showed it on its phase line, and on GitHub Actions also as a
// workflow command naming the cluster, on raw (a workflow command must start its line).
// What a run returns was redacted by its run; what fails before a run holds no secret.
func printMemberError(w, raw io.Writer, cluster string, err error, verbose bool) {
	reportError(w, raw, "rhoai-bootstrap ["+cluster+"]", err, func(s string) string { return s }, verbose)
}

// fleetSummary prints one line per cluster — name, result, exit code, its debug log —
// and returns the worst exit code as the command's error (nil when every cluster is 0).
// The lines go to stderr: with -o json stdout holds JSON lines only.
func fleetSummary(w io.Writer, action string, ms []*member) error {
	fmt.Fprintf(w, "\n%s of %d clusters:\n", action, len(ms))
	codes := make([]int, len(ms))
	var failed []string
	for i, m := range ms {
		codes[i] = codeOf(m.err)
		result := "ok"
		if codes[i] != ExitOK {
			result = exitWords[codes[i]]
			failed = append(failed, fmt.Sprintf("%s (exit %d)", m.name, codes[i]))
		}
		fmt.Fprintf(w, "  %-24s %-12s exit %d  log %s\n", m.name, result, codes[i], filepath.Join(m.opts.dirOf(m.name), "rhoai-bootstrap.log"))
	}
	worst := worstExit(codes...)
	if worst == ExitOK {
		return nil
	}
	return &exitError{code: worst, shown: true, err: fmt.Errorf("%s: %s", action, strings.Join(failed, ", "))}
}

// exitWords name the exit codes in the fleet summary.
var exitWords = map[int]string{
	ExitOK: "ok", ExitFailed: "failed", ExitConfig: "refused", ExitLocked: "locked", ExitInterrupted: "interrupted",
}

// exitSeverity orders the exit codes for a fleet's exit code, the worst cluster's: by
// how far the same command is from succeeding when run again. Interrupted (4) resumes as
// it is; locked (3) succeeds once the other run ends; a failed phase (1) needs its error
// read, and perhaps fixed; a refused file or command line (2) fails the same way until
// it is changed. So 0 < 4 < 3 < 1 < 2. A code not listed counts as a failure.
var exitSeverity = map[int]int{ExitOK: 0, ExitInterrupted: 1, ExitLocked: 2, ExitFailed: 3, ExitConfig: 4}

// worstExit is the most severe of codes (exitSeverity); ExitOK for none.
func worstExit(codes ...int) int {
	worst := ExitOK
	rank := func(c int) int {
		if r, ok := exitSeverity[c]; ok {
			return r
		}
		return exitSeverity[ExitFailed]
	}
	for _, c := range codes {
		if rank(c) > rank(worst) {
			worst = c
		}
	}
	return worst
}

// lockedWriter serialises writes of several clusters to one stream.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// prefixWriter writes each line as "[<cluster>] line", whole lines at a time, so the
// lines of clusters running at once never mix within a line.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	buf    []byte
}

func newPrefixWriter(w io.Writer, cluster string) *prefixWriter {
	return &prefixWriter{w: w, prefix: []byte("[" + cluster + "] ")}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	i := bytes.LastIndexByte(p.buf, '\n')
	if i < 0 {
		return len(b), nil
	}
	if err := p.emit(p.buf[:i+1]); err != nil {
		return 0, err
	}
	p.buf = slices.Clone(p.buf[i+1:])
	return len(b), nil
}

// emit writes complete lines in one write.
func (p *prefixWriter) emit(lines []byte) error {
	var out []byte
	for line := range bytes.SplitAfterSeq(lines, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			out = append(append(out, bytes.TrimSpace(p.prefix)...), '\n') // "[name]", no trailing blank
			continue
		}
		out = append(append(out, p.prefix...), line...)
	}
	_, err := p.w.Write(out)
	return err
}

// Flush writes a last line that has no newline.
func (p *prefixWriter) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) == 0 {
		return nil
	}
	line := append(p.buf, '\n')
	p.buf = nil
	return p.emit(line)
}

func flushAll(ws ...io.Writer) {
	for _, w := range ws {
		if f, ok := w.(interface{ Flush() error }); ok {
			_ = f.Flush()
		}
	}
}

// several reports whether the command line names more than one cluster file.
func (o *globalOptions) several() bool { return len(o.expanded) > 1 }
