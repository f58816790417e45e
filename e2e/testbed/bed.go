// Package testbed starts and stops the local test bed on which rhoai-bootstrap
// is proven without AWS or OpenShift: a real kube-apiserver + etcd (envtest)
// serving OpenShift's, OLM's and the operators' CRDs with the singletons of a
// fresh OpenShift cluster; moto for AWS behind a proxy that bridges Route53
// TXT records into DNS and fakes Service Quotas; Pebble as the ACME CA, with
// pebble-challtestsrv as its DNS.
//
// One call starts it all:
//
//	bed, err := testbed.Start(ctx, testbed.Options{})
//	defer bed.Stop()
//	cmd.Env = bed.CommandEnv(os.Environ())
//
// Every process the bed starts is a child that the kernel kills when the
// bed's process dies, even by SIGKILL (Linux), and Stop ends them by PID.
package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options configure a bed. The zero value is a complete default bed.
type Options struct {
	// ClusterName and BaseDomain name the simulated cluster; its API is
	// api.<ClusterName>.<BaseDomain> and its apps domain
	// apps.<ClusterName>.<BaseDomain>. Defaults: rhoai-local, bed.example.com.
	ClusterName string
	BaseDomain  string
	// Region is the AWS region of the cluster and of AWS_REGION
	// (default us-east-1).
	Region string
	// OpenShiftVersion is the ClusterVersion's desired version (default 4.20.8).
	OpenShiftVersion string
	// WorkDir holds logs, the kubeconfig, the audit log and etcd's data.
	// Default: a new temporary folder. Stop removes it only if the bed
	// created it (a folder that already existed is left alone).
	WorkDir string
	// KeepWorkDir leaves the work dir in place after Stop (for post-mortems).
	KeepWorkDir bool
	// CRDSets are installed at start; nil means DefaultCRDSets. The OpenShift
	// singletons are seeded only when CRDSetOpenShift is among them, so an
	// empty non-nil list gives a bare API server (quick to start).
	CRDSets []CRDSet
	// NoKube starts only AWS (moto behind the proxy) and ACME: for tests of
	// what never talks to Kubernetes, such as the S3 state backend.
	NoKube bool
	// ShortLivedValidity, when set, makes Pebble offer a "shortlived" ACME
	// profile with this validity besides "default" (90 days); Let's
	// Encrypt's is 160h. Off by default because Pebble gives orders that
	// name no profile a random one of those it has, and most tests want
	// the 90 days of Let's Encrypt's default.
	ShortLivedValidity time.Duration
	// MotoServer is the moto_server executable (default: from PATH, else
	// /root/.pyenv/shims/moto_server).
	MotoServer string
	// Log receives one line per started component with its start-up time;
	// nil discards them.
	Log io.Writer
}

