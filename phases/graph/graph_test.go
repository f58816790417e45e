package graph

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
)

// ancestors returns every phase name must wait for, directly or through others.
func ancestors(deps map[string][]string, name string) []string {
	var out []string
	var visit func(string)
	visit = func(n string) {
		for _, d := range deps[n] {
			if !slices.Contains(out, d) {
				out = append(out, d)
				visit(d)
			}
		}
	}
	visit(name)
	slices.Sort(out)
	return out
}

// The hand-off waits for Argo CD, the GPU pools and the certificate Secrets — not for the
// router and API server rollouts nor the login, which take minutes on a real cluster and
// which Argo CD does not need; every phase still belongs to the run.
func TestHandOffWaitsOnlyForWhatItNeeds(t *testing.T) {
	c, err := configs.Load(filepath.Join("..", "..", "configs", "examples", "dev.yaml"))
	require.NoError(t, err)
	deps := map[string][]string{}
	for _, p := range Phases(&phases.Env{Cluster: c}, Options{}) {
		deps[p.Name()] = p.DependsOn()
	}
	assert.Equal(t, []string{"certificates", "cluster", "gitops-operator", "gpu-pools", "install-config", "preflight"}, ancestors(deps, "root-app"))
	assert.Equal(t, []string{"certificates"}, deps["certificates-rollout"])
	assert.Len(t, deps, 9)
}
