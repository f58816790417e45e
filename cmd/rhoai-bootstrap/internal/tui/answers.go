package tui

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/pricing"
)

// answers is everything `init` asks, before it becomes a configs.Cluster. The wizard and
// the non-interactive path both fill one of these, so they build the same file.
type answers struct {
	Name, BaseDomain, Region string
	Zones                    []string
	PullSecretFile           string
	SSHPublicKeyFile         string
	Pools                    []configs.GPUPool
	GoogleClientID           string
	SecretEnv, SecretFile    string
	Admins                   []string
	RemoveKubeadmin          bool
	// ACME is "staging", "production", "none", an ACME directory URL, or "" (no
	// certificates unless an e-mail is given).
	ACME                                   string
	ACMEEmail                              string
	GitOpsRepo, GitOpsRevision, GitOpsPath string

	// Wizard-only flow state: a pool is being added; a custom ACME URL or a secret file
	// was chosen.
	addingPool     bool
	acmeCustom     bool
	secretFromFile bool
}

func (a answers) clone() answers {
	a.Zones = slices.Clone(a.Zones)
	a.Admins = slices.Clone(a.Admins)
	pools := make([]configs.GPUPool, len(a.Pools))
	for i, p := range a.Pools {
		p.Zones = slices.Clone(p.Zones)
		pools[i] = p
	}
	a.Pools = pools
	return a
}

// acmeServer maps the wizard's words to the config's server names.
func acmeServer(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "production", "prod", "letsencrypt":
		return "letsencrypt"
	case "staging", "letsencrypt-staging":
		return "letsencrypt-staging"
	}
	return strings.TrimSpace(v)
}

func acmeNone(v string) bool { return v == "" || strings.EqualFold(v, "none") }

// cluster builds the file's content. It is not defaulted: the written file holds what was
// chosen plus the explicit machine sizes, so later changes of defaults stay visible.
func (a answers) cluster() *configs.Cluster {
	c := &configs.Cluster{APIVersion: configs.APIVersion, Kind: configs.Kind}
	c.Metadata.Name = a.Name
	s := &c.Spec
	s.BaseDomain = a.BaseDomain
	s.Platform.AWS = &configs.AWSPlatform{Region: a.Region, Zones: slices.Clone(a.Zones)}
	s.OpenShift = configs.OpenShift{
		Installer:        configs.DefaultInstaller,
		PullSecretFile:   a.PullSecretFile,
		SSHPublicKeyFile: a.SSHPublicKeyFile,
	}
	cp, wk := configs.DefaultControlPlaneReplicas, configs.DefaultWorkerReplicas
	s.ControlPlane = configs.MachinePool{InstanceType: configs.DefaultControlPlaneType, Replicas: &cp}
	s.Workers = configs.MachinePool{InstanceType: configs.DefaultWorkerType, Replicas: &wk}
	s.GPUPools = a.clone().Pools
	if len(s.GPUPools) == 0 {
		s.GPUPools = nil
	}
	secret := configs.SecretRef{Env: a.SecretEnv, File: a.SecretFile}
	if a.GoogleClientID != "" || !secret.IsZero() || len(a.Admins) > 0 || a.RemoveKubeadmin {
		s.OAuth = &configs.OAuth{Admins: slices.Clone(a.Admins), RemoveKubeadmin: a.RemoveKubeadmin}
		if a.GoogleClientID != "" || !secret.IsZero() {
			s.OAuth.Google = &configs.GoogleIdP{ClientID: a.GoogleClientID, ClientSecret: secret}
		}
	}
	if !strings.EqualFold(a.ACME, "none") && (a.ACME != "" || a.ACMEEmail != "") {
		s.Certificates = &configs.Certificates{ACME: configs.ACME{Server: acmeServer(a.ACME), Email: a.ACMEEmail}}
	}
	if a.GitOpsRepo != "" || a.GitOpsPath != "" {
		s.GitOps = &configs.GitOps{Root: configs.RootApp{RepoURL: a.GitOpsRepo, Revision: a.GitOpsRevision, Path: a.GitOpsPath}}
	}
	return c
}

// validate defaults a copy of the cluster and returns every problem, as `validate` would.
func (a answers) validate() field.ErrorList {
	c := a.cluster()
	c.Default()
	return c.Validate()
}

// cost is what the review screen shows below the file: the machines' cost per hour at the
// pools' min and max. init works offline, so the prices are the built-in table's (the
// text says so, and how old it is); `plan` asks the AWS Price List API.
func (a answers) cost() string {
	c := a.cluster()
	c.Default()
	var b strings.Builder
	est := pricing.Estimator{}.Estimate(context.Background(), c)
	b.WriteString("Cost per hour (not written to the file): " + pricing.Headline(est) + "\n")
	pricing.WriteText(&b, est, "")
	return b.String()
}

