// Package cluster is the cluster phase: `openshift-install create cluster`, resumed
// correctly after any failure or kill (see Decide), or, for platform.existing, a check that
// the given kubeconfig reaches an OpenShift cluster.
package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/cluster/clusterstate"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/installconfig"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// Name of the phase.
const Name = clusterstate.Phase

// Record is what the phase keeps in the state.
type Record = clusterstate.Record

// save changes the phase's record and saves the state at once.
func save(ctx context.Context, s *installer.Scope, change func(*Record)) error {
	return installer.Save(ctx, s, func(r *Record) error { change(r); return nil })
}

// MetadataFile is our copy of openshift-install's metadata.json: the teardown handle.
const MetadataFile = "metadata.json"

// maxRecreations bounds automatic destroy-and-recreate cycles per cluster.
const maxRecreations = 2

// Metadata is the part of metadata.json we read.
type Metadata struct {
	ClusterName string `json:"clusterName"`
	ClusterID   string `json:"clusterID"`
	InfraID     string `json:"infraID"`
}

type phase struct{ env *phases.Env }

// New returns the cluster phase.
func New(env *phases.Env) installer.Phase { return &phase{env: env} }

func (p *phase) Name() string { return Name }

// DependsOn: `create cluster` consumes the manifests install-config writes (without them
// it would generate its own, with no GPU MachineSets); an existing cluster still needs
// preflight's checks of the file's secrets and AWS before anything touches it.
func (p *phase) DependsOn() []string {
	if p.env.Cluster.Installs() {
		return []string{installconfig.Name}
	}
	return []string{"preflight"}
}

// probe asks the API for ClusterVersion "version": reachable at all, and Available.
func probe(ctx context.Context, cfg *rest.Config) (reachable, available bool, version string) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 10 * time.Second
	c, err := kube.Connect(cfg, kube.Options{ReadOnly: true})
	if err != nil {
		return false, false, ""
	}
	cv, err := c.OpenShift.Config.ClusterVersions().Get(ctx, "version", metav1.GetOptions{})
	if err != nil {
		// Not found (no ClusterVersion, or its kind not served) is an answer from the API.
		return apierrors.IsNotFound(err), false, ""
	}
	// ClusterVersion reports Available like a ClusterOperator (openshift/api
	// config/v1/types_cluster_version.go, ClusterVersionStatus.Conditions).
	for _, c := range cv.Status.Conditions {
		if c.Type == configv1.OperatorAvailable {
			available = c.Status == configv1.ConditionTrue
		}
	}
	return true, available, cv.Status.Desired.Version
}

func (p *phase) Check(ctx context.Context, s *installer.Scope) (installer.Status, error) {
	if ex := p.env.Cluster.Spec.Platform.Existing; ex != nil {
		cfg, err := p.env.RESTConfig(ctx, s)
		if err != nil {
			return installer.Status{}, err
		}
		reachable, available, version := probe(ctx, cfg)
		switch {
		case !reachable:
			return installer.Status{}, fmt.Errorf("cannot reach the cluster in %s at %s: check the kubeconfig, its context and your network", ex.Kubeconfig, cfg.Host)
		case !available:
			return installer.Status{}, fmt.Errorf("the cluster at %s is not an available OpenShift cluster (ClusterVersion version is missing or not Available)", cfg.Host)
		}
		s.Publish("console", p.env.Cluster.ConsoleURL())
		s.Publish("kubeconfig", ex.Kubeconfig)
		return installer.Done("existing cluster, OpenShift " + version), nil
	}
	rec, err := installer.Load[Record](s)
	if err != nil {
		return installer.Status{}, err
	}
	if rec.Installed {
		cfg, err := p.env.RESTConfig(ctx, s)
		if err != nil {
			return installer.Status{}, err
		}
		if reachable, available, version := probe(ctx, cfg); reachable && available {
			p.publish(s)
			reason := "installed, OpenShift " + version
			if d, ok := lastAttempt(rec); ok {
				reason += "; " + describeAttempt(d)
			}
			return installer.Done(reason), nil
		}
		return installer.Pending("installed, but the API does not answer"), nil
	}
	act := Decide(p.progressFrom(rec), p.metadataExists(ctx, s), false)
	reason := string(act)
	if d, ok := lastAttempt(rec); ok {
		reason += "; " + describeAttempt(d)
	}
	return installer.Pending(reason, installer.Change{Action: installer.Run, Target: "openshift-install " + describe(act)}), nil
}

