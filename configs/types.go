// Package configs is the declarative API of rhoai-bootstrap: the `kind: Cluster` file,
// its defaults, its validation (every problem at once, with field paths), and the GPU
// catalog. It knows nothing of Kubernetes clients or AWS, so it can be used by `validate`,
// the wizard and every phase alike.
package configs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// APIVersion and Kind identify a cluster file.
const (
	APIVersion = "rhoai-bootstrap.io/v1alpha1"
	Kind       = "Cluster"
)

// Node label and taint every GPU pool carries. The value of both is
// <GPU>-<SHARED|PRIVATE>, e.g. "L40S-PRIVATE".
const (
	AcceleratorLabel = "cluster-api/accelerator"
	GPUTaintKey      = "nvidia.com/gpu"
)

// Cluster is one cluster file.
type Cluster struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   ObjectMeta  `json:"metadata"`
	Spec       ClusterSpec `json:"spec"`
}

// ObjectMeta names the cluster. The name becomes the OpenShift cluster name, so
// the API is api.<name>.<baseDomain>.
type ObjectMeta struct {
	Name string `json:"name"`
}

// ClusterSpec is the desired platform.
type ClusterSpec struct {
	BaseDomain   string      `json:"baseDomain"`
	Platform     Platform    `json:"platform"`
	OpenShift    OpenShift   `json:"openshift,omitzero"`
	ControlPlane MachinePool `json:"controlPlane,omitzero"`
	Workers      MachinePool `json:"workers,omitzero"`
	GPUPools     []GPUPool   `json:"gpuPools,omitempty"`
	// MaxHourlyCost (USD) makes install refuse, before changing anything, a file whose
	// machines could cost more per hour at the GPU pools' max; --max-hourly-cost
	// overrides it. `plan` shows the estimate it is checked against.
	MaxHourlyCost *float64      `json:"maxHourlyCost,omitempty"`
	OAuth         *OAuth        `json:"oauth,omitempty"`
	Certificates  *Certificates `json:"certificates,omitempty"`
	GitOps        *GitOps       `json:"gitops,omitempty"`
}

// Platform says where the cluster runs. AWS is always required (Route53, EC2 offerings
// and quotas are checked there); Existing switches off the cluster installation and uses
// a running cluster instead.
type Platform struct {
	AWS      *AWSPlatform      `json:"aws,omitempty"`
	Existing *ExistingPlatform `json:"existing,omitempty"`
}

// AWSPlatform is the AWS region and the availability zones machines go to.
type AWSPlatform struct {
	Region string   `json:"region"`
	Zones  []string `json:"zones,omitempty"`
}

// ExistingPlatform points at a cluster that already runs ("bring your own cluster").
type ExistingPlatform struct {
	Kubeconfig string `json:"kubeconfig"`
	Context    string `json:"context,omitempty"`
}

// OpenShift configures the installation itself.
type OpenShift struct {
	// Installer is the openshift-install binary (a path, or a name looked up in PATH).
	Installer        string `json:"installer,omitempty"`
	PullSecretFile   string `json:"pullSecretFile,omitempty"`
	SSHPublicKeyFile string `json:"sshPublicKeyFile,omitempty"`
	// NetworkType is the cluster network plugin; OVNKubernetes unless set.
	NetworkType string `json:"networkType,omitempty"`
}

// MachinePool is the control plane or the default worker pool.
type MachinePool struct {
	InstanceType string `json:"instanceType,omitempty"`
	Replicas     *int   `json:"replicas,omitempty"`
}

// Access says whether a GPU pool is shared by every project or kept for a few.
type Access string

// Access values.
const (
	AccessShared  Access = "shared"
	AccessPrivate Access = "private"
)

// GPUPool is one autoscaled pool of GPU machines.
type GPUPool struct {
	Name string `json:"name"`
	// GPU is a catalog name (T4, A10G, L4, L40S, A100, H100) or an alias (L40 → L4).
	GPU    string `json:"gpu"`
	Access Access `json:"access,omitempty"`
	// InstanceType overrides the catalog's default size within the GPU's family.
	InstanceType string `json:"instanceType,omitempty"`
	Min          int    `json:"min"`
	Max          int    `json:"max"`
	Spot         bool   `json:"spot,omitempty"`
	// Zones defaults to the platform's zones.
	Zones []string `json:"zones,omitempty"`
}

// AcceleratorValue is the value of the pool's node label and taint, e.g. "T4-SHARED".
// It is derived from the canonical GPU name, so "L40" pools carry "L4-…".
func (p GPUPool) AcceleratorValue() string {
	g, _, _ := LookupGPU(p.GPU)
	name := g.Name
	if name == "" {
		name = strings.ToUpper(p.GPU)
	}
	return name + "-" + strings.ToUpper(string(p.Access))
}