func (o *Options) defaults() {
	if o.ClusterName == "" {
		o.ClusterName = "rhoai-local"
	}
	if o.BaseDomain == "" {
		o.BaseDomain = "bed.example.com"
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.OpenShiftVersion == "" {
		o.OpenShiftVersion = "4.20.8"
	}
	if o.CRDSets == nil {
		o.CRDSets = DefaultCRDSets
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Timing is how long one component took to start.
type Timing struct {
	Component string
	Took      time.Duration
}

// Bed is a running test bed. Its methods are safe for concurrent use.
type Bed struct {
	opts        Options
	paths       Paths
	workDir     string
	ownsWorkDir bool // created by the bed, so Stop may remove it

	mu      sync.Mutex
	procs   []*proc
	closers []func() error
	timings []Timing

	kube       *kube
	config     *rest.Config
	kubeconfig string
	auditLog   string

	motoURL      *url.URL
	proxy        *awsProxy
	hostedZoneID string
	acme         *acme
	git          *gitServer
	argocds      []*ArgoCD // running Argo CDs (StartArgoCD), stopped with the bed at the latest
	kcm          *proc     // kube-controller-manager, restarted around every rewind

	infraID           string
	kubeadminPassword string

	checkpoint *checkpoint

	stopOnce sync.Once
	stopErr  error
}

// Start builds the binaries if needed and starts the whole bed: control
// plane with CRDs and seeded singletons, moto with the Route53 zone and the
// AWS proxy, challtestsrv and Pebble. Independent parts start concurrently.
// On error everything already started is stopped.
func Start(ctx context.Context, opts Options) (*Bed, error) {
	opts.defaults()
	begin := time.Now()
	paths, err := EnsureBinaries(ctx)
	if err != nil {
		return nil, err
	}
	b := &Bed{opts: opts, paths: paths}
	b.record("binaries", time.Since(begin))

	if err := b.makeWorkDir(); err != nil {
		return nil, err
	}

	err = b.startAll(ctx)
	if err == nil && !opts.NoKube {
		err = b.timed("checkpoint", func() error { return b.takeCheckpoint(ctx) })
	}
	if err == nil && !opts.NoKube {
		// After the checkpoint: a rewind stops it, puts etcd back and starts a new one.
		err = b.timed("kube-controller-manager", func() error { return b.startControllerManager(ctx) })
	}
	if err != nil {
		if stopErr := b.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stopping after failed start: %w", stopErr))
		}
		return nil, err
	}
	b.record("total", time.Since(begin))
	return b, nil
}

// makeWorkDir creates the work dir. Only a folder the bed created is
// removed by Stop: a WorkDir that already existed is never deleted.
func (b *Bed) makeWorkDir() error {
	if b.opts.WorkDir == "" {
		dir, err := os.MkdirTemp("", "rhoai-testbed-")
		if err != nil {
			return fmt.Errorf("creating the work dir: %w", err)
		}
		b.workDir, b.ownsWorkDir = dir, true
		return nil
	}
	dir, err := filepath.Abs(b.opts.WorkDir)
	if err != nil {
		return fmt.Errorf("resolving the work dir: %w", err)
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		b.ownsWorkDir = true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the work dir: %w", err)
	}
	b.workDir = dir
	return nil
}

func (b *Bed) startAll(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if b.opts.NoKube {
			return nil
		}
		if err := b.startKubeWithCRDs(gctx); err != nil {
			return err
		}
		// The seeded singletons are OpenShift and OLM kinds.
		if !slices.Contains(b.opts.CRDSets, CRDSetOpenShift) {
			return nil
		}
		return b.timed("seed", func() error { return b.seed(gctx) })
	})
	// AWS and ACME start while the control plane does; the proxy needs both
	// moto and challtestsrv.
	g.Go(func() error {
		if b.opts.NoKube {
			return nil // nothing would sync from it
		}
		return b.timed("git", func() error {
			if err := b.startGit(); err != nil {
				return err
			}
			root, err := ModuleRoot()
			if err != nil {
				return err
			}
			_, err = b.PublishPayload(gctx, root)
			return err
		})
	})
	g.Go(func() error {
		side, sctx := errgroup.WithContext(gctx)
		side.Go(func() error { return b.timed("moto", func() error { return b.startMoto(sctx) }) })
		side.Go(func() error { return b.timed("pebble+challtestsrv", func() error { return b.startACME(sctx) }) })
		if err := side.Wait(); err != nil {
			return err
		}
		return b.timed("aws-proxy+zone", func() error {
			p, err := newAWSProxy(b.motoURL, b.acme.challtestURL, b.opts.Region)
			if err != nil {
				return err
			}
			b.proxy = p
			return b.createHostedZone(gctx)
		})
	})
	return g.Wait()
}

// timed runs f and records how long it took.
func (b *Bed) timed(component string, f func() error) error {
	start := time.Now()
	if err := f(); err != nil {
		return fmt.Errorf("%s: %w", component, err)
	}
	b.record(component, time.Since(start))
	return nil
}

func (b *Bed) record(component string, took time.Duration) {
	b.mu.Lock()
	b.timings = append(b.timings, Timing{Component: component, Took: took})
	b.mu.Unlock()
	fmt.Fprintf(b.opts.Log, "testbed: %-22s %6.2fs\n", component, took.Seconds())
}

// start starts a child process and registers it for Stop.
func (b *Bed) start(name string, env []string, bin string, args ...string) (*proc, error) {
	p, err := startProcess(b.workDir, name, env, bin, args...)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	return p, nil
}

// childEnv is the environment of the bed's own children: the parent's,
// without anything that would point them at real AWS, with GoRuntimeEnv.
func (b *Bed) childEnv() []string {
	return append(withoutAWS(os.Environ()), GoRuntimeEnv...)
}