func describe(a Action) string {
	switch a {
	case ActCreate:
		return "create cluster"
	case ActWaitBootstrap:
		return "wait-for bootstrap-complete, destroy bootstrap, then wait-for install-complete"
	case ActDestroyBootstrap:
		return "destroy bootstrap, then wait-for install-complete"
	case ActWaitInstall:
		return "wait-for install-complete"
	case ActRecreate:
		return "destroy cluster, then create cluster with a new infra ID"
	}
	return string(a)
}

func (p *phase) publish(s *installer.Scope) {
	s.Publish("console", p.env.Cluster.ConsoleURL())
	s.Publish("kubeconfig", filepath.Join(p.env.InstallerDir(), "auth", "kubeconfig"))
	s.Publish("kubeadmin-password", filepath.Join(p.env.InstallerDir(), "auth", "kubeadmin-password"))
}

// progressOf is the installation's progress; before the first create, none with no exit.
func progressOf(r Record) Progress {
	if r.Progress == nil {
		return Progress{LastExit: -1}
	}
	return *r.Progress
}

func (p *phase) progress(s *installer.Scope) (Progress, error) {
	rec, err := installer.Load[Record](s)
	return p.progressFrom(rec), err
}

// progressFrom is the recorded progress, completed from the installer's own log: a kill
// can land after the installer removed the bootstrap and before we recorded it. The
// installer appends everything it logs to .openshift_install.log in its asset folder (one
// folder per infra ID), so that file still says so, and destroy bootstrap, which fails
// when run again, is not needed.
func (p *phase) progressFrom(rec Record) Progress {
	prog := progressOf(rec)
	if !prog.BootstrapDestroyed && prog.CreateStarted && p.installerLogSays(bootstrapDestroyedLine) {
		prog.BootstrapDestroyed = true
	}
	return prog
}

// installerLogSays reports whether the installer's own log in its asset folder holds line.
func (p *phase) installerLogSays(line string) bool {
	b, err := os.ReadFile(filepath.Join(p.env.InstallerDir(), installerLog))
	return err == nil && bytes.Contains(b, []byte(line))
}

// installerLog is the file openshift-install appends every run's log to, in --dir
// (cmd/openshift-install/command/log.go SetupFileHook).
const installerLog = ".openshift_install.log"

func (p *phase) metadataExists(ctx context.Context, s *installer.Scope) bool {
	if _, err := os.Stat(filepath.Join(p.env.InstallerDir(), MetadataFile)); err == nil {
		return true
	}
	_, err := s.GetFile(ctx, MetadataFile)
	return err == nil
}

