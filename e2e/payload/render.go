// Package payload renders the GitOps payload with kustomize the way Argo CD's repo server
// does, for unit tests that check what the root application's kustomize patches make of
// the payload (phases/rootapp) without a cluster. The test bed does not use it: there the
// real Argo CD renders from the bed's Git server. It links kustomize, so only tests use
// it, never the shipped binary.
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
	"sigs.k8s.io/yaml"
)

// Renderer renders paths of one checkout.
type Renderer struct{ Root string }

// Render builds the kustomization at path (relative to the checkout) into objects.
func (r Renderer) Render(_ context.Context, repoURL, revision, path string) ([]*unstructured.Unstructured, error) {
	dir := filepath.Join(r.Root, filepath.FromSlash(strings.TrimPrefix(path, "/")))
	if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); err != nil {
		return nil, fmt.Errorf("repository %s@%s has no kustomization at %s (the rehearsal renders this checkout)", repoURL, revision, path)
	}
	return build(filesys.MakeFsOnDisk(), dir, path)
}

// RenderApp renders an Argo CD Application's source the way Argo CD's repo server does
// with spec.source.kustomize.patches: the patches are appended to the kustomization's
// own `patches` field in the checkout, then kustomize builds it (argo-cd v3.5.7
// util/kustomize/kustomize.go, Build: "kustomization.yaml updated with patches"). So a
// patch runs inside that kustomization, before its replacements. The checkout is copied
// to an in-memory file system first; the repository is never written.
func (r Renderer) RenderApp(app *unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	path, _, _ := unstructured.NestedString(app.Object, "spec", "source", "path")
	patches, _, _ := unstructured.NestedSlice(app.Object, "spec", "source", "kustomize", "patches")
	fs := filesys.MakeFsInMemory()
	err := filepath.WalkDir(r.Root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != r.Root && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r.Root, p)
		return fs.WriteFile(filepath.Join("/repo", rel), b)
	})
	if err != nil {
		return nil, fmt.Errorf("copying the checkout: %w", err)
	}
	dir := filepath.Join("/repo", filepath.FromSlash(strings.TrimPrefix(path, "/")))
	if len(patches) > 0 {
		kfile := filepath.Join(dir, "kustomization.yaml")
		b, err := fs.ReadFile(kfile)
		if err != nil {
			return nil, fmt.Errorf("application %s: no kustomization at %s: %w", app.GetName(), path, err)
		}
		k := map[string]any{}
		if err := yaml.Unmarshal(b, &k); err != nil {
			return nil, fmt.Errorf("reading %s: %w", kfile, err)
		}
		old, _ := k["patches"].([]any)
		k["patches"] = append(old, patches...)
		if b, err = yaml.Marshal(k); err != nil {
			return nil, err
		}
		if err := fs.WriteFile(kfile, b); err != nil {
			return nil, err
		}
	}
	return build(fs, dir, path)
}

// build runs kustomize on dir in fs and decodes what it renders; path names it in errors.
func build(fs filesys.FileSystem, dir, path string) ([]*unstructured.Unstructured, error) {
	resmap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
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
