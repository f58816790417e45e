// Package gpupools turns the cluster file's GPU pools into MachineSets (cloned from a worker
// MachineSet), MachineAutoscalers and the ClusterAutoscaler, for day 1 (manifests handed to
// openshift-install) and day 2 (reconciled on a live cluster by the gpu-pools phase).
package gpupools

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	machinev1beta1ac "github.com/openshift/client-go/machine/applyconfigurations/machine/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// Labels the bootstrap puts on what it creates, so day-2 runs and destroy find exactly
// their own objects.
const (
	PoolLabel      = "rhoai-bootstrap.io/gpu-pool"
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "rhoai-bootstrap"

	clusterLabel    = "machine.openshift.io/cluster-api-cluster"
	machineSetLabel = "machine.openshift.io/cluster-api-machineset"
	MachineAPINS    = "openshift-machine-api"
)

// Zone placement of one pool: its min and max spread over its zones.
type placement struct {
	Zone     string
	Min, Max int
}

// spread divides a pool's min and max over its zones, earlier zones taking the remainder.
// Zones that would get max 0 get no MachineSet: a MachineAutoscaler needs max ≥ 1. The
// ClusterAutoscaler's GPU limits keep the pool's total within max whatever the split.
func spread(p configs.GPUPool) []placement {
	n := len(p.Zones)
	var out []placement
	for i, z := range p.Zones {
		pl := placement{Zone: z, Min: p.Min / n, Max: p.Max / n}
		if i < p.Min%n {
			pl.Min++
		}
		if i < p.Max%n {
			pl.Max++
		}
		if pl.Max > 0 {
			out = append(out, pl)
		}
	}
	return out
}

// MachineSetName is <infraID>-<pool>-<zone>.
func MachineSetName(infraID, pool, zone string) string {
	return infraID + "-" + pool + "-" + zone
}

// Set is everything one cluster file's GPU pools need.
type Set struct {
	MachineSets        []*unstructured.Unstructured
	MachineAutoscalers []*unstructured.Unstructured
	ClusterAutoscaler  *unstructured.Unstructured
	// Replicas is the initial replica count (pool min share) per MachineSet name. It is
	// kept apart from the objects because after creation the autoscaler owns it.
	Replicas map[string]int64
}

// Build clones GPU MachineSets from the cluster's worker MachineSets (one per zone, as
// openshift-install generates them, or as they live on a running cluster).
func Build(c *configs.Cluster, workers []*machinev1beta1.MachineSet) (*Set, error) {
	if len(c.Spec.GPUPools) == 0 {
		return &Set{Replicas: map[string]int64{}}, nil
	}
	if len(workers) == 0 {
		return nil, fmt.Errorf("no worker MachineSet to clone GPU MachineSets from")
	}
	type worker struct {
		ms       *machinev1beta1.MachineSet
		provider *machinev1beta1.AWSMachineProviderConfig
	}
	var byZone = map[string]worker{}
	var first worker
	for i, w := range workers {
		provider, err := awsProvider(w)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			first = worker{w, provider}
		}
		if z := provider.Placement.AvailabilityZone; z != "" {
			if _, dup := byZone[z]; !dup {
				byZone[z] = worker{w, provider}
			}
		}
	}
	infraID := workers[0].Labels[clusterLabel]
	if infraID == "" {
		return nil, fmt.Errorf("worker MachineSet %s has no %s label", workers[0].Name, clusterLabel)
	}
	set := &Set{Replicas: map[string]int64{}}
	for _, pool := range c.Spec.GPUPools {
		for _, pl := range spread(pool) {
			src, ok := byZone[pl.Zone]
			if !ok {
				src = first
			}
			ms, err := cloneMachineSet(src.provider, infraID, pool, pl.Zone)
			if err != nil {
				return nil, fmt.Errorf("gpu pool %s in %s: %w", pool.Name, pl.Zone, err)
			}
			set.MachineSets = append(set.MachineSets, ms)
			set.Replicas[ms.GetName()] = int64(pl.Min)
			set.MachineAutoscalers = append(set.MachineAutoscalers, machineAutoscaler(ms.GetName(), pool.Name, pl))
		}
	}
	set.ClusterAutoscaler = ClusterAutoscaler(c)
	return set, nil
}

