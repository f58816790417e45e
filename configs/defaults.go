package configs

// Defaults. They are written here once, documented in the README's config reference,
// and shown by `validate --show-defaults`.
const (
	DefaultInstaller            = "openshift-install"
	DefaultNetworkType          = "OVNKubernetes"
	DefaultControlPlaneType     = "m6i.2xlarge"
	DefaultControlPlaneReplicas = 3
	DefaultWorkerType           = "m6i.4xlarge"
	DefaultWorkerReplicas       = 3
	DefaultGoogleIdPName        = "google"
	// DefaultOperatorChannel follows the newest OpenShift GitOps release the cluster's
	// catalog offers. Version channels (gitops-1.16, …) come and go with the OpenShift
	// versions each release supports (1.16 ends at OpenShift 4.18), so a pinned default
	// would break on newer clusters; the gitops-operator phase checks any channel against
	// the catalog's PackageManifest before subscribing. There is deliberately no default
	// ACME server: see validateACME.
	DefaultOperatorChannel    = "latest"
	DefaultRootRevision       = "main"
	DefaultPropagationTimeout = "10m"
)

// ACME directory URLs of the well-known servers.
var ACMEServers = map[string]string{
	"letsencrypt":         "https://acme-v02.api.letsencrypt.org/directory",
	"letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}

// Default fills every unset field that has a default. It is idempotent.
func (c *Cluster) Default() {
	s := &c.Spec
	if s.OpenShift.Installer == "" {
		s.OpenShift.Installer = DefaultInstaller
	}
	if s.OpenShift.NetworkType == "" {
		s.OpenShift.NetworkType = DefaultNetworkType
	}
	if s.ControlPlane.InstanceType == "" {
		s.ControlPlane.InstanceType = DefaultControlPlaneType
	}
	if s.ControlPlane.Replicas == nil {
		n := DefaultControlPlaneReplicas
		s.ControlPlane.Replicas = &n
	}
	if s.Workers.InstanceType == "" {
		s.Workers.InstanceType = DefaultWorkerType
	}
	if s.Workers.Replicas == nil {
		n := DefaultWorkerReplicas
		s.Workers.Replicas = &n
	}
	for i := range s.GPUPools {
		p := &s.GPUPools[i]
		if p.Access == "" {
			p.Access = AccessShared
		}
		g, _, ok := LookupGPU(p.GPU)
		if ok && p.InstanceType == "" {
			p.InstanceType = g.DefaultInstanceType
		}
		if len(p.Zones) == 0 && s.Platform.AWS != nil {
			p.Zones = append([]string(nil), s.Platform.AWS.Zones...)
		}
	}
	if o := s.OAuth; o != nil && o.Google != nil && o.Google.Name == "" {
		o.Google.Name = DefaultGoogleIdPName
	}
	if ct := s.Certificates; ct != nil {
		if ct.ACME.PropagationTimeout == "" {
			ct.ACME.PropagationTimeout = DefaultPropagationTimeout
		}
	}
	if g := s.GitOps; g != nil {
		if g.OperatorChannel == "" {
			g.OperatorChannel = DefaultOperatorChannel
		}
		if g.Root.Revision == "" {
			g.Root.Revision = DefaultRootRevision
		}
	}
}

// ACMEDirectory is the directory URL of the configured ACME server.
func (a ACME) ACMEDirectory() string {
	if u, ok := ACMEServers[a.Server]; ok {
		return u
	}
	return a.Server
}

// Installs reports whether the bootstrap installs the cluster (false for platform.existing).
func (c *Cluster) Installs() bool { return c.Spec.Platform.Existing == nil }

// APIHost is the cluster's API host name.
func (c *Cluster) APIHost() string { return "api." + c.Metadata.Name + "." + c.Spec.BaseDomain }

// AppsDomain is the cluster's default ingress domain.
func (c *Cluster) AppsDomain() string { return "apps." + c.Metadata.Name + "." + c.Spec.BaseDomain }

// ConsoleURL is the web console address.
func (c *Cluster) ConsoleURL() string {
	return "https://console-openshift-console." + c.AppsDomain()
}
