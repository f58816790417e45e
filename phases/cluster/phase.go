// Package cluster is the cluster phase: `openshift-install create cluster`, resumed
// correctly after any failure or kill (see Decide), or, for platform.existing, a check that
// the given kubeconfig reaches an OpenShift cluster.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
func (p *phase) DependsOn() []string {
	if p.env.Cluster.Installs() {
		return []string{installconfig.Name}
	}
	return []string{"preflight"}
}

var cvGVK = kube.GVK("config.openshift.io/v1", "ClusterVersion")

// probe asks the API for ClusterVersion "version": reachable at all, and Available.
func probe(ctx context.Context, cfg *rest.Config) (reachable, available bool, version string) {
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 10 * time.Second
	c, err := kube.Connect(cfg, kube.Options{ReadOnly: true})
	if err != nil {
		return false, false, ""
	}
	cv, err := c.Get(ctx, cvGVK, "", "version")
	if err != nil || cv == nil {
		return err == nil, false, ""
	}
	st, _, _ := kube.Condition(cv, "Available")
	version, _, _ = unstructured.NestedString(cv.Object, "status", "desired", "version")
	return true, st == "True", version
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
			return installer.Done("installed, OpenShift " + version), nil
		}
		return installer.Pending("installed, but the API does not answer"), nil
	}
	act := Decide(progressOf(rec), p.metadataExists(ctx, s), false)
	return installer.Pending(string(act), installer.Change{Action: installer.Run, Target: "openshift-install " + describe(act)}), nil
}

func describe(a Action) string {
	switch a {
	case ActCreate:
		return "create cluster"
	case ActWaitBootstrap:
		return "wait-for bootstrap-complete, then wait-for install-complete"
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
	return progressOf(rec), err
}

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
	for {
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
		s.Debugf("resume decision: %s (stage %q, last exit %d)", act, prog.Stage, prog.LastExit)
		switch act {
		case ActDone:
			return p.finish(ctx, s)
		case ActFailConfig:
			return fmt.Errorf("openshift-install rejected the install-config (exit 3): fix the cluster file; see %s", filepath.Join(p.env.InstallerDir(), ".openshift_install.log"))
		case ActCreate:
			if err := save(ctx, s, func(r *Record) { r.Progress = &Progress{CreateStarted: true, LastExit: -1} }); err != nil {
				return err
			}
			err = p.run(ctx, s, "create", "cluster")
		case ActWaitBootstrap:
			err = p.run(ctx, s, "wait-for", "bootstrap-complete")
			if err == nil {
				err = p.run(ctx, s, "wait-for", "install-complete")
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
			return fmt.Errorf("%w; run the same command again to resume (it waits for the installation instead of creating another cluster)", err)
		}
		return p.finish(ctx, s)
	}
}

// run runs the installer and records its stage, PID and exit code as it goes.
func (p *phase) run(ctx context.Context, s *installer.Scope, args ...string) error {
	dir := p.env.InstallerDir()
	prog, _ := p.progress(s)
	onStart := func(pid int) { _ = save(ctx, s, func(r *Record) { r.InstallerPID = pid }) }
	onLine := func(l installconfig.Line) {
		if st := stageOf(l.Msg); st != "" && stageRank[st] > stageRank[prog.Stage] {
			prog.Stage = st
			_ = save(ctx, s, func(r *Record) { r.Progress = &prog })
		}
		p.copyMetadata(ctx, s)
	}
	err := installconfig.Run(ctx, s, p.env.Cluster.Spec.OpenShift.Installer, dir, onStart, onLine, args...)
	p.copyMetadata(ctx, s)
	prog.LastExit = installconfig.ExitCode(err)
	if err != nil && prog.LastExit == 0 {
		prog.LastExit = -1
	}
	_ = save(ctx, s, func(r *Record) { r.Progress, r.InstallerPID = &prog, 0 })
	return err
}

// copyMetadata copies metadata.json into the state on first sight: from then on the
// cluster can be destroyed from the state alone, even from another machine.
func (p *phase) copyMetadata(ctx context.Context, s *installer.Scope) {
	if rec, _ := installer.Load[Record](s); rec.InfraID != "" {
		return
	}
	b, err := os.ReadFile(filepath.Join(p.env.InstallerDir(), MetadataFile))
	if err != nil {
		return
	}
	var m Metadata
	if json.Unmarshal(b, &m) != nil || m.InfraID == "" {
		return // still being written
	}
	if err := s.PutFile(ctx, MetadataFile, b); err != nil {
		s.Progress("could not keep a copy of metadata.json: %v", err)
		return
	}
	_ = save(ctx, s, func(r *Record) { r.ClusterID, r.InfraID = m.ClusterID, m.InfraID })
	s.Progress("infrastructure ID %s (metadata.json kept with the state)", m.InfraID)
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
		return fmt.Errorf("the installation failed %d times; read %s, then run `rhoai-bootstrap destroy --yes` and install again",
			n+1, filepath.Join(p.env.InstallerDir(), ".openshift_install.log"))
	}
	if err := p.destroyCluster(ctx, s); err != nil {
		return err
	}
	if err := save(ctx, s, func(r *Record) { r.Recreations = n + 1 }); err != nil {
		return err
	}
	// Keep the installer's log of the failed attempt for people to read.
	dir := p.env.InstallerDir()
	if b, err := os.ReadFile(filepath.Join(dir, ".openshift_install.log")); err == nil {
		_ = os.WriteFile(filepath.Join(p.env.WorkDir, fmt.Sprintf("openshift_install-attempt-%d.log", n+1)), b, 0o600)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clearing %s: %w", dir, err)
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
