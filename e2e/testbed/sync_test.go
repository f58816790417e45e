package testbed_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

var (
	gvrNS     = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrCM     = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrSecret = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrCRB    = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}
	gvrProj   = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "appprojects"}
	gvrSub    = schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "subscriptions"}
)

func u(apiVersion, kind, ns, name string, fields map[string]any) *unstructured.Unstructured {
	obj := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}}
	if ns != "" {
		obj["metadata"].(map[string]any)["namespace"] = ns
	}
	for k, v := range fields {
		obj[k] = v
	}
	return &unstructured.Unstructured{Object: obj}
}

// The bed's Git server serves this checkout's payload and the real Argo CD — repo-server
// (git, kustomize), application controller as its service account — syncs a path of it
// into the bed's API server. Nothing simulated takes part: the configuration Argo CD
// needs (argocd-cm, argocd-secret, RBAC) is written here by hand.
func TestRealArgoCDSyncsFromTheBedsGit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	const ns = "argocd-test"
	require.NoError(t, testbed.InstallCRDs(ctx, bed.Config(), testbed.CRDSetArgoCD))
	d := dynClient(t)
	sa := testbed.ControllerServiceAccount("argocd")
	// Argo CD's settings informers see only objects labelled part-of=argocd.
	labelled := func(o *unstructured.Unstructured) *unstructured.Unstructured {
		o.SetLabels(map[string]string{"app.kubernetes.io/part-of": "argocd"})
		return o
	}
	for _, o := range []struct {
		gvr schema.GroupVersionResource
		obj *unstructured.Unstructured
	}{
		{gvrNS, u("v1", "Namespace", "", ns, nil)},
		{gvrCM, labelled(u("v1", "ConfigMap", ns, "argocd-cm", map[string]any{"data": map[string]any{"application.resourceTrackingMethod": "annotation"}}))},
		{gvrSecret, labelled(u("v1", "Secret", ns, "argocd-secret", map[string]any{"stringData": map[string]any{"server.secretkey": "bed-test-key"}}))},
		{gvrCRB, u("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", ns+"-controller", map[string]any{
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
			"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": sa, "namespace": ns}}})},
		{gvrProj, u("argoproj.io/v1alpha1", "AppProject", ns, "default", map[string]any{"spec": map[string]any{
			"sourceRepos":              []any{"*"},
			"destinations":             []any{map[string]any{"namespace": "*", "server": "*"}},
			"clusterResourceWhitelist": []any{map[string]any{"group": "*", "kind": "*"}}}})},
	} {
		_, err := d.Resource(o.gvr).Namespace(o.obj.GetNamespace()).Create(ctx, o.obj, metav1.CreateOptions{})
		require.NoError(t, err, "%s %s", o.obj.GetKind(), o.obj.GetName())
	}

	start := time.Now()
	// The package's tests share one API server; under load its first /openapi/v2 answer
	// (the schema of every CRD installed so far) has taken longer than the controller's
	// 32 s client timeout. Argo CD then records a ComparisonError and compares again only
	// when the reconciliation timeout expires (controller/appcontroller.go
	// needRefreshAppStatus: "comparison expired"), plus up to a minute of jitter: a short
	// timeout makes that retry come within the wait below instead of after it.
	argo, err := bed.StartArgoCD(ctx, testbed.ArgoCDOptions{Namespace: ns, Name: "argocd", PersistResourceHealth: true,
		ReconciliationTimeout: 20 * time.Second})
	require.NoError(t, err)
	t.Logf("Argo CD (repo-server + application controller) started in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range argo.Logs() {
				b, _ := os.ReadFile(l)
				lines := strings.Split(string(b), "\n")
				t.Logf("%s (last lines):\n%s", l, strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
		assert.NoError(t, argo.Stop())
	})

	app := u("argoproj.io/v1alpha1", "Application", ns, "nfd", map[string]any{"spec": map[string]any{
		"project":     "default",
		"source":      map[string]any{"repoURL": bed.GitURL(), "targetRevision": "main", "path": "manifests/gitops/components/operators/nfd"},
		"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": ns},
		"syncPolicy":  map[string]any{"automated": map[string]any{"prune": true}},
	}})
	start = time.Now()
	_, err = d.Resource(applications).Namespace(ns).Create(ctx, app, metav1.CreateOptions{})
	require.NoError(t, err)
	last := app
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := d.Resource(applications).Namespace(ns).Get(ctx, "nfd", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = got
		phase, _, _ := unstructured.NestedString(last.Object, "status", "operationState", "phase")
		sync, _, _ := unstructured.NestedString(last.Object, "status", "sync", "status")
		return phase == "Succeeded" && sync == "Synced", nil
	})
	require.NoError(t, err, "Application status: %v", last.Object["status"])
	t.Logf("Application synced by the real controller in %s", time.Since(start).Round(time.Millisecond))
	sub, err := d.Resource(gvrSub).Namespace("openshift-nfd").Get(ctx, "nfd", metav1.GetOptions{})
	require.NoError(t, err, "the Subscription from the bed's Git repository")
	assert.Equal(t, "nfd:operators.coreos.com/Subscription:openshift-nfd/nfd", sub.GetAnnotations()["argocd.argoproj.io/tracking-id"])
	syncs, err := argo.Metric(ctx, "argocd_app_sync_total")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, syncs, 1.0, "Argo CD counted the sync")
	rev, _, _ := unstructured.NestedString(last.Object, "status", "sync", "revision")
	assert.Len(t, rev, 40, "a commit of the bed's repository")
}
