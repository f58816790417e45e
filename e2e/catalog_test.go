//go:build e2e

package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
)

// localConfig writes a copy of the rehearsal's cluster file with edits, its relative
// paths made absolute (the copy lives elsewhere).
func localConfig(t *testing.T, r *harness.Rehearsal, edits ...string) string {
	t.Helper()
	b, err := os.ReadFile(r.Config())
	require.NoError(t, err)
	doc := strings.ReplaceAll(string(b), " local/", " "+filepath.Join(filepath.Dir(r.Config()), "local")+"/")
	for i := 0; i+1 < len(edits); i += 2 {
		require.Contains(t, doc, edits[i])
		doc = strings.ReplaceAll(doc, edits[i], edits[i+1])
	}
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	require.NoError(t, os.WriteFile(path, []byte(doc), 0o600))
	return path
}

func runWith(t *testing.T, r *harness.Rehearsal, verb, cfg, state string, env []string) harness.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res := r.Run(ctx, env, append([]string{verb, "-f", cfg}, r.Flags(state)...)...)
	t.Logf("%s exited %d in %s", verb, res.Code, res.Duration.Round(100*time.Millisecond))
	return res
}

// phaseError is the error a run reported for a phase ("" if none).
func phaseError(res harness.Result, phase string) string {
	for _, e := range res.Events {
		if e.Type == "phase-failed" && e.Phase == phase {
			return e.Error
		}
	}
	return ""
}

// Channels come from the cluster's catalog (OLM's PackageManifests), not from our memory.
// On an OpenShift 4.19 cluster, gitops-1.16 is not offered: the gitops-operator phase fails
// before subscribing, naming the channels that are, and plan shows the same. With
// "latest" it installs; then the prod payload's ODF Subscription (stable-4.20) cannot
// resolve on 4.19, and the root-app phase says so before creating the root application.
func TestChannelsFromTheCatalog(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	// The root application's path is the prod overlay (its ODF Subscription is the subject).
	r := rehearsal(t, "manifests/gitops/clusters/overlays/prod")
	state := filepath.Join(r.WorkDir, "state")
	env := r.Env("FAKE_OPENSHIFT_INSTALL_VERSION=4.19.9")
	cfg := localConfig(t, r, "operatorChannel: latest", "operatorChannel: gitops-1.16")

	res := runWith(t, r, "install", cfg, state, env)
	require.Equal(t, 1, res.Code, "stderr: %s", res.Stderr)
	msg := phaseError(res, "gitops-operator")
	assert.Contains(t, msg, `spec.gitops.operatorChannel: channel "gitops-1.16" of openshift-gitops-operator is not offered by this cluster's catalog redhat-operators`)
	assert.Contains(t, msg, "it offers gitops-1.18, gitops-1.19, gitops-1.20, latest (default latest)")
	subGVR := schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "subscriptions"}
	_, err := dyn(t, r).Resource(subGVR).Namespace("openshift-gitops-operator").Get(context.Background(), "openshift-gitops-operator", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "nothing subscribed: %v", err)

	res = runWith(t, r, "plan", cfg, state, env)
	planned := ""
	for _, e := range res.Events {
		if e.Type == "phase-planned" && e.Phase == "gitops-operator" {
			planned = e.Outcome + ": " + e.Message
		}
	}
	assert.Contains(t, planned, `failed: spec.gitops.operatorChannel: channel "gitops-1.16" of openshift-gitops-operator is not offered`)

	cfg = localConfig(t, r)
	res = runWith(t, r, "install", cfg, state, env)
	require.Equal(t, 1, res.Code, "stderr: %s", res.Stderr)
	assert.Empty(t, phaseError(res, "gitops-operator"))
	msg = phaseError(res, "root-app")
	assert.Contains(t, msg, "1 Subscription(s) of the GitOps payload (clusters/overlays/prod) would not resolve on this cluster")
	assert.Contains(t, msg, `Subscription openshift-storage/odf-operator (application operator-odf): channel "stable-4.20" of odf-operator is not offered by the catalog redhat-operators; it offers stable-4.19 (default stable-4.19)`)
	_, err = dyn(t, r).Resource(appsGVR).Namespace("openshift-gitops").Get(context.Background(), "rhoai-root", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "no hand-off: %v", err)
}
