// Package preflight checks, before anything changes, what would make the bootstrap fail
// half-way: AWS credentials, the public hosted zone, GPU instance types offered in each
// pool's zones, GPU vCPU quotas, the installer binary and the pull secret, and the
// secrets the cluster file refers to. It reports every problem at once, each with its fix.
package preflight

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	ic "github.com/rhoai-bootstrap/rhoai-bootstrap/configs/installconfig"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
)

// Name of the phase.
const Name = "preflight"

// MinOpenShift is the oldest openshift-install we support.
var MinOpenShift = [2]int{4, 19}

// Service Quotas codes for EC2 vCPU limits by instance class.
var quotaCodes = map[string]map[bool]string{
	"G": {false: "L-DB2E81BA", true: "L-3819A6DF"}, // Running On-Demand G and VT / All G and VT Spot
	"P": {false: "L-417A185B", true: "L-7212CCBC"}, // Running On-Demand P / All P Spot
}

// RateLimitCheck lets the certificates phase tell preflight how many recent orders its
// ledger holds for the cluster's names (set by the graph; nil: skipped).
type RateLimitCheck func(s *installer.Scope) (warning string)

type phase struct {
	env       *phases.Env
	rateLimit RateLimitCheck
}

// New returns the preflight phase.
func New(env *phases.Env, rl RateLimitCheck) installer.Phase { return &phase{env: env, rateLimit: rl} }

func (p *phase) Name() string        { return Name }
func (p *phase) DependsOn() []string { return nil }

// Check runs every check; problems are returned together as one error.
func (p *phase) Check(ctx context.Context, s *installer.Scope) (installer.Status, error) {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	c := p.env.Cluster

	if c.Installs() {
		if err := p.checkInstaller(ctx, s); err != nil {
			add("%v", err)
		}
		if b, err := os.ReadFile(c.Spec.OpenShift.PullSecretFile); err != nil {
			add("spec.openshift.pullSecretFile: %v: download it from console.redhat.com/openshift/install/pull-secret", err)
		} else if err := ic.CheckPullSecret(b); err != nil {
			add("spec.openshift.pullSecretFile: %v", err)
		}
		if f := c.Spec.OpenShift.SSHPublicKeyFile; f != "" {
			if b, err := os.ReadFile(f); err != nil {
				add("spec.openshift.sshPublicKeyFile: %v: create one with ssh-keygen -t ed25519", err)
			} else if err := ic.CheckSSHPublicKey(b); err != nil {
				add("spec.openshift.sshPublicKeyFile: %s: %v", f, err)
			}
		}
	}
	if o := c.Spec.OAuth; o != nil && o.Google != nil {
		if _, err := o.Google.ClientSecret.Resolve(); err != nil {
			add("spec.oauth.google.clientSecret: %v", err)
		}
	}
	problems = append(problems, p.checkAWS(ctx, s)...)
	if p.rateLimit != nil {
		if w := p.rateLimit(s); w != "" {
			s.Progress("warning: %s", w)
		}
	}
	for _, w := range c.Warnings() {
		s.Debugf("note: %s", w)
	}
	if len(problems) > 0 {
		return installer.Status{}, &installer.Problems{What: "preflight", List: problems}
	}
	return installer.Done("AWS account, zone, GPU offerings and quotas, installer checked"), nil
}

// versionRE is compiled on first use, not at start-up (guarded by cmd/rhoai-bootstrap's TestOwnPackagesDoNoWorkAtInit).
var versionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`openshift-install v?(\d+)\.(\d+)\.(\S+)`) })

func (p *phase) checkInstaller(ctx context.Context, s *installer.Scope) error {
	bin := p.env.Cluster.Spec.OpenShift.Installer
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("spec.openshift.installer: `%s version` failed: %s", bin, strings.TrimSpace(string(out)))
		}
		where := "not found in PATH"
		if !errors.Is(err, exec.ErrNotFound) {
			where = "cannot be run (" + innermost(err) + ")"
			s.Debugf("running %s version: %v", bin, err)
		}
		return fmt.Errorf("spec.openshift.installer: %s %s: download openshift-install %d.%d or newer from console.redhat.com and set its path", bin, where, MinOpenShift[0], MinOpenShift[1])
	}
	m := versionRE().FindStringSubmatch(string(out))
	if m == nil {
		return fmt.Errorf("spec.openshift.installer: cannot read the version from `%s version`", bin)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < MinOpenShift[0] || (major == MinOpenShift[0] && minor < MinOpenShift[1]) {
		return fmt.Errorf("spec.openshift.installer: openshift-install %d.%d is older than the supported %d.%d: download a newer one", major, minor, MinOpenShift[0], MinOpenShift[1])
	}
	s.Debugf("openshift-install %d.%d.%s", major, minor, m[3])
	return nil
}

