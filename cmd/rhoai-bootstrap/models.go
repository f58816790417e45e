package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"text/tabwriter"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/manifests"
)

// modelsDir is where the payload keeps its model servers (plain YAML, no Kustomize
// needed to read them).
const modelsDir = "components/configs/maas/base"

// payloadModels reads the model servers of the embedded GitOps payload.
func payloadModels() ([]configs.ModelServer, error) {
	root := path.Join(manifests.GitOpsRoot, modelsDir)
	entries, err := fs.ReadDir(manifests.GitOps, root)
	if err != nil {
		return nil, fmt.Errorf("reading the payload's models: %w", err)
	}
	var out []configs.ModelServer
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		data, err := fs.ReadFile(manifests.GitOps, path.Join(root, e.Name()))
		if err != nil {
			return nil, err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var o map[string]any
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", e.Name(), err)
			}
			m, ok, err := configs.ModelServerFrom(o)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", e.Name(), err)
			}
			if ok {
				out = append(out, m)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Pool() != out[j].Pool() {
			return out[i].Pool() < out[j].Pool()
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// printModelTable prints, for each model of the payload, where it runs and whether its
// weights and KV cache fit its GPUs (configs.ModelServer.Fit), and whether the cluster
// file declares the pool it needs, so a reader sees at once what the payload will ask
// of this cluster.
func printModelTable(w io.Writer, c *configs.Cluster) error {
	models, err := payloadModels()
	if err != nil {
		return err
	}
	pools := map[string]bool{}
	for _, p := range c.Spec.GPUPools {
		pools[p.AcceleratorValue()+" "+p.InstanceType] = true
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tRUNTIME\tPOOL\tGPUS\tMEMORY FIT\tPOOL IN FILE")
	missing := 0
	for _, m := range models {
		f := m.Fit()
		fit := "no GPU"
		if m.GPU != "" {
			g, _, _ := configs.LookupGPU(m.GPU)
			fit = fmt.Sprintf("%.1f + %.1f KV of %.1f GiB", f.WeightsGiB, f.KVCacheGiB, f.UsableGiB)
			if m.Layers == 0 {
				fit = fmt.Sprintf("%.1f of %.1f GiB", f.WeightsGiB, f.UsableGiB)
			}
			if m.GPUs > 0 {
				fit += fmt.Sprintf(" (%d × %d GB)", m.GPUs, g.MemoryGiB)
			}
		}
		if f.OK() {
			fit = "ok   " + fit
		} else {
			fit = "NO   " + strings.Join(f.Problems, "; ")
		}
		pool, inFile := "cpu (workers)", "yes"
		if m.GPU != "" {
			pool = m.Pool() + " " + m.InstanceType
			if !pools[pool] {
				inFile = "no"
				missing++
			}
		}
		runtime := m.Runtime
		if m.TensorParallel > 1 {
			runtime += fmt.Sprintf(", TP %d", m.TensorParallel)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", m.Name, runtime, pool, m.GPUs, fit, inFile)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d models", len(models))
	if missing > 0 {
		fmt.Fprintf(w, "; %d need a pool (GPU, access and instance type) this cluster file does not declare: they stay Pending until you add it", missing)
	}
	fmt.Fprintln(w)
	return nil
}
