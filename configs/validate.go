package configs

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Compiled on first use, not at start-up (guarded by cmd/rhoai-bootstrap's TestOwnPackagesDoNoWorkAtInit).
var (
	regionRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]+$`) })
	channelRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9.\-]*$`) })
)

// GPU MachineSets are named <infraID>-<pool>-<zone> (as the installer names its own worker
// MachineSets: openshift/installer pkg/asset/machines/aws/machinesets.go), and the name is
// also the value of the machine.openshift.io/cluster-api-machineset label on the
// MachineSet's selector and on every Machine it creates, so it must fit in a label value
// (63 characters, validation.LabelValueMaxLength). The infra ID is only known once
// `openshift-install create manifests` has run; the installer cuts the cluster name so
// that the infra ID is at most 27 characters (openshift/installer
// pkg/asset/installconfig/clusterid.go: maxLen 27, "-" and 5 random characters). Checking
// against that worst case rejects, before anything changes, every file whose names would
// not fit on some cluster. Shortening the name with a hash (as the installer does for
// some resources) was not chosen: the name is what people read in `oc get machinesets`
// and find in the cluster file, and a rejected file costs a rename, a broken cluster far more.
const (
	worstInfraIDLen     = 27
	machineSetNameFixed = worstInfraIDLen + 2 // the two "-" separators
)

// Validate reports every problem in the (defaulted) cluster, each with its field path.
func (c *Cluster) Validate() field.ErrorList {
	var errs field.ErrorList
	if c.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), c.APIVersion, []string{APIVersion}))
	}
	if c.Kind != Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), c.Kind, []string{Kind}))
	}
	name := field.NewPath("metadata", "name")
	if c.Metadata.Name == "" {
		errs = append(errs, field.Required(name, "the cluster name (api.<name>.<baseDomain>)"))
	} else {
		for _, m := range validation.IsDNS1123Label(c.Metadata.Name) {
			errs = append(errs, field.Invalid(name, c.Metadata.Name, m))
		}
	}
	spec := field.NewPath("spec")
	s := &c.Spec
	if s.BaseDomain == "" {
		errs = append(errs, field.Required(spec.Child("baseDomain"), "the DNS domain with a Route53 public hosted zone, e.g. example.com"))
	} else {
		for _, m := range validation.IsDNS1123Subdomain(s.BaseDomain) {
			errs = append(errs, field.Invalid(spec.Child("baseDomain"), s.BaseDomain, m))
		}
	}
	errs = append(errs, c.validatePlatform(spec.Child("platform"))...)
	if c.Installs() {
		os := spec.Child("openshift")
		if s.OpenShift.PullSecretFile == "" {
			errs = append(errs, field.Required(os.Child("pullSecretFile"), "download it from console.redhat.com/openshift/install/pull-secret"))
		}
	}
	if r := s.ControlPlane.Replicas; r != nil && *r != 1 && *r != 3 {
		errs = append(errs, field.Invalid(spec.Child("controlPlane", "replicas"), *r, "must be 3, or 1 for a single-node cluster"))
	}
	if r := s.Workers.Replicas; r != nil && *r < 0 {
		errs = append(errs, field.Invalid(spec.Child("workers", "replicas"), *r, "must be 0 or more"))
	}
	errs = append(errs, c.validateGPUPools(spec.Child("gpuPools"))...)
	if m := s.MaxHourlyCost; m != nil && !(*m > 0) {
		errs = append(errs, field.Invalid(spec.Child("maxHourlyCost"), *m, "must be more than 0 (US dollars per hour at the GPU pools' max); leave it out for no limit"))
	}
	if s.OAuth != nil {
		errs = append(errs, validateOAuth(s.OAuth, spec.Child("oauth"))...)
	}
	if s.Certificates != nil {
		errs = append(errs, validateACME(&s.Certificates.ACME, spec.Child("certificates", "acme"))...)
	}
	if s.GitOps != nil {
		errs = append(errs, validateGitOps(s.GitOps, spec.Child("gitops"))...)
	}
	return shorten(errs)
}

