package fakeinstall

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// InstallConfig is the part of install-config.yaml (install.openshift.io v1)
// that the fake reads. github.com/openshift/installer cannot be fetched from
// the module proxy, and the fake must not share the product's types, so
// these are its own. Unknown fields are ignored, as a partial reader should.
type InstallConfig struct {
	APIVersion   string        `json:"apiVersion"`
	Metadata     ObjectMeta    `json:"metadata"`
	BaseDomain   string        `json:"baseDomain"`
	Platform     Platform      `json:"platform"`
	ControlPlane *MachinePool  `json:"controlPlane,omitempty"`
	Compute      []MachinePool `json:"compute,omitempty"`
	PullSecret   string        `json:"pullSecret"`
	SSHKey       string        `json:"sshKey,omitempty"`
	Publish      string        `json:"publish,omitempty"`
}

// ObjectMeta holds the cluster name.
type ObjectMeta struct {
	Name string `json:"name"`
}

// Platform is the cloud the cluster runs on; the fake plays AWS only.
type Platform struct {
	AWS *AWSPlatform `json:"aws,omitempty"`
}

// AWSPlatform is platform.aws.
type AWSPlatform struct {
	Region                 string            `json:"region"`
	DefaultMachinePlatform *AWSMachinePool   `json:"defaultMachinePlatform,omitempty"`
	UserTags               map[string]string `json:"userTags,omitempty"`
}

// MachinePool is controlPlane or one entry of compute.
type MachinePool struct {
	Name         string              `json:"name"`
	Replicas     *int64              `json:"replicas,omitempty"`
	Architecture string              `json:"architecture,omitempty"`
	Platform     MachinePoolPlatform `json:"platform"`
}

// MachinePoolPlatform is a pool's platform section.
type MachinePoolPlatform struct {
	AWS *AWSMachinePool `json:"aws,omitempty"`
}

// AWSMachinePool is a pool's platform.aws section.
type AWSMachinePool struct {
	Zones        []string    `json:"zones,omitempty"`
	InstanceType string      `json:"type,omitempty"`
	AMIID        string      `json:"amiID,omitempty"`
	RootVolume   *RootVolume `json:"rootVolume,omitempty"`
}

// RootVolume is a pool's platform.aws.rootVolume.
type RootVolume struct {
	Size int64  `json:"size,omitempty"`
	Type string `json:"type,omitempty"`
	IOPS int64  `json:"iops,omitempty"`
}

// Defaults the real installer applies and the fake mirrors.
const (
	defaultInstanceType     = "m6i.xlarge"
	defaultAMI              = "ami-0a1b2c3d4e5f"
	defaultRootVolumeSize   = 120
	defaultRootVolumeType   = "gp3"
	defaultReplicas         = 3
	installConfigFile       = "install-config.yaml"
	installConfigErrorMsg   = `failed to load asset "Install Config"`
	clusterNameMaxInfraBase = 21 // 27 (infraID limit) - 6 ("-" + 5 random)
)

// parseInstallConfig reads install-config.yaml. It returns the typed view
// and the canonical JSON of the whole document (every field, even those the
// fake does not know), which the state file keeps.
func parseInstallConfig(data []byte) (*InstallConfig, json.RawMessage, error) {
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to unmarshal %s: %w", installConfigFile, err)
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, nil, fmt.Errorf("failed to unmarshal %s: %w", installConfigFile, err)
	}
	if _, ok := generic.(map[string]any); !ok {
		return nil, nil, fmt.Errorf("failed to unmarshal %s: error unmarshaling JSON: the document is not a mapping", installConfigFile)
	}
	canonical, err := json.Marshal(generic) // map keys sorted: stable for comparisons
	if err != nil {
		return nil, nil, fmt.Errorf("failed to unmarshal %s: %w", installConfigFile, err)
	}
	var ic InstallConfig
	if err := json.Unmarshal(canonical, &ic); err != nil {
		return nil, nil, fmt.Errorf("failed to unmarshal %s: error unmarshaling JSON: %w", installConfigFile, err)
	}
	return &ic, canonical, nil
}

