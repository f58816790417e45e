package configs

import (
	"fmt"
	"sort"
	"strings"
)

// GPU describes one accelerator type the bootstrap can put in a machine pool on AWS.
// One pool declaration drives everything derived from it (MachineSet, node label,
// taint, autoscaler limits, the payload's HardwareProfile), so the catalog is the single
// place where a GPU's AWS family and sizes are written down.
type GPU struct {
	// Name is the canonical accelerator name, as used in labels and autoscaler limits.
	Name string
	// Family is the EC2 instance family that carries this GPU.
	Family string
	// DefaultInstanceType is the smallest instance of the family with this GPU.
	DefaultInstanceType string
	// MemoryGiB is the memory of one GPU.
	MemoryGiB int
	// QuotaClass is the Service Quotas class that counts these instances' vCPUs:
	// "G" (G and VT instances) or "P" (P instances).
	QuotaClass string
	// PriceClass is a rough hint for people choosing a pool: $, $$, $$$, $$$$.
	PriceClass string
	// Sizes lists the instance types of the family and their GPU and vCPU counts.
	Sizes map[string]InstanceSize
}

// InstanceSize is the shape of one EC2 instance type.
type InstanceSize struct {
	GPUs  int
	VCPUs int
}

// gpuAliases maps names people use for a GPU to the catalog name.
// The seed runbook calls its g6 pool "L40 24 GB", but g6 instances carry NVIDIA L4
// (24 GB); the L40 itself is not offered on AWS. We accept the alias and say so.
var gpuAliases = map[string]string{"L40": "L4"}

func gSizes(multi map[string]InstanceSize) map[string]InstanceSize {
	s := map[string]InstanceSize{
		"xlarge": {1, 4}, "2xlarge": {1, 8}, "4xlarge": {1, 16}, "8xlarge": {1, 32},
		"12xlarge": {4, 48}, "16xlarge": {1, 64},
	}
	for k, v := range multi {
		s[k] = v
	}
	return s
}

func withFamily(family string, sizes map[string]InstanceSize) map[string]InstanceSize {
	out := make(map[string]InstanceSize, len(sizes))
	for k, v := range sizes {
		out[family+"."+k] = v
	}
	return out
}

// Catalog is the GPU catalog for AWS, keyed by canonical name.
var Catalog = map[string]GPU{
	"T4": {Name: "T4", Family: "g4dn", DefaultInstanceType: "g4dn.xlarge", MemoryGiB: 16, QuotaClass: "G", PriceClass: "$",
		Sizes: withFamily("g4dn", gSizes(map[string]InstanceSize{"metal": {8, 96}}))},
	"A10G": {Name: "A10G", Family: "g5", DefaultInstanceType: "g5.xlarge", MemoryGiB: 24, QuotaClass: "G", PriceClass: "$$",
		Sizes: withFamily("g5", gSizes(map[string]InstanceSize{"24xlarge": {4, 96}, "48xlarge": {8, 192}}))},
	"L4": {Name: "L4", Family: "g6", DefaultInstanceType: "g6.xlarge", MemoryGiB: 24, QuotaClass: "G", PriceClass: "$$",
		Sizes: withFamily("g6", gSizes(map[string]InstanceSize{"24xlarge": {4, 96}, "48xlarge": {8, 192}}))},
	"L40S": {Name: "L40S", Family: "g6e", DefaultInstanceType: "g6e.xlarge", MemoryGiB: 48, QuotaClass: "G", PriceClass: "$$$",
		Sizes: withFamily("g6e", gSizes(map[string]InstanceSize{"24xlarge": {4, 96}, "48xlarge": {8, 192}}))},
	"A100": {Name: "A100", Family: "p4d", DefaultInstanceType: "p4d.24xlarge", MemoryGiB: 40, QuotaClass: "P", PriceClass: "$$$$",
		Sizes: map[string]InstanceSize{"p4d.24xlarge": {8, 96}}},
	"H100": {Name: "H100", Family: "p5", DefaultInstanceType: "p5.48xlarge", MemoryGiB: 80, QuotaClass: "P", PriceClass: "$$$$",
		Sizes: map[string]InstanceSize{"p5.48xlarge": {8, 192}}},
}

// LookupGPU finds a GPU by its catalog name or an alias (case-insensitive).
// The second result is the alias that was used, or "".
func LookupGPU(name string) (GPU, string, bool) {
	key := strings.ToUpper(strings.TrimSpace(name))
	if canon, ok := gpuAliases[key]; ok {
		g := Catalog[canon]
		return g, key, true
	}
	for k, g := range Catalog {
		if strings.EqualFold(k, key) {
			return g, "", true
		}
	}
	return GPU{}, "", false
}

// GPUNames lists the catalog's canonical names in a stable order (cheapest first),
// followed by the accepted aliases.
func GPUNames() []string {
	names := []string{"T4", "A10G", "L4", "L40S", "A100", "H100"}
	aliases := make([]string, 0, len(gpuAliases))
	for a := range gpuAliases {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	return append(names, aliases...)
}

// Size returns the shape of an instance type of this GPU's family.
func (g GPU) Size(instanceType string) (InstanceSize, error) {
	s, ok := g.Sizes[instanceType]
	if !ok {
		known := make([]string, 0, len(g.Sizes))
		for k := range g.Sizes {
			known = append(known, k)
		}
		sort.Strings(known)
		return InstanceSize{}, fmt.Errorf("instance type %q does not carry %s GPUs (known: %s)", instanceType, g.Name, strings.Join(known, ", "))
	}
	return s, nil
}