func (c *Cluster) validatePlatform(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	pl := c.Spec.Platform
	if pl.AWS == nil {
		return append(errs, field.Required(p.Child("aws"), "region and zones (AWS is the supported platform)"))
	}
	aws := p.Child("aws")
	if pl.AWS.Region == "" {
		errs = append(errs, field.Required(aws.Child("region"), "e.g. us-east-1"))
	} else if !regionRE().MatchString(pl.AWS.Region) {
		errs = append(errs, field.Invalid(aws.Child("region"), pl.AWS.Region, "not an AWS region name (e.g. us-east-1)"))
	}
	if len(pl.AWS.Zones) == 0 && c.Installs() {
		example := "us-east-1a"
		if regionRE().MatchString(pl.AWS.Region) {
			example = pl.AWS.Region + "a"
		}
		errs = append(errs, field.Required(aws.Child("zones"), "at least one availability zone, e.g. "+example))
	}
	seen := sets.New[string]()
	for i, z := range pl.AWS.Zones {
		zp := aws.Child("zones").Index(i)
		if seen.Has(z) {
			errs = append(errs, field.Duplicate(zp, z))
		}
		seen.Insert(z)
		if !isZoneOf(z, pl.AWS.Region) {
			errs = append(errs, field.Invalid(zp, z, "not a zone of region "+Quote(pl.AWS.Region)))
		}
	}
	if e := pl.Existing; e != nil && e.Kubeconfig == "" {
		errs = append(errs, field.Required(p.Child("existing", "kubeconfig"), "the kubeconfig of the running cluster"))
	}
	return errs
}

func isZoneOf(zone, region string) bool {
	rest, ok := strings.CutPrefix(zone, region)
	return ok && len(rest) >= 1 && len(rest) <= 8 && strings.Trim(rest, "abcdefghijklmnopqrstuvwxyz-0123456789") == ""
}

func (c *Cluster) validateGPUPools(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := sets.New[string]()
	var platformZones sets.Set[string]
	if c.Spec.Platform.AWS != nil {
		platformZones = sets.New(c.Spec.Platform.AWS.Zones...)
	}
	for i, pool := range c.Spec.GPUPools {
		pp := p.Index(i)
		switch {
		case pool.Name == "":
			errs = append(errs, field.Required(pp.Child("name"), "a short DNS label, e.g. t4-shared"))
		case len(validation.IsDNS1123Label(pool.Name)) > 0:
			errs = append(errs, field.Invalid(pp.Child("name"), pool.Name, "must be a lowercase DNS label"))
		case names.Has(pool.Name):
			errs = append(errs, field.Duplicate(pp.Child("name"), pool.Name))
		}
		names.Insert(pool.Name)
		g, _, ok := LookupGPU(pool.GPU)
		if !ok {
			errs = append(errs, field.NotSupported(pp.Child("gpu"), pool.GPU, GPUNames()))
		} else if _, err := g.Size(pool.InstanceType); err != nil {
			errs = append(errs, field.Invalid(pp.Child("instanceType"), pool.InstanceType, err.Error()))
		}
		if pool.Access != AccessShared && pool.Access != AccessPrivate {
			errs = append(errs, field.NotSupported(pp.Child("access"), pool.Access, []Access{AccessShared, AccessPrivate}))
		}
		if pool.Min < 0 {
			errs = append(errs, field.Invalid(pp.Child("min"), pool.Min, "must be 0 or more"))
		}
		switch {
		case pool.Max < 0:
			errs = append(errs, field.Invalid(pp.Child("max"), pool.Max, "must be 0 or more"))
		case pool.Max < pool.Min:
			errs = append(errs, field.Invalid(pp.Child("max"), pool.Max, fmt.Sprintf("must not be less than min (%d)", pool.Min)))
		case pool.Max == 0:
			errs = append(errs, field.Invalid(pp.Child("max"), pool.Max, "must be at least 1, or remove the pool"))
		}
		if len(pool.Zones) == 0 && c.Installs() {
			errs = append(errs, field.Required(pp.Child("zones"), "no zones given here or in spec.platform.aws.zones"))
		}
		for j, z := range pool.Zones {
			if platformZones.Len() > 0 && !platformZones.Has(z) {
				errs = append(errs, field.NotSupported(pp.Child("zones").Index(j), z, sets.List(platformZones)))
			}
		}
		if e := machineSetNameTooLong(pool, pp.Child("name")); e != nil {
			errs = append(errs, e)
		}
	}
	return errs
}

