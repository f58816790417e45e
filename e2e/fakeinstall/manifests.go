package fakeinstall

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	configv1 "github.com/openshift/api/config/v1"
	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	configv1ac "github.com/openshift/client-go/config/applyconfigurations/config/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// Label keys the machine API uses; the tool under test clones MachineSets
// by them, so they must be exactly the real ones.
const (
	labelCluster    = "machine.openshift.io/cluster-api-cluster"
	labelMachineSet = "machine.openshift.io/cluster-api-machineset"
	labelRole       = "machine.openshift.io/cluster-api-machine-role"
	labelType       = "machine.openshift.io/cluster-api-machine-type"
	machineAPINS    = "openshift-machine-api"
)

// File-name patterns of the generated machine manifests, relative to --dir.
const (
	workerMachineSetPattern = "openshift/99_openshift-cluster-api_worker-machineset-%d.yaml"
	masterMachinePattern    = "openshift/99_openshift-cluster-api_master-machines-%d.yaml"
)

var (
	nonInfraIDChars = regexp.MustCompile(`[^A-Za-z0-9-]`)
	dashes          = regexp.MustCompile(`-{2,}`)
)

// generateInfraID does what the real installer's generateInfraID does
// (openshift/installer pkg/asset/installconfig/clusterid.go: maxLen 27,
// randomLen 5): characters other than alphanumerics and "-" become "-", runs
// of dashes collapse, the base is cut to 21 characters so the whole ID fits
// in 27, and "-" plus 5 random characters (k8s utilrand's alphabet) are
// appended. A cluster name of 21 characters or more therefore gives the
// 27-character infra ID that MachineSet names must leave room for.
func generateInfraID(name string) string {
	base := nonInfraIDChars.ReplaceAllString(name, "-")
	base = dashes.ReplaceAllString(base, "-")
	if len(base) > clusterNameMaxInfraBase {
		base = base[:clusterNameMaxInfraBase]
	}
	base = strings.TrimRight(base, "-")
	return base + "-" + utilrand.String(5)
}

// manifestFile is one generated file, path relative to --dir.
type manifestFile struct {
	path string
	data []byte
}

// renderManifests returns the files `create manifests` writes for ic: a
// subset of the real set. cluster-ingress-02-config.yml is left out on
// purpose: Ingress spec.domain is immutable and the bed seeds its own, so
// applying ours would fail the bootstrap whenever the names differ.
func renderManifests(ic *InstallConfig, rawConfig json.RawMessage, infraID, clusterID, version string) ([]manifestFile, error) {
	var files []manifestFile
	add := func(path string, obj any) error {
		data, err := yaml.Marshal(obj)
		if err != nil {
			return fmt.Errorf("rendering %s: %w", path, err)
		}
		files = append(files, manifestFile{path: path, data: data})
		return nil
	}

	clusterConfig, err := clusterConfigMap(rawConfig)
	if err != nil {
		return nil, err
	}
	if err := add("manifests/cluster-config.yaml", clusterConfig); err != nil {
		return nil, err
	}
	if err := add("manifests/cluster-infrastructure-02-config.yml", infrastructure(ic, infraID)); err != nil {
		return nil, err
	}
	// An apply configuration: only the fields set here are rendered (a typed
	// ClusterVersion would also render an empty status, which applyFiles would apply).
	cvo := configv1ac.ClusterVersion("version").WithSpec(configv1ac.ClusterVersionSpec().
		WithChannel(channel(version)).WithClusterID(configv1.ClusterID(clusterID)))
	if err := add("manifests/cvo-overrides.yaml", cvo); err != nil {
		return nil, err
	}
	if err := add("manifests/openshift-config-secret-pull-secret.yaml", &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "pull-secret", Namespace: "openshift-config"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(ic.PullSecret)},
	}); err != nil {
		return nil, err
	}

	cp := ic.poolAWS(ic.ControlPlane)
	for i := range int(*ic.ControlPlane.Replicas) {
		zone := cp.Zones[i%len(cp.Zones)]
		m, err := masterMachine(ic, cp, infraID, zone, i)
		if err != nil {
			return nil, err
		}
		if err := add(fmt.Sprintf(masterMachinePattern, i), m); err != nil {
			return nil, err
		}
	}

	for i := range ic.Compute {
		pool := &ic.Compute[i]
		if pool.Name != "worker" {
			continue // edge pools use local zones; not played by the fake
		}
		aws := ic.poolAWS(pool)
		for j, zone := range aws.Zones {
			replicas := spread(*pool.Replicas, len(aws.Zones), j)
			ms, err := workerMachineSet(ic, aws, infraID, zone, replicas)
			if err != nil {
				return nil, err
			}
			if err := add(fmt.Sprintf(workerMachineSetPattern, j), ms); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// spread gives zone idx its share of total replicas over n zones, the
// earlier zones taking the remainder, as the real installer does.
func spread(total int64, n, idx int) int32 {
	r := total / int64(n)
	if int64(idx) < total%int64(n) {
		r++
	}
	return int32(r)
}

// channel is the update channel of a version: "stable-4.20" for "4.20.8".
func channel(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return "stable-" + version
	}
	return "stable-" + parts[0] + "." + parts[1]
}

// clusterConfigMap is kube-system/cluster-config-v1, which carries the
// install-config without its pull secret.
func clusterConfigMap(rawConfig json.RawMessage) (*corev1.ConfigMap, error) {
	var m map[string]any
	if err := json.Unmarshal(rawConfig, &m); err != nil {
		return nil, fmt.Errorf("decoding the install-config: %w", err)
	}
	m["pullSecret"] = ""
	data, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("rendering the install-config for cluster-config-v1: %w", err)
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-config-v1", Namespace: "kube-system"},
		Data:       map[string]string{"install-config": string(data)},
	}, nil
}

