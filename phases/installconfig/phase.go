// Package installconfig is the install-config phase: it writes install-config.yaml, runs
// `openshift-install create manifests`, and adds the day-1 GPU MachineSets (cloned from the
// worker MachineSets the installer generated), MachineAutoscalers and the
// ClusterAutoscaler, so GPU pools exist from the first boot.
package installconfig

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	ic "github.com/rhoai-bootstrap/rhoai-bootstrap/configs/installconfig"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/cluster/clusterstate"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/gpupools"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// Name of the phase.
const Name = "install-config"

// installerState is the file openshift-install keeps in its asset folder; its presence
// means `create manifests` has run (install-config.yaml is then consumed).
const installerState = ".openshift_install_state.json"

// gpuPrefix names the manifests we add to the installer's openshift/ folder.
const gpuPrefix = "99_rhoai-bootstrap_"

// Record is what the phase keeps in the state.
type Record struct {
	// Generated describes the manifests of the last `create manifests`.
	Generated *Generated `json:"generated,omitempty"`
}

// PhaseName implements installer.Record.
func (Record) PhaseName() string { return Name }

// Generated describes the manifests the phase generated.
type Generated struct {
	Files   []string `json:"files"`
	InfraID string   `json:"infraID"`
	Hash    string   `json:"inputHash"`
}

type phase struct{ env *phases.Env }

// New returns the install-config phase.
func New(env *phases.Env) installer.Phase { return &phase{env: env} }

func (p *phase) Name() string { return Name }

// DependsOn: without preflight, a missing GPU instance type, quota or Route53 zone would
// surface only inside openshift-install, after the install-config is written and the
// installer has started creating infrastructure.
func (p *phase) DependsOn() []string { return []string{"preflight"} }

// Inputs are the parts of the cluster file that shape the install (no secret values).
func (p *phase) Inputs() any {
	s := p.env.Cluster.Spec
	return map[string]any{"name": p.env.Cluster.Metadata.Name, "baseDomain": s.BaseDomain, "platform": s.Platform,
		"openshift": s.OpenShift, "controlPlane": s.ControlPlane, "workers": s.Workers, "gpuPools": s.GPUPools}
}

// CreateStarted reports whether the cluster phase has started `create cluster`: from then
// on the install-config is consumed and GPU pool changes are day-2 work.
func CreateStarted(s *installer.Scope) (bool, error) {
	rec, err := installer.Load[clusterstate.Record](s)
	return rec.CreateStarted(), err
}

func (p *phase) Check(ctx context.Context, s *installer.Scope) (installer.Status, error) {
	if !p.env.Cluster.Installs() {
		return installer.Done("platform.existing: nothing to install"), nil
	}
	if started, err := CreateStarted(s); err != nil || started {
		return installer.Done("consumed by the cluster installation; GPU pool changes go through gpu-pools"), err
	}
	rec, err := installer.Load[Record](s)
	if err != nil {
		return installer.Status{}, err
	}
	dir := p.env.InstallerDir()
	if g := rec.Generated; g != nil && fileExists(filepath.Join(dir, installerState)) && allExist(dir, g.Files) {
		return installer.Done(fmt.Sprintf("manifests generated (infra ID %s, %d GPU manifests)", g.InfraID, len(g.Files))), nil
	}
	return installer.Pending("manifests not generated",
		installer.Change{Action: installer.Create, Target: filepath.Join(dir, "install-config.yaml")},
		installer.Change{Action: installer.Run, Target: "openshift-install create manifests"},
		installer.Change{Action: installer.Create, Target: fmt.Sprintf("GPU MachineSets for %d pools, MachineAutoscalers, ClusterAutoscaler", len(p.env.Cluster.Spec.GPUPools))},
	), nil
}

func (p *phase) Apply(ctx context.Context, s *installer.Scope) error {
	if !p.env.Cluster.Installs() {
		return nil
	}
	if started, err := CreateStarted(s); err != nil || started {
		return err
	}
	hash, err := installer.HashInputs(p.Inputs())
	if err != nil {
		return err
	}
	rec, err := installer.Load[Record](s)
	if err != nil {
		return err
	}
	if g := rec.Generated; g != nil && g.Hash != hash {
		s.Progress("the cluster file changed since the manifests were generated: generating them again")
		if err := os.RemoveAll(p.env.InstallerDir()); err != nil {
			return fmt.Errorf("clearing the installer folder: %w", err)
		}
	}
	g, err := Generate(ctx, p.env, s, hash)
	if err != nil {
		return err
	}
	return installer.Save(ctx, s, func(r *Record) error { r.Generated = g; return nil })
}