// GoRuntimeEnv tunes the Go runtime of the bed's Go children (kube-apiserver, etcd,
// kube-controller-manager, Argo CD, Pebble) for a test machine where CPU, not memory, is
// scarce: make test runs on 2 cores, and a bed's kube-apiserver holding the payload's
// multi-megabyte CRD schemas (750–850 MB live heap) spent a quarter of its CPU in the
// garbage collector at the default GOGC=100 (pprof during the dev overlay's hand-off:
// gcBgMarkWorker 16 %, gcAssistAlloc 8 %). With GOGC=400 the same profile shows 11 % and
// 3 %; the API server's resident memory grows from about 2 GB to 3 GB, and GOMEMLIMIT
// caps it (the collector runs earlier as a process nears it), so three beds stay well
// inside the machine's 24 GB. Neither setting changes what any process does, only when
// it collects garbage (https://go.dev/doc/gc-guide).
var GoRuntimeEnv = []string{"GOGC=400", "GOMEMLIMIT=3GiB"}

// Stop stops every process the bed started (SIGTERM, SIGKILL after a grace
// period) and removes the work dir if the bed created it, unless
// Options.KeepWorkDir. It is safe to call more than once.
func (b *Bed) Stop() error {
	b.stopOnce.Do(func() {
		var errs []error
		if b.proxy != nil {
			ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
			errs = append(errs, b.proxy.close(ctx))
			cancel()
		}
		b.mu.Lock()
		procs := slices.Clone(b.procs)
		argocds := slices.Clone(b.argocds)
		b.mu.Unlock()
		for _, a := range argocds {
			errs = append(errs, a.Stop())
		}
		errs = append(errs, b.stopControllerManager())
		var wg sync.WaitGroup
		errCh := make(chan error, len(procs))
		for _, p := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errCh <- p.stop()
			}()
		}
		if b.kube != nil {
			errs = append(errs, b.kube.stop())
		}
		wg.Wait()
		close(errCh)
		for err := range errCh {
			errs = append(errs, err)
		}
		for _, c := range b.closers {
			errs = append(errs, c())
		}
		if b.ownsWorkDir && !b.opts.KeepWorkDir {
			errs = append(errs, os.RemoveAll(b.workDir))
		}
		b.stopErr = errors.Join(errs...)
	})
	return b.stopErr
}

// PIDs are the process IDs of everything the bed started: moto_server,
// pebble-challtestsrv, pebble, envtest's etcd and kube-apiserver,
// kube-controller-manager and the Argo CDs still running. After
// Stop none of them is alive.
func (b *Bed) PIDs() []int {
	b.mu.Lock()
	var pids []int
	for _, p := range b.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	for _, a := range b.argocds {
		pids = append(pids, a.PIDs()...)
	}
	if b.kcm != nil {
		pids = append(pids, b.kcm.cmd.Process.Pid)
	}
	b.mu.Unlock()
	if b.kube != nil {
		pids = append(pids, b.kube.pids()...)
	}
	sort.Ints(pids)
	return slices.Compact(pids)
}

// Config is an admin *rest.Config for the bed's API server (user "admin",
// group system:masters), for the cluster simulator and tests.
func (b *Bed) Config() *rest.Config { return rest.CopyConfig(b.config) }

// UserConfig provisions a client certificate for a user with the given
// groups and returns a *rest.Config that authenticates as it, so each actor
// (bootstrap, simulator, test) shows up under its own name in the audit log.
func (b *Bed) UserConfig(name string, groups ...string) (*rest.Config, error) {
	u, err := b.kube.env.AddUser(envtest.User{Name: name, Groups: groups}, &rest.Config{})
	if err != nil {
		return nil, fmt.Errorf("provisioning user %s: %w", name, err)
	}
	return u.Config(), nil
}

// Kubeconfig is the path of the admin kubeconfig (user AdminUser).
func (b *Bed) Kubeconfig() string { return b.kubeconfig }

// CMJudge is the path of the cmjudge binary (cert-manager's own certificate policies).
func (b *Bed) CMJudge() string { return b.paths.CMJudge }

// AuditLogPath is the API server's audit log: one JSON event per line for
// each create/update/patch/delete, written when the response completes.
func (b *Bed) AuditLogPath() string { return b.auditLog }

// WorkDir is the bed's work folder (logs, kubeconfig, audit log, etcd data).
func (b *Bed) WorkDir() string { return b.workDir }

