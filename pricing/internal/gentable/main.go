// Command gentable writes the built-in price table (pricing/prices.json) from Karpenter's
// generated on-demand price list, aws/karpenter-provider-aws
// pkg/providers/pricing/zz_generated.pricing_aws.go, which Karpenter's own generator
// (hack/code/prices_gen) fills from the AWS Price List API with the same filters this
// package uses (Linux, Shared tenancy, no pre-installed software, capacitystatus Used).
// The file is parsed as Go, not scanned with patterns, and only the instance types the
// bootstrap can ask for are kept: the GPU catalog's, and the m5/m6i/m7i families the
// control plane and workers use.
//
//	go run ./pricing/internal/gentable -src zz_generated.pricing_aws.go -commit SHA > pricing/prices.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
)

// generatedAt is the line Karpenter's generator writes above the table.
var generatedAt = regexp.MustCompile(`// generated at (\d{4}-\d{2}-\d{2})T[0-9:]+Z`)

// controlFamilies are the families, beyond the GPU catalog, whose sizes the table keeps.
var controlFamilies = []string{"m5.", "m6i.", "m7i."}

func main() {
	src := flag.String("src", "", "path to Karpenter's zz_generated.pricing_aws.go")
	commit := flag.String("commit", "", "the aws/karpenter-provider-aws commit the file was taken from")
	flag.Parse()
	if err := run(*src, *commit); err != nil {
		fmt.Fprintln(os.Stderr, "gentable:", err)
		os.Exit(1)
	}
}

func wanted(instanceType string) bool {
	for _, g := range configs.Catalog {
		if _, ok := g.Sizes[instanceType]; ok {
			return true
		}
	}
	for _, f := range controlFamilies {
		if strings.HasPrefix(instanceType, f) {
			return true
		}
	}
	return false
}

func run(src, commit string) error {
	if src == "" || commit == "" {
		return fmt.Errorf("-src and -commit are required")
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	m := generatedAt.FindSubmatch(b)
	if m == nil {
		return fmt.Errorf("%s: no %q line", src, "// generated at")
	}
	f, err := parser.ParseFile(token.NewFileSet(), src, b, 0)
	if err != nil {
		return fmt.Errorf("parsing %s: %w", src, err)
	}
	prices := map[string]map[string]float64{}
	ast.Inspect(f, func(n ast.Node) bool {
		region, ok := n.(*ast.KeyValueExpr)
		if !ok {
			return true
		}
		inner, ok := region.Value.(*ast.CompositeLit)
		if !ok {
			return true
		}
		name, err := strconv.Unquote(region.Key.(*ast.BasicLit).Value)
		if err != nil {
			return true
		}
		for _, el := range inner.Elts {
			kv := el.(*ast.KeyValueExpr)
			it, _ := strconv.Unquote(kv.Key.(*ast.BasicLit).Value)
			if !wanted(it) {
				continue
			}
			v, err := strconv.ParseFloat(kv.Value.(*ast.BasicLit).Value, 64)
			if err != nil {
				continue
			}
			if prices[name] == nil {
				prices[name] = map[string]float64{}
			}
			prices[name][it] = v
		}
		return false
	})
	if len(prices) == 0 {
		return fmt.Errorf("%s: no prices found", src)
	}
	regions := make([]string, 0, len(prices))
	for r := range prices {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	out := map[string]any{
		"date":     string(m[1]),
		"source":   fmt.Sprintf("aws/karpenter-provider-aws pkg/providers/pricing/zz_generated.pricing_aws.go at %s (AWS Price List API, on-demand Linux, %s)", commit, strings.Join(regions, ", ")),
		"onDemand": prices,
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}
