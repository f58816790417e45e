package manifests_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
)

// modelServers reads every model server of a rendered model folder.
func modelServers(t *testing.T, objs []obj) []configs.ModelServer {
	t.Helper()
	var out []configs.ModelServer
	for _, o := range objs {
		m, ok, err := configs.ModelServerFrom(o)
		if !ok {
			continue
		}
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

// TestModelsFitTheirGPUs checks every model server against the GPU catalog: weights
// plus one full-length sequence of KV cache fit the usable memory of the GPUs it asks
// for; it asks for exactly one node of its pool's instance type and vLLM shards over
// all of them (Llama 4 Scout: four L40S of a g6e.12xlarge); the heads split evenly;
// its node selector and toleration name its pool as the MachineSets label and taint
// it; LLMs are LLMInferenceServices routed through the MaaS gateway with a MaaSModelRef.
func TestModelsFitTheirGPUs(t *testing.T) {
	fsys := payloadFS(t)
	objs := render(t, fsys, "components/configs/maas/base")
	models := modelServers(t, objs)
	require.GreaterOrEqual(t, len(models), 15, "the seed's fifteen models (or more)")
	refs := map[string]bool{}
	for _, r := range ofKind(objs, "MaaSModelRef") {
		assert.Equal(t, "LLMInferenceService", str(r, "spec", "modelRef", "kind"))
		refs[str(r, "spec", "modelRef", "name")] = true
	}
	byName := map[string]obj{}
	for _, o := range objs {
		byName[kindOf(o)+"/"+nameOf(o)] = o
	}
	for _, m := range models {
		t.Run(m.Name, func(t *testing.T) {
			o := byName[m.Kind+"/"+m.Name]
			f := m.Fit()
			assert.True(t, f.OK(), "%s does not fit: %s", m.Name, strings.Join(f.Problems, "; "))
			if m.Kind == "LLMInferenceService" {
				assert.True(t, refs[m.Name], "%s has no MaaSModelRef", m.Name)
				gw := list(o, "spec", "router", "gateway", "refs")
				require.Len(t, gw, 1)
				assert.Equal(t, obj{"name": "maas-default-gateway", "namespace": "openshift-ingress"}, gw[0])
			} else {
				assert.Equal(t, "Standard", str(o, "metadata", "annotations", "serving.kserve.io/deploymentMode"),
					"%s: RawDeployment is deprecated for Standard", m.Name)
			}
			sel := get(o, "spec", "template", "nodeSelector")
			tol := list(o, "spec", "template", "tolerations")
			if m.Kind == "InferenceService" {
				sel, tol = get(o, "spec", "predictor", "nodeSelector"), list(o, "spec", "predictor", "tolerations")
			}
			if m.GPU == "" {
				assert.Nil(t, sel, "%s: a CPU model stays off the GPU pools", m.Name)
				assert.Empty(t, tol, m.Name)
				return
			}
			want := obj{configs.AcceleratorLabel: m.Pool()}
			if m.GPUs > 1 {
				want["node.kubernetes.io/instance-type"] = m.InstanceType
			}
			assert.Equal(t, want, sel, "%s: node selector", m.Name)
			assert.Equal(t, []any{obj{"key": configs.GPUTaintKey, "operator": "Equal", "value": m.Pool(), "effect": "NoSchedule"}}, tol, m.Name)
			if m.GPU == "T4" && m.Layers > 0 {
				assert.Contains(t, containerArgs(o), "--dtype half", "%s: the T4 has no bf16", m.Name)
			}
		})
	}
}

// containerArgs returns the vLLM arguments of an LLMInferenceService's main container.
func containerArgs(o obj) string {
	for _, c := range list(o, "spec", "template", "containers") {
		for _, e := range list(c.(map[string]any), "env") {
			if m := e.(map[string]any); m["name"] == "VLLM_ADDITIONAL_ARGS" {
				return str(m, "value")
			}
		}
	}
	return ""
}

// TestFitBites proves the fit arithmetic refuses what would not run.
func TestFitBites(t *testing.T) {
	scout := configs.ModelServer{Name: "scout", GPU: "L40S", Access: configs.AccessPrivate, InstanceType: "g6e.12xlarge",
		GPUs: 4, TensorParallel: 4, ParamsBillion: 109, WeightsDtype: "fp8", Layers: 48, KVHeads: 8, AttentionHeads: 40, HeadDim: 128, MaxModelLen: 65536}
	require.True(t, scout.Fit().OK(), scout.Fit().Problems)
	bf16 := scout
	bf16.WeightsDtype = "bf16" // 203 GiB of weights on 4 × 48 GB
	assert.False(t, bf16.Fit().OK())
	oneNode := scout
	oneNode.InstanceType = "g6e.xlarge" // one GPU per node: four cannot be had
	assert.False(t, oneNode.Fit().OK())
	tp := scout
	tp.TensorParallel = 2
	assert.False(t, tp.Fit().OK())
	heads := scout
	heads.KVHeads = 10 // Phi-4's: neither 4 nor 8 shards split them
	assert.False(t, heads.Fit().OK())
	long := scout
	long.MaxModelLen = 1 << 20 // a million-token sequence of KV cache: 192 GiB
	assert.False(t, long.Fit().OK())
	alias := scout
	alias.GPU = "L40"
	assert.False(t, alias.Fit().OK())
}

// TestModelsFitExamplePools sizes each environment's models against the GPU pools of
// the matching example cluster file: every pool and instance type a model needs exists,
// and all model replicas at once fit in the pools at their maximum.
func TestModelsFitExamplePools(t *testing.T) {
	fsys := payloadFS(t)
	for _, env := range []string{"dev", "prod"} {
		t.Run(env, func(t *testing.T) {
			file := filepath.Join("..", "configs", "examples", env+".yaml")
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			c, err := configs.Parse(data, file)
			require.NoError(t, err)
			type poolKey struct{ acc, instanceType string }
			capacity := map[poolKey]int{}
			for _, p := range c.Spec.GPUPools {
				g, _, ok := configs.LookupGPU(p.GPU)
				require.True(t, ok)
				size, err := g.Size(p.InstanceType)
				require.NoError(t, err)
				capacity[poolKey{p.AcceleratorValue(), p.InstanceType}] += p.Max * size.GPUs
			}
			r := renderEnv(t, fsys, "clusters/overlays/"+env)
			demand := map[poolKey]int{}
			models := modelServers(t, r.children["config-maas"])
			for _, m := range models {
				if m.GPU == "" {
					continue
				}
				demand[poolKey{m.Pool(), m.InstanceType}] += m.GPUs * m.Replicas
			}
			keys := make([]poolKey, 0, len(demand))
			for k := range demand {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool { return keys[i].acc < keys[j].acc })
			for _, k := range keys {
				assert.LessOrEqual(t, demand[k], capacity[k], "%s: models need %d GPUs on %s (%s), the pools offer at most %d",
					env, demand[k], k.acc, k.instanceType, capacity[k])
				t.Logf("%s: %s on %s: %d of %d GPUs", env, k.acc, k.instanceType, demand[k], capacity[k])
			}
		})
	}
}

// TestPlansCoverModels keeps the MaaS plans in step with the models: every model is in
// the premium plan, every shared-pool or CPU model in the free plan, no plan names a
// model that does not exist, and each subscription has token limits for each model.
func TestPlansCoverModels(t *testing.T) {
	fsys := payloadFS(t)
	models := map[string]string{} // MaaSModelRef name -> access label of its model
	objs := render(t, fsys, "components/configs/maas/base")
	for _, o := range ofKind(objs, "LLMInferenceService") {
		models[nameOf(o)] = str(o, "metadata", "labels", "rhoai-bootstrap.io/access")
	}
	plans := render(t, fsys, "components/configs/maas-access/plans")
	for _, kind := range []string{"MaaSAuthPolicy", "MaaSSubscription"} {
		for _, p := range ofKind(plans, kind) {
			assert.Equal(t, "models-as-a-service", str(p, "metadata", "namespace"), "%s %s", kind, nameOf(p))
			got := map[string]bool{}
			for _, ref := range list(p, "spec", "modelRefs") {
				m := ref.(map[string]any)
				assert.Equal(t, "rhoai-models", m["namespace"])
				name := m["name"].(string)
				assert.Contains(t, models, name, "%s %s names an unknown model", kind, nameOf(p))
				got[name] = true
				if kind == "MaaSSubscription" {
					assert.NotEmpty(t, list(m, "tokenRateLimits"), "%s %s: %s has no token limit", kind, nameOf(p), name)
				}
			}
			for name, access := range models {
				if nameOf(p) == "premium" || access != string(configs.AccessPrivate) {
					assert.True(t, got[name], "%s %s leaves out %s", kind, nameOf(p), name)
				} else {
					assert.False(t, got[name], "%s %s must not include the private-pool model %s", kind, nameOf(p), name)
				}
			}
		}
	}
}
