package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
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
	if testing.Short() {
		t.Skip("links the whole binary")
	}
	bin := filepath.Join(t.TempDir(), "rhoai-bootstrap")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -dumpdep", "-o", bin, ".")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", tail(string(out), 2000))

	var marked []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
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

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
