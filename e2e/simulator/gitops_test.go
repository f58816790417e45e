package simulator

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

var listAll = metav1.ListOptions{}

// The GitOps operator role turns the ArgoCD CR into Argo CD's own configuration the way
// argocd-operator does, then has Argo CD started once and reports the instance Available.
func TestGitOpsOperatorBringsArgoCD(t *testing.T) {
	b := getBed(t)
	b.sim.SetLatencies(Latencies{ArgoCDReady: time.Second})
	t.Cleanup(func() { b.sim.SetLatencies(Latencies{}) })
	start := time.Now()
	b.installGitOpsOperator(t)
	// An upper bound, not a timing claim: under a loaded make test the API server itself
	// took over 10 s to answer the GET (context deadline exceeded on the request).
	b.eventually(t, time.Minute, "ArgoCD CRD from the operator's bundle", func(ctx context.Context) (bool, error) {
		crd, err := b.get(ctx, gvrCRD, "", "argocds.argoproj.io")
		return crd != nil && condStatus(crd.Object, "Established", "status", "conditions") == "True", err
	})
	cds := b.record(t, gvrArgoCD, gitopsNS)
	b.eventually(t, 20*time.Second, "ArgoCD Available", func(ctx context.Context) (bool, error) {
		cd, err := b.get(ctx, gvrArgoCD, gitopsNS, gitopsNS)
		return cd != nil && nestedStr(cd, "status", "phase") == "Available", err
	})
	t.Logf("Subscription → ArgoCD Available in %s (ArgoCDReady 1s)", time.Since(start).Round(time.Millisecond))

	assert.Equal(t, "Succeeded", nestedStr(b.mustGet(t, gvrCSV, "openshift-gitops-operator", "openshift-gitops-operator.v1.20.1"), "status", "phase"))
	assert.Contains(t, b.installedPackages(), gitopsPackage)
	cds.waitStates(t, gitopsNS, func(u *unstructured.Unstructured) string { return nestedStr(u, "status", "phase") }, "Pending", "Available")
	cd := b.mustGet(t, gvrArgoCD, gitopsNS, gitopsNS)
	for _, c := range []string{"applicationController", "applicationSetController", "redis", "repo", "server"} {
		assert.Equal(t, "Running", nestedStr(cd, "status", c), c)
	}
	assert.Equal(t, "openshift-gitops-server-openshift-gitops.apps.sim.example.com", nestedStr(cd, "status", "host"))
	b.mustGet(t, gvrAppProject, gitopsNS, "default")
	starts, _ := b.argoCounts(gitopsNS + "/" + gitopsNS)
	assert.Equal(t, 1, starts, "Argo CD started once for the instance")

	cm := b.mustGet(t, gvrConfigMap, gitopsNS, argocdCM)
	assert.Equal(t, "annotation", nestedStr(cm, "data", "application.resourceTrackingMethod"))
	assert.Contains(t, nestedStr(cm, "data", "resource.exclusions"), "- Lease", "the operator's default exclusions")
	rbac := b.mustGet(t, gvrConfigMap, gitopsNS, argocdRBACCM)
	assert.Equal(t, "[groups]", nestedStr(rbac, "data", "scopes"))
	assert.Contains(t, nestedStr(rbac, "data", "policy.csv"), "g, system:cluster-admins, role:admin", "spec.rbac.policy")
	params := b.mustGet(t, gvrConfigMap, gitopsNS, argocdCmdParamsCM)
	assert.Equal(t, "true", nestedStr(params, "data", "controller.resource.health.persist"))
	b.mu.Lock()
	assert.Equal(t, "true", b.argoParams[gitopsNS+"/"+gitopsNS]["controller.resource.health.persist"], "what Argo CD is started with")
	b.mu.Unlock()
	secret := b.mustGet(t, gvrSecret, gitopsNS, argocdSecret)
	assert.NotEmpty(t, nestedStr(secret, "data", "server.secretkey"))
	sa := gitopsNS + "-argocd-application-controller"
	b.mustGet(t, gvrServiceAccount, gitopsNS, sa)
	b.mustGet(t, gvrRoleBinding, gitopsNS, sa)
	b.mustGet(t, gvrClusterRoleBinding, "", gitopsNS+"-"+sa+"-view")

	// spec.resourceHealthChecks become argocd-cm keys, the group joined to the kind by "_"
	// and a core kind without one (argocd-operator getResourceHealthChecks).
	b.mergePatch(t, gvrArgoCD, gitopsNS, gitopsNS, map[string]any{"spec": map[string]any{"resourceHealthChecks": []any{
		map[string]any{"group": "argoproj.io", "kind": "Application", "check": testAppHealthLua},
		map[string]any{"kind": "PersistentVolumeClaim", "check": "return {status = \"Healthy\"}"}}}})
	b.eventually(t, 10*time.Second, "argocd-cm carries the health checks", func(ctx context.Context) (bool, error) {
		cm, err := b.get(ctx, gvrConfigMap, gitopsNS, argocdCM)
		return cm != nil && nestedStr(cm, "data", healthKeyPrefix+"argoproj.io_Application") == testAppHealthLua &&
			nestedStr(cm, "data", healthKeyPrefix+"PersistentVolumeClaim") != "", err
	})
	// The operator owns argocd-cm: a key written there directly is reverted.
	b.mergePatch(t, gvrConfigMap, gitopsNS, argocdCM, map[string]any{"data": map[string]any{"edited.by.hand": "yes"}})
	b.eventually(t, 5*time.Second, "argocd-cm reverted", func(ctx context.Context) (bool, error) {
		cm, err := b.get(ctx, gvrConfigMap, gitopsNS, argocdCM)
		return cm != nil && nestedStr(cm, "data", "edited.by.hand") == "", err
	})
	starts, stops := b.argoCounts(gitopsNS + "/" + gitopsNS)
	assert.Equal(t, 1, starts, "configuration changes do not restart Argo CD (it watches its ConfigMaps)")
	assert.Zero(t, stops)
}

