// Package harness starts a rehearsal: the test bed, the cluster simulator wired to it
// (OLM installs each operator's real CRDs, the GitOps operator starts the real Argo CD,
// which syncs this checkout's GitOps payload from the bed's Git server), and the binaries
// under test — rhoai-bootstrap and the fake openshift-install — built from this checkout.
// The e2e tests, `make demo`, the benchmark and the chaos script use it.
package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/cpulog"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/fakeinstall"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/simulator"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

// Options tune a rehearsal.
type Options struct {
	// WorkDir holds the bed, the binaries and the bootstrap's state (temporary if empty).
	WorkDir   string
	Latencies simulator.Latencies
	// DNSPropagation delays Route53 TXT changes reaching DNS (0: at once).
	DNSPropagation time.Duration
	Log            io.Writer
	// BinDir, if set, holds prebuilt rhoai-bootstrap and openshift-install binaries.
	BinDir string
	// Overlay is the payload path the root application syncs (the cluster file's
	// gitops.root.path): testbed.DevOverlay when empty. Tests whose subject is not the
	// hand-off pass testbed.BedOverlay, two child applications instead of two dozen.
	Overlay string
	// ClusterName names the simulated cluster of a bed of its own (Start; pooled beds
	// are all testbed's default, rhoai-local): a second cluster file, run beside
	// local.yaml's in one command, needs a cluster seeded under its own name.
	ClusterName string
}

// Rehearsal is a running bed + simulator with the binaries to drive it.
type Rehearsal struct {
	Bed     *testbed.Bed
	Sim     *simulator.Simulator
	BinDir  string
	WorkDir string
	Root    string

	cancel  context.CancelFunc
	simDone chan error
	tmp     string
	pool    *Pool // the bed is borrowed from it
	argo    *ArgoCDs
	overlay string // Options.Overlay

	closeLog func() error
}

// SimulatorLog is the simulator's log of a pooled rehearsal (WorkDir/simulator.log).
func (r *Rehearsal) SimulatorLog() string { return filepath.Join(r.WorkDir, "simulator.log") }

// Build compiles rhoai-bootstrap and the fake openshift-install into dir.
func Build(ctx context.Context, root, dir string) error {
	for pkg, name := range map[string]string{"./cmd/rhoai-bootstrap": "rhoai-bootstrap", "./e2e/cmd/openshift-install": "openshift-install"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		cpulog.Exited("go build (harness)", cmd.ProcessState)
		if err != nil {
			return fmt.Errorf("building %s: %v\n%s", pkg, err, out)
		}
	}
	return nil
}

// Start starts a bed of its own and the simulator, and builds the binaries (unless
// BinDir is given). Stop stops both.
func Start(ctx context.Context, o Options) (*Rehearsal, error) {
	root, err := testbed.ModuleRoot()
	if err != nil {
		return nil, err
	}
	r := &Rehearsal{Root: root, WorkDir: o.WorkDir, overlay: o.Overlay}
	if r.WorkDir == "" {
		if r.tmp, err = os.MkdirTemp("", "rhoai-rehearsal-"); err != nil {
			return nil, err
		}
		r.WorkDir = r.tmp
	}
	r.BinDir = o.BinDir
	var buildErr error
	var wg sync.WaitGroup
	if r.BinDir == "" {
		r.BinDir = filepath.Join(r.WorkDir, "bin")
		wg.Add(1)
		go func() { defer wg.Done(); buildErr = Build(ctx, root, r.BinDir) }()
	}
	bed, err := testbed.Start(ctx, testbed.Options{WorkDir: filepath.Join(r.WorkDir, "bed"), Log: o.Log, ClusterName: o.ClusterName})
	wg.Wait()
	if err != nil {
		return nil, err
	}
	r.Bed = bed
	if buildErr != nil {
		bed.Stop()
		return nil, buildErr
	}
	if err := r.startSimulator(o); err != nil {
		bed.Stop()
		return nil, err
	}
	return r, nil
}