func (p *phase) checkAWS(ctx context.Context, s *installer.Scope) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	cfg, err := p.env.AWS(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	id, problem := checkCredentials(ctx, s, cfg)
	if problem != "" {
		return []string{problem}
	}
	s.Debugf("AWS account %s as %s", aws.ToString(id.Account), aws.ToString(id.Arn))

	if err := p.checkZone(ctx, cfg); err != nil {
		add("%v", err)
	}
	problems = append(problems, p.checkOfferings(ctx, cfg)...)
	problems = append(problems, p.checkQuotas(ctx, cfg)...)
	return problems
}

// FindPublicZone returns the ID of the public hosted zone named exactly baseDomain.
func FindPublicZone(ctx context.Context, cfg aws.Config, baseDomain string) (string, error) {
	r53 := route53.NewFromConfig(cfg)
	out, err := r53.ListHostedZonesByName(ctx, &route53.ListHostedZonesByNameInput{DNSName: aws.String(baseDomain)})
	if err != nil {
		return "", fmt.Errorf("listing Route53 hosted zones: %w", err)
	}
	for _, z := range out.HostedZones {
		if strings.TrimSuffix(aws.ToString(z.Name), ".") == strings.TrimSuffix(baseDomain, ".") && (z.Config == nil || !z.Config.PrivateZone) {
			return strings.TrimPrefix(aws.ToString(z.Id), "/hostedzone/"), nil
		}
	}
	return "", fmt.Errorf("spec.baseDomain: no public Route53 hosted zone named %s in this account: create it (and delegate the domain to it) first", baseDomain)
}

func (p *phase) checkZone(ctx context.Context, cfg aws.Config) error {
	c := p.env.Cluster
	if ct := c.Spec.Certificates; ct != nil && ct.ACME.Route53.HostedZoneID != "" {
		id := ct.ACME.Route53.HostedZoneID
		out, err := route53.NewFromConfig(cfg).GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String(id)})
		if err != nil {
			return fmt.Errorf("spec.certificates.acme.route53.hostedZoneID %s: %v", id, err)
		}
		name := strings.TrimSuffix(aws.ToString(out.HostedZone.Name), ".")
		if name != c.Spec.BaseDomain && !strings.HasSuffix(c.Spec.BaseDomain, "."+name) {
			return fmt.Errorf("spec.certificates.acme.route53.hostedZoneID %s is the zone %s, which does not hold %s", id, name, c.Spec.BaseDomain)
		}
		return nil
	}
	_, err := FindPublicZone(ctx, cfg, c.Spec.BaseDomain)
	return err
}

func (p *phase) checkOfferings(ctx context.Context, cfg aws.Config) []string {
	c := p.env.Cluster
	if len(c.Spec.GPUPools) == 0 {
		return nil
	}
	types := map[string]bool{}
	for _, pool := range c.Spec.GPUPools {
		types[pool.InstanceType] = true
	}
	names := make([]string, 0, len(types))
	for t := range types {
		names = append(names, t)
	}
	sort.Strings(names)
	offered := map[string]bool{}
	pager := ec2.NewDescribeInstanceTypeOfferingsPaginator(ec2.NewFromConfig(cfg), &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters:      []ec2types.Filter{{Name: aws.String("instance-type"), Values: names}},
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return []string{fmt.Sprintf("listing EC2 instance type offerings: %v", err)}
		}
		for _, o := range page.InstanceTypeOfferings {
			offered[string(o.InstanceType)+"@"+aws.ToString(o.Location)] = true
		}
	}
	var problems []string
	for i, pool := range c.Spec.GPUPools {
		for _, z := range pool.Zones {
			if !offered[pool.InstanceType+"@"+z] {
				problems = append(problems, fmt.Sprintf("spec.gpuPools[%d] (%s): %s is not offered in %s: pick other zones for the pool (spec.gpuPools[%d].zones) or another instance size", i, pool.Name, pool.InstanceType, z, i))
			}
		}
	}
	return problems
}

