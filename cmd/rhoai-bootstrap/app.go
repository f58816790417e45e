package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/cmd/rhoai-bootstrap/internal/tui"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer/s3store"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/graph"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	// files are the -f values as given; expanded, the cluster files they name (a folder
	// stands for its files: clusterFiles); file, the one this run is about.
	files          []string
	expanded       []string
	file           string
	stateDir       string
	state          string
	stateKMSKey    string
	output         string
	verbose        bool
	nonInteractive bool
	maxParallel    int
	only, skip     []string
	timeoutFactor  float64
	pollInterval   time.Duration
	memProfile     string
	// maxHourlyCost is --max-hourly-cost (plan and install only); 0: the file's, if any.
	maxHourlyCost float64
	// maxParallelClusters is --max-parallel-clusters (install, plan, status, destroy).
	maxParallelClusters int
	// member is set on the options of one cluster of a fleet (fleet.go): no TUI, and
	// rawErr is the command's stderr without the cluster's prefix, for workflow commands.
	member bool
	rawErr io.Writer
	// view, set on a fleet's clusters when the fleet's live view runs, is their front-end.
	view *tui.Progress
}

func (o *globalOptions) bind(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringArrayVarP(&o.files, "file", "f", nil, "the cluster file (kind: Cluster); install, plan, status and destroy take several (-f dev.yaml -f prod.yaml) or a folder of them")
	f.StringVar(&o.stateDir, "state-dir", "", "where state.json, the lock, the debug log and the installer's files live (default .rhoai-bootstrap/<cluster name>)")
	f.StringVar(&o.state, "state", os.Getenv("RHOAI_BOOTSTRAP_STATE"), "keep the state in S3 instead of --state-dir: s3://bucket/prefix (env RHOAI_BOOTSTRAP_STATE); the work folder stays local")
	f.StringVar(&o.stateKMSKey, "state-kms-key", os.Getenv("RHOAI_BOOTSTRAP_STATE_KMS_KEY"), "encrypt the S3 state with SSE-KMS under this key ID, ARN or alias")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json (one event object per line)")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "show debug lines (the debug log always has them)")
	f.BoolVar(&o.nonInteractive, "non-interactive", false, "never start the TUI or prompt (also when CI=true or stdout is not a terminal)")
	f.IntVar(&o.maxParallel, "max-parallel", 0, "run at most this many phases at once (0: as many as the graph allows)")
	f.StringSliceVar(&o.only, "only", nil, "run only these phases (their dependencies must be done)")
	f.StringSliceVar(&o.skip, "skip", nil, "skip these phases")
	f.Float64Var(&o.timeoutFactor, "timeout-factor", 1, "multiply every wait timeout (slow networks: 2; the test bed: 0.05)")
	f.DurationVar(&o.pollInterval, "poll-interval", 2*time.Second, "how often waits that cannot watch look again")
	f.StringVar(&o.memProfile, "memprofile", "", "write a heap profile taken at the run's highest heap to this file (for `make bench`)")
	_ = f.MarkHidden("memprofile")
}

// resolveFiles expands the -f values (clusterFiles); one file is the command's file.
func (o *globalOptions) resolveFiles() error {
	files, err := clusterFiles(o.files)
	if err != nil {
		return err
	}
	o.expanded = files
	if len(files) == 1 {
		o.file = files[0]
	}
	return nil
}

// bindFleet adds --max-parallel-clusters to the commands that take several cluster files.
func (o *globalOptions) bindFleet(cmd *cobra.Command) {
	cmd.Flags().IntVar(&o.maxParallelClusters, "max-parallel-clusters", 0, "with several cluster files, run at most this many clusters at once (0: all at once)")
}