// fieldError is one validation problem, formatted like
// k8s.io/apimachinery/pkg/util/validation/field.Error, which the real
// installer uses.
type fieldError struct {
	path   string
	kind   string // "Required value", "Invalid value", "Unsupported value", "Duplicate value"
	value  any    // nil for Required
	detail string
}

func (e fieldError) String() string {
	s := e.path + ": " + e.kind
	if e.value != nil {
		switch v := e.value.(type) {
		case string:
			s += ": " + strconv.Quote(v)
		default:
			s += fmt.Sprintf(": %v", v)
		}
	}
	if e.detail != "" {
		s += ": " + e.detail
	}
	return s
}

func required(path, detail string) fieldError {
	return fieldError{path: path, kind: "Required value", detail: detail}
}

func invalid(path string, value any, detail string) fieldError {
	return fieldError{path: path, kind: "Invalid value", value: value, detail: detail}
}

func unsupported(path string, value string, supported ...string) fieldError {
	quoted := make([]string, len(supported))
	for i, s := range supported {
		quoted[i] = strconv.Quote(s)
	}
	return fieldError{path: path, kind: "Unsupported value", value: value, detail: "supported values: " + strings.Join(quoted, ", ")}
}

// aggregate joins errors like utilerrors.NewAggregate: one error alone,
// several as "[a, b]".
func aggregate(errs []fieldError) string {
	if len(errs) == 1 {
		return errs[0].String()
	}
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.String()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

var regionPattern = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$`)

// redacted stands for the pull secret in messages: the real installer
// echoes it, the fake does not, so logs of the tool under test stay clean.
const redacted = "<redacted>"

// validate checks the fields the real installer requires and reports them
// with their field paths. It also fills the defaults (control plane and
// compute pools) the real installer fills before validating.
func (ic *InstallConfig) validate() []fieldError {
	var errs []fieldError
	switch {
	case ic.APIVersion == "":
		errs = append(errs, required("apiVersion", "install-config version required"))
	case ic.APIVersion != "v1":
		errs = append(errs, invalid("apiVersion", ic.APIVersion, `install-config version must be "v1"`))
	}
	if ic.Metadata.Name == "" {
		errs = append(errs, required("metadata.name", "cluster name required"))
	} else if msgs := validation.IsDNS1123Label(ic.Metadata.Name); len(msgs) > 0 {
		errs = append(errs, invalid("metadata.name", ic.Metadata.Name, strings.Join(msgs, "; ")))
	}
	if ic.BaseDomain == "" {
		errs = append(errs, required("baseDomain", ""))
	} else if msgs := validation.IsDNS1123Subdomain(ic.BaseDomain); len(msgs) > 0 {
		errs = append(errs, invalid("baseDomain", ic.BaseDomain, strings.Join(msgs, "; ")))
	}
	region := ""
	if ic.Platform.AWS == nil {
		errs = append(errs, invalid("platform", "", "must specify one of the platforms (aws)"))
	} else {
		region = ic.Platform.AWS.Region
		switch {
		case region == "":
			errs = append(errs, required("platform.aws.region", ""))
		case !regionPattern.MatchString(region):
			errs = append(errs, invalid("platform.aws.region", region, "invalid AWS region"))
		}
	}
	errs = append(errs, validatePullSecret(ic.PullSecret)...)
	// openshift-install pkg/types/validation/installconfig.go → pkg/validate/validate.go
	// SSHPublicKey: ssh.ParseAuthorizedKey, its error as the detail.
	if ic.SSHKey != "" {
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(ic.SSHKey)); err != nil {
			errs = append(errs, invalid("sshKey", ic.SSHKey, err.Error()))
		}
	}
	switch ic.Publish {
	case "", "External", "Internal", "Mixed":
	default:
		errs = append(errs, unsupported("publish", ic.Publish, "External", "Internal", "Mixed"))
	}

	if ic.ControlPlane == nil {
		ic.ControlPlane = &MachinePool{Name: "master"}
	}
	if ic.ControlPlane.Replicas == nil {
		r := int64(defaultReplicas)
		ic.ControlPlane.Replicas = &r
	}
	if ic.ControlPlane.Name != "master" {
		errs = append(errs, unsupported("controlPlane.name", ic.ControlPlane.Name, "master"))
	}
	if *ic.ControlPlane.Replicas < 1 {
		errs = append(errs, invalid("controlPlane.replicas", *ic.ControlPlane.Replicas, "number of control plane replicas must be positive"))
	}
	errs = append(errs, validatePool("controlPlane", ic.ControlPlane, region)...)

	if ic.Compute == nil {
		ic.Compute = []MachinePool{{Name: "worker"}}
	}
	seen := map[string]bool{}
	for i := range ic.Compute {
		p := &ic.Compute[i]
		path := fmt.Sprintf("compute[%d]", i)
		if p.Replicas == nil {
			r := int64(defaultReplicas)
			p.Replicas = &r
		}
		switch {
		case p.Name != "worker" && p.Name != "edge":
			errs = append(errs, unsupported(path+".name", p.Name, "worker", "edge"))
		case seen[p.Name]:
			errs = append(errs, fieldError{path: path + ".name", kind: "Duplicate value", value: p.Name})
		}
		seen[p.Name] = true
		if *p.Replicas < 0 {
			errs = append(errs, invalid(path+".replicas", *p.Replicas, "number of compute replicas must not be negative"))
		}
		errs = append(errs, validatePool(path, p, region)...)
	}
	return errs
}

func validatePool(path string, p *MachinePool, region string) []fieldError {
	var errs []fieldError
	switch p.Architecture {
	case "", "amd64", "arm64":
	default:
		errs = append(errs, unsupported(path+".architecture", p.Architecture, "amd64", "arm64"))
	}
	if p.Platform.AWS == nil || region == "" {
		return errs
	}
	for i, z := range p.Platform.AWS.Zones {
		if !strings.HasPrefix(z, region) || len(z) <= len(region) {
			errs = append(errs, invalid(fmt.Sprintf("%s.platform.aws.zones[%d]", path, i), z, fmt.Sprintf("zone is not in region %q", region)))
		}
	}
	if rv := p.Platform.AWS.RootVolume; rv != nil && rv.Size < 0 {
		errs = append(errs, invalid(path+".platform.aws.rootVolume.size", rv.Size, "volume size must not be negative"))
	}
	return errs
}

func validatePullSecret(secret string) []fieldError {
	if secret == "" {
		return []fieldError{required("pullSecret", "")}
	}
	var ps struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	if err := json.Unmarshal([]byte(secret), &ps); err != nil {
		return []fieldError{invalid("pullSecret", redacted, err.Error())}
	}
	if len(ps.Auths) == 0 {
		return []fieldError{invalid("pullSecret", redacted, "auths required")}
	}
	return nil
}

// clusterDomain is <name>.<baseDomain>.
func (ic *InstallConfig) clusterDomain() string {
	return ic.Metadata.Name + "." + ic.BaseDomain
}

// poolAWS merges a pool's platform.aws over platform.aws.defaultMachinePlatform
// and fills the real defaults: instance type, AMI, root volume and, when no
// zone is given, zones a, b and c of the region.
func (ic *InstallConfig) poolAWS(p *MachinePool) AWSMachinePool {
	var out AWSMachinePool
	if d := ic.Platform.AWS.DefaultMachinePlatform; d != nil {
		out = *d
	}
	if a := p.Platform.AWS; a != nil {
		if len(a.Zones) > 0 {
			out.Zones = a.Zones
		}
		if a.InstanceType != "" {
			out.InstanceType = a.InstanceType
		}
		if a.AMIID != "" {
			out.AMIID = a.AMIID
		}
		if a.RootVolume != nil {
			out.RootVolume = a.RootVolume
		}
	}
	if out.InstanceType == "" {
		out.InstanceType = defaultInstanceType
	}
	if out.AMIID == "" {
		out.AMIID = defaultAMI
	}
	rv := RootVolume{Size: defaultRootVolumeSize, Type: defaultRootVolumeType}
	if out.RootVolume != nil {
		if out.RootVolume.Size > 0 {
			rv.Size = out.RootVolume.Size
		}
		if out.RootVolume.Type != "" {
			rv.Type = out.RootVolume.Type
		}
		rv.IOPS = out.RootVolume.IOPS
	}
	out.RootVolume = &rv
	if len(out.Zones) == 0 {
		r := ic.Platform.AWS.Region
		out.Zones = []string{r + "a", r + "b", r + "c"}
	}
	return out
}