// checkQuotas compares, per GPU vCPU quota, what the file's pools may grow to (their max)
// with what the quota leaves after the instances already running in the account and
// region. AWS counts these quotas in vCPUs of the running instances of the families they
// cover (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-on-demand-instances.html#ec2-on-demand-instances-limits,
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-spot-limits.html), so a quota
// the pools alone fit in can still be exhausted by other workloads. Open spot requests
// not yet fulfilled also count against spot quotas; they are not counted here.
func (p *phase) checkQuotas(ctx context.Context, cfg aws.Config) []string {
	need := map[string]int{} // quota code -> vCPUs
	for _, pool := range p.env.Cluster.Spec.GPUPools {
		g, _, _ := configs.LookupGPU(pool.GPU)
		size, err := g.Size(pool.InstanceType)
		if err != nil {
			continue
		}
		need[quotaCodes[g.QuotaClass][pool.Spot]] += pool.Max * size.VCPUs
	}
	if len(need) == 0 {
		return nil
	}
	codes := make([]string, 0, len(need))
	for code := range need {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	var problems []string
	used, err := vCPUsInUse(ctx, ec2.NewFromConfig(cfg))
	if err != nil {
		problems = append(problems, err.Error())
	}
	sq := servicequotas.NewFromConfig(cfg)
	for _, code := range codes {
		out, err := sq.GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String("ec2"), QuotaCode: aws.String(code)})
		if err != nil {
			problems = append(problems, fmt.Sprintf("reading EC2 quota %s: %v", code, err))
			continue
		}
		have := int(aws.ToFloat64(out.Quota.Value))
		if need[code] > have-used[code] {
			problems = append(problems, fmt.Sprintf("EC2 quota %q (%s): quota %d vCPUs, in use %d, this file needs up to %d: "+
				"request an increase in Service Quotas, stop instances you do not need, or lower spec.gpuPools[].max",
				aws.ToString(out.Quota.QuotaName), code, have, used[code], need[code]))
		}
	}
	return problems
}

// quotaClass is the GPU vCPU quota class of an instance type: "G" for the G and VT
// families, "P" for the P families, "" for the rest (which other quotas cover).
func quotaClass(instanceType string) string {
	family, _, _ := strings.Cut(instanceType, ".")
	switch {
	case strings.HasPrefix(family, "vt"), strings.HasPrefix(family, "g"):
		return "G"
	case strings.HasPrefix(family, "p"):
		return "P"
	}
	return ""
}

// vCPUsInUse sums, per GPU quota code, the vCPUs of the account's pending and running
// instances in the region: on-demand ones against the "Running On-Demand" quotas, spot
// ones (InstanceLifecycle "spot") against the "All … Spot Instance Requests" quotas. An
// instance counts with its type's default vCPUs (DescribeInstanceTypes).
func vCPUsInUse(ctx context.Context, client *ec2.Client) (map[string]int, error) {
	count := map[string]map[string]int{} // quota code -> instance type -> instances
	pager := ec2.NewDescribeInstancesPaginator(client, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}}},
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the running EC2 instances to count the GPU quotas in use (ec2:DescribeInstances): %w", err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				class := quotaClass(string(in.InstanceType))
				if class == "" {
					continue
				}
				code := quotaCodes[class][in.InstanceLifecycle == ec2types.InstanceLifecycleTypeSpot]
				if count[code] == nil {
					count[code] = map[string]int{}
				}
				count[code][string(in.InstanceType)]++
			}
		}
	}
	types := map[string]bool{}
	for _, byType := range count {
		for t := range byType {
			types[t] = true
		}
	}
	vcpus, err := defaultVCPUs(ctx, client, types)
	if err != nil {
		return nil, err
	}
	used := map[string]int{}
	for code, byType := range count {
		for t, n := range byType {
			used[code] += n * vcpus[t]
		}
	}
	return used, nil
}

// defaultVCPUs reads the default vCPU count of each instance type.
func defaultVCPUs(ctx context.Context, client *ec2.Client, types map[string]bool) (map[string]int, error) {
	names := make([]ec2types.InstanceType, 0, len(types))
	for t := range types {
		names = append(names, ec2types.InstanceType(t))
	}
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	out := map[string]int{}
	for len(names) > 0 {
		batch := names[:min(len(names), 100)] // the API's limit per call
		names = names[len(batch):]
		pager := ec2.NewDescribeInstanceTypesPaginator(client, &ec2.DescribeInstanceTypesInput{InstanceTypes: batch})
		for pager.HasMorePages() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("reading the vCPUs of the running GPU instances (ec2:DescribeInstanceTypes): %w", err)
			}
			for _, it := range page.InstanceTypes {
				if it.VCpuInfo != nil {
					out[string(it.InstanceType)] = int(aws.ToInt32(it.VCpuInfo.DefaultVCpus))
				}
			}
		}
	}
	return out, nil
}

// Apply has nothing to do: preflight only observes. A failed Check stops the run before
// any other phase changes anything.
func (p *phase) Apply(context.Context, *installer.Scope) error { return nil }

// Destroy: preflight makes nothing.
func (p *phase) Destroy(context.Context, *installer.Scope) error { return nil }
