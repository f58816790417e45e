package gpupools

import (
	"testing"

	machinev1beta1 "github.com/openshift/api/machine/v1beta1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

const workerYAML = `apiVersion: machine.openshift.io/v1beta1
kind: MachineSet
metadata:
  name: demo-x7k2p-worker-us-east-1a
  namespace: openshift-machine-api
  labels: {machine.openshift.io/cluster-api-cluster: demo-x7k2p}
spec:
  replicas: 1
  selector:
    matchLabels: {machine.openshift.io/cluster-api-cluster: demo-x7k2p, machine.openshift.io/cluster-api-machineset: demo-x7k2p-worker-us-east-1a}
  template:
    metadata:
      labels: {machine.openshift.io/cluster-api-cluster: demo-x7k2p, machine.openshift.io/cluster-api-machine-role: worker, machine.openshift.io/cluster-api-machine-type: worker, machine.openshift.io/cluster-api-machineset: demo-x7k2p-worker-us-east-1a}
    spec:
      providerSpec:
        value:
          apiVersion: machine.openshift.io/v1beta1
          kind: AWSMachineProviderConfig
          ami: {id: ami-0a1b2c3d4e5f}
          instanceType: m6i.xlarge
          placement: {availabilityZone: us-east-1a, region: us-east-1}
          subnet:
            filters: [{name: "tag:Name", values: [demo-x7k2p-subnet-private-us-east-1a]}]
          blockDevices: [{ebs: {volumeSize: 120, volumeType: gp3}}]
          iamInstanceProfile: {id: demo-x7k2p-worker-profile}
`

func cluster(t *testing.T, pools string) *configs.Cluster {
	t.Helper()
	c, err := configs.Parse([]byte(`apiVersion: rhoai-bootstrap.io/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  baseDomain: example.com
  platform: {aws: {region: us-east-1, zones: [us-east-1a, us-east-1b]}}
  openshift: {pullSecretFile: ps.json}
  gpuPools:
`+pools), "t.yaml")
	require.NoError(t, err)
	return c
}

func TestBuildClonesWorkerPerZone(t *testing.T) {
	objs, err := kube.DecodeYAML([]byte(workerYAML))
	require.NoError(t, err)
	worker := &machinev1beta1.MachineSet{}
	require.NoError(t, kube.Into(objs[0], worker))
	workers := []*machinev1beta1.MachineSet{worker}
	c := cluster(t, "    - {name: l40s-private, gpu: L40S, access: private, min: 1, max: 3, spot: true}\n    - {name: t4, gpu: T4, min: 0, max: 1}\n")
	set, err := Build(c, workers)
	require.NoError(t, err)
	// L40S over 2 zones: max 2+1, min 1+0; T4 max 1 → only the first zone.
	require.Len(t, set.MachineSets, 3)
	ms := set.MachineSets[1]
	assert.Equal(t, "demo-x7k2p-l40s-private-us-east-1b", ms.GetName())
	get := func(u *unstructured.Unstructured, f ...string) any {
		v, _, _ := unstructured.NestedFieldNoCopy(u.Object, f...)
		return v
	}
	pv := []string{"spec", "template", "spec", "providerSpec", "value"}
	assert.Equal(t, "g6e.xlarge", get(ms, append(pv, "instanceType")...))
	assert.Equal(t, "us-east-1b", get(ms, append(pv, "placement", "availabilityZone")...))
	assert.Equal(t, []any{"demo-x7k2p-subnet-private-us-east-1b"}, get(ms, append(pv, "subnet", "filters")...).([]any)[0].(map[string]any)["values"])
	assert.Equal(t, map[string]any{}, get(ms, append(pv, "spotMarketOptions")...))
	assert.EqualValues(t, 250, get(ms, append(pv, "blockDevices")...).([]any)[0].(map[string]any)["ebs"].(map[string]any)["volumeSize"])
	assert.Equal(t, "L40S-PRIVATE", get(ms, "spec", "template", "spec", "metadata", "labels", configs.AcceleratorLabel))
	assert.Equal(t, []any{map[string]any{"key": "nvidia.com/gpu", "value": "L40S-PRIVATE", "effect": "NoSchedule"}}, get(ms, "spec", "template", "spec", "taints"))
	_, hasReplicas, _ := unstructured.NestedFieldNoCopy(ms.Object, "spec", "replicas")
	assert.False(t, hasReplicas, "replicas belong to the autoscaler")
	assert.Equal(t, map[string]int64{"demo-x7k2p-l40s-private-us-east-1a": 1, "demo-x7k2p-l40s-private-us-east-1b": 0, "demo-x7k2p-t4-us-east-1a": 0}, set.Replicas)
	ma := set.MachineAutoscalers[0]
	assert.EqualValues(t, 2, get(ma, "spec", "maxReplicas"))
	assert.Equal(t, "demo-x7k2p-l40s-private-us-east-1a", get(ma, "spec", "scaleTargetRef", "name"))
	gpus := get(set.ClusterAutoscaler, "spec", "resourceLimits", "gpus").([]any)
	assert.Equal(t, []any{
		map[string]any{"type": "L40S-PRIVATE", "min": int64(0), "max": int64(3)},
		map[string]any{"type": "T4-SHARED", "min": int64(0), "max": int64(1)},
	}, gpus)
	// The worker template was not modified.
	provider, err := awsProvider(workers[0])
	require.NoError(t, err)
	assert.Equal(t, "m6i.xlarge", provider.InstanceType)
	assert.EqualValues(t, 120, *provider.BlockDevices[0].EBS.VolumeSize)
	// What the clone carries decodes as the AWS provider's Go type, fields kept.
	var clone machinev1beta1.MachineSet
	require.NoError(t, kube.Into(ms, &clone))
	cp, err := awsProvider(&clone)
	require.NoError(t, err)
	assert.Equal(t, "ami-0a1b2c3d4e5f", *cp.AMI.ID)
	assert.Equal(t, "demo-x7k2p-worker-profile", *cp.IAMInstanceProfile.ID)
	assert.Equal(t, machinev1beta1.Placement{AvailabilityZone: "us-east-1b", Region: "us-east-1"}, cp.Placement)
	assert.Equal(t, "gp3", *cp.BlockDevices[0].EBS.VolumeType)
}

func TestBuildWithoutWorkers(t *testing.T) {
	_, err := Build(cluster(t, "    - {name: t4, gpu: T4, min: 0, max: 1}\n"), nil)
	require.ErrorContains(t, err, "no worker MachineSet")
}

// A worker whose providerSpec is not an AWS provider config is refused with its name.
func TestBuildRefusesAnUnreadableProviderSpec(t *testing.T) {
	objs, err := kube.DecodeYAML([]byte(workerYAML))
	require.NoError(t, err)
	worker := &machinev1beta1.MachineSet{}
	require.NoError(t, kube.Into(objs[0], worker))
	worker.Spec.Template.Spec.ProviderSpec.Value.Raw = []byte(`{"instanceType": 5}`)
	_, err = Build(cluster(t, "    - {name: t4, gpu: T4, min: 0, max: 1}\n"), []*machinev1beta1.MachineSet{worker})
	require.ErrorContains(t, err, "demo-x7k2p-worker-us-east-1a: reading providerSpec.value as an AWSMachineProviderConfig")
}