// startSimulator starts a simulator of its own on r.Bed. The Argo CD it starts lives as
// long as the simulator: a rehearsal's Argo CD never sees the next rehearsal's bed, whose
// rewind (etcd put back under the API server) a running controller's caches and watches
// would not survive as a real cluster's never have to.
func (r *Rehearsal) startSimulator(o Options) error {
	r.Bed.SetDNSPropagation(o.DNSPropagation)
	var logf func(string, ...any)
	if o.Log != nil {
		logf = func(format string, args ...any) {
			fmt.Fprintf(o.Log, "%s simulator: "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
		}
	}
	opts, argo := SimulatorOptions(r.Bed, o.Latencies, logf)
	sim, err := simulator.New(r.Bed.Config(), opts)
	if err != nil {
		return err
	}
	r.Sim, r.argo = sim, argo
	simCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.simDone = make(chan error, 1)
	go func() { r.simDone <- r.Sim.Run(simCtx) }()
	return nil
}

// ArgoCDs tracks the real Argo CDs a simulator started on a bed.
type ArgoCDs struct {
	mu      sync.Mutex
	running map[string]*testbed.ArgoCD // by namespace
}

// Get returns the Argo CD running for the ArgoCD instance in namespace, or nil.
func (a *ArgoCDs) Get(namespace string) *testbed.ArgoCD {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running[namespace]
}

// SimulatorOptions wires a simulator to a bed: the simulated OLM installs each operator's
// real CRDs (testbed.CRDSetsOf), and the simulated GitOps operator starts the real Argo
// CD on the bed with the configuration it derived from the ArgoCD CR. The returned
// ArgoCDs tells which Argo CD runs.
func SimulatorOptions(bed *testbed.Bed, lat simulator.Latencies, logf func(string, ...any)) (simulator.Options, *ArgoCDs) {
	cfg := bed.Config()
	argo := &ArgoCDs{running: map[string]*testbed.ArgoCD{}}
	return simulator.Options{
		Latencies: lat,
		// The bed's API server on a loaded 2-core CI machine has taken its full 60 s request
		// timeout to create one multi-MB KServe CRD, so OLM's one-minute retry window would
		// fail a plan after a single slow attempt. catalog-operator takes the window as a
		// flag (--install-plan-retry-timeout); the bed runs it with ten minutes.
		InstallPlanRetryTimeout: 10 * time.Minute,
		InstallCRDs: func(ctx context.Context, pkg string) error {
			for _, set := range testbed.CRDSetsOf(pkg) {
				if err := testbed.InstallCRDs(ctx, cfg, set); err != nil {
					return err
				}
			}
			return nil
		},
		StartArgoCD: func(ctx context.Context, inst simulator.ArgoCDInstance) (func() error, error) {
			a, err := bed.StartArgoCD(ctx, testbed.ArgoCDOptions{Namespace: inst.Namespace, Name: inst.Name,
				PersistResourceHealth: inst.CmdParams["controller.resource.health.persist"] == "true"})
			if err != nil {
				return nil, err
			}
			argo.mu.Lock()
			argo.running[inst.Namespace] = a
			argo.mu.Unlock()
			return func() error {
				argo.mu.Lock()
				if argo.running[inst.Namespace] == a {
					delete(argo.running, inst.Namespace)
				}
				argo.mu.Unlock()
				return a.Stop()
			}, nil
		},
		// The simulated cert-manager's verdicts are cert-manager's own policy chains.
		CMJudge: &simulator.CMJudge{Binary: bed.CMJudge(), Kubeconfig: bed.Kubeconfig()},
		// cert-manager's ACME orders reach Route53 and the ACME server's DNS as the
		// bootstrap's certificates phase does.
		AWSEndpoint: bed.AWSEndpoint(),
		DNSResolver: bed.DNSResolver(),
		Log:         logf,
	}, argo
}

// ArgoCD is the real Argo CD running for the default instance (openshift-gitops), or nil.
func (r *Rehearsal) ArgoCD() *testbed.ArgoCD {
	if r.argo == nil {
		return nil
	}
	return r.argo.Get("openshift-gitops")
}

// Stop stops the simulator, then gives the bed back to its pool (rewound) or, if it is
// its own, stops it.
func (r *Rehearsal) Stop() error {
	if r.cancel != nil {
		r.cancel()
		<-r.simDone
		r.cancel = nil
	}
	if r.closeLog != nil {
		_ = r.closeLog()
		r.closeLog = nil
	}
	var err error
	switch {
	case r.pool != nil:
		err = r.pool.put(r.Bed)
	case r.Bed != nil:
		err = r.Bed.Stop()
	}
	if r.tmp != "" {
		os.RemoveAll(r.tmp)
	}
	return err
}

// Env is the environment for rhoai-bootstrap and the fake installer.
func (r *Rehearsal) Env(extra ...string) []string {
	env := r.Bed.CommandEnv(os.Environ())
	env = append(env,
		"RHOAI_BED_OPENSHIFT_INSTALL="+filepath.Join(r.BinDir, "openshift-install"),
		"FAKE_OPENSHIFT_INSTALL_KUBECONFIG="+r.Bed.Kubeconfig(),
		"FAKE_OPENSHIFT_INSTALL_REGISTRY="+r.Registry(),
		"FAKE_OPENSHIFT_INSTALL_STAGE_DELAY=100ms",
		"GOOGLE_CLIENT_SECRET=rehearsal-client-secret-value",
		"CI=true",
	)
	if r.overlay != "" {
		env = append(env, "RHOAI_BED_GITOPS_PATH="+r.overlay) // the last value counts
	}
	return append(env, extra...)
}

// Registry is the fake installer's "AWS account" folder.
func (r *Rehearsal) Registry() string { return filepath.Join(r.WorkDir, "fake-aws") }

// Config is the rehearsal's cluster file.
func (r *Rehearsal) Config() string {
	return filepath.Join(r.Root, "configs", "examples", "local.yaml")
}

// TimeoutFactor scales rhoai-bootstrap's wait timeouts in rehearsals on the bed's small
// overlay (testbed.BedOverlay). The simulator's latencies are ~0.3 s, so every wait that
// ends well ends in seconds whatever the factor; it only bounds how long a wait may take
// on a loaded machine (CI runs several beds on 2 cores) before it counts as stuck: 0.2
// gives the hand-off 6 minutes and the namespace and finalizer waits 60 s. Tests about
// timeouts themselves pass a smaller one.
const TimeoutFactor = "0.2"

// HandOffTimeoutFactor is TimeoutFactor for rehearsals of the full dev overlay, whose
// hand-off the real Argo CD runs through the payload's waves one after the other: 6 to 7
// minutes measured on the 2-core machine at load 11–15 (other builds and beds running),
// and over 10 minutes at load ~23 (a full make test beside another engineer's tests), so
// 18 minutes before the root-app phase calls it stuck. An upper bound only: a hand-off
// that converges ends the wait at once.
const HandOffTimeoutFactor = "0.6"

// Flags are the flags every rehearsal run uses: a state dir, short timeouts, fast polls.
func (r *Rehearsal) Flags(stateDir string) []string {
	factor := TimeoutFactor
	if r.overlay == "" || r.overlay == testbed.DevOverlay {
		factor = HandOffTimeoutFactor
	}
	return []string{"--state-dir", stateDir, "--timeout-factor", factor, "--poll-interval", "200ms", "--non-interactive"}
}

// Command builds a rhoai-bootstrap command.
func (r *Rehearsal) Command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(r.BinDir, "rhoai-bootstrap"), args...)
	cmd.Env = env
	cmd.Dir = r.Root
	return cmd
}

