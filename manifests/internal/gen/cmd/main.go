// Command gen writes the catalog-derived files of the GitOps payload into the payload
// folder given as its first argument, sizing Kueue quotas from the example cluster
// files in the second (run by `go generate ./manifests`).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/manifests/internal/gen"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gen PAYLOAD_DIR EXAMPLES_DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(root, examples string) error {
	files, err := gen.Files(examples)
	if err != nil {
		return err
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		dst := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("creating the folder of %s: %w", dst, err)
		}
		if err := os.WriteFile(dst, files[p], 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", dst, err)
		}
	}
	fmt.Printf("gen: wrote %d files under %s\n", len(paths), root)
	return nil
}