// machineSetNameTooLong reports the first zone of pool whose MachineSet name, with the
// longest infra ID the installer makes, would not fit in a label value.
func machineSetNameTooLong(pool GPUPool, p *field.Path) *field.Error {
	for _, z := range pool.Zones {
		n := machineSetNameFixed + len(pool.Name) + len(z)
		if n <= validation.LabelValueMaxLength {
			continue
		}
		fit := validation.LabelValueMaxLength - machineSetNameFixed - len(z)
		return field.Invalid(p, pool.Name, fmt.Sprintf(
			"pool %s in zone %s makes MachineSet names of up to %d characters (<infraID>-<pool>-<zone>, the installer's infra ID being up to %d), "+
				"over the %d a machine.openshift.io/cluster-api-machineset label value allows: shorten the pool name to at most %d characters",
			Quote(pool.Name), bare(z), n, worstInfraIDLen, validation.LabelValueMaxLength, max(fit, 1)))
	}
	return nil
}

func validateSecretRef(r SecretRef, p *field.Path) field.ErrorList {
	switch {
	case r.plain:
		return field.ErrorList{field.Forbidden(p, "a secret value must not be written in the cluster file: use {env: NAME} or {file: PATH}")}
	case r.Env != "" && r.File != "":
		return field.ErrorList{field.Invalid(p, r.String(), "set only one of env or file")}
	case r.Env == "" && r.File == "":
		return field.ErrorList{field.Required(p, "{env: NAME} or {file: PATH}")}
	case r.Env != "" && len(validation.IsEnvVarName(r.Env)) > 0:
		return field.ErrorList{field.Invalid(p.Child("env"), r.Env, "not an environment variable name")}
	}
	return nil
}

func validateOAuth(o *OAuth, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if g := o.Google; g != nil {
		gp := p.Child("google")
		if g.ClientID == "" {
			errs = append(errs, field.Required(gp.Child("clientID"), "the OAuth client ID from the Google Cloud console"))
		}
		errs = append(errs, validateSecretRef(g.ClientSecret, gp.Child("clientSecret"))...)
		if g.HostedDomain != "" {
			for _, m := range validation.IsDNS1123Subdomain(g.HostedDomain) {
				errs = append(errs, field.Invalid(gp.Child("hostedDomain"), g.HostedDomain, m))
			}
		}
		for _, m := range validation.IsDNS1123Subdomain(g.Name) {
			errs = append(errs, field.Invalid(gp.Child("name"), g.Name, m))
		}
	}
	for i, a := range o.Admins {
		if _, err := mail.ParseAddress(a); err != nil || strings.ContainsAny(a, " <>") {
			errs = append(errs, field.Invalid(p.Child("admins").Index(i), a, "must be an e-mail address"))
		}
	}
	if o.RemoveKubeadmin && (o.Google == nil || len(o.Admins) == 0) {
		errs = append(errs, field.Invalid(p.Child("removeKubeadmin"), true, "needs oauth.google and at least one entry in oauth.admins, or nobody could log in"))
	}
	return errs
}

// validateACME requires the ACME server to be chosen: a default of Let's Encrypt staging
// silently gave clusters certificates that nothing trusts, and a default of production
// would spend a rate-limited resource nobody chose to spend. `init` proposes production.
func validateACME(a *ACME, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if a.Server == "" {
		errs = append(errs, field.Required(p.Child("server"), `choose "letsencrypt" (certificates every browser and client trusts), `+
			`"letsencrypt-staging" (untrusted test certificates) or the https:// directory URL of your own ACME server`))
	} else if _, known := ACMEServers[a.Server]; !known {
		u, err := url.Parse(a.Server)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, field.Invalid(p.Child("server"), a.Server, `must be "letsencrypt", "letsencrypt-staging" or an https:// ACME directory URL`))
		}
	}
	if a.Email == "" {
		errs = append(errs, field.Required(p.Child("email"), "the ACME account contact (expiry notices go there)"))
	} else if _, err := mail.ParseAddress(a.Email); err != nil {
		errs = append(errs, field.Invalid(p.Child("email"), a.Email, "must be an e-mail address"))
	}
	for i, r := range a.Resolvers {
		if _, _, err := net.SplitHostPort(r); err != nil {
			errs = append(errs, field.Invalid(p.Child("resolvers").Index(i), r, "must be host:port"))
		}
	}
	if d, err := time.ParseDuration(a.PropagationTimeout); err != nil || d <= 0 {
		errs = append(errs, field.Invalid(p.Child("propagationTimeout"), a.PropagationTimeout, "must be a positive duration such as 10m"))
	}
	return errs
}