func (p *phase) Apply(ctx context.Context, s *installer.Scope) error {
	if !p.env.Cluster.Installs() {
		return nil // Check failed already with the reason.
	}
	rec, err := installer.Load[Record](s)
	if err != nil {
		return err
	}
	if rec.Installed {
		cfg, err := p.env.RESTConfig(ctx, s)
		if err != nil {
			return err
		}
		return fmt.Errorf("the cluster was installed, but its API at %s does not answer: check your network; the bootstrap never reinstalls an installed cluster", cfg.Host)
	}
	if err := p.waitForOrphan(ctx, s); err != nil {
		return err
	}
	// Each pass runs one installer command and decides again from what it recorded; a
	// full resume takes at most wait-bootstrap → destroy-bootstrap → wait-install →
	// destroy-bootstrap (a preserved bootstrap) per cluster, times the recreations.
	for pass := 0; pass < 8*(maxRecreations+1); pass++ {
		prog, err := p.progress(s)
		if err != nil {
			return err
		}
		available := false
		if prog.CreateStarted {
			if cfg := p.installerKubeconfig(); cfg != nil {
				_, available, _ = probe(ctx, cfg)
			}
		}
		act := Decide(prog, p.metadataExists(ctx, s), available)
		s.Debugf("resume decision: %s (stage %q, last exit %d, bootstrap destroyed %v)", act, prog.Stage, prog.LastExit, prog.BootstrapDestroyed)
		switch act {
		case ActDone:
			return p.finish(ctx, s)
		case ActFailConfig:
			return fmt.Errorf("openshift-install rejected the install-config (exit 3): fix the cluster file; see %s", filepath.Join(p.env.InstallerDir(), installerLog))
		case ActCreate:
			if err := save(ctx, s, func(r *Record) { r.Progress = &Progress{CreateStarted: true, LastExit: -1} }); err != nil {
				return err
			}
			err = p.run(ctx, s, "create", "cluster")
		case ActWaitBootstrap:
			err = p.run(ctx, s, "wait-for", "bootstrap-complete")
		case ActDestroyBootstrap:
			s.Progress("removing the bootstrap resources (openshift-install destroy bootstrap): only create cluster removes them by itself")
			err = p.run(ctx, s, "destroy", "bootstrap")
			if err != nil && installconfig.ExitCode(err) != installconfig.ExitInterrupted && ctx.Err() == nil {
				id := "<infraID>"
				if rec, _ := installer.Load[Record](s); rec.InfraID != "" {
					id = rec.InfraID
				}
				return fmt.Errorf("%w; check in the AWS console that the instance %[2]s-bootstrap and the S3 bucket openshift-bootstrap-data-%[2]s are gone "+
					"(delete them if not), then run the same command again", err, id)
			}
		case ActWaitInstall:
			err = p.run(ctx, s, "wait-for", "install-complete")
		case ActRecreate:
			if err := p.recreate(ctx, s); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			code := installconfig.ExitCode(err)
			if ctx.Err() != nil || code == installconfig.ExitInterrupted {
				return fmt.Errorf("%w: %v", installer.ErrInterrupted, err)
			}
			if code == installconfig.ExitInfrastructure || code == installconfig.ExitBootstrap {
				// Recreate right away (bounded by maxRecreations).
				s.Progress("%v: destroying what was built and starting over", err)
				continue
			}
			if act == ActWaitBootstrap {
				// The real wait has no exit code of its own (exit 1): bootstrapping did
				// not complete in its 45 minutes, or the API could not be reached.
				return fmt.Errorf("%w; bootstrapping did not complete: read %s (`openshift-install gather bootstrap --dir %s` collects the bootstrap machine's logs), "+
					"then run the same command again to wait again, or `rhoai-bootstrap destroy --yes` and install again to start over",
					err, filepath.Join(p.env.InstallerDir(), installerLog), p.env.InstallerDir())
			}
			return fmt.Errorf("%w; run the same command again to resume (it waits for the installation instead of creating another cluster)", err)
		}
		if act == ActCreate || act == ActWaitInstall {
			if prog, err := p.progress(s); err == nil && prog.BootstrapDestroyed {
				return p.finish(ctx, s)
			}
			// The installer finished without removing the bootstrap resources (e.g.
			// OPENSHIFT_INSTALL_PRESERVE_BOOTSTRAP was set): the next pass removes them.
		}
	}
	return fmt.Errorf("the installation did not settle after %d installer runs; read %s and run the same command again",
		8*(maxRecreations+1), filepath.Join(p.env.InstallerDir(), installerLog))
}

