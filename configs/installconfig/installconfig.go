// Package installconfig holds the subset of openshift-install's install-config.yaml (v1)
// that rhoai-bootstrap writes. The installer's own Go module cannot be obtained here, so
// we keep the types small and let `openshift-install create manifests` be the final
// validator of what we write.
package installconfig

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
	"sigs.k8s.io/yaml"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
)

// InstallConfig is install-config.yaml, apiVersion v1.
type InstallConfig struct {
	APIVersion   string        `json:"apiVersion"`
	Metadata     Metadata      `json:"metadata"`
	BaseDomain   string        `json:"baseDomain"`
	ControlPlane MachinePool   `json:"controlPlane"`
	Compute      []MachinePool `json:"compute"`
	Networking   Networking    `json:"networking"`
	Platform     Platform      `json:"platform"`
	Publish      string        `json:"publish,omitempty"`
	PullSecret   string        `json:"pullSecret"`
	SSHKey       string        `json:"sshKey,omitempty"`
}

// Metadata names the cluster.
type Metadata struct {
	Name string `json:"name"`
}

// MachinePool is the control plane or a compute pool.
type MachinePool struct {
	Name           string              `json:"name"`
	Architecture   string              `json:"architecture,omitempty"`
	Hyperthreading string              `json:"hyperthreading,omitempty"`
	Replicas       *int64              `json:"replicas"`
	Platform       MachinePoolPlatform `json:"platform"`
}

// MachinePoolPlatform is the per-platform pool configuration.
type MachinePoolPlatform struct {
	AWS *AWSMachinePool `json:"aws,omitempty"`
}

// AWSMachinePool is an AWS pool: instance type and zones.
type AWSMachinePool struct {
	Type  string   `json:"type,omitempty"`
	Zones []string `json:"zones,omitempty"`
}

// Networking is the cluster network layout (installer defaults).
type Networking struct {
	NetworkType    string           `json:"networkType"`
	ClusterNetwork []ClusterNetwork `json:"clusterNetwork"`
	MachineNetwork []CIDR           `json:"machineNetwork"`
	ServiceNetwork []string         `json:"serviceNetwork"`
}

// ClusterNetwork is a pod network block.
type ClusterNetwork struct {
	CIDR       string `json:"cidr"`
	HostPrefix int    `json:"hostPrefix"`
}

// CIDR is one machine network.
type CIDR struct {
	CIDR string `json:"cidr"`
}

// Platform is the cluster platform.
type Platform struct {
	AWS *AWSPlatform `json:"aws,omitempty"`
}

// AWSPlatform is the AWS region.
type AWSPlatform struct {
	Region string `json:"region"`
}

// Build makes the install-config for a cluster, reading the pull secret and SSH key from
// the files the cluster file names. GPU pools are not compute pools here: they are day-1
// MachineSets added after `create manifests`, because install-config compute pools carry
// neither labels nor taints.
func Build(c *configs.Cluster) (*InstallConfig, error) {
	if !c.Installs() {
		return nil, fmt.Errorf("cluster %s uses platform.existing: there is no install-config to build", c.Metadata.Name)
	}
	ps, err := os.ReadFile(c.Spec.OpenShift.PullSecretFile)
	if err != nil {
		return nil, fmt.Errorf("reading spec.openshift.pullSecretFile: %w", err)
	}
	if err := CheckPullSecret(ps); err != nil {
		return nil, fmt.Errorf("spec.openshift.pullSecretFile %s: %w", c.Spec.OpenShift.PullSecretFile, err)
	}
	var ssh string
	if f := c.Spec.OpenShift.SSHPublicKeyFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading spec.openshift.sshPublicKeyFile: %w", err)
		}
		ssh = strings.TrimSpace(string(b))
	}
	cp, workers := int64(*c.Spec.ControlPlane.Replicas), int64(*c.Spec.Workers.Replicas)
	zones := c.Spec.Platform.AWS.Zones
	return &InstallConfig{
		APIVersion: "v1",
		Metadata:   Metadata{Name: c.Metadata.Name},
		BaseDomain: c.Spec.BaseDomain,
		ControlPlane: MachinePool{Name: "master", Architecture: "amd64", Hyperthreading: "Enabled", Replicas: &cp,
			Platform: MachinePoolPlatform{AWS: &AWSMachinePool{Type: c.Spec.ControlPlane.InstanceType, Zones: zones}}},
		Compute: []MachinePool{{Name: "worker", Architecture: "amd64", Hyperthreading: "Enabled", Replicas: &workers,
			Platform: MachinePoolPlatform{AWS: &AWSMachinePool{Type: c.Spec.Workers.InstanceType, Zones: zones}}}},
		Networking: Networking{
			NetworkType:    c.Spec.OpenShift.NetworkType,
			ClusterNetwork: []ClusterNetwork{{CIDR: "10.128.0.0/14", HostPrefix: 23}},
			MachineNetwork: []CIDR{{CIDR: "10.0.0.0/16"}},
			ServiceNetwork: []string{"172.30.0.0/16"},
		},
		Platform:   Platform{AWS: &AWSPlatform{Region: c.Spec.Platform.AWS.Region}},
		Publish:    "External",
		PullSecret: strings.TrimSpace(string(ps)),
		SSHKey:     ssh,
	}, nil
}

// CheckPullSecret checks that a pull secret is a JSON object with "auths". The error
// never quotes the content.
func CheckPullSecret(b []byte) error {
	var ps struct {
		Auths map[string]map[string]any `json:"auths"`
	}
	if err := yaml.Unmarshal(b, &ps); err != nil {
		return fmt.Errorf("not a pull secret (expected JSON with \"auths\"); download it again from console.redhat.com")
	}
	if len(ps.Auths) == 0 {
		return fmt.Errorf("pull secret has no \"auths\" entries; download it again from console.redhat.com")
	}
	return nil
}

// CheckSSHPublicKey checks that b is one SSH public key the way openshift-install does
// (pkg/validate/validate.go SSHPublicKey: ssh.ParseAuthorizedKey), so a truncated or
// private key is caught before anything is created. The error never quotes a private key.
func CheckSSHPublicKey(b []byte) error {
	if bytes.Contains(b, []byte("PRIVATE KEY")) {
		return fmt.Errorf("this is a private key: give its public half (the .pub file); the private key must never leave this machine")
	}
	if _, _, _, _, err := ssh.ParseAuthorizedKey(b); err != nil {
		return fmt.Errorf("not an SSH public key (%v): expected one line like \"ssh-ed25519 AAAA… user@host\"; create one with ssh-keygen -t ed25519", err)
	}
	return nil
}

// Marshal renders the install-config as YAML.
func (ic *InstallConfig) Marshal() ([]byte, error) { return yaml.Marshal(ic) }