// ClusterName and BaseDomain are the simulated cluster's names.
func (b *Bed) ClusterName() string { return b.opts.ClusterName }

// BaseDomain is the simulated cluster's base domain (the hosted zone's name).
func (b *Bed) BaseDomain() string { return b.opts.BaseDomain }

// InfraID is the Infrastructure's status.infrastructureName, as the
// installer would have generated it (<cluster>-xxxxx).
func (b *Bed) InfraID() string { return b.infraID }

// KubeadminPassword is the password whose bcrypt hash the kube-system/kubeadmin
// Secret holds.
func (b *Bed) KubeadminPassword() string { return b.kubeadminPassword }

// Timings are the start-up times per component, in the order they finished.
func (b *Bed) Timings() []Timing {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.timings)
}

// Env is what a process needs to use the bed: KUBECONFIG, the AWS variables
// that route every SDK call through the bed's proxy with fake credentials,
// LEGO_CA_CERTIFICATES for Pebble's HTTPS, and RHOAI_BED_* facts for tests.
// AWS_PROFILE and other AWS variables must not be inherited: use CommandEnv.
func (b *Bed) Env() []string {
	return []string{
		"KUBECONFIG=" + b.kubeconfig,
		"AWS_ENDPOINT_URL=" + b.proxy.URL(),
		"AWS_ACCESS_KEY_ID=" + awsAccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + awsSecretAccessKey,
		"AWS_REGION=" + b.opts.Region,
		"AWS_DEFAULT_REGION=" + b.opts.Region,
		"AWS_EC2_METADATA_DISABLED=true",
		// Empty files, so a developer's ~/.aws cannot leak into runs.
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"LEGO_CA_CERTIFICATES=" + b.acme.caFile,
		"RHOAI_BED_WORK_DIR=" + b.workDir,
		"RHOAI_BED_CLUSTER_NAME=" + b.opts.ClusterName,
		"RHOAI_BED_BASE_DOMAIN=" + b.opts.BaseDomain,
		"RHOAI_BED_INFRA_ID=" + b.infraID,
		"RHOAI_BED_HOSTED_ZONE_ID=" + b.HostedZoneID(),
		"RHOAI_BED_ACME_DIRECTORY=" + b.acme.directoryURL,
		"RHOAI_BED_ACME_CA_FILE=" + b.acme.caFile,
		"RHOAI_BED_ACME_MANAGEMENT=" + b.acme.managementURL,
		"RHOAI_BED_DNS_RESOLVER=" + b.acme.dnsAddr,
		"RHOAI_BED_CHALLTESTSRV=" + b.acme.challtestURL,
		"RHOAI_BED_MOTO=" + b.motoURL.String(),
		"RHOAI_BED_AUDIT_LOG=" + b.auditLog,
		"RHOAI_BED_GIT_URL=" + b.GitURL(),
		// The root application's path in the bed's repository (configs/examples/local.yaml).
		"RHOAI_BED_GITOPS_PATH=" + DevOverlay,
	}
}

// CommandEnv returns base (typically os.Environ()) without KUBECONFIG and
// AWS_* variables, plus Env(): the environment for running the bootstrap
// against the bed.
func (b *Bed) CommandEnv(base []string) []string {
	var out []string
	for _, kv := range withoutAWS(base) {
		if !strings.HasPrefix(kv, "KUBECONFIG=") {
			out = append(out, kv)
		}
	}
	return append(out, b.Env()...)
}

// withoutAWS drops AWS_* variables (AWS_PROFILE, AWS_SESSION_TOKEN, ...).
func withoutAWS(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return out
}

// WriteEnvFile writes Env() as shell `export K=V` lines (values quoted),
// preceded by an unset of the AWS variables that would override them, for
// `source`-ing in a shell.
func (b *Bed) WriteEnvFile(path string) error {
	var sb strings.Builder
	sb.WriteString("# rhoai-bootstrap local test bed; source this file.\n")
	sb.WriteString("unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_ROLE_ARN AWS_WEB_IDENTITY_TOKEN_FILE\n")
	for _, kv := range b.Env() {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(&sb, "export %s=%s\n", k, shellQuote(v))
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		return fmt.Errorf("writing env file %s: %w", path, err)
	}
	return nil
}

// shellQuote single-quotes s for POSIX shells.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