// OAuth configures who can log in.
type OAuth struct {
	Google *GoogleIdP `json:"google,omitempty"`
	// Admins get cluster-admin (by their Google e-mail as user name).
	Admins []string `json:"admins,omitempty"`
	// RemoveKubeadmin deletes the kubeadmin secret once an admin binding exists.
	RemoveKubeadmin bool `json:"removeKubeadmin,omitempty"`
}

// GoogleIdP is a Google OpenID identity provider.
type GoogleIdP struct {
	// Name is the identity provider's name in oauth/cluster ("google" unless set).
	Name         string    `json:"name,omitempty"`
	ClientID     string    `json:"clientID"`
	ClientSecret SecretRef `json:"clientSecret"`
	HostedDomain string    `json:"hostedDomain,omitempty"`
}

// Certificates configures publicly trusted certificates for the API and the apps domain.
type Certificates struct {
	ACME ACME `json:"acme"`
}

// ACME configures the ACME client (lego).
type ACME struct {
	// Server is "letsencrypt", "letsencrypt-staging" or an ACME directory URL.
	Server string `json:"server,omitempty"`
	Email  string `json:"email"`
	// CABundleFile holds extra roots to trust for the ACME server's own HTTPS and, for
	// private ACME servers, the issuing roots the certificates must chain to.
	CABundleFile string  `json:"caBundleFile,omitempty"`
	Route53      Route53 `json:"route53,omitzero"`
	// Resolvers are the DNS servers used to check propagation (host:port), like lego's --dns.resolvers.
	Resolvers []string `json:"resolvers,omitempty"`
	// DisableAuthoritativeNSCheck skips querying the zone's authoritative servers
	// (lego's --dns.propagation-disable-ans), for split-horizon DNS.
	DisableAuthoritativeNSCheck bool `json:"disableAuthoritativeNSCheck,omitempty"`
	// PropagationTimeout bounds the wait for the TXT record to be visible (Go duration).
	PropagationTimeout string `json:"propagationTimeout,omitempty"`
	// Profile is the ACME certificate profile to ask for (e.g. "shortlived"), if any.
	Profile string `json:"profile,omitempty"`
}

// Route53 names the public hosted zone that serves DNS-01 challenges.
type Route53 struct {
	// HostedZoneID is found from baseDomain when empty.
	HostedZoneID string `json:"hostedZoneID,omitempty"`
}

// GitOps configures the OpenShift GitOps operator and the root application.
type GitOps struct {
	OperatorChannel string  `json:"operatorChannel,omitempty"`
	Root            RootApp `json:"root"`
}

// RootApp is the Argo CD application the bootstrap hands control to.
type RootApp struct {
	RepoURL  string `json:"repoURL"`
	Revision string `json:"revision,omitempty"`
	Path     string `json:"path"`
}

// SecretRef points at a secret value; the value itself never appears in the file.
// Exactly one of Env or File is set.
type SecretRef struct {
	Env  string `json:"env,omitempty"`
	File string `json:"file,omitempty"`

	// plain is set when the file held a literal value instead of a reference. The value
	// itself is dropped on decode so it can never be echoed back in an error or log.
	plain bool
}

// UnmarshalJSON accepts the {env|file} object, and notes (without keeping) a plain
// string so that validation can report it with the other problems.
func (s *SecretRef) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '"' {
		*s = SecretRef{plain: true}
		return nil
	}
	type plainRef SecretRef
	var r plainRef
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("expected {env: NAME} or {file: PATH}: %w", err)
	}
	*s = SecretRef(r)
	return nil
}

// IsZero reports whether no reference is set.
func (s SecretRef) IsZero() bool { return s.Env == "" && s.File == "" && !s.plain }

// String describes the reference, never the value.
func (s SecretRef) String() string {
	switch {
	case s.Env != "":
		return "env:" + s.Env
	case s.File != "":
		return "file:" + s.File
	}
	return "<unset>"
}

// Resolve reads the secret value. Errors name the reference, never the value.
func (s SecretRef) Resolve() (string, error) {
	switch {
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set: export it before running", s.Env)
		}
		return v, nil
	case s.File != "":
		b, err := os.ReadFile(ExpandHome(s.File))
		if err != nil {
			return "", fmt.Errorf("reading secret file %s: %w", s.File, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("secret file %s is empty", s.File)
		}
		return v, nil
	}
	return "", fmt.Errorf("no secret reference set: use {env: NAME} or {file: PATH}")
}

// ExpandHome replaces a leading ~/ with the user's home folder.
func ExpandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return h + p[1:]
		}
	}
	return p
}