// Generate writes install-config.yaml, runs `create manifests` unless it already ran, and
// adds the GPU manifests. The cluster phase calls it again to start over with a new infra ID
// (the install-config phase's record then still describes the first generation; its Check
// looks at the files themselves).
func Generate(ctx context.Context, env *phases.Env, s *installer.Scope, hash string) (*Generated, error) {
	dir := env.InstallerDir()
	if err := phases.EnsureDir(dir); err != nil {
		return nil, err
	}
	if !fileExists(filepath.Join(dir, installerState)) {
		cfg, err := ic.Build(env.Cluster)
		if err != nil {
			return nil, err
		}
		s.Redactor().Add(cfg.PullSecret)
		b, err := cfg.Marshal()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "install-config.yaml"), b, 0o600); err != nil {
			return nil, fmt.Errorf("writing install-config.yaml: %w", err)
		}
		// Our own copy (the installer consumes the file), without the pull secret.
		cfg.PullSecret = `{"auths":{"<redacted>":{}}}`
		redacted, err := cfg.Marshal()
		if err != nil {
			return nil, err
		}
		if err := s.PutFile(ctx, "install-config.yaml", redacted); err != nil {
			return nil, err
		}
		s.Changed(installer.Change{Action: installer.Create, Target: "install-config.yaml"})
		if err := Run(ctx, s, env.Cluster.Spec.OpenShift.Installer, dir, nil, nil, "create", "manifests"); err != nil {
			if ExitCode(err) == ExitConfig {
				return nil, fmt.Errorf("%w (fix the cluster file and run again)", err)
			}
			return nil, err
		}
	}
	workers, err := ReadWorkerMachineSets(dir)
	if err != nil {
		return nil, err
	}
	files, infraID, err := WriteGPUManifests(env.Cluster, dir, workers)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		if err := s.PutFile(ctx, "manifests/"+filepath.Base(f), b); err != nil {
			return nil, err
		}
	}
	s.Changed(installer.Change{Action: installer.Create, Target: fmt.Sprintf("%d GPU manifests in %s", len(files), filepath.Join(dir, "openshift"))})
	return &Generated{Files: files, InfraID: infraID, Hash: hash}, nil
}

func (p *phase) Destroy(ctx context.Context, s *installer.Scope) error {
	// The asset folder goes with the cluster (the cluster phase destroys it first); our
	// copies stay with the state as a record.
	return nil
}

// ReadWorkerMachineSets loads the worker MachineSet manifests openshift-install generated.
func ReadWorkerMachineSets(dir string) ([]*machinev1beta1.MachineSet, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "openshift", "99_openshift-cluster-api_worker-machineset-*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(matches)
	var out []*machinev1beta1.MachineSet
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			return nil, err
		}
		objs, err := kube.DecodeYAML(b)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", m, err)
		}
		for _, o := range objs {
			if o.GetKind() != "MachineSet" {
				continue
			}
			ms := &machinev1beta1.MachineSet{}
			if err := kube.Into(o, ms); err != nil {
				return nil, fmt.Errorf("reading %s: %w", m, err)
			}
			out = append(out, ms)
		}
	}
	return out, nil
}

// WriteGPUManifests writes the GPU pool manifests into dir/openshift, removing ones a
// previous run wrote for pools that are gone. It returns the files (relative to dir).
func WriteGPUManifests(c *configs.Cluster, dir string, workers []*machinev1beta1.MachineSet) ([]string, string, error) {
	if len(c.Spec.GPUPools) > 0 && len(workers) == 0 {
		return nil, "", fmt.Errorf("no worker MachineSet manifests in %s/openshift: run `openshift-install create manifests --dir %s` first", dir, dir)
	}
	set, err := gpupools.Build(c, workers)
	if err != nil {
		return nil, "", err
	}
	out := filepath.Join(dir, "openshift")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, "", err
	}
	old, _ := filepath.Glob(filepath.Join(out, gpuPrefix+"*.yaml"))
	for _, f := range old {
		os.Remove(f)
	}
	var files []string
	for _, o := range set.Objects() {
		if o.GetKind() == "MachineSet" {
			o = o.DeepCopy()
			if err := kube.SetNested(o, set.Replicas[o.GetName()], "spec", "replicas"); err != nil {
				return nil, "", err
			}
		}
		b, err := kube.EncodeYAML(o)
		if err != nil {
			return nil, "", err
		}
		name := gpuPrefix + strings.ToLower(o.GetKind()) + "_" + o.GetName() + ".yaml"
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return nil, "", fmt.Errorf("writing %s: %w", name, err)
		}
		files = append(files, filepath.Join("openshift", name))
	}
	infraID := ""
	if len(workers) > 0 {
		infraID = workers[0].Labels["machine.openshift.io/cluster-api-cluster"]
	}
	return files, infraID, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func allExist(dir string, files []string) bool {
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}
