package manifests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/manifests/internal/gen"
)

// acceleratorValues is every label/taint value a GPU pool can carry:
// <canonical GPU>-<SHARED|PRIVATE>, exactly as configs.GPUPool.AcceleratorValue spells it.
func acceleratorValues() map[string]configs.GPU {
	out := map[string]configs.GPU{}
	for name, g := range configs.Catalog {
		for _, a := range gen.Accesses {
			v := configs.GPUPool{GPU: name, Access: a}.AcceleratorValue()
			out[v] = g
		}
	}
	return out
}

// gpuPlacement walks any object and reports every GPU node selector, toleration and
// cluster-autoscaler GPU type it finds, wherever it is nested (pod specs, templates,
// HardwareProfiles, InferenceServices, ClusterPolicy...).
func gpuPlacement(v any, where string, visit func(where, field, value string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			at := where + "." + k
			switch k {
			case "nodeSelector", "nodeLabels":
				if m, ok := child.(map[string]any); ok {
					if val, ok := m[configs.AcceleratorLabel]; ok {
						visit(at, "nodeSelector", fmt.Sprint(val))
					}
				}
			case "tolerations":
				for i, tol := range asList(child) {
					if m, ok := tol.(map[string]any); ok && m["key"] == configs.GPUTaintKey {
						op, _ := m["operator"].(string)
						if op == "Exists" {
							visit(fmt.Sprintf("%s[%d]", at, i), "toleration-exists", fmt.Sprint(m["value"]))
						} else {
							visit(fmt.Sprintf("%s[%d]", at, i), "toleration", fmt.Sprint(m["value"]))
						}
					}
				}
			case "gpus":
				for i, g := range asList(child) {
					if m, ok := g.(map[string]any); ok {
						visit(fmt.Sprintf("%s[%d]", at, i), "autoscaler-gpu-type", fmt.Sprint(m["type"]))
					}
				}
			}
			gpuPlacement(child, at, visit)
		}
	case []any:
		for i, child := range x {
			gpuPlacement(child, fmt.Sprintf("%s[%d]", where, i), visit)
		}
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

// TestGPUPlacementMatchesCatalog: every GPU node selector, toleration and autoscaler
// type in everything an environment deploys is <catalog GPU>-<SHARED|PRIVATE>.
func TestGPUPlacementMatchesCatalog(t *testing.T) {
	valid := acceleratorValues()
	fsys := payloadFS(t)
	for _, overlay := range overlays {
		r := renderEnv(t, fsys, overlay)
		found := 0
		for _, o := range r.all() {
			id := kindOf(o) + "/" + nameOf(o)
			gpuPlacement(o, id, func(where, field, value string) {
				found++
				if field == "toleration-exists" {
					// Infrastructure daemonsets (GPU operator) tolerate every pool.
					assert.Equal(t, "<nil>", value, "%s: an Exists toleration carries no value", where)
					return
				}
				_, ok := valid[value]
				assert.True(t, ok, "%s: %s %q is not <catalog GPU>-<SHARED|PRIVATE>", where, field, value)
			})
		}
		assert.Greater(t, found, 20, "%s: the walk found suspiciously few GPU placements", overlay)
	}
}

// TestGPUPlacementWalkBites proves the walk above sees nested, misspelt values.
func TestGPUPlacementWalkBites(t *testing.T) {
	bad := obj{"spec": obj{"template": obj{"spec": obj{
		"nodeSelector": obj{configs.AcceleratorLabel: "L40-SHARED"},
		"tolerations":  []any{obj{"key": configs.GPUTaintKey, "operator": "Equal", "value": "NVIDIA-A10G-SHARED"}},
	}}}}
	var got []string
	gpuPlacement(bad, "bad", func(_, field, value string) { got = append(got, field+"="+value) })
	assert.ElementsMatch(t, []string{"nodeSelector=L40-SHARED", "toleration=NVIDIA-A10G-SHARED"}, got)
	valid := acceleratorValues()
	assert.NotContains(t, valid, "L40-SHARED", "the L40 alias must never reach a label")
	assert.Contains(t, valid, "L4-SHARED")
}

// TestHardwareProfilesCoverCatalog: one profile per catalog GPU and access, scheduling
// exactly onto that pool, plus a CPU-only profile.
func TestHardwareProfilesCoverCatalog(t *testing.T) {
	objs := render(t, payloadFS(t), gen.HardwareProfilesDir)
	byName := map[string]obj{}
	for _, p := range ofKind(objs, "HardwareProfile") {
		assert.Equal(t, "infrastructure.opendatahub.io/v1", str(p, "apiVersion"))
		assert.Equal(t, "redhat-ods-applications", str(p, "metadata", "namespace"))
		assert.NotEmpty(t, str(p, "metadata", "annotations", "opendatahub.io/display-name"), nameOf(p))
		assert.NotEmpty(t, str(p, "metadata", "annotations", "opendatahub.io/description"), nameOf(p))
		byName[nameOf(p)] = p
	}
	require.Contains(t, byName, "cpu-only")
	assert.Nil(t, get(byName["cpu-only"], "spec", "scheduling"), "the CPU profile must not tolerate GPU taints")
	for name, g := range configs.Catalog {
		for _, a := range gen.Accesses {
			value := configs.GPUPool{GPU: name, Access: a}.AcceleratorValue()
			pname := strings.ToLower(name) + "-" + string(a)
			p, ok := byName[pname]
			if !assert.True(t, ok, "no HardwareProfile %s for %s", pname, value) {
				continue
			}
			if a == configs.AccessShared {
				// Shared pools queue: the pool's LocalQueue and ResourceFlavor place the pods.
				assert.Equal(t, "Queue", str(p, "spec", "scheduling", "type"), pname)
				assert.Equal(t, pname, str(p, "spec", "scheduling", "kueue", "localQueueName"), pname)
				assert.Nil(t, get(p, "spec", "scheduling", "node"), pname)
			} else {
				assert.Equal(t, "Node", str(p, "spec", "scheduling", "type"), pname)
				assert.Equal(t, obj{configs.AcceleratorLabel: value}, get(p, "spec", "scheduling", "node", "nodeSelector"), pname)
				assert.Equal(t, []any{obj{"key": configs.GPUTaintKey, "operator": "Equal", "value": value, "effect": "NoSchedule"}},
					list(p, "spec", "scheduling", "node", "tolerations"), pname)
			}
			var gpuID obj
			for _, id := range list(p, "spec", "identifiers") {
				if m := id.(map[string]any); m["identifier"] == "nvidia.com/gpu" {
					gpuID = m
				}
			}
			require.NotNil(t, gpuID, "%s has no nvidia.com/gpu identifier", pname)
			assert.Equal(t, "Accelerator", gpuID["resourceType"])
			// A request above one node of the pool can never be placed (for a shared pool
			// Kueue would admit it and its pod would stay Pending): the maximum is the GPU
			// count of the environments' pools' instance type, never the family's largest.
			want := nodeGPUsOfExamples(t, g, value)
			assert.EqualValues(t, want, gpuID["maxCount"], "%s: one node of the %s pool carries %d GPUs", pname, value, want)
			assert.EqualValues(t, 1, gpuID["minCount"], pname)
			assert.EqualValues(t, 1, gpuID["defaultCount"], pname)
		}
	}
	assert.Len(t, byName, 2*len(configs.Catalog)+1, "unexpected extra profiles")
	assert.Contains(t, str(byName["l4-shared"], "metadata", "annotations", "opendatahub.io/display-name"), "L40",
		"the L4 profile must say it is the seed's L40 pool")
}

// nodeGPUsOfExamples is the smallest GPU count of one node of the example cluster files'
// pools with this accelerator value, else of the catalog's default instance type.
func nodeGPUsOfExamples(t *testing.T, g configs.GPU, value string) int {
	t.Helper()
	n := 0
	for _, env := range gen.Environments {
		file := filepath.Join("..", "configs", "examples", env+".yaml")
		data, err := os.ReadFile(file)
		require.NoError(t, err)
		c, err := configs.Parse(data, file)
		require.NoError(t, err)
		for _, p := range c.Spec.GPUPools {
			if p.AcceleratorValue() == value {
				s, err := g.Size(p.InstanceType)
				require.NoError(t, err)
				if n == 0 || s.GPUs < n {
					n = s.GPUs
				}
			}
		}
	}
	if n == 0 {
		s, err := g.Size(g.DefaultInstanceType)
		require.NoError(t, err)
		n = s.GPUs
	}
	return n
}

// TestGeneratedFilesUpToDate fails when the catalog changed but `go generate
// ./manifests` was not run (or a generated file was edited by hand).
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := gen.Files(filepath.Join("..", "configs", "examples"))
	require.NoError(t, err)
	fsys := payloadFS(t)
	for p, want := range files {
		got, err := fsys.ReadFile(fsRoot + "/" + p)
		if assert.NoError(t, err, "%s is missing: run go generate ./manifests", p) {
			assert.Equal(t, string(want), string(got), "%s is stale: run go generate ./manifests", p)
		}
	}
	// No stray, hand-written profile next to the generated ones.
	entries, err := fsys.ReadDir(fsRoot + "/" + gen.HardwareProfilesDir)
	require.NoError(t, err)
	for _, e := range entries {
		_, ok := files[gen.HardwareProfilesDir+"/"+e]
		assert.True(t, ok, "%s/%s is not generated", gen.HardwareProfilesDir, e)
	}
}

// TestAutoscalerCoversCatalog: the ClusterAutoscaler limits every accelerator value.
func TestAutoscalerCoversCatalog(t *testing.T) {
	objs := render(t, payloadFS(t), "components/configs/autoscaling")
	cas := ofKind(objs, "ClusterAutoscaler")
	require.Len(t, cas, 1)
	assert.Equal(t, "default", nameOf(cas[0]), "OpenShift only honours the ClusterAutoscaler named default")
	types := map[string]bool{}
	for _, g := range list(cas[0], "spec", "resourceLimits", "gpus") {
		m := g.(map[string]any)
		types[fmt.Sprint(m["type"])] = true
		n, err := strconv.Atoi(fmt.Sprint(m["max"]))
		require.NoError(t, err)
		assert.GreaterOrEqual(t, n, 1, fmt.Sprint(m["type"]))
	}
	for v := range acceleratorValues() {
		assert.True(t, types[v], "ClusterAutoscaler has no GPU limit for %s", v)
	}
	assert.Len(t, types, len(acceleratorValues()))
}