// under keeps the errors whose field path is one of prefixes or below it.
func under(errs field.ErrorList, prefixes ...string) field.ErrorList {
	var out field.ErrorList
	for _, e := range errs {
		for _, p := range prefixes {
			if e.Field == p || strings.HasPrefix(e.Field, p+".") || strings.HasPrefix(e.Field, p+"[") {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// render is the file `init` writes.
func (a answers) render() ([]byte, error) {
	y, err := configs.Marshal(a.cluster())
	if err != nil {
		return nil, fmt.Errorf("rendering the cluster file: %w", err)
	}
	head := "# Written by rhoai-bootstrap init. Check it: rhoai-bootstrap validate -f FILE\n" +
		"# Secrets are references ({env: NAME} or {file: PATH}), never values.\n"
	return append([]byte(head), y...), nil
}

// parsePool reads one --gpu-pool value: name=t4-shared,gpu=T4,access=shared,min=0,max=4,spot=false
// (plus instanceType=… and zones=a:b). Problems carry the pool's field path so they read
// like the rest of the validation.
func parsePool(s string, i int) (configs.GPUPool, field.ErrorList) {
	p := configs.GPUPool{}
	path := field.NewPath("spec", "gpuPools").Index(i)
	var errs field.ErrorList
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			errs = append(errs, field.Invalid(path, kv, "expected key=value (keys: name, gpu, access, min, max, spot, instanceType, zones)"))
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "name":
			p.Name = v
		case "gpu":
			p.GPU = v
		case "access":
			p.Access = configs.Access(strings.ToLower(v))
		case "min", "max":
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, field.Invalid(path.Child(strings.ToLower(k)), v, "must be a whole number"))
				continue
			}
			if strings.EqualFold(k, "min") {
				p.Min = n
			} else {
				p.Max = n
			}
		case "spot":
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, field.Invalid(path.Child("spot"), v, "must be true or false"))
				continue
			}
			p.Spot = b
		case "instancetype", "instance-type", "type":
			p.InstanceType = v
		case "zones":
			for _, z := range strings.Split(v, ":") {
				if z = strings.TrimSpace(z); z != "" {
					p.Zones = append(p.Zones, z)
				}
			}
		default:
			errs = append(errs, field.Invalid(path, k, "unknown key (keys: name, gpu, access, min, max, spot, instanceType, zones)"))
		}
	}
	if p.Access == "" {
		p.Access = configs.AccessShared
	}
	if p.Name == "" && p.GPU != "" {
		p.Name = defaultPoolName(p.GPU, p.Access, nil)
	}
	return p, errs
}

// defaultPoolName is "<gpu>-<access>", made unique among the pools so far.
func defaultPoolName(gpu string, access configs.Access, pools []configs.GPUPool) string {
	base := strings.ToLower(gpu) + "-" + string(access)
	name := base
	for n := 2; slices.ContainsFunc(pools, func(p configs.GPUPool) bool { return p.Name == name }); n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	return name
}

// splitList reads "a, b c" as [a b c].
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// region is an AWS region and the zone letters it offers. Zone names map to physical zones
// per account, so preflight checks what the account really offers; this list only spares
// typing.
type region struct{ Code, Name, Zones string }

var regions = []region{
	{"us-east-1", "US East (N. Virginia)", "abcdef"},
	{"us-east-2", "US East (Ohio)", "abc"},
	{"us-west-1", "US West (N. California)", "abc"},
	{"us-west-2", "US West (Oregon)", "abcd"},
	{"ca-central-1", "Canada (Central)", "abd"},
	{"ca-west-1", "Canada West (Calgary)", "abc"},
	{"mx-central-1", "Mexico (Central)", "abc"},
	{"sa-east-1", "South America (São Paulo)", "abc"},
	{"eu-west-1", "Europe (Ireland)", "abc"},
	{"eu-west-2", "Europe (London)", "abc"},
	{"eu-west-3", "Europe (Paris)", "abc"},
	{"eu-central-1", "Europe (Frankfurt)", "abc"},
	{"eu-central-2", "Europe (Zurich)", "abc"},
	{"eu-north-1", "Europe (Stockholm)", "abc"},
	{"eu-south-1", "Europe (Milan)", "abc"},
	{"eu-south-2", "Europe (Spain)", "abc"},
	{"ap-south-1", "Asia Pacific (Mumbai)", "abc"},
	{"ap-south-2", "Asia Pacific (Hyderabad)", "abc"},
	{"ap-east-1", "Asia Pacific (Hong Kong)", "abc"},
	{"ap-northeast-1", "Asia Pacific (Tokyo)", "acd"},
	{"ap-northeast-2", "Asia Pacific (Seoul)", "abcd"},
	{"ap-northeast-3", "Asia Pacific (Osaka)", "abc"},
	{"ap-southeast-1", "Asia Pacific (Singapore)", "abc"},
	{"ap-southeast-2", "Asia Pacific (Sydney)", "abc"},
	{"ap-southeast-3", "Asia Pacific (Jakarta)", "abc"},
	{"ap-southeast-4", "Asia Pacific (Melbourne)", "abc"},
	{"ap-southeast-5", "Asia Pacific (Malaysia)", "abc"},
	{"af-south-1", "Africa (Cape Town)", "abc"},
	{"il-central-1", "Israel (Tel Aviv)", "abc"},
	{"me-central-1", "Middle East (UAE)", "abc"},
	{"me-south-1", "Middle East (Bahrain)", "abc"},
	{"us-gov-east-1", "AWS GovCloud (US-East)", "abc"},
	{"us-gov-west-1", "AWS GovCloud (US-West)", "abc"},
}

// zonesOf lists a region's zones; for a region not in the list, a, b and c.
func zonesOf(code string) []string {
	letters := "abc"
	for _, r := range regions {
		if r.Code == code {
			letters = r.Zones
		}
	}
	var zs []string
	for _, l := range letters {
		zs = append(zs, code+string(l))
	}
	return zs
}