// load reads and validates the cluster file.
func (o *globalOptions) load() (*configs.Cluster, error) {
	if o.file == "" && len(o.expanded) > 1 {
		return nil, &exitError{code: ExitConfig, err: fmt.Errorf("-f: this command takes one cluster file, not %d (%s); install, plan, status and destroy take several", len(o.expanded), strings.Join(o.expanded, ", "))}
	}
	if o.file == "" {
		return nil, &exitError{code: ExitConfig, err: errors.New("no cluster file: pass -f FILE (see configs/examples/)")}
	}
	c, err := configs.Load(o.file)
	if err != nil {
		var inv *configs.InvalidError
		if errors.As(err, &inv) {
			return nil, err
		}
		return nil, &exitError{code: ExitConfig, err: err}
	}
	return c, nil
}

func (o *globalOptions) dir(c *configs.Cluster) string { return o.dirOf(c.Metadata.Name) }

// dirOf is the local folder of the named cluster: state (unless in S3), lock, debug log,
// installer files.
func (o *globalOptions) dirOf(name string) string {
	if o.stateDir != "" {
		return o.stateDir
	}
	return filepath.Join(".rhoai-bootstrap", name)
}

// store loads the cluster file and opens its state store: S3 with --state s3://…, else
// the local folder.
func (o *globalOptions) store(ctx context.Context) (*configs.Cluster, installer.Store, error) {
	c, err := o.load()
	if err != nil {
		return nil, nil, err
	}
	if o.state == "" {
		if o.stateKMSKey != "" {
			return nil, nil, &exitError{code: ExitConfig, err: errors.New("--state-kms-key: only for an S3 state (--state s3://bucket/prefix)")}
		}
		st, err := installer.NewLocalStore(o.dir(c))
		return c, st, err
	}
	if !s3store.IsURL(o.state) {
		return nil, nil, &exitError{code: ExitConfig, err: fmt.Errorf("--state %q: use s3://bucket/prefix, or --state-dir for a local folder", o.state)}
	}
	if _, _, err := s3store.Parse(o.state); err != nil {
		return nil, nil, &exitError{code: ExitConfig, err: err}
	}
	cfg, err := (&phases.Env{Cluster: c, AWSLogger: libraryLogs.aws()}).AWS(ctx)
	if err != nil {
		return nil, nil, err
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		// S3-compatible endpoints (AWS_ENDPOINT_URL: MinIO, Ceph, moto) want
		// path-style addressing; AWS itself takes either.
		so.UsePathStyle = cfg.BaseEndpoint != nil || os.Getenv("AWS_ENDPOINT_URL_S3") != ""
	})
	st, err := s3store.New(client, o.state, o.stateKMSKey)
	return c, st, err
}

// interactive reports whether the TUI may run.
func (o *globalOptions) interactive() bool {
	if o.member || o.nonInteractive || o.output != "text" || os.Getenv("CI") == "true" {
		return false
	}
	return term.IsTerminal(int(os.Stdout.Fd())) && term.IsTerminal(int(os.Stdin.Fd()))
}

// session is one command's runner and its plumbing.
type session struct {
	runner  *installer.Runner
	env     *phases.Env
	bus     *installer.Bus
	log     *debugLog
	cluster *configs.Cluster
}

func (o *globalOptions) session(cmd *cobra.Command, command string, gopts graph.Options, configure func(*phases.Env)) (*session, error) {
	if o.output != "text" && o.output != "json" {
		return nil, &exitError{code: ExitConfig, err: fmt.Errorf("--output %q: use text or json", o.output)}
	}
	c, store, err := o.store(cmd.Context())
	if err != nil {
		return nil, err
	}
	dir := o.dir(c)
	env := &phases.Env{Cluster: c, WorkDir: dir, Timeouts: phases.DefaultTimeouts.Scale(o.timeoutFactor), Counter: &kube.Counter{}, AWSLogger: libraryLogs.aws()}
	if configure != nil {
		configure(env)
	}
	log, err := openDebugLog(filepath.Join(dir, "rhoai-bootstrap.log"))
	if err != nil {
		return nil, err
	}
	bus := installer.NewBus(&installer.Redactor{}, log)
	bus.Cluster = c.Metadata.Name
	libraryLogs.attach(log, bus.Redactor)
	if onGitHubActions() {
		gh := &githubSink{w: cmd.ErrOrStderr()}
		if o.member {
			// A workflow command must start its line: not behind the cluster's prefix.
			gh.w, gh.cluster = o.rawErr, c.Metadata.Name
		}
		bus.Add(gh)
	}
	if !o.member {
		// A fleet's clusters print their own errors (fleet.go); only a lone run's
		// error is printed by main, after the run.
		runRedactor = bus.Redactor
	}
	runner := &installer.Runner{
		Phases: graph.Phases(env, gopts), Store: store, Bus: bus, Cluster: c.Metadata.Name, Command: command,
		MaxParallel: o.maxParallel, Only: o.only, Skip: o.skip, Mutations: env.Counter.Count,
		Requests: func() (int64, int64) { return env.Counter.Reads(), env.Counter.Watches() },
	}
	return &session{runner: runner, env: env, bus: bus, log: log, cluster: c}, nil
}

