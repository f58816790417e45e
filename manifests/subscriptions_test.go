package manifests_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/manifests"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/manifests/internal/subindex"
)

// TestSubscriptionIndexUpToDate fails when a Subscription of the payload changed (or an
// application was added or removed) without `go generate ./manifests`: the binary checks
// the cluster's catalog against this index before handing over to Argo CD.
func TestSubscriptionIndexUpToDate(t *testing.T) {
	want, err := subindex.Build(payloadFS(t), fsRoot)
	require.NoError(t, err)
	got, err := manifests.Subscriptions()
	require.NoError(t, err)
	assert.Equal(t, want, got, "manifests/subscriptions.json is stale: run go generate ./manifests")
	for _, o := range overlays {
		assert.NotEmpty(t, got[o], "%s renders no Subscription", o)
		for _, s := range got[o] {
			assert.NotEmpty(t, s.Package, "%s/%s has no package", s.Namespace, s.Name)
			assert.NotEmpty(t, s.Source, "%s/%s has no catalog source", s.Namespace, s.Name)
			assert.NotEmpty(t, s.App, "%s/%s is not created by a child application", s.Namespace, s.Name)
		}
	}
}

func TestOverlayOf(t *testing.T) {
	index, err := manifests.Subscriptions()
	require.NoError(t, err)
	for path, want := range map[string]string{
		"manifests/gitops/clusters/overlays/dev":    "clusters/overlays/dev",
		"/manifests/gitops/clusters/overlays/prod/": "clusters/overlays/prod",
		"clusters/overlays/dev":                     "clusters/overlays/dev",
		"platform/clusters/overlays/prod":           "clusters/overlays/prod",
	} {
		got, ok := manifests.OverlayOf(path, index)
		assert.True(t, ok, path)
		assert.Equal(t, want, got, path)
	}
	_, ok := manifests.OverlayOf("envs/staging", index)
	assert.False(t, ok)
	_, ok = manifests.OverlayOf("clusters/overlays/devel", index)
	assert.False(t, ok)
}
