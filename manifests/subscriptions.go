package manifests

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

//go:generate go run ./internal/subindex/cmd gitops subscriptions.json

// Subscription is one OLM Subscription the GitOps payload makes Argo CD create, and the
// child Application that creates it.
type Subscription struct {
	App             string `json:"app"`
	Namespace       string `json:"namespace"`
	Name            string `json:"name"`
	Package         string `json:"package"`
	Channel         string `json:"channel,omitempty"`
	Source          string `json:"source"`
	SourceNamespace string `json:"sourceNamespace"`
}

// subscriptionsJSON indexes, per overlay, the Subscriptions the payload renders to. The
// binary cannot render the payload itself (linking Kustomize would triple its size), so
// `go generate ./manifests` renders every overlay and its child Applications with
// Kustomize (internal/subindex) and writes this file; a test fails when it is stale.
//
//go:embed subscriptions.json
var subscriptionsJSON []byte

// Subscriptions returns the Subscriptions an overlay of the embedded payload renders to,
// keyed by the overlay's folder relative to the payload root (e.g. "clusters/overlays/dev").
func Subscriptions() (map[string][]Subscription, error) {
	var out map[string][]Subscription
	if err := json.Unmarshal(subscriptionsJSON, &out); err != nil {
		return nil, fmt.Errorf("reading the embedded index of the payload's Subscriptions: %w", err)
	}
	return out, nil
}

// OverlayOf finds which overlay of the embedded payload a root application's path names:
// the path as the payload lays it out in a repository ("manifests/gitops/clusters/
// overlays/dev") or any path ending in an overlay's folder. ok is false for other paths
// (a repository with its own layout), whose Subscriptions the binary cannot know.
func OverlayOf(rootPath string, index map[string][]Subscription) (overlay string, ok bool) {
	p := strings.Trim(rootPath, "/")
	keys := make([]string, 0, len(index))
	for k := range index {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if p == k || strings.HasSuffix(p, "/"+k) {
			return k, true
		}
	}
	return "", false
}