// awsProvider decodes a MachineSet's providerSpec, a raw extension, into the AWS
// provider's Go type. Fields the type does not know are dropped from the clone (the type
// is openshift/api's, which the installer itself writes these specs with:
// openshift/installer pkg/asset/machines/aws/machines.go provider()).
func awsProvider(ms *machinev1beta1.MachineSet) (*machinev1beta1.AWSMachineProviderConfig, error) {
	raw := ms.Spec.Template.Spec.ProviderSpec.Value
	if raw == nil || len(raw.Raw) == 0 {
		return nil, fmt.Errorf("worker MachineSet %s has no providerSpec.value", ms.Name)
	}
	var provider machinev1beta1.AWSMachineProviderConfig
	if err := json.Unmarshal(raw.Raw, &provider); err != nil {
		return nil, fmt.Errorf("worker MachineSet %s: reading providerSpec.value as an AWSMachineProviderConfig: %w", ms.Name, err)
	}
	return &provider, nil
}

// ClusterAutoscaler builds the ClusterAutoscaler whose GPU limits are each accelerator
// value's pools' max × GPUs per instance. It needs no MachineSet, so render can write it
// before the installer has generated any.
func ClusterAutoscaler(c *configs.Cluster) *unstructured.Unstructured {
	limits := map[string]int64{}
	for _, pool := range c.Spec.GPUPools {
		g, _, _ := configs.LookupGPU(pool.GPU)
		size, _ := g.Size(pool.InstanceType) // validated by configs
		limits[pool.AcceleratorValue()] += int64(pool.Max * size.GPUs)
	}
	return clusterAutoscaler(limits)
}

// Objects lists every object of the set, MachineSets first.
func (s *Set) Objects() []*unstructured.Unstructured {
	out := append([]*unstructured.Unstructured{}, s.MachineSets...)
	out = append(out, s.MachineAutoscalers...)
	if s.ClusterAutoscaler != nil {
		out = append(out, s.ClusterAutoscaler)
	}
	return out
}

func ourLabels(pool string) map[string]string {
	return map[string]string{PoolLabel: pool, ManagedByLabel: ManagedBy}
}

// cloneMachineSet copies the worker's provider spec (AMI, subnet, security groups, IAM
// profile, user data) and changes what makes it a GPU pool: instance type, zone, subnet
// for the zone, labels, taint, spot. Replicas are left out on purpose (see Set.Replicas).
func cloneMachineSet(worker *machinev1beta1.AWSMachineProviderConfig, infraID string, pool configs.GPUPool, zone string) (*unstructured.Unstructured, error) {
	provider := worker.DeepCopy()
	srcZone := provider.Placement.AvailabilityZone
	provider.InstanceType = pool.InstanceType
	provider.Placement = machinev1beta1.Placement{AvailabilityZone: zone, Region: provider.Placement.Region}
	if srcZone != "" && srcZone != zone {
		provider.Subnet = rezone(provider.Subnet, srcZone, zone)
	}
	if pool.Spot {
		provider.SpotMarketOptions = &machinev1beta1.SpotMarketOptions{}
	} else {
		provider.SpotMarketOptions = nil
	}
	// The cluster's worker template may carry volumes sized for CPU workloads; GPU images
	// and model caches need room.
	if len(provider.BlockDevices) > 0 {
		if ebs := provider.BlockDevices[0].EBS; ebs != nil && (ebs.VolumeSize == nil || *ebs.VolumeSize < 250) {
			ebs.VolumeSize = ptr.To[int64](250)
		}
	}
	raw, err := json.Marshal(provider)
	if err != nil {
		return nil, fmt.Errorf("encoding the providerSpec: %w", err)
	}
	name := MachineSetName(infraID, pool.Name, zone)
	value := pool.AcceleratorValue()
	labels := ourLabels(pool.Name)
	labels[clusterLabel] = infraID
	ms := machinev1beta1ac.MachineSet(name, MachineAPINS).
		WithLabels(labels).
		WithSpec(machinev1beta1ac.MachineSetSpec().
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{clusterLabel: infraID, machineSetLabel: name})).
			WithTemplate(machinev1beta1ac.MachineTemplateSpec().
				WithLabels(map[string]string{clusterLabel: infraID, machineSetLabel: name,
					"machine.openshift.io/cluster-api-machine-role": "worker", "machine.openshift.io/cluster-api-machine-type": "worker"}).
				WithSpec(machinev1beta1ac.MachineSpec().
					WithLabels(map[string]string{configs.AcceleratorLabel: value, "node-role.kubernetes.io/gpu": ""}).
					WithTaints(corev1.Taint{Key: configs.GPUTaintKey, Value: value, Effect: corev1.TaintEffectNoSchedule}).
					WithProviderSpec(machinev1beta1ac.ProviderSpec().WithValue(runtime.RawExtension{Raw: raw})))))
	return kube.FromApply(ms)
}

