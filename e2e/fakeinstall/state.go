package fakeinstall

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// StateFile is the installer's asset state, laid out like the real
// .openshift_install_state.json: a map from asset type to its content. Tools
// read the infraID from it with
// jq -r '."*installconfig.ClusterID".InfraID' .openshift_install_state.json.
const StateFile = ".openshift_install_state.json"

// MetadataFile is the file `destroy cluster` needs.
const MetadataFile = "metadata.json"

type state struct {
	ClusterID     *clusterIDAsset     `json:"*installconfig.ClusterID,omitempty"`
	InstallConfig *installConfigAsset `json:"*installconfig.InstallConfig,omitempty"`
	// Manifests and Openshift hold the manifests/ and openshift/ files that
	// `create cluster` consumed (deleted from disk), as the real state does.
	Manifests *fileListAsset `json:"*manifests.Manifests,omitempty"`
	Openshift *fileListAsset `json:"*manifests.Openshift,omitempty"`
	Password  *passwordAsset `json:"*password.KubeadminPassword,omitempty"`
}

type clusterIDAsset struct {
	UUID    string `json:"UUID"`
	InfraID string `json:"InfraID"`
}

type installConfigAsset struct {
	Config json.RawMessage `json:"config"`
}

type fileListAsset struct {
	FileList []assetFile `json:"FileList"`
}

// assetFile is one file of an asset; Data is base64 in JSON, like the real one.
type assetFile struct {
	Filename string `json:"Filename"`
	Data     []byte `json:"Data"`
}

type passwordAsset struct {
	Password string `json:"Password"`
}

// loadState reads the state file of dir; it returns nil if there is none.
func loadState(dir string) (*state, error) {
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read state file: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("failed to unmarshal state file: %w", err)
	}
	return &st, nil
}

// save writes the state file atomically, mode 0600: it holds the pull
// secret and the kubeadmin password.
func (st *state) save(dir string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to marshal state: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, StateFile), append(data, '\n'), 0o600)
}

// consumedFiles returns the stashed manifests/ and openshift/ files.
func (st *state) consumedFiles() []assetFile {
	var out []assetFile
	for _, a := range []*fileListAsset{st.Manifests, st.Openshift} {
		if a != nil {
			out = append(out, a.FileList...)
		}
	}
	return out
}

// InfraIDFromState returns the infraID recorded in dir's state file, as a
// tool would read it after `create manifests`.
func InfraIDFromState(dir string) (string, error) {
	st, err := loadState(dir)
	if err != nil {
		return "", err
	}
	if st == nil || st.ClusterID == nil {
		return "", fmt.Errorf("no infraID in %s", filepath.Join(dir, StateFile))
	}
	return st.ClusterID.InfraID, nil
}

// Metadata is metadata.json in the real AWS format.
type Metadata struct {
	ClusterName string       `json:"clusterName"`
	ClusterID   string       `json:"clusterID"`
	InfraID     string       `json:"infraID"`
	AWS         *AWSMetadata `json:"aws,omitempty"`
	FeatureSet  string       `json:"featureSet"`
}

// AWSMetadata is the aws section of metadata.json: what destroy uses to
// find the cluster's resources.
type AWSMetadata struct {
	Region        string              `json:"region"`
	Identifier    []map[string]string `json:"identifier"`
	ClusterDomain string              `json:"clusterDomain"`
}

func newMetadata(ic *InstallConfig, infraID, clusterID string) *Metadata {
	return &Metadata{
		ClusterName: ic.Metadata.Name,
		ClusterID:   clusterID,
		InfraID:     infraID,
		AWS: &AWSMetadata{
			Region: ic.Platform.AWS.Region,
			Identifier: []map[string]string{
				{"kubernetes.io/cluster/" + infraID: "owned"},
				{"openshiftClusterID": clusterID},
			},
			ClusterDomain: ic.clusterDomain(),
		},
	}
}

// readMetadata reads dir/metadata.json.
func readMetadata(dir string) (*Metadata, error) {
	data, err := os.ReadFile(filepath.Join(dir, MetadataFile))
	if err != nil {
		return nil, err
	}
	var md Metadata
	if err := json.Unmarshal(data, &md); err != nil {
		return nil, fmt.Errorf("failed to unmarshal %s: %w", MetadataFile, err)
	}
	return &md, nil
}
