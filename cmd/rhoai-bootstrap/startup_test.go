package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every start of the command, `--help` included, first initializes every package linked
// into it (issue #19: `--help` < 50 ms). Two guards keep that cost from creeping back; they
// count what the start does, not how long it takes (the time is measured by
// `make startbench`, which prints numbers, not by a test).

// heavyAtInit are packages that an accidental import would link, each bringing many
// packages (and their initialization, type tables and pages) to every start of the
// command, with the smaller package that does the job.
var heavyAtInit = map[string]string{
	"k8s.io/client-go/kubernetes": "the clientset links the typed client and apply configurations of ~60 built-in " +
		"group versions (102 packages, 0.8 MB stripped); build the group's client (k8s.io/client-go/kubernetes/typed/<group>/<version>) as phases/kube does",
	"k8s.io/client-go/informers":           "informer factories of every built-in group; use tools/cache with the client you have",
	"k8s.io/client-go/applyconfigurations": "ForKind links the apply configurations of every built-in group; import the group's package",
	"github.com/openshift/client-go/config/clientset/versioned": "the versioned clientset links every version of the group and discovery; " +
		"use .../typed/config/v1 as phases/kube does",
	"github.com/openshift/client-go/machine/clientset/versioned":  "use .../typed/machine/v1beta1 as phases/kube does",
	"github.com/openshift/client-go/operator/clientset/versioned": "use the typed client of the one version you need",
	"sigs.k8s.io/controller-runtime/pkg/client": "controller-runtime's client and its caches; phases/kube has " +
		"dynamic, metadata and typed clients",
	"sigs.k8s.io/kustomize/api/krusty":    "kustomize makes the binary 149 MB instead of 51 (DESIGN.md): tests only",
	"github.com/stretchr/testify/assert":  "a test library in the shipped binary",
	"github.com/stretchr/testify/require": "a test library in the shipped binary",
}

// TestStartupLinksNoHeavyPackages lists the shipped binary's packages (as `make build`
// links them: no build tags) and fails on any of heavyAtInit.
func TestStartupLinksNoHeavyPackages(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	require.NoError(t, err, "go list -deps: %s", stderrOf(err))
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube", "go list -deps lists the command's packages")
	var linked []string
	for _, p := range deps {
		if why, ok := heavyAtInit[p]; ok {
			linked = append(linked, p+": "+why)
		}
	}
	assert.Empty(t, linked, "packages linked into the command that make every start slower "+
		"(find the importer with: go list -deps -f '{{.ImportPath}} {{.Imports}}' ./cmd/rhoai-bootstrap | grep <package>)")
	t.Logf("%d packages linked", len(deps))
}

// ownInitBudget bounds what this module's packages allocate while they initialize, summed
// over them: package-level maps of a few constants fit (about 8 KiB today); a regexp
// compiled at init (2–10 KiB each), an embedded table decoded or a scheme built at init
// does not — make it lazy (sync.OnceValue) where it is first used. Before this guard the
// module's packages allocated 55 KiB at init, 44 KiB of it nine regexps.
const ownInitBudget = 16 << 10

// TestOwnPackagesDoNoWorkAtInit runs the shipped binary's `--help` with
// GODEBUG=inittrace=1 (the runtime prints each package's init: clock, bytes, allocations)
// and holds this module's packages to ownInitBudget. Allocations, unlike times, do not
// depend on the machine's load. It logs the ten packages that allocate most at init.
func TestOwnPackagesDoNoWorkAtInit(t *testing.T) {
	bin, _ := shippedBinary(t)
	cmd := exec.Command(bin, "--help")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "--help: %s", tail(stderr.String(), 2000))

	inits, err := parseInitTrace(stderr.String())
	require.NoError(t, err)
	require.NotEmpty(t, inits, "no init trace in --help's stderr:\n%s", tail(stderr.String(), 2000))

	var own, all int64
	var ownLines []string
	for _, in := range inits {
		all += in.bytes
		if in.pkg == "main" || strings.HasPrefix(in.pkg, "github.com/rhoai-bootstrap/rhoai-bootstrap/") {
			own += in.bytes
			if in.bytes > 0 {
				ownLines = append(ownLines, fmt.Sprintf("%s: %d bytes", in.pkg, in.bytes))
			}
		}
	}
	assert.LessOrEqual(t, own, int64(ownInitBudget), "this module's packages allocate at init:\n%s", strings.Join(ownLines, "\n"))

	slices.SortFunc(inits, func(a, b initTrace) int { return int(b.bytes - a.bytes) })
	var top []string
	for _, in := range inits[:min(10, len(inits))] {
		top = append(top, fmt.Sprintf("  %7d bytes %s", in.bytes, in.pkg))
	}
	t.Logf("%d packages initialized, %d KiB allocated (this module's: %d bytes); most:\n%s",
		len(inits), all>>10, own, strings.Join(top, "\n"))
}

type initTrace struct {
	pkg   string
	bytes int64
}

// parseInitTrace reads the runtime's inittrace lines (Go's src/runtime/proc.go, doInit1):
//
//	init internal/bytealg @0.008 ms, 0 ms clock, 0 bytes, 0 allocs
func parseInitTrace(s string) ([]initTrace, error) {
	var out []initTrace
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 11 || f[0] != "init" || f[8] != "bytes," {
			continue
		}
		n, err := strconv.ParseInt(f[7], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("init trace line %q: %w", line, err)
		}
		out = append(out, initTrace{pkg: f[1], bytes: n})
	}
	return out, nil
}

// stderrOf is the stderr an exec.ExitError carries.
func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