// infrastructure is config.openshift.io Infrastructure "cluster" with the
// status the installer renders (status.infrastructureName is the infraID).
func infrastructure(ic *InstallConfig, infraID string) *configv1.Infrastructure {
	return &configv1.Infrastructure{
		TypeMeta:   metav1.TypeMeta{APIVersion: "config.openshift.io/v1", Kind: "Infrastructure"},
		ObjectMeta: metav1.ObjectMeta{Name: "cluster"},
		Spec: configv1.InfrastructureSpec{
			PlatformSpec: configv1.PlatformSpec{Type: configv1.AWSPlatformType, AWS: &configv1.AWSPlatformSpec{}},
		},
		Status: configv1.InfrastructureStatus{
			InfrastructureName:     infraID,
			APIServerURL:           "https://api." + ic.clusterDomain() + ":6443",
			APIServerInternalURL:   "https://api-int." + ic.clusterDomain() + ":6443",
			ControlPlaneTopology:   configv1.HighlyAvailableTopologyMode,
			InfrastructureTopology: configv1.HighlyAvailableTopologyMode,
			CPUPartitioning:        configv1.CPUPartitioningNone,
			Platform:               configv1.AWSPlatformType,
			PlatformStatus: &configv1.PlatformStatus{
				Type: configv1.AWSPlatformType,
				AWS:  &configv1.AWSPlatformStatus{Region: ic.Platform.AWS.Region},
			},
		},
	}
}