func validateGitOps(g *GitOps, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if !channelRE().MatchString(g.OperatorChannel) {
		errs = append(errs, field.Invalid(p.Child("operatorChannel"), g.OperatorChannel, "must be an OLM channel name such as gitops-1.16"))
	}
	rp := p.Child("root")
	switch {
	case g.Root.RepoURL == "":
		errs = append(errs, field.Required(rp.Child("repoURL"), "the Git repository Argo CD syncs from"))
	case !validRepoURL(g.Root.RepoURL):
		errs = append(errs, field.Invalid(rp.Child("repoURL"), g.Root.RepoURL, "must be an https://, ssh:// or git@host:path repository URL"))
	}
	switch {
	case g.Root.Path == "":
		errs = append(errs, field.Required(rp.Child("path"), "the folder of the cluster overlay, e.g. manifests/gitops/clusters/overlays/dev"))
	case path.IsAbs(g.Root.Path) || strings.HasPrefix(path.Clean(g.Root.Path), ".."):
		errs = append(errs, field.Invalid(rp.Child("path"), g.Root.Path, "must be relative to the repository root"))
	}
	return errs
}

func validRepoURL(s string) bool {
	if strings.HasPrefix(s, "git@") && strings.Contains(s, ":") {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && u.Host != "" && (u.Scheme == "https" || u.Scheme == "ssh" || u.Scheme == "http" || u.Scheme == "file")
}

// Warnings lists things that are valid but worth saying, such as an alias that was used.
func (c *Cluster) Warnings() []string {
	var w []string
	for i, p := range c.Spec.GPUPools {
		if g, alias, ok := LookupGPU(p.GPU); ok && alias != "" {
			w = append(w, fmt.Sprintf("spec.gpuPools[%d].gpu: %q is read as %s (%s instances carry NVIDIA %s, %d GB); labels and taints say %q",
				i, p.GPU, g.Name, g.Family, g.Name, g.MemoryGiB, p.AcceleratorValue()))
		}
	}
	if ct := c.Spec.Certificates; ct != nil {
		if msg := untrustedCA(ct.ACME); msg != "" {
			w = append(w, "spec.certificates.acme.server: "+msg)
		}
	}
	return w
}

// untrustedCA says, for an ACME server whose certificates the cluster's own clients do
// not trust, what breaks and what to do. Pods reach *.apps routes (the OAuth server,
// the console, model endpoints) through the ingress certificate the bootstrap
// installs; they trust the system roots plus whatever proxy/cluster .spec.trustedCA
// adds (https://docs.redhat.com/en/documentation/openshift_container_platform/4.19/html/security_and_compliance/configuring-certificates#ca-bundle-understanding_updating-ca-bundle).
func untrustedCA(a ACME) string {
	const fix = "add its root certificate to a ConfigMap in openshift-config and name it in proxy/cluster .spec.trustedCA " +
		"(the Machine Config Operator then rolls every node), or choose a publicly trusted CA"
	switch {
	case a.Server == "letsencrypt":
		return ""
	case a.Server == "letsencrypt-staging":
		return "Let's Encrypt staging certificates are trusted by no browser and by no client in the cluster: " +
			"pods calling *.apps routes fail TLS verification. Use \"letsencrypt\" for a cluster people use; for staging, " + fix
	case a.Server != "":
		return "certificates from " + a.Server + " chain to a private CA that browsers and in-cluster clients do not trust by default: " +
			"pods calling *.apps routes fail TLS verification unless you " + fix
	}
	return ""
}