// rezone rewrites zone names inside the subnet reference (filters by tag:Name such as
// <infraID>-subnet-private-us-east-1a, or an explicit id we cannot translate).
func rezone(ref machinev1beta1.AWSResourceReference, from, to string) machinev1beta1.AWSResourceReference {
	swap := func(s string) string { return strings.ReplaceAll(s, from, to) }
	out := *ref.DeepCopy()
	if out.ID != nil {
		out.ID = ptr.To(swap(*out.ID))
	}
	if out.ARN != nil {
		out.ARN = ptr.To(swap(*out.ARN))
	}
	for i := range out.Filters {
		out.Filters[i].Name = swap(out.Filters[i].Name)
		for j := range out.Filters[i].Values {
			out.Filters[i].Values[j] = swap(out.Filters[i].Values[j])
		}
	}
	return out
}

// machineAutoscaler and clusterAutoscaler stay unstructured: their Go types live in
// openshift/cluster-autoscaler-operator, which does not build with this module's
// Kubernetes libraries without replace directives (DESIGN.md, Dependencies).
func machineAutoscaler(msName, pool string, pl placement) *unstructured.Unstructured {
	ma := kube.Obj("autoscaling.openshift.io/v1beta1", "MachineAutoscaler", MachineAPINS, msName, map[string]any{
		"spec": map[string]any{
			"minReplicas": int64(pl.Min),
			"maxReplicas": int64(pl.Max),
			"scaleTargetRef": map[string]any{
				"apiVersion": machinev1beta1.GroupVersion.String(),
				"kind":       "MachineSet",
				"name":       msName,
			},
		},
	})
	ma.SetLabels(ourLabels(pool))
	return ma
}

// clusterAutoscaler caps GPUs per accelerator value. On OpenShift the GPU type in
// resourceLimits.gpus is matched against the node's cluster-api/accelerator label.
func clusterAutoscaler(limits map[string]int64) *unstructured.Unstructured {
	types := make([]string, 0, len(limits))
	for t := range limits {
		types = append(types, t)
	}
	sort.Strings(types)
	var gpus []any
	for _, t := range types {
		gpus = append(gpus, map[string]any{"type": t, "min": int64(0), "max": limits[t]})
	}
	ca := kube.Obj("autoscaling.openshift.io/v1", "ClusterAutoscaler", "", "default", map[string]any{
		"spec": map[string]any{
			"podPriorityThreshold": int64(-10),
			"resourceLimits":       map[string]any{"gpus": gpus},
			"scaleDown": map[string]any{
				"enabled":       true,
				"delayAfterAdd": "10m",
				"unneededTime":  "5m",
			},
		},
	})
	ca.SetLabels(map[string]string{ManagedByLabel: ManagedBy})
	return ca
}