// providerSpec is the AWSMachineProviderConfig of a machine in zone.
func providerSpec(ic *InstallConfig, pool AWSMachinePool, infraID, role, zone string) (*runtime.RawExtension, error) {
	ebs := &machinev1beta1.EBSBlockDeviceSpec{
		Encrypted:  ptr.To(true),
		VolumeSize: ptr.To(pool.RootVolume.Size),
		VolumeType: ptr.To(pool.RootVolume.Type),
		KMSKey:     machinev1beta1.AWSResourceReference{ARN: ptr.To("")},
	}
	if pool.RootVolume.IOPS > 0 {
		ebs.Iops = ptr.To(pool.RootVolume.IOPS)
	}
	tags := []machinev1beta1.TagSpecification{{Name: "kubernetes.io/cluster/" + infraID, Value: "owned"}}
	for k, v := range ic.Platform.AWS.UserTags {
		tags = append(tags, machinev1beta1.TagSpecification{Name: k, Value: v})
	}
	sgs := []string{infraID + "-node", infraID + "-lb"}
	if role == "master" {
		sgs = append(sgs, infraID+"-controlplane")
	}
	var groups []machinev1beta1.AWSResourceReference
	for _, sg := range sgs {
		groups = append(groups, machinev1beta1.AWSResourceReference{
			Filters: []machinev1beta1.Filter{{Name: "tag:Name", Values: []string{sg}}},
		})
	}
	spec := machinev1beta1.AWSMachineProviderConfig{
		TypeMeta:           metav1.TypeMeta{APIVersion: "machine.openshift.io/v1beta1", Kind: "AWSMachineProviderConfig"},
		AMI:                machinev1beta1.AWSResourceReference{ID: ptr.To(pool.AMIID)},
		InstanceType:       pool.InstanceType,
		Tags:               tags,
		IAMInstanceProfile: &machinev1beta1.AWSResourceReference{ID: ptr.To(infraID + "-" + role + "-profile")},
		UserDataSecret:     &corev1.LocalObjectReference{Name: role + "-user-data"},
		CredentialsSecret:  &corev1.LocalObjectReference{Name: "aws-cloud-credentials"},
		SecurityGroups:     groups,
		Subnet: machinev1beta1.AWSResourceReference{
			Filters: []machinev1beta1.Filter{{Name: "tag:Name", Values: []string{infraID + "-subnet-private-" + zone}}},
		},
		Placement:    machinev1beta1.Placement{AvailabilityZone: zone, Region: ic.Platform.AWS.Region},
		BlockDevices: []machinev1beta1.BlockDeviceMappingSpec{{EBS: ebs}},
	}
	if role == "master" {
		spec.LoadBalancers = []machinev1beta1.LoadBalancerReference{
			{Name: infraID + "-int", Type: machinev1beta1.NetworkLoadBalancerType},
			{Name: infraID + "-ext", Type: machinev1beta1.NetworkLoadBalancerType},
		}
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encoding the AWS provider spec: %w", err)
	}
	return &runtime.RawExtension{Raw: raw}, nil
}

// workerMachineSet is the MachineSet the installer writes for one zone, named
// <infraID>-<pool>-<zone> with that name as the
// machine.openshift.io/cluster-api-machineset label on its selector and
// template (openshift/installer pkg/asset/machines/aws/machinesets.go).
func workerMachineSet(ic *InstallConfig, pool AWSMachinePool, infraID, zone string, replicas int32) (*machinev1beta1.MachineSet, error) {
	name := infraID + "-worker-" + zone
	ps, err := providerSpec(ic, pool, infraID, "worker", zone)
	if err != nil {
		return nil, err
	}
	return &machinev1beta1.MachineSet{
		TypeMeta: metav1.TypeMeta{APIVersion: "machine.openshift.io/v1beta1", Kind: "MachineSet"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: machineAPINS,
			Labels:    map[string]string{labelCluster: infraID},
		},
		Spec: machinev1beta1.MachineSetSpec{
			Replicas: ptr.To(replicas),
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{labelCluster: infraID, labelMachineSet: name}},
			Template: machinev1beta1.MachineTemplateSpec{
				ObjectMeta: machinev1beta1.ObjectMeta{Labels: map[string]string{
					labelCluster: infraID, labelRole: "worker", labelType: "worker", labelMachineSet: name,
				}},
				Spec: machinev1beta1.MachineSpec{ProviderSpec: machinev1beta1.ProviderSpec{Value: ps}},
			},
		},
	}, nil
}

// masterMachine is the control-plane Machine number i.
func masterMachine(ic *InstallConfig, pool AWSMachinePool, infraID, zone string, i int) (*machinev1beta1.Machine, error) {
	ps, err := providerSpec(ic, pool, infraID, "master", zone)
	if err != nil {
		return nil, err
	}
	return &machinev1beta1.Machine{
		TypeMeta: metav1.TypeMeta{APIVersion: "machine.openshift.io/v1beta1", Kind: "Machine"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%s-master-%d", infraID, i),
			Namespace: machineAPINS,
			Labels:    map[string]string{labelCluster: infraID, labelRole: "master", labelType: "master"},
		},
		Spec: machinev1beta1.MachineSpec{ProviderSpec: machinev1beta1.ProviderSpec{Value: ps}},
	}, nil
}

// generatedMachineFiles lists the machine manifests a previous generation
// left in dir, so a regeneration with fewer zones leaves no stale file.
func generatedMachineFiles(dir string) []string {
	var out []string
	for _, p := range []string{workerMachineSetPattern, masterMachinePattern} {
		matches, _ := filepath.Glob(filepath.Join(dir, strings.Replace(p, "%d", "*", 1)))
		out = append(out, matches...)
	}
	return out
}
