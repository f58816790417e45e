package simulator

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

var listAll = metav1.ListOptions{}

// application builds an auto-syncing Application in openshift-gitops rendering path.
func application(name, path string, finalizer bool) *unstructured.Unstructured {
	u := obj("argoproj.io/v1alpha1", "Application", gitopsNS, name, map[string]any{
		"project":     "default",
		"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": gitopsNS},
		"source":      map[string]any{"repoURL": "https://git.example.com/org/payload.git", "targetRevision": "main", "path": path},
		"syncPolicy":  map[string]any{"automated": map[string]any{"prune": true, "selfHeal": true}},
	})
	if finalizer {
		u.SetFinalizers([]string{resourcesFinalizer})
	}
	return u
}

func appSyncHealth(u *unstructured.Unstructured) string {
	return nestedStr(u, "status", "sync", "status") + "/" + nestedStr(u, "status", "health", "status")
}

func (b *bed) appIs(name, state string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		app, err := b.get(ctx, gvrApplication, gitopsNS, name)
		return app != nil && appSyncHealth(app) == state, err
	}
}

func (b *bed) gone(name string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		u, err := b.get(ctx, gvrApplication, gitopsNS, name)
		return u == nil && err == nil, err
	}
}

func TestGitOpsOperatorBringsArgoCD(t *testing.T) {
	b := getBed(t)
	b.sim.SetLatencies(Latencies{ArgoCDReady: time.Second})
	t.Cleanup(func() { b.sim.SetLatencies(Latencies{}) })
	start := time.Now()
	b.installGitOpsOperator(t)
	b.eventually(t, 10*time.Second, "ArgoCD CRD from the operator's bundle", func(ctx context.Context) (bool, error) {
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

	cm := b.mustGet(t, gvrConfigMap, gitopsNS, argocdCM)
	assert.Equal(t, "annotation", nestedStr(cm, "data", "application.resourceTrackingMethod"))
	// The operator owns argocd-cm: a key written there directly is reverted.
	b.mergePatch(t, gvrConfigMap, gitopsNS, argocdCM, map[string]any{"data": map[string]any{"edited.by.hand": "yes"}})
	b.eventually(t, 5*time.Second, "argocd-cm reverted", func(ctx context.Context) (bool, error) {
		cm, err := b.get(ctx, gvrConfigMap, gitopsNS, argocdCM)
		return cm != nil && nestedStr(cm, "data", "edited.by.hand") == "", err
	})
}

func TestAppOfAppsWaitsForChildren(t *testing.T) {
	b := getBed(t)
	b.ensureGitOps(t)
	b.setRender("apps/root", application("child-a", "apps/leaf-a", true), application("child-b", "apps/leaf-b", true),
		obj("v1", "ConfigMap", gitopsNS, "payload-settings", nil))
	b.setRender("apps/leaf-a", obj("v1", "Namespace", "", "leaf-a", nil))
	b.setRender("apps/leaf-b", obj("operators.coreos.com/v1alpha1", "Subscription", "leaf-b", "some-operator", map[string]any{"name": "x"}))

	apps := b.record(t, gvrApplication, gitopsNS)
	start := time.Now()
	b.mustCreate(t, gvrApplication, application("root", "apps/root", true))
	b.eventually(t, 15*time.Second, "root Synced/Healthy", b.appIs("root", "Synced/Healthy"))
	t.Logf("root app Synced/Healthy in %s (two children, AppSync %s)", time.Since(start).Round(time.Millisecond), DefaultLatency)

	// In watch (resourceVersion) order: when root first turns Healthy, both children already are.
	apps.waitStates(t, "root", appSyncHealth, "Synced/Healthy")
	last := map[string]string{}
	sawProgressing := false
	for _, ev := range apps.snapshot() {
		state := appSyncHealth(ev.obj)
		last[ev.obj.GetName()] = state
		if ev.obj.GetName() != "root" {
			continue
		}
		if state == "Synced/Progressing" {
			sawProgressing = true
		}
		if state == "Synced/Healthy" {
			assert.Equal(t, "Synced/Healthy", last["child-a"], "child-a when root turned Healthy")
			assert.Equal(t, "Synced/Healthy", last["child-b"], "child-b when root turned Healthy")
			break
		}
	}
	assert.True(t, sawProgressing, "root is Progressing while its children are not Healthy yet: %v",
		apps.states("root", appSyncHealth))

	for _, name := range []string{"child-a", "child-b"} {
		child := b.mustGet(t, gvrApplication, gitopsNS, name)
		assert.Equal(t, "root:argoproj.io/Application:openshift-gitops/"+name, child.GetAnnotations()[trackingAnnotation])
		assert.True(t, slices.ContainsFunc(child.GetManagedFields(), func(m metav1.ManagedFieldsEntry) bool {
			return m.Manager == mgrArgoApply && m.Operation == metav1.ManagedFieldsOperationApply
		}), "%s is server-side applied by %s", name, mgrArgoApply)
	}
	cm, err := b.get(t.Context(), gvrConfigMap, gitopsNS, "payload-settings")
	require.NoError(t, err)
	assert.Nil(t, cm, "only Applications are applied")

	root := b.mustGet(t, gvrApplication, gitopsNS, "root")
	assert.Regexp(t, regexp.MustCompile(`^[0-9a-f]{40}$`), nestedStr(root, "status", "sync", "revision"))
	assert.Equal(t, "Succeeded", nestedStr(root, "status", "operationState", "phase"))
	assert.Equal(t, "appTree", nestedStr(root, "status", "resourceHealthSource"))
	assert.NotEmpty(t, nestedStr(root, "status", "reconciledAt"))
	resources, _, _ := unstructured.NestedSlice(root.Object, "status", "resources")
	require.Len(t, resources, 3)
	for _, r := range resources {
		assert.Equal(t, "Synced", asMap(r)["status"], "%v", r)
	}
	history, _, _ := unstructured.NestedSlice(root.Object, "status", "history")
	assert.Len(t, history, 1)
	leafB := b.mustGet(t, gvrApplication, gitopsNS, "child-b")
	leafRes, _, _ := unstructured.NestedSlice(leafB.Object, "status", "resources")
	require.Len(t, leafRes, 1)
	assert.Equal(t, "leaf-b", asMap(leafRes[0])["namespace"])
}

func TestFailedAppIsDegradedWithItsMessage(t *testing.T) {
	b := getBed(t)
	b.ensureGitOps(t)
	msg := `one or more objects failed to apply, reason: DataScienceCluster.datasciencecluster.opendatahub.io "default-dsc" is invalid`
	b.sim.FailApp("bad-child", msg)
	b.setRender("apps/root-fail", application("bad-child", "apps/leaf-a", true), application("ok-child", "apps/leaf-a", true))
	b.setRender("apps/leaf-a", obj("v1", "Namespace", "", "leaf-a", nil))
	b.mustCreate(t, gvrApplication, application("root-fail", "apps/root-fail", true))

	b.eventually(t, 15*time.Second, "bad-child OutOfSync/Degraded", b.appIs("bad-child", "OutOfSync/Degraded"))
	b.eventually(t, 15*time.Second, "root-fail Synced/Degraded", b.appIs("root-fail", "Synced/Degraded"))
	bad := b.mustGet(t, gvrApplication, gitopsNS, "bad-child")
	assert.Equal(t, "Failed", nestedStr(bad, "status", "operationState", "phase"))
	assert.Equal(t, msg, nestedStr(bad, "status", "operationState", "message"))
	cond := condOf(bad, "SyncError")
	require.NotNil(t, cond)
	assert.Contains(t, cond["message"], msg)
	assert.Equal(t, "Synced/Healthy", appSyncHealth(b.mustGet(t, gvrApplication, gitopsNS, "ok-child")))

	b.sim.FailApp("bad-child", "")
	b.eventually(t, 15*time.Second, "bad-child healed", b.appIs("bad-child", "Synced/Healthy"))
	b.eventually(t, 15*time.Second, "root-fail healed", b.appIs("root-fail", "Synced/Healthy"))
	assert.Nil(t, condOf(b.mustGet(t, gvrApplication, gitopsNS, "bad-child"), "SyncError"))
}

func TestDeleteCascadesToChildApps(t *testing.T) {
	b := getBed(t)
	b.ensureGitOps(t)
	b.setRender("apps/cascade", application("cascade-a", "apps/empty", true), application("cascade-b", "apps/empty", false))
	b.setRender("apps/empty")
	b.mustCreate(t, gvrApplication, application("cascade-root", "apps/cascade", true))
	b.eventually(t, 15*time.Second, "cascade-root healthy", b.appIs("cascade-root", "Synced/Healthy"))

	apps := b.record(t, gvrApplication, gitopsNS)
	start := time.Now()
	b.mustDelete(t, gvrApplication, gitopsNS, "cascade-root")
	for _, name := range []string{"cascade-root", "cascade-a", "cascade-b"} {
		b.eventually(t, 10*time.Second, name+" deleted", b.gone(name))
	}
	apps.waitStates(t, "cascade-root", func(*unstructured.Unstructured) string { return "" }, "DELETED")
	t.Logf("cascade delete took %s", time.Since(start).Round(time.Millisecond))
	var order []string
	for _, ev := range apps.snapshot() {
		if ev.typ == watch.Deleted {
			order = append(order, ev.obj.GetName())
		}
	}
	require.Len(t, order, 3)
	assert.Equal(t, "cascade-root", order[2], "the parent goes last: %v", order)
}

func TestStuckFinalizer(t *testing.T) {
	b := getBed(t)
	b.ensureGitOps(t)
	b.sim.StuckFinalizers("stuck-root")
	b.setRender("apps/stuck", application("stuck-child", "apps/empty", false))
	b.setRender("apps/empty")
	b.mustCreate(t, gvrApplication, application("stuck-root", "apps/stuck", true))
	b.eventually(t, 15*time.Second, "stuck-root healthy", b.appIs("stuck-root", "Synced/Healthy"))

	b.mustDelete(t, gvrApplication, gitopsNS, "stuck-root")
	time.Sleep(4 * DefaultLatency)
	root := b.mustGet(t, gvrApplication, gitopsNS, "stuck-root")
	assert.NotNil(t, root.GetDeletionTimestamp())
	assert.Equal(t, []string{resourcesFinalizer}, root.GetFinalizers())
	b.mustGet(t, gvrApplication, gitopsNS, "stuck-child")

	b.sim.ReleaseFinalizers("stuck-root")
	b.eventually(t, 10*time.Second, "stuck-root deleted after release", b.gone("stuck-root"))
	b.eventually(t, 10*time.Second, "stuck-child deleted", b.gone("stuck-child"))
}

func TestAppWithMissingProjectIsInvalid(t *testing.T) {
	b := getBed(t)
	b.ensureGitOps(t)
	app := application("no-project", "apps/empty", false)
	require.NoError(t, unstructured.SetNestedField(app.Object, "platform", "spec", "project"))
	b.setRender("apps/empty")
	b.mustCreate(t, gvrApplication, app)
	b.eventually(t, 10*time.Second, "InvalidSpecError", b.appIs("no-project", "Unknown/Unknown"))
	assert.Equal(t, "Application referencing project platform which does not exist",
		condOf(b.mustGet(t, gvrApplication, gitopsNS, "no-project"), "InvalidSpecError")["message"])
}

// Without the Application health check (Argo CD's default since 1.8) a parent does not wait
// for its children — the reason the bootstrap must configure it.
func TestParentIgnoresChildHealthWithoutHealthCheck(t *testing.T) {
	b := getBed(t)
	b.ensureGitOps(t)
	b.mergePatch(t, gvrArgoCD, gitopsNS, gitopsNS, map[string]any{"spec": map[string]any{"resourceHealthChecks": nil}})
	t.Cleanup(func() {
		restore := `{"spec":{"resourceHealthChecks":[{"group":"argoproj.io","kind":"Application","check":` + strconv.Quote(testAppHealthLua) + `}]}}`
		_, err := b.dyn.Resource(gvrArgoCD).Namespace(gitopsNS).Patch(context.Background(), gitopsNS, types.MergePatchType, []byte(restore), metav1.PatchOptions{})
		assert.NoError(t, err, "restore the Application health check")
	})
	b.eventually(t, 5*time.Second, "health check removed from argocd-cm", func(ctx context.Context) (bool, error) {
		cm, err := b.get(ctx, gvrConfigMap, gitopsNS, argocdCM)
		return cm != nil && nestedStr(cm, "data", healthKeyPrefix+"argoproj.io_Application") == "", err
	})
	b.sim.FailApp("unchecked-child", "boom")
	b.setRender("apps/unchecked", application("unchecked-child", "apps/empty", false))
	b.setRender("apps/empty")
	b.mustCreate(t, gvrApplication, application("unchecked-root", "apps/unchecked", false))
	b.eventually(t, 15*time.Second, "child Degraded", b.appIs("unchecked-child", "OutOfSync/Degraded"))
	b.eventually(t, 5*time.Second, "root Healthy regardless", b.appIs("unchecked-root", "Synced/Healthy"))
}

func TestManualSyncThroughOperation(t *testing.T) {
	b := getBed(t)
	b.ensureGitOps(t)
	b.setRender("apps/manual", obj("v1", "Namespace", "", "manual-ns", nil))
	app := application("manual-app", "apps/manual", false)
	unstructured.RemoveNestedField(app.Object, "spec", "syncPolicy")
	b.mustCreate(t, gvrApplication, app)
	b.eventually(t, 10*time.Second, "compared, not synced", b.appIs("manual-app", "OutOfSync/Missing"))
	time.Sleep(2 * DefaultLatency)
	cur := b.mustGet(t, gvrApplication, gitopsNS, "manual-app")
	assert.Equal(t, "OutOfSync/Missing", appSyncHealth(cur), "nothing syncs without automation or an operation")
	assert.Empty(t, nestedStr(cur, "status", "operationState", "phase"))

	b.mergePatch(t, gvrApplication, gitopsNS, "manual-app", map[string]any{"operation": map[string]any{
		"sync": map[string]any{"revision": "main"}, "initiatedBy": map[string]any{"username": "admin"}}})
	b.eventually(t, 10*time.Second, "synced by the operation", b.appIs("manual-app", "Synced/Healthy"))
	cur = b.mustGet(t, gvrApplication, gitopsNS, "manual-app")
	_, hasOp := cur.Object["operation"]
	assert.False(t, hasOp, "a finished operation is removed")
	assert.Equal(t, "admin", nestedStr(cur, "status", "operationState", "operation", "initiatedBy", "username"))
}

func TestRenderErrorIsComparisonError(t *testing.T) {
	b := getBed(t)
	b.ensureGitOps(t)
	b.mustCreate(t, gvrApplication, application("broken-path", "apps/no-such-path", false))
	b.eventually(t, 10*time.Second, "ComparisonError", func(ctx context.Context) (bool, error) {
		app, err := b.get(ctx, gvrApplication, gitopsNS, "broken-path")
		return app != nil && condOf(app, "ComparisonError") != nil, err
	})
	app := b.mustGet(t, gvrApplication, gitopsNS, "broken-path")
	assert.Equal(t, "Unknown", nestedStr(app, "status", "sync", "status"))
	assert.Contains(t, condOf(app, "ComparisonError")["message"], `path "apps/no-such-path": app path does not exist`)
}

func TestRefreshPrunesRemovedChild(t *testing.T) {
	b := getBed(t)
	b.ensureGitOps(t)
	b.setRender("apps/empty")
	b.setRender("apps/prune", application("prune-a", "apps/empty", false), application("prune-b", "apps/empty", false))
	b.mustCreate(t, gvrApplication, application("prune-root", "apps/prune", false))
	b.eventually(t, 10*time.Second, "prune-root healthy", b.appIs("prune-root", "Synced/Healthy"))
	b.mustGet(t, gvrApplication, gitopsNS, "prune-b")

	b.setRender("apps/prune", application("prune-a", "apps/empty", false)) // a new commit drops prune-b
	b.mergePatch(t, gvrApplication, gitopsNS, "prune-root", map[string]any{"metadata": map[string]any{
		"annotations": map[string]any{refreshAnnotation: "normal"}}})
	b.eventually(t, 10*time.Second, "prune-b pruned", b.gone("prune-b"))
	b.eventually(t, 10*time.Second, "prune-root lists one child", func(ctx context.Context) (bool, error) {
		root, err := b.get(ctx, gvrApplication, gitopsNS, "prune-root")
		if root == nil {
			return false, err
		}
		resources, _, _ := unstructured.NestedSlice(root.Object, "status", "resources")
		return len(resources) == 1 && appSyncHealth(root) == "Synced/Healthy", nil
	})
	root := b.mustGet(t, gvrApplication, gitopsNS, "prune-root")
	assert.NotContains(t, root.GetAnnotations(), refreshAnnotation, "Argo CD removes the refresh annotation")
	history, _, _ := unstructured.NestedSlice(root.Object, "status", "history")
	assert.Len(t, history, 2)
}

// The GitOps operator keeps its default instance: deleted, it comes back — unless the
// Subscription sets DISABLE_DEFAULT_ARGOCD_INSTANCE, which also removes it.
func TestDefaultArgoCDInstanceIsKept(t *testing.T) {
	b := getBed(t)
	b.ensureGitOps(t)
	old := b.mustGet(t, gvrArgoCD, gitopsNS, gitopsNS)
	b.mustDelete(t, gvrArgoCD, gitopsNS, gitopsNS)
	b.eventually(t, 10*time.Second, "default ArgoCD recreated and Available", func(ctx context.Context) (bool, error) {
		cd, err := b.get(ctx, gvrArgoCD, gitopsNS, gitopsNS)
		return cd != nil && cd.GetUID() != old.GetUID() && nestedStr(cd, "status", "phase") == "Available", err
	})

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
}
