// Command subindex writes manifests/subscriptions.json, the index of the Subscriptions each
// overlay of the GitOps payload renders to (run by `go generate ./manifests`).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/manifests/internal/subindex"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: subindex PAYLOAD_DIR OUTPUT")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "subindex:", err)
		os.Exit(1)
	}
}

func run(payload, output string) error {
	root, err := filepath.Abs(payload)
	if err != nil {
		return err
	}
	index, err := subindex.Build(filesys.MakeFsOnDisk(), root)
	if err != nil {
		return err
	}
	b, err := subindex.Marshal(index)
	if err != nil {
		return err
	}
	if err := os.WriteFile(output, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", output, err)
	}
	n := 0
	for _, subs := range index {
		n += len(subs)
	}
	fmt.Printf("subindex: %d Subscriptions in %d overlays written to %s\n", n, len(index), output)
	return nil
}