// Event is the part of an --output json line the tests read.
type Event struct {
	Type    string `json:"type"`
	Cluster string `json:"cluster"`
	Phase   string `json:"phase"`
	Message string `json:"message"`
	Outcome string `json:"outcome"`
	Error   string `json:"error"`
	Summary *struct {
		Outcome  string            `json:"outcome"`
		Phases   map[string]string `json:"phases"`
		Mutating int64             `json:"mutatingRequests"`
		Reads    int64             `json:"readRequests"`
		Watches  int64             `json:"watchRequests"`
		Failed   []string          `json:"failed"`
	} `json:"summary"`
}

// Result is a finished run.
type Result struct {
	Code     int
	Events   []Event
	Stderr   string
	Duration time.Duration
}

// Summary returns the run-finished event's summary, if any.
func (res Result) Summary() *Event {
	for i := len(res.Events) - 1; i >= 0; i-- {
		if res.Events[i].Type == "run-finished" {
			return &res.Events[i]
		}
	}
	return nil
}

// Run runs rhoai-bootstrap with -o json and collects its events.
func (r *Rehearsal) Run(ctx context.Context, env []string, args ...string) Result {
	cmd := r.Command(ctx, env, append(args, "-o", "json")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, _ := cmd.StdoutPipe()
	start := time.Now()
	res := Result{Code: -1}
	if err := cmd.Start(); err != nil {
		res.Stderr = err.Error()
		return res
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1024*1024), 4*1024*1024)
	for sc.Scan() {
		var e Event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			res.Events = append(res.Events, e)
		}
	}
	_ = cmd.Wait()
	cpulog.Exited("rhoai-bootstrap (+ openshift-install)", cmd.ProcessState)
	res.Code = cmd.ProcessState.ExitCode()
	res.Duration = time.Since(start)
	res.Stderr = stderr.String()
	return res
}

// RegistryClusters lists the fake installer's clusters.
func (r *Rehearsal) RegistryClusters() ([]*fakeinstall.Cluster, error) {
	return fakeinstall.Registry{Dir: r.Registry()}.Clusters()
}