// run runs the installer and records its stage, PID and exit code as it goes. A record
// that cannot be saved (the state store fails, or refuses because this run's lock was
// broken) stops the installer: what it does next would be unknown to the next run.
func (p *phase) run(ctx context.Context, s *installer.Scope, args ...string) error {
	dir := p.env.InstallerDir()
	prog, err := p.progress(s)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	var unsaved error // the first write that failed
	failed := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if unsaved == nil {
			unsaved = err
			stop() // SIGINT to the installer (installconfig.Run)
		}
	}
	onStart := func(pid int) {
		if err := save(ctx, s, func(r *Record) { r.InstallerPID = pid }); err != nil {
			failed(fmt.Errorf("recording the installer's pid: %w", err))
		}
	}
	onLine := func(l installconfig.Line) {
		if st := stageOf(l.Msg); st != "" && stageRank[st] > stageRank[prog.Stage] {
			prog.Stage = st
			if err := save(ctx, s, func(r *Record) { r.Progress = &prog }); err != nil {
				failed(fmt.Errorf("recording the installation's stage %q: %w", st, err))
			}
		}
		if err := p.copyMetadata(ctx, s); err != nil {
			failed(err)
		}
		if !prog.BootstrapDestroyed && strings.Contains(l.Msg, bootstrapDestroyedLine) {
			prog.BootstrapDestroyed = true
			if err := save(ctx, s, func(r *Record) { r.Progress = &prog }); err != nil {
				failed(fmt.Errorf("recording that the bootstrap resources were destroyed: %w", err))
			}
		}
	}
	err = installconfig.Run(runCtx, s, p.env.Cluster.Spec.OpenShift.Installer, dir, onStart, onLine, args...)
	mu.Lock()
	stopped := unsaved
	mu.Unlock()
	if stopped != nil {
		err = fmt.Errorf("%w; openshift-install was stopped", stopped)
	} else if merr := p.copyMetadata(ctx, s); merr != nil {
		err = errors.Join(err, merr)
	}
	prog.LastExit = installconfig.ExitCode(err)
	if err != nil && prog.LastExit == 0 {
		prog.LastExit = -1
	}
	if err == nil && strings.Join(args, " ") == "destroy bootstrap" {
		prog.BootstrapDestroyed = true
	}
	if serr := save(ctx, s, func(r *Record) { r.Progress, r.InstallerPID = &prog, 0 }); serr != nil {
		// Not wrapping err: its exit code must not drive a recreate the state cannot record.
		if err == nil {
			return fmt.Errorf("recording the installer's exit: %w", serr)
		}
		return fmt.Errorf("%v; recording the installer's exit: %w", err, serr)
	}
	return err
}

// copyMetadata copies metadata.json into the state on first sight: from then on the
// cluster can be destroyed from the state alone, even from another machine.
func (p *phase) copyMetadata(ctx context.Context, s *installer.Scope) error {
	rec, err := installer.Load[Record](s)
	if err != nil || rec.InfraID != "" {
		return err
	}
	b, err := os.ReadFile(filepath.Join(p.env.InstallerDir(), MetadataFile))
	if err != nil {
		return nil // not written yet
	}
	var m Metadata
	if json.Unmarshal(b, &m) != nil || m.InfraID == "" {
		return nil // still being written
	}
	if err := s.PutFile(ctx, MetadataFile, b); err != nil {
		return fmt.Errorf("keeping a copy of metadata.json with the state: %w", err)
	}
	if err := save(ctx, s, func(r *Record) { r.ClusterID, r.InfraID = m.ClusterID, m.InfraID }); err != nil {
		return fmt.Errorf("recording infra ID %s: %w", m.InfraID, err)
	}
	s.Progress("infrastructure ID %s (metadata.json kept with the state)", m.InfraID)
	return nil
}

