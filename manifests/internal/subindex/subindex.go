// Package subindex renders the GitOps payload the way Argo CD would — each overlay, then
// the kustomization of every child Application it declares, recursively — and indexes the
// OLM Subscriptions found, for manifests.Subscriptions. It links Kustomize, so only the
// generator command and tests import it, never the shipped binary.
package subindex

import (
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/manifests"
)

// RepoPrefix is how Applications' spec.source.path names the payload root in a repository.
const RepoPrefix = "manifests/gitops/"

// Build indexes the Subscriptions of every overlay under clusters/overlays of the payload
// rooted at root in fsys.
func Build(fsys filesys.FileSystem, root string) (map[string][]manifests.Subscription, error) {
	entries, err := fsys.ReadDir(path.Join(root, "clusters", "overlays"))
	if err != nil {
		return nil, fmt.Errorf("listing the overlays: %w", err)
	}
	out := map[string][]manifests.Subscription{}
	for _, e := range entries {
		overlay := path.Join("clusters", "overlays", e)
		if !fsys.Exists(path.Join(root, overlay, "kustomization.yaml")) {
			continue
		}
		subs, err := walk(fsys, root, overlay, "", map[string]bool{})
		if err != nil {
			return nil, err
		}
		sort.Slice(subs, func(i, j int) bool {
			a, b := subs[i], subs[j]
			return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
		})
		out[overlay] = subs
	}
	return out, nil
}

// walk renders dir and follows its Applications; app names the Application that renders dir.
func walk(fsys filesys.FileSystem, root, dir, app string, seen map[string]bool) ([]manifests.Subscription, error) {
	if seen[dir] {
		return nil, nil
	}
	seen[dir] = true
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, path.Join(root, dir))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []manifests.Subscription
	for _, r := range m.Resources() {
		b, err := r.MarshalJSON()
		if err != nil {
			return nil, err
		}
		var o struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Spec struct {
				Name            string `json:"name"`
				Channel         string `json:"channel"`
				Source          any    `json:"source"`
				SourceNamespace string `json:"sourceNamespace"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", r.CurId(), err)
		}
		switch {
		case o.Kind == "Subscription" && strings.HasPrefix(o.APIVersion, "operators.coreos.com/"):
			src, _ := o.Spec.Source.(string)
			out = append(out, manifests.Subscription{App: app, Namespace: o.Metadata.Namespace, Name: o.Metadata.Name,
				Package: o.Spec.Name, Channel: o.Spec.Channel, Source: src, SourceNamespace: o.Spec.SourceNamespace})
		case o.Kind == "Application" && strings.HasPrefix(o.APIVersion, "argoproj.io/"):
			src, _ := o.Spec.Source.(map[string]any)
			p, _ := src["path"].(string)
			if !strings.HasPrefix(p, RepoPrefix) {
				return nil, fmt.Errorf("application %s: path %q is not inside %s", o.Metadata.Name, p, RepoPrefix)
			}
			children, err := walk(fsys, root, strings.TrimPrefix(p, RepoPrefix), o.Metadata.Name, seen)
			if err != nil {
				return nil, err
			}
			out = append(out, children...)
		}
	}
	return out, nil
}

// Marshal renders an index the way subscriptions.json is committed.
func Marshal(index map[string][]manifests.Subscription) ([]byte, error) {
	b, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
