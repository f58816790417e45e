package manifests_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
			assert.EqualValues(t, gen.MaxGPUs(g), gpuID["maxCount"], pname)
			assert.EqualValues(t, 1, gpuID["minCount"], pname)
			assert.EqualValues(t, 1, gpuID["defaultCount"], pname)
		}
	}
	assert.Len(t, byName, 2*len(configs.Catalog)+1, "unexpected extra profiles")
	assert.Contains(t, str(byName["l4-shared"], "metadata", "annotations", "opendatahub.io/display-name"), "L40",
		"the L4 profile must say it is the seed's L40 pool")
}

// model is an InferenceService's placement, read from its spec and annotations.
type model struct {
	name, gpu, access, dtype, runtime string
	gpus, replicas                    int
	minMemGiB, params                 float64
	o                                 obj
}

var dtypeBytes = map[string]float64{"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "int4": 0.5}

func readModel(t *testing.T, o obj) model {
	t.Helper()
	ann := func(k string) string { return str(o, "metadata", "annotations", "rhoai-bootstrap.io/"+k) }
	num := func(k string) float64 {
		v, err := strconv.ParseFloat(ann(k), 64)
		require.NoError(t, err, "%s: annotation rhoai-bootstrap.io/%s", nameOf(o), k)
		return v
	}
	m := model{name: nameOf(o), gpu: ann("gpu-type"), access: ann("gpu-access"), dtype: ann("weights-dtype"),
		runtime: str(o, "spec", "predictor", "model", "runtime"), minMemGiB: num("min-gpu-memory-gib"), params: num("params-billion"), o: o}
	req := str(o, "spec", "predictor", "model", "resources", "requests", "nvidia.com/gpu")
	lim := str(o, "spec", "predictor", "model", "resources", "limits", "nvidia.com/gpu")
	assert.Equal(t, req, lim, "%s: nvidia.com/gpu requests must equal limits", m.name)
	if req != "" {
		n, err := strconv.Atoi(req)
		require.NoError(t, err)
		m.gpus = n
	}
	if r := get(o, "spec", "predictor", "maxReplicas"); r != nil {
		n, err := strconv.Atoi(fmt.Sprint(r))
		require.NoError(t, err, "%s: maxReplicas", m.name)
		m.replicas = n
	}
	return m
}

var tensorParallel = regexp.MustCompile(`^--tensor-parallel-size=(\d+)$`)

// TestModelsFitTheirGPUs checks each model server against the GPU catalog: enough GPU
// memory for its stated minimum, which itself covers its weights; no more GPUs than one
// instance of the family (and of the pool's default instance type) has; node selector,
// toleration and HardwareProfile all naming the same pool.
func TestModelsFitTheirGPUs(t *testing.T) {
	fsys := payloadFS(t)
	for _, dir := range []string{"components/configs/maas/base", "components/configs/maas/overlays/dev", "components/configs/maas/overlays/prod"} {
		objs := render(t, fsys, dir)
		runtimes := map[string]bool{}
		for _, rt := range ofKind(objs, "ServingRuntime") {
			runtimes[nameOf(rt)] = true
		}
		profiles := map[string]obj{}
		for _, p := range ofKind(render(t, fsys, gen.HardwareProfilesDir), "HardwareProfile") {
			profiles[nameOf(p)] = p
		}
		isvcs := ofKind(objs, "InferenceService")
		require.Len(t, isvcs, 12, "%s: the seed's twelve models", dir)
		for _, o := range isvcs {
			m := readModel(t, o)
			assert.Equal(t, "RawDeployment", str(o, "metadata", "annotations", "serving.kserve.io/deploymentMode"), m.name)
			assert.True(t, runtimes[m.runtime], "%s: runtime %q is not in the payload", m.name, m.runtime)
			bytes, ok := dtypeBytes[m.dtype]
			require.True(t, ok, "%s: unknown weights dtype %q", m.name, m.dtype)
			hwp := profiles[str(o, "metadata", "annotations", "opendatahub.io/hardware-profile-name")]
			require.NotNil(t, hwp, "%s: its hardware profile does not exist", m.name)
			assert.Equal(t, get(hwp, "spec", "scheduling", "node", "nodeSelector"), get(o, "spec", "predictor", "nodeSelector"), "%s: node selector differs from its profile", m.name)
			assert.Equal(t, get(hwp, "spec", "scheduling", "node", "tolerations"), get(o, "spec", "predictor", "tolerations"), "%s: tolerations differ from its profile", m.name)
			uri := str(o, "spec", "predictor", "model", "storageUri")
			assert.True(t, uri == "" || strings.HasPrefix(uri, "hf://") || strings.HasPrefix(uri, "oci://"), "%s: storageUri %q", m.name, uri)

			if m.gpu == "none" {
				assert.Zero(t, m.gpus, "%s: a CPU model requests GPUs", m.name)
				assert.Nil(t, get(o, "spec", "predictor", "tolerations"), m.name)
				continue
			}
			g, alias, ok := configs.LookupGPU(m.gpu)
			require.True(t, ok, "%s: gpu-type %q is not in the catalog", m.name, m.gpu)
			assert.Empty(t, alias, "%s: use the canonical GPU name, not the alias", m.name)
			value := configs.GPUPool{GPU: g.Name, Access: configs.Access(m.access)}.AcceleratorValue()
			assert.Equal(t, value, str(o, "spec", "predictor", "nodeSelector", configs.AcceleratorLabel), m.name)
			require.Positive(t, m.gpus, "%s: a GPU model must request nvidia.com/gpu", m.name)
			weights := m.params * bytes
			assert.GreaterOrEqual(t, m.minMemGiB, weights, "%s: the stated minimum (%v GiB) is below its weights (%.1f B params × %v bytes)", m.name, m.minMemGiB, m.params, bytes)
			assert.GreaterOrEqual(t, float64(m.gpus*g.MemoryGiB), m.minMemGiB, "%s: %d × %s (%d GiB) < %v GiB", m.name, m.gpus, g.Name, g.MemoryGiB, m.minMemGiB)
			assert.LessOrEqual(t, m.gpus, gen.MaxGPUs(g), "%s: more GPUs than any %s instance has", m.name, g.Family)
			def, err := g.Size(g.DefaultInstanceType)
			require.NoError(t, err)
			assert.LessOrEqual(t, m.gpus, def.GPUs, "%s: a pool of %s (the default for %s) has only %d GPUs per node", m.name, g.DefaultInstanceType, g.Name, def.GPUs)
			tp := 1
			for _, a := range list(o, "spec", "predictor", "model", "args") {
				if sm := tensorParallel.FindStringSubmatch(fmt.Sprint(a)); sm != nil {
					tp, _ = strconv.Atoi(sm[1])
				}
			}
			if m.runtime == "vllm-cuda-runtime" {
				assert.Equal(t, m.gpus, tp, "%s: vLLM must shard over exactly the GPUs it requests", m.name)
			}
			if g.Name == "T4" && m.runtime == "vllm-cuda-runtime" {
				assert.Contains(t, list(o, "spec", "predictor", "model", "args"), "--dtype=half", "%s: the T4 has no bf16", m.name)
			}
		}
	}
}

// TestModelsFitExamplePools sizes each environment's models against the GPU pools of
// the matching example cluster file: every pool a model needs exists, and all model
// replicas at their maximum fit in the pools at their maximum.
func TestModelsFitExamplePools(t *testing.T) {
	fsys := payloadFS(t)
	for _, env := range []string{"dev", "prod"} {
		t.Run(env, func(t *testing.T) {
			file := filepath.Join("..", "configs", "examples", env+".yaml")
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			c, err := configs.Parse(data, file)
			require.NoError(t, err)
			capacity := map[string]int{}
			for _, p := range c.Spec.GPUPools {
				g, _, ok := configs.LookupGPU(p.GPU)
				require.True(t, ok)
				size, err := g.Size(p.InstanceType)
				require.NoError(t, err)
				capacity[p.AcceleratorValue()] += p.Max * size.GPUs
			}
			r := renderEnv(t, fsys, "clusters/overlays/"+env)
			demand := map[string]int{}
			for _, o := range ofKind(r.children["config-maas"], "InferenceService") {
				m := readModel(t, o)
				if m.gpu == "none" {
					continue
				}
				demand[str(o, "spec", "predictor", "nodeSelector", configs.AcceleratorLabel)] += m.gpus * max(1, m.replicas)
			}
			for acc, need := range demand {
				assert.LessOrEqual(t, need, capacity[acc], "%s: models need %d GPUs on %s, the pools offer at most %d", env, need, acc, capacity[acc])
			}
			t.Logf("%s GPU demand %v, capacity %v", env, demand, capacity)
		})
	}
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