// frontEnd attaches the right renderer and returns a function that waits for it to finish.
func (s *session) frontEnd(o *globalOptions, cmd *cobra.Command, action string, cancel context.CancelFunc) func() {
	out := cmd.OutOrStdout()
	switch {
	case o.output == "json":
		s.bus.Add(newJSONSink(out))
	case o.view != nil:
		var infos []tui.PhaseInfo
		for _, p := range s.runner.Phases {
			infos = append(infos, tui.PhaseInfo{Name: p.Name(), DependsOn: p.DependsOn()})
		}
		o.view.Declare(s.cluster.Metadata.Name, infos)
		s.bus.Add(o.view)
	case o.interactive():
		var infos []tui.PhaseInfo
		for _, p := range s.runner.Phases {
			infos = append(infos, tui.PhaseInfo{Name: p.Name(), DependsOn: p.DependsOn()})
		}
		p := tui.StartProgress(tui.ProgressOptions{
			Action: action, Phases: infos, Cancel: cancel,
			ResumeCommand: resumeCommand(action),
			NoColor:       os.Getenv("NO_COLOR") != "",
		})
		s.bus.Add(p)
		return func() { _ = p.Wait() }
	default:
		s.bus.Add(&textSink{w: out, verbose: o.verbose})
	}
	return func() {}
}

// resumeCommand is the command line to run again, as typed.
func resumeCommand(action string) string {
	args := os.Args[1:]
	return "rhoai-bootstrap " + strings.Join(args, " ")
}

func (s *session) close() {
	libraryLogs.detach(s.log)
	s.log.Close()
}

// result turns a run's outcome into an exit error with a next step. shown says the
// front-end prints phase failures where they happen (text, TUI); what it printed is not
// printed again, only what no phase line showed.
func result(sum *installer.Summary, err error, shown bool) error {
	if err == nil {
		if sum != nil && sum.Outcome == installer.OutcomeBlocked {
			return &exitError{code: ExitFailed, err: errors.New("some phases were blocked: see above")}
		}
		return nil
	}
	if errors.Is(err, installer.ErrInterrupted) {
		return &exitError{code: ExitInterrupted, err: fmt.Errorf("interrupted; the state is saved: run the same command again to resume")}
	}
	if shown && sum != nil {
		if rest := notShown(err); rest != nil {
			return &exitError{code: codeOf(err), err: rest}
		}
		return &exitError{code: codeOf(err), err: err, shown: true}
	}
	return err
}

// notShown is what is left of a run's error once the phase failures (a RunError, each
// printed as its phase failed) are taken out: an error of the run itself joined to them
// ("…; saving state: …", "…; releasing the state lock: …"), or nil.
func notShown(err error) error {
	switch e := err.(type) {
	case *installer.RunError:
		return nil
	case interface{ Unwrap() []error }: // fmt.Errorf("%w; %w", …)
		var rest []error
		for _, part := range e.Unwrap() {
			if r := notShown(part); r != nil {
				rest = append(rest, r)
			}
		}
		return errors.Join(rest...)
	}
	return err
}

func confirmTTY(in io.Reader) bool {
	f, ok := in.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
