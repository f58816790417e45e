package configs

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Model annotations: the GitOps payload states on every model server what it needs
// from a GPU pool, so that one computation (Fit) can check it against this catalog in
// the tests and print it in `render --gitops`.
const (
	ModelAnnotationPrefix = "rhoai-bootstrap.io/"
	annGPU                = ModelAnnotationPrefix + "gpu-type"
	annAccess             = ModelAnnotationPrefix + "gpu-access"
	annInstanceType       = ModelAnnotationPrefix + "instance-type"
	annParams             = ModelAnnotationPrefix + "params-billion"
	annDtype              = ModelAnnotationPrefix + "weights-dtype"
	annLayers             = ModelAnnotationPrefix + "layers"
	annKVHeads            = ModelAnnotationPrefix + "kv-heads"
	annHeads              = ModelAnnotationPrefix + "attention-heads"
	annHeadDim            = ModelAnnotationPrefix + "head-dim"
)

// BytesPerParam is the size of one weight by checkpoint format. w4a16 (GPTQ/AWQ-style
// 4-bit weights) is counted at 4.5 bits: per-group scales and the unquantised
// embeddings add about an eighth.
var BytesPerParam = map[string]float64{"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "w4a16": 0.5625}

// Memory assumptions of Fit, after vLLM's defaults (vllm/engine/arg_utils.py:
// gpu_memory_utilization 0.9; KV cache in the model's 16-bit dtype unless told).
const (
	DefaultGPUMemoryUtilization = 0.9
	// CUDAOverheadGiB is left per GPU for the CUDA context, NCCL buffers and
	// activations outside the KV cache.
	CUDAOverheadGiB = 1.0
	kvBytes         = 2
	gib             = 1 << 30
)

// ModelServer is what one model server declares: where it runs and what it holds.
type ModelServer struct {
	Name, Kind, Runtime string
	// GPU is a catalog name, or "" for a CPU model.
	GPU          string
	Access       Access
	InstanceType string
	// GPUs is the nvidia.com/gpu request of one replica; TensorParallel the shards.
	GPUs, TensorParallel int
	Replicas             int
	ParamsBillion        float64
	WeightsDtype         string
	// Transformer shape for the KV cache (0 for models without one, e.g. SDXL).
	Layers, KVHeads, AttentionHeads, HeadDim int
	MaxModelLen                              int
	MemoryUtilization                        float64
}

// Fit is the memory arithmetic of one model server on its pool's GPUs.
type Fit struct {
	WeightsGiB, KVCacheGiB, UsableGiB float64
	// Problems is empty when the model fits its pool.
	Problems []string
}

// OK reports whether the model fits.
func (f Fit) OK() bool { return len(f.Problems) == 0 }

// Pool names the accelerator value the model runs on, or "cpu".
func (m ModelServer) Pool() string {
	if m.GPU == "" {
		return "cpu"
	}
	return GPUPool{GPU: m.GPU, Access: m.Access}.AcceleratorValue()
}

// Fit checks the model against the catalog: the weights plus one full-length
// sequence of KV cache fit in the usable memory of the GPUs it requests; the GPUs it
// requests are exactly one node of its pool's instance type (vLLM shards over all of
// them: tensor parallel = GPUs); the attention and KV heads split evenly over the
// shards.
func (m ModelServer) Fit() Fit {
	var f Fit
	bad := func(format string, a ...any) { f.Problems = append(f.Problems, fmt.Sprintf(format, a...)) }
	b, ok := BytesPerParam[m.WeightsDtype]
	if !ok {
		bad("unknown weights dtype %q", m.WeightsDtype)
	}
	f.WeightsGiB = m.ParamsBillion * 1e9 * b / gib
	f.KVCacheGiB = float64(2*m.Layers*m.KVHeads*m.HeadDim*kvBytes) * float64(m.MaxModelLen) / gib
	if m.GPU == "" {
		if m.GPUs != 0 {
			bad("a CPU model requests %d GPUs", m.GPUs)
		}
		return f
	}
	g, alias, ok := LookupGPU(m.GPU)
	switch {
	case !ok:
		bad("GPU %q is not in the catalog", m.GPU)
		return f
	case alias != "":
		bad("GPU %q is an alias: use %s", m.GPU, g.Name)
	}
	size, err := g.Size(m.InstanceType)
	if err != nil {
		bad("%v", err)
		return f
	}
	if m.GPUs != size.GPUs {
		bad("requests %d GPUs but one %s node has %d", m.GPUs, m.InstanceType, size.GPUs)
	}
	if m.Layers > 0 {
		if m.TensorParallel != m.GPUs {
			bad("tensor parallel %d is not its %d GPUs", m.TensorParallel, m.GPUs)
		}
		if tp := m.TensorParallel; tp > 0 {
			if m.AttentionHeads%tp != 0 {
				bad("%d attention heads do not split over %d shards", m.AttentionHeads, tp)
			}
			if m.KVHeads%tp != 0 && tp%m.KVHeads != 0 {
				bad("%d KV heads do not split over %d shards", m.KVHeads, tp)
			}
		}
	}
	util := m.MemoryUtilization
	if util == 0 {
		util = DefaultGPUMemoryUtilization
	}
	f.UsableGiB = float64(m.GPUs) * (float64(g.MemoryGiB)*util - CUDAOverheadGiB)
	if need := f.WeightsGiB + f.KVCacheGiB; need > f.UsableGiB {
		bad("needs %.1f GiB (weights %.1f + KV cache %.1f for %d tokens) but %d × %s offer %.1f GiB usable",
			need, f.WeightsGiB, f.KVCacheGiB, m.MaxModelLen, m.GPUs, g.Name, f.UsableGiB)
	}
	return f
}

// Compiled on first use, not at start-up (guarded by cmd/rhoai-bootstrap's TestOwnPackagesDoNoWorkAtInit).
var (
	maxModelLen = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`--max-model-len[= ](\d+)`) })
	memUtil     = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`--gpu-memory-utilization[= ]([0-9.]+)`) })
)

