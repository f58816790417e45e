package manifests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/manifests/internal/gen"
)

// TestKueueMatchesPools checks the Kueue objects of each environment against the GPU
// catalog and the environment's example cluster file, computed here independently of
// the generator: one ResourceFlavor per shared pool value carrying that pool's label
// and taint toleration; one ClusterQueue per shared pool value whose GPU quota is the
// pools' max × GPUs per node of their instance type; every queued HardwareProfile names
// a LocalQueue that the project template creates and a ClusterQueue that exists; no
// Kueue CR (the OpenShift AI operator's) anywhere in the payload.
func TestKueueMatchesPools(t *testing.T) {
	fsys := payloadFS(t)
	profiles := ofKind(render(t, fsys, gen.HardwareProfilesDir), "HardwareProfile")
	template := ofKind(render(t, fsys, "components/configs/project-template"), "Template")
	require.Len(t, template, 1)
	localQueues := map[string]string{}
	for _, o := range list(template[0], "objects") {
		m := o.(map[string]any)
		switch kindOf(m) {
		case "LocalQueue":
			localQueues[nameOf(m)] = str(m, "spec", "clusterQueue")
		case "Project":
			assert.Equal(t, "true", str(m, "metadata", "labels", "kueue.openshift.io/managed"), "projects must opt in to Kueue")
		}
	}
	assert.Equal(t, gen.DefaultQueue, localQueues[gen.DefaultQueue])

	for _, env := range gen.Environments {
		t.Run(env, func(t *testing.T) {
			file := filepath.Join("..", "configs", "examples", env+".yaml")
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			c, err := configs.Parse(data, file)
			require.NoError(t, err)
			wantGPUs := map[string]int64{}
			for _, p := range c.Spec.GPUPools {
				if p.Access != configs.AccessShared {
					continue
				}
				g, _, _ := configs.LookupGPU(p.GPU)
				size, err := g.Size(p.InstanceType)
				require.NoError(t, err)
				wantGPUs[strings.ToLower(p.AcceleratorValue())] += int64(p.Max * size.GPUs)
			}

			r := renderEnv(t, fsys, "clusters/overlays/"+env)
			objs := r.children["instance-kueue"]
			require.NotEmpty(t, objs, "%s: instance-kueue renders nothing", env)
			for _, o := range r.all() {
				assert.NotEqual(t, "kueue.openshift.io/v1", str(o, "apiVersion"), "%s: the Kueue CR %s belongs to the OpenShift AI operator", env, nameOf(o))
			}
			flavors := map[string]obj{}
			for _, f := range ofKind(objs, "ResourceFlavor") {
				flavors[nameOf(f)] = f
			}
			require.Contains(t, flavors, gen.DefaultFlavor)
			queues := map[string]obj{}
			for _, q := range ofKind(objs, "ClusterQueue") {
				queues[nameOf(q)] = q
			}
			require.Contains(t, queues, gen.DefaultQueue)

			for name, g := range configs.Catalog {
				value := configs.GPUPool{GPU: name, Access: configs.AccessShared}.AcceleratorValue()
				key := strings.ToLower(value)
				f := flavors[key]
				require.NotNil(t, f, "%s: no ResourceFlavor for %s", env, value)
				assert.Equal(t, obj{configs.AcceleratorLabel: value}, get(f, "spec", "nodeLabels"), key)
				assert.Equal(t, []any{obj{"key": configs.GPUTaintKey, "operator": "Equal", "value": value, "effect": "NoSchedule"}},
					list(f, "spec", "tolerations"), key)

				q := queues[key]
				require.NotNil(t, q, "%s: no ClusterQueue %s", env, key)
				assert.Equal(t, "true", str(q, "spec", "namespaceSelector", "matchLabels", "kueue.openshift.io/managed"), key)
				groups := list(q, "spec", "resourceGroups")
				require.Len(t, groups, 1, key)
				fl := list(groups[0].(map[string]any), "flavors")
				require.Len(t, fl, 1, key)
				assert.Equal(t, key, str(fl[0].(map[string]any), "name"), "%s: the queue must use its own pool's flavor", key)
				var gotGPUs int64 = -1
				for _, res := range list(fl[0].(map[string]any), "resources") {
					m := res.(map[string]any)
					if m["name"] == configs.GPUTaintKey {
						qty := resource.MustParse(toString(m["nominalQuota"]))
						gotGPUs = qty.Value()
					}
				}
				assert.Equal(t, wantGPUs[key], gotGPUs, "%s: %s GPU quota must be the pools' max × GPUs per node (%s)", env, key, g.Family)
				assert.Equal(t, key, localQueues[key], "the project template needs LocalQueue %s → ClusterQueue %s", key, key)
			}
			for _, p := range profiles {
				if str(p, "spec", "scheduling", "type") != "Queue" {
					continue
				}
				lq := str(p, "spec", "scheduling", "kueue", "localQueueName")
				assert.Contains(t, queues, localQueues[lq], "%s: profile %s queues to %q, which reaches no ClusterQueue", env, nameOf(p), lq)
				assert.Equal(t, string(configs.AccessShared), str(p, "metadata", "annotations", "rhoai-bootstrap.io/access"), "only shared pools queue")
			}
			t.Logf("%s: %d ResourceFlavors, %d ClusterQueues, GPU quotas %v", env, len(flavors), len(queues), wantGPUs)
		})
	}
}

func toString(v any) string { return fmt.Sprint(v) }
