package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxBinaryBytes is the stripped binary's budget (issue #19: ≤ 60 MB).
const maxBinaryBytes = 60_000_000

// TestLinkerDropsUnusedMethods builds the shipped binary as `make build` does and reads the
// linker's dependency dump: no reachable function may call reflect's Method/MethodByName
// with a name known only at run time (the linker marks those <ReflectMethod>). One such
// call — text/template's field lookup, reached through cobra's SetVersionTemplate — makes
// the linker keep every exported method of every reachable type, and the AWS SDK's EC2
// client alone then adds tens of megabytes (94.7 MB instead of 38.7 MB, measured). See
// github.com/spf13/cobra/pull/1956 and golang/go#72895.
func TestLinkerDropsUnusedMethods(t *testing.T) {
	bin, dump := shippedBinary(t)
	var marked []string
	seen := map[string]bool{}
	for _, line := range strings.Split(dump, "\n") {
		from, _, ok := strings.Cut(line, " -> ")
		if ok && strings.HasSuffix(from, " <ReflectMethod>") && !seen[from] {
			seen[from] = true
			marked = append(marked, strings.TrimSuffix(from, " <ReflectMethod>"))
		}
	}
	sort.Strings(marked)
	assert.Empty(t, marked, "reachable functions that call reflect Method/MethodByName with a run-time name "+
		"(find the caller with: go build -ldflags=-dumpdep ./cmd/rhoai-bootstrap 2>&1 | grep -B2 <name>)")

	fi, err := os.Stat(bin)
	require.NoError(t, err)
	t.Logf("stripped binary: %d bytes (%.1f MiB)", fi.Size(), float64(fi.Size())/(1<<20))
	assert.LessOrEqual(t, fi.Size(), int64(maxBinaryBytes), "stripped binary size")
}

// shipped is the binary `make build` makes (stripped, -trimpath), linked once per test
// run for every test that reads it, with the linker's dependency dump.
var shipped = sync.OnceValues(func() (shippedBuild, error) {
	dir, err := os.MkdirTemp("", "rhoai-bootstrap-shipped-")
	if err != nil {
		return shippedBuild{}, err
	}
	shippedDir = dir
	b := shippedBuild{bin: filepath.Join(dir, "rhoai-bootstrap")}
	out, err := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -dumpdep", "-o", b.bin, ".").CombinedOutput()
	if err != nil {
		return b, fmt.Errorf("go build: %w: %s", err, tail(string(out), 2000))
	}
	b.dumpdep = string(out)
	return b, nil
})

type shippedBuild struct{ bin, dumpdep string }

// shippedDir holds the shipped binary once built; TestMain removes it.
var shippedDir string

// shippedBinary returns the path of the shipped binary and its linker dependency dump.
func shippedBinary(t *testing.T) (bin, dumpdep string) {
	t.Helper()
	if testing.Short() {
		t.Skip("links the whole binary")
	}
	b, err := shipped()
	require.NoError(t, err)
	return b.bin, b.dumpdep
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
