// Package gpupools turns the cluster file's GPU pools into MachineSets (cloned from a worker
// MachineSet), MachineAutoscalers and the ClusterAutoscaler, for day 1 (manifests handed to
// openshift-install) and day 2 (reconciled on a live cluster by the gpu-pools phase).
package gpupools

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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
func Build(c *configs.Cluster, workers []*unstructured.Unstructured) (*Set, error) {
	if len(c.Spec.GPUPools) == 0 {
		return &Set{Replicas: map[string]int64{}}, nil
	}
	if len(workers) == 0 {
		return nil, fmt.Errorf("no worker MachineSet to clone GPU MachineSets from")
	}
	byZone := map[string]*unstructured.Unstructured{}
	for _, w := range workers {
		if z := zoneOf(w); z != "" {
			if _, dup := byZone[z]; !dup {
				byZone[z] = w
			}
		}
	}
	infraID := workers[0].GetLabels()[clusterLabel]
	if infraID == "" {
		return nil, fmt.Errorf("worker MachineSet %s has no %s label", workers[0].GetName(), clusterLabel)
	}
	set := &Set{Replicas: map[string]int64{}}
	for _, pool := range c.Spec.GPUPools {
		for _, pl := range spread(pool) {
			src := byZone[pl.Zone]
			if src == nil {
				src = workers[0]
			}
			ms, err := cloneMachineSet(src, infraID, pool, pl.Zone)
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

func zoneOf(ms *unstructured.Unstructured) string {
	z, _, _ := unstructured.NestedString(ms.Object, "spec", "template", "spec", "providerSpec", "value", "placement", "availabilityZone")
	return z
}

func ourLabels(pool string) map[string]any {
	return map[string]any{PoolLabel: pool, ManagedByLabel: ManagedBy}
}

// cloneMachineSet copies the worker's provider spec (AMI, subnet, security groups, IAM
// profile, user data) and changes what makes it a GPU pool: instance type, zone, subnet
// for the zone, labels, taint, spot. Replicas are left out on purpose (see Set.Replicas).
func cloneMachineSet(worker *unstructured.Unstructured, infraID string, pool configs.GPUPool, zone string) (*unstructured.Unstructured, error) {
	provider, found, err := unstructured.NestedMap(worker.Object, "spec", "template", "spec", "providerSpec", "value")
	if err != nil || !found {
		return nil, fmt.Errorf("worker MachineSet %s has no providerSpec.value", worker.GetName())
	}
	srcZone := zoneOf(worker)
	provider["instanceType"] = pool.InstanceType
	provider["placement"] = map[string]any{"availabilityZone": zone, "region": nestedString(provider, "placement", "region")}
	if srcZone != "" && srcZone != zone {
		provider["subnet"] = rezone(provider["subnet"], srcZone, zone)
	}
	if pool.Spot {
		provider["spotMarketOptions"] = map[string]any{}
	} else {
		delete(provider, "spotMarketOptions")
	}
	// The cluster's worker template may carry volumes sized for CPU workloads; GPU images
	// and model caches need room.
	if bd, ok := provider["blockDevices"].([]any); ok && len(bd) > 0 {
		if first, ok := bd[0].(map[string]any); ok {
			if ebs, ok := first["ebs"].(map[string]any); ok {
				if size, ok := ebs["volumeSize"].(int64); !ok || size < 250 {
					ebs["volumeSize"] = int64(250)
				}
			}
		}
	}
	name := MachineSetName(infraID, pool.Name, zone)
	value := pool.AcceleratorValue()
	selector := map[string]any{clusterLabel: infraID, machineSetLabel: name}
	templateLabels := map[string]any{clusterLabel: infraID, machineSetLabel: name,
		"machine.openshift.io/cluster-api-machine-role": "worker", "machine.openshift.io/cluster-api-machine-type": "worker"}
	labels := ourLabels(pool.Name)
	labels[clusterLabel] = infraID
	ms := kube.Obj("machine.openshift.io/v1beta1", "MachineSet", MachineAPINS, name, map[string]any{
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": selector},
			"template": map[string]any{
				"metadata": map[string]any{"labels": templateLabels},
				"spec": map[string]any{
					"metadata": map[string]any{"labels": map[string]any{
						configs.AcceleratorLabel:      value,
						"node-role.kubernetes.io/gpu": "",
					}},
					"taints":       []any{map[string]any{"key": configs.GPUTaintKey, "value": value, "effect": "NoSchedule"}},
					"providerSpec": map[string]any{"value": provider},
				},
			},
		},
	})
	ms.SetLabels(toStrings(labels))
	return ms, nil
}

func nestedString(m map[string]any, fields ...string) string {
	s, _, _ := unstructured.NestedString(m, fields...)
	return s
}

// rezone rewrites zone names inside the subnet reference (filters by tag:Name such as
// <infraID>-subnet-private-us-east-1a, or an explicit id we cannot translate).
func rezone(v any, from, to string) any {
	switch vv := v.(type) {
	case string:
		return strings.ReplaceAll(vv, from, to)
	case []any:
		out := make([]any, len(vv))
		for i, e := range vv {
			out[i] = rezone(e, from, to)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(vv))
		for k, e := range vv {
			out[k] = rezone(e, from, to)
		}
		return out
	}
	return v
}

func toStrings(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

func machineAutoscaler(msName, pool string, pl placement) *unstructured.Unstructured {
	ma := kube.Obj("autoscaling.openshift.io/v1beta1", "MachineAutoscaler", MachineAPINS, msName, map[string]any{
		"spec": map[string]any{
			"minReplicas": int64(pl.Min),
			"maxReplicas": int64(pl.Max),
			"scaleTargetRef": map[string]any{
				"apiVersion": "machine.openshift.io/v1beta1",
				"kind":       "MachineSet",
				"name":       msName,
			},
		},
	})
	ma.SetLabels(toStrings(ourLabels(pool)))
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