func (p *phase) installerKubeconfig() *rest.Config {
	b, err := os.ReadFile(filepath.Join(p.env.InstallerDir(), "auth", "kubeconfig"))
	if err != nil {
		return nil
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(b)
	if err != nil {
		return nil
	}
	return cfg
}

func (p *phase) finish(ctx context.Context, s *installer.Scope) error {
	b, err := os.ReadFile(filepath.Join(p.env.InstallerDir(), "auth", "kubeconfig"))
	if err != nil {
		return fmt.Errorf("the installation finished but auth/kubeconfig is missing: %w", err)
	}
	if err := s.PutFile(ctx, phases.KubeconfigFile, b); err != nil {
		return err
	}
	p.env.ResetKube()
	p.publish(s)
	return save(ctx, s, func(r *Record) { r.Installed = true })
}

// recreate destroys a half-built cluster (when metadata.json says one exists) and
// generates fresh manifests, so the next create gets a new infra ID.
func (p *phase) recreate(ctx context.Context, s *installer.Scope) error {
	rec, err := installer.Load[Record](s)
	if err != nil {
		return err
	}
	n := rec.Recreations
	if n >= maxRecreations {
		read := filepath.Join(p.env.InstallerDir(), installerLog)
		if bundles, _ := filepath.Glob(filepath.Join(p.env.InstallerDir(), logBundleGlob)); len(bundles) > 0 {
			read += " and the bootstrap log bundle " + bundles[len(bundles)-1]
		}
		return fmt.Errorf("the installation failed %d times; read %s, then run `rhoai-bootstrap destroy --yes` and install again", n+1, read)
	}
	prog := p.progressFrom(rec)
	if err := p.destroyCluster(ctx, s); err != nil {
		return err
	}
	if err := save(ctx, s, func(r *Record) { r.Recreations = n + 1 }); err != nil {
		return err
	}
	// Keep what the failed attempt left for people to read (the installer's log, and on
	// exit 5 the log bundle it gathered from the bootstrap machine) instead of deleting it
	// with the folder the next attempt needs.
	d, err := keepFailedAttempt(p.env.WorkDir, p.env.InstallerDir(), s.Now())
	if err != nil {
		return err
	}
	if d.Folder != "" {
		d.Exit, d.InfraID = prog.LastExit, rec.InfraID
		if err := save(ctx, s, func(r *Record) { r.FailedAttempts = keptAttempts(append(r.FailedAttempts, d)) }); err != nil {
			return err
		}
		s.Progress("%s", describeAttempt(d))
	}
	if err := save(ctx, s, func(r *Record) { r.Progress, r.InfraID, r.ClusterID = nil, "", "" }); err != nil {
		return err
	}
	if err := s.DeleteFile(ctx, MetadataFile); err != nil {
		return err
	}
	ic, err := installer.Load[installconfig.Record](s)
	if err != nil {
		return err
	}
	var hash string
	if ic.Generated != nil {
		hash = ic.Generated.Hash
	}
	_, err = installconfig.Generate(ctx, p.env, s, hash)
	return err
}

// destroyCluster runs `openshift-install destroy cluster` when there is a metadata.json
// (ours is written back into the asset folder when the folder was lost).
func (p *phase) destroyCluster(ctx context.Context, s *installer.Scope) error {
	dir := p.env.InstallerDir()
	meta := filepath.Join(dir, MetadataFile)
	if _, err := os.Stat(meta); errors.Is(err, fs.ErrNotExist) {
		b, err := s.GetFile(ctx, MetadataFile)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // nothing was ever built
		}
		if err != nil {
			return err
		}
		if err := phases.EnsureDir(dir); err != nil {
			return err
		}
		if err := os.WriteFile(meta, b, 0o600); err != nil {
			return err
		}
	}
	s.Progress("destroying cluster resources (openshift-install destroy cluster)")
	if err := installconfig.Run(ctx, s, p.env.Cluster.Spec.OpenShift.Installer, dir, nil, nil, "destroy", "cluster"); err != nil {
		return err
	}
	s.Changed(installer.Change{Action: installer.Delete, Target: "cluster infrastructure (openshift-install destroy cluster)"})
	return nil
}

// waitForOrphan waits for an installer a killed run left behind (it got SIGINT when we
// died and is stopping): deciding while it still writes its folder would race it.
func (p *phase) waitForOrphan(ctx context.Context, s *installer.Scope) error {
	rec, err := installer.Load[Record](s)
	if err != nil {
		return err
	}
	pid := rec.InstallerPID
	if pid <= 0 {
		return nil
	}
	alive := func() bool {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return err == nil && strings.Contains(string(cmdline), p.env.InstallerDir()) && syscall.Kill(pid, 0) == nil
	}
	if alive() {
		_ = syscall.Kill(pid, syscall.SIGINT)
		err := kube.Wait(ctx, s, fmt.Sprintf("openshift-install (pid %d) left by an earlier run to stop", pid), 2*time.Minute,
			func(context.Context) (bool, string, error) { return !alive(), "", nil })
		if err != nil && !wait.Interrupted(err) {
			return err
		}
	}
	return save(ctx, s, func(r *Record) { r.InstallerPID = 0 })
}

func (p *phase) Destroy(ctx context.Context, s *installer.Scope) error {
	if !p.env.Cluster.Installs() {
		s.Progress("platform.existing: the cluster is not ours to destroy")
		return nil
	}
	if err := p.waitForOrphan(ctx, s); err != nil {
		return err
	}
	if err := p.destroyCluster(ctx, s); err != nil {
		return err
	}
	err := save(ctx, s, func(r *Record) {
		if r.InfraID != "" {
			r.DestroyedInfraID = r.InfraID
		}
		r.Progress, r.Installed, r.Recreations, r.InfraID, r.ClusterID = nil, false, 0, "", ""
	})
	if err != nil {
		return err
	}
	for _, f := range []string{MetadataFile, phases.KubeconfigFile} {
		if err := s.DeleteFile(ctx, f); err != nil {
			return err
		}
	}
	p.env.ResetKube()
	return os.RemoveAll(p.env.InstallerDir())
}