// The GitOps operator keeps its default instance: deleted, it comes back (with a new Argo
// CD, the old one stopped) — unless the Subscription sets DISABLE_DEFAULT_ARGOCD_INSTANCE,
// which also removes it.
func TestDefaultArgoCDInstanceIsKept(t *testing.T) {
	b := getBed(t)
	b.ensureGitOps(t)
	key := gitopsNS + "/" + gitopsNS
	starts0, stops0 := b.argoCounts(key)
	old := b.mustGet(t, gvrArgoCD, gitopsNS, gitopsNS)
	b.mustDelete(t, gvrArgoCD, gitopsNS, gitopsNS)
	b.eventually(t, 10*time.Second, "default ArgoCD recreated and Available", func(ctx context.Context) (bool, error) {
		cd, err := b.get(ctx, gvrArgoCD, gitopsNS, gitopsNS)
		return cd != nil && cd.GetUID() != old.GetUID() && nestedStr(cd, "status", "phase") == "Available", err
	})
	starts, stops := b.argoCounts(key)
	assert.Equal(t, starts0+1, starts, "a new Argo CD for the new instance")
	assert.Equal(t, stops0+1, stops, "the old one stopped")

	subNS := "openshift-gitops-operator"
	b.mergePatch(t, gvrSubscription, subNS, gitopsPackage, map[string]any{"spec": map[string]any{"config": map[string]any{
		"env": []any{map[string]any{"name": "DISABLE_DEFAULT_ARGOCD_INSTANCE", "value": "true"}}}}})
	t.Cleanup(func() {
		_, err := b.dyn.Resource(gvrSubscription).Namespace(subNS).Patch(context.Background(), gitopsPackage,
			types.MergePatchType, []byte(`{"spec":{"config":null}}`), metav1.PatchOptions{})
		assert.NoError(t, err, "re-enable the default instance")
	})
	b.eventually(t, 10*time.Second, "default ArgoCD removed", func(ctx context.Context) (bool, error) {
		cd, err := b.get(ctx, gvrArgoCD, gitopsNS, gitopsNS)
		return cd == nil && err == nil, err
	})
	time.Sleep(2 * DefaultLatency)
	cd, err := b.get(t.Context(), gvrArgoCD, gitopsNS, gitopsNS)
	require.NoError(t, err)
	assert.Nil(t, cd, "stays away while disabled")
	// The simulator stops the instance's Argo CD when its watch sees the ArgoCD gone, as
	// the operator's Deployments go: asynchronously, so wait for it (a fixed 2×latency
	// sleep was too short at load ~20 in make test).
	b.eventually(t, 10*time.Second, "its Argo CD stopped", func(context.Context) (bool, error) {
		_, stops = b.argoCounts(key)
		return stops == stops0+2, nil
	})
}
