// Package manifests holds the YAML that rhoai-bootstrap embeds: the GitOps payload
// that the Argo CD root application points at (gitops/, written out by
// `rhoai-bootstrap render --gitops DIR`). It deliberately contains no logic beyond
// loading and writing files, so the binary does not link a Kustomize engine; the
// payload is rendered and checked by this package's tests instead.
package manifests

//go:generate go run ./internal/gen/cmd gitops ../configs/examples

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// GitOps is the GitOps payload tree, rooted at "gitops/".
//
//go:embed all:gitops
var GitOps embed.FS

// GitOpsRoot is the folder inside GitOps that holds the tree.
const GitOpsRoot = "gitops"

// WriteGitOps writes the payload tree into dir (files 0644, folders 0755), so a user
// can commit it to their own repository. It is safe to run again: a file that already
// holds the same bytes is left alone, while a file with different content is never
// overwritten, so local edits are not lost silently. All conflicting files are
// reported together, and nothing is written when there is any conflict.
func WriteGitOps(dir string) error {
	if dir == "" {
		return errors.New("writing the GitOps payload: no target folder given")
	}
	type file struct {
		dst  string
		data []byte
	}
	var (
		files     []file
		dirs      []string
		conflicts []string
	)
	err := fs.WalkDir(GitOps, GitOpsRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(GitOpsRoot, filepath.FromSlash(p))
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, rel)
		if d.IsDir() {
			dirs = append(dirs, dst)
			return nil
		}
		data, err := GitOps.ReadFile(p)
		if err != nil {
			return err
		}
		existing, err := os.ReadFile(dst)
		switch {
		case err == nil && bytes.Equal(existing, data):
			return nil // identical: nothing to do
		case err == nil:
			conflicts = append(conflicts, dst)
			return nil
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("reading %s: %w", dst, err)
		}
		files = append(files, file{dst: dst, data: data})
		return nil
	})
	if err != nil {
		return fmt.Errorf("walking the embedded GitOps payload: %w", err)
	}
	if len(conflicts) > 0 {
		return &ConflictError{Files: conflicts}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	for _, f := range files {
		if err := os.WriteFile(f.dst, f.data, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", f.dst, err)
		}
	}
	return nil
}

// ConflictError lists files that already exist with other content than the payload's.
type ConflictError struct {
	Files []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("refusing to overwrite %d changed file(s) (move them away or delete them first): %v", len(e.Files), e.Files)
}