// ModelServerFrom reads a model server's declaration from a KServe
// LLMInferenceService or InferenceService object (as decoded YAML). The second result
// is false for any other kind.
func ModelServerFrom(o map[string]any) (ModelServer, bool, error) {
	kind, _ := o["kind"].(string)
	if kind != "LLMInferenceService" && kind != "InferenceService" {
		return ModelServer{}, false, nil
	}
	meta, _ := o["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	ann, _ := meta["annotations"].(map[string]any)
	a := func(k string) string { s, _ := ann[k].(string); return s }
	m := ModelServer{Name: name, Kind: kind, GPU: a(annGPU), Access: Access(a(annAccess)), InstanceType: a(annInstanceType),
		WeightsDtype: a(annDtype), Replicas: 1}
	if m.GPU == "none" {
		m.GPU = ""
	}
	var errs []string
	num := func(k string, required bool) float64 {
		s := a(k)
		if s == "" {
			if required {
				errs = append(errs, "annotation "+k+" is missing")
			}
			return 0
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			errs = append(errs, fmt.Sprintf("annotation %s: %v", k, err))
		}
		return v
	}
	m.ParamsBillion = num(annParams, true)
	m.Layers = int(num(annLayers, false))
	m.KVHeads = int(num(annKVHeads, m.Layers > 0))
	m.AttentionHeads = int(num(annHeads, m.Layers > 0))
	m.HeadDim = int(num(annHeadDim, m.Layers > 0))
	if m.GPU != "" && m.InstanceType == "" {
		errs = append(errs, "annotation "+annInstanceType+" is missing")
	}
	spec, _ := o["spec"].(map[string]any)
	var container map[string]any
	var args []string
	switch kind {
	case "LLMInferenceService":
		m.Runtime = "vLLM (LLMInferenceService)"
		if r, ok := number(spec["replicas"]); ok {
			m.Replicas = int(r)
		}
		m.TensorParallel = 1
		if par, _ := spec["parallelism"].(map[string]any); par != nil {
			if tp, ok := number(par["tensor"]); ok {
				m.TensorParallel = int(tp)
			}
		}
		tmpl, _ := spec["template"].(map[string]any)
		cs, _ := tmpl["containers"].([]any)
		for _, c := range cs {
			if cm, _ := c.(map[string]any); cm["name"] == "main" {
				container = cm
			}
		}
		for _, e := range asSlice(container["env"]) {
			if em, _ := e.(map[string]any); em["name"] == "VLLM_ADDITIONAL_ARGS" {
				v, _ := em["value"].(string)
				args = append(args, v)
			}
		}
	case "InferenceService":
		pred, _ := spec["predictor"].(map[string]any)
		if r, ok := number(pred["maxReplicas"]); ok {
			m.Replicas = int(r)
		}
		container, _ = pred["model"].(map[string]any)
		m.Runtime, _ = container["runtime"].(string)
		m.TensorParallel = 1
	}
	for _, v := range asSlice(container["args"]) {
		s, _ := v.(string)
		args = append(args, s)
	}
	joined := strings.Join(args, " ")
	if sm := maxModelLen().FindStringSubmatch(joined); sm != nil {
		m.MaxModelLen, _ = strconv.Atoi(sm[1])
	}
	if sm := memUtil().FindStringSubmatch(joined); sm != nil {
		m.MemoryUtilization, _ = strconv.ParseFloat(sm[1], 64)
	}
	if m.Layers > 0 && m.MaxModelLen == 0 {
		errs = append(errs, "no --max-model-len: the KV cache cannot be sized")
	}
	res, _ := container["resources"].(map[string]any)
	req, _ := res["requests"].(map[string]any)
	lim, _ := res["limits"].(map[string]any)
	if r, l := fmt.Sprint(req["nvidia.com/gpu"]), fmt.Sprint(lim["nvidia.com/gpu"]); r != l {
		errs = append(errs, fmt.Sprintf("nvidia.com/gpu requests %s differ from limits %s", r, l))
	}
	if g, ok := number(lim["nvidia.com/gpu"]); ok {
		m.GPUs = int(g)
	}
	if len(errs) > 0 {
		return m, true, fmt.Errorf("%s %s: %s", kind, name, strings.Join(errs, "; "))
	}
	return m, true, nil
}

// number reads an int, float or numeric string from decoded YAML.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, !math.IsNaN(x)
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

func asSlice(v any) []any { s, _ := v.([]any); return s }
