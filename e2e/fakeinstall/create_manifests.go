package fakeinstall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/uuid"
)

// installConfigError logs an install-config problem the way the real
// installer does and returns exit code 3.
func (in *installer) installConfigError(target, detail string) error {
	msg := fmt.Sprintf("failed to fetch %s: %s: %s", target, installConfigErrorMsg, detail)
	in.log.Errorf("%s", msg)
	return &exitError{code: ExitInstallConfigError, msg: msg}
}

// noInstallConfig is the error of a target that needs an install-config
// when there is neither install-config.yaml nor a state to take it from:
// the real installer would prompt for one, which needs a terminal.
func noInstallConfig(target string) error {
	return fmt.Errorf("failed to fetch %s: failed to fetch dependency of %q: failed to generate asset \"Platform\": "+
		"failed UserInput: the interactive install-config survey needs a terminal (stdin is not a TTY); write %s in the assets directory first",
		target, target, installConfigFile)
}

// resolveManifests returns the state and install-config that a target
// builds on: from install-config.yaml when it is present (consumed, and
// the manifests generated), else from the state of an earlier run.
func (in *installer) resolveManifests(ctx context.Context, target string) (*state, *InstallConfig, error) {
	st, err := loadState(in.dir)
	if err != nil {
		return nil, nil, err
	}
	if fileExists(in.path(installConfigFile)) {
		return in.generateManifests(ctx, st, target)
	}
	if st == nil || st.ClusterID == nil || st.InstallConfig == nil {
		return nil, nil, noInstallConfig(target)
	}
	ic, _, err := parseInstallConfig(st.InstallConfig.Config)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to load the install-config from the state file: %w", err)
	}
	if errs := ic.validate(); len(errs) > 0 { // fills the pool defaults
		return nil, nil, fmt.Errorf("the install-config in the state file is invalid: %s", aggregate(errs))
	}
	return st, ic, nil
}

// generateManifests consumes install-config.yaml: validates it, writes the
// manifests, records the infraID in the state file, then deletes
// install-config.yaml. The infraID of an earlier run is kept when the
// install-config did not change, as the real asset store does.
func (in *installer) generateManifests(ctx context.Context, st *state, target string) (*state, *InstallConfig, error) {
	data, err := os.ReadFile(in.path(installConfigFile))
	if err != nil {
		return nil, nil, fmt.Errorf("failed to fetch %s: %w", target, err)
	}
	ic, canonical, err := parseInstallConfig(data)
	if err != nil {
		return nil, nil, in.installConfigError(target, err.Error())
	}
	if errs := ic.validate(); len(errs) > 0 {
		return nil, nil, in.installConfigError(target, fmt.Sprintf("invalid %q file: %s", installConfigFile, aggregate(errs)))
	}
	in.log.Infof("Consuming Install Config from target directory")
	if err := in.sleep(ctx, in.settings.delay); err != nil {
		return nil, nil, in.interrupted()
	}
	fire, err := in.injected(StageManifests, ic, "")
	if err != nil {
		return nil, nil, err
	}
	if fire {
		return nil, nil, in.installConfigError(target, fmt.Sprintf("invalid %q file: %s", installConfigFile,
			invalid("platform.aws.region", ic.Platform.AWS.Region, "injected failure ("+EnvFail+"="+StageManifests+")")))
	}

	if st == nil || st.ClusterID == nil || st.InstallConfig == nil || !bytes.Equal(compactJSON(st.InstallConfig.Config), canonical) {
		st = &state{ClusterID: &clusterIDAsset{UUID: uuid.NewString(), InfraID: generateInfraID(ic.Metadata.Name)}}
	} else {
		in.log.Debugf("Install Config unchanged; keeping infraID %s", st.ClusterID.InfraID)
	}
	st.InstallConfig = &installConfigAsset{Config: canonical}
	infraID := st.ClusterID.InfraID

	files, err := renderManifests(ic, canonical, infraID, st.ClusterID.UUID, in.settings.version)
	if err != nil {
		return nil, nil, err
	}
	for _, stale := range generatedMachineFiles(in.dir) {
		if err := os.Remove(stale); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("removing %s: %w", stale, err)
		}
	}
	for _, f := range files {
		if err := writeFileAtomic(in.path(f.path), f.data, 0o640); err != nil {
			return nil, nil, err
		}
	}
	if err := st.save(in.dir); err != nil {
		return nil, nil, err
	}
	if err := os.Remove(in.path(installConfigFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("failed to consume %s: %w", installConfigFile, err)
	}

	rec, err := in.reg.Cluster(infraID)
	if err != nil {
		return nil, nil, err
	}
	if rec == nil {
		rec = newRecord(ic, st, in.dir)
	}
	if !rec.Reached(StageManifests) {
		rec.Stage = StageManifests
	}
	if err := in.reg.save(rec, in.now().UTC()); err != nil {
		return nil, nil, err
	}
	return st, ic, nil
}

func compactJSON(data []byte) []byte {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return data
	}
	out, err := json.Marshal(v)
	if err != nil {
		return data
	}
	return out
}

func newRecord(ic *InstallConfig, st *state, dir string) *Cluster {
	return &Cluster{
		InfraID:     st.ClusterID.InfraID,
		ClusterID:   st.ClusterID.UUID,
		ClusterName: ic.Metadata.Name,
		BaseDomain:  ic.BaseDomain,
		Region:      ic.Platform.AWS.Region,
		AssetsDir:   dir,
	}
}

// createManifests is `create manifests`.
func (in *installer) createManifests(ctx context.Context) error {
	if !fileExists(in.path(installConfigFile)) {
		if st, err := loadState(in.dir); err == nil && st != nil && st.ClusterID != nil {
			// Already generated: the real installer loads the assets from
			// the state and leaves the files on disk alone.
			if err := in.recordInvocation(st.ClusterID.InfraID); err != nil {
				return err
			}
			in.log.Infof("Manifests created in: %s and %s", filepath.Join(in.dirArg, "manifests"), filepath.Join(in.dirArg, "openshift"))
			return nil
		}
	}
	st, _, err := in.resolveManifests(ctx, "Master Machines")
	if err != nil {
		return err
	}
	if err := in.recordInvocation(st.ClusterID.InfraID); err != nil {
		return err
	}
	in.log.Infof("Manifests created in: %s and %s", filepath.Join(in.dirArg, "manifests"), filepath.Join(in.dirArg, "openshift"))
	return nil
}

// createInstallConfig is `create install-config`: interactive in the real
// installer, so without an install-config.yaml it fails for want of a
// terminal; with one it validates it and leaves it in place.
func (in *installer) createInstallConfig() error {
	if err := in.recordInvocation(""); err != nil {
		return err
	}
	data, err := os.ReadFile(in.path(installConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return noInstallConfig("Install Config")
	}
	if err != nil {
		return fmt.Errorf("failed to fetch Install Config: %w", err)
	}
	ic, _, err := parseInstallConfig(data)
	if err != nil {
		return in.installConfigError("Install Config", err.Error())
	}
	if errs := ic.validate(); len(errs) > 0 {
		return in.installConfigError("Install Config", fmt.Sprintf("invalid %q file: %s", installConfigFile, aggregate(errs)))
	}
	in.log.Infof("Install-Config created in: %s", in.dir)
	return nil
}
