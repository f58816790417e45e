// Package payload renders the GitOps payload the way Argo CD's repo server would, for the
// cluster simulator: the root Application's path is built with kustomize from this
// checkout (the rehearsal's repoURL names this repository). It links kustomize, so only
// test-bed programs use it, never the shipped binary.
package payload

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Renderer renders paths of one checkout.
type Renderer struct{ Root string }

// Render builds the kustomization at path (relative to the checkout) into objects.
func (r Renderer) Render(_ context.Context, repoURL, revision, path string) ([]*unstructured.Unstructured, error) {
	dir := filepath.Join(r.Root, filepath.FromSlash(strings.TrimPrefix(path, "/")))
	if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); err != nil {
		return nil, fmt.Errorf("repository %s@%s has no kustomization at %s (the rehearsal renders this checkout)", repoURL, revision, path)
	}
	resmap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("rendering %s: %w", path, err)
	}
	var out []*unstructured.Unstructured
	for _, res := range resmap.Resources() {
		b, err := res.MarshalJSON()
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", res.CurId(), err)
		}
		out = append(out, u)
	}
	return out, nil
}
