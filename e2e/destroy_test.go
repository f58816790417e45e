//go:build e2e

package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// ledgerOrders counts the certificate orders recorded in the state's ledger.
func ledgerOrders(t *testing.T, state string) int {
	t.Helper()
	n, err := harness.LedgerOrders(state)
	require.NoError(t, err)
	return n
}

type ref struct {
	gvr       schema.GroupVersionResource
	namespace string
	name      string
}

func gvr(group, version, resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
}

// ours lists every object the bootstrap creates by name.
var ours = []ref{
	{gvr("", "v1", "namespaces"), "", "openshift-gitops-operator"},
	{gvr("operators.coreos.com", "v1alpha1", "subscriptions"), "openshift-gitops-operator", "openshift-gitops-operator"},
	{gvr("operators.coreos.com", "v1", "operatorgroups"), "openshift-gitops-operator", "openshift-gitops-operator"},
	{gvr("argoproj.io", "v1beta1", "argocds"), "openshift-gitops", "openshift-gitops"},
	{gvr("argoproj.io", "v1alpha1", "applications"), "openshift-gitops", "rhoai-root"},
	{gvr("rbac.authorization.k8s.io", "v1", "clusterrolebindings"), "", "rhoai-bootstrap-argocd-controller"},
	{gvr("rbac.authorization.k8s.io", "v1", "clusterrolebindings"), "", "rhoai-bootstrap-cluster-admins"},
	{gvr("", "v1", "secrets"), "openshift-config", "rhoai-bootstrap-google-client-secret"},
	{gvr("autoscaling.openshift.io", "v1", "clusterautoscalers"), "", "default"},
}

// assertNothingOfOurs checks that destroy left no object the bootstrap made: the named
// ones, anything carrying our labels, our identity provider and our certificate patches.
func assertNothingOfOurs(t *testing.T, r *harness.Rehearsal) {
	t.Helper()
	ctx := context.Background()
	d := dyn(t, r)
	for _, o := range ours {
		var err error
		var u *unstructured.Unstructured
		if o.namespace == "" {
			u, err = d.Resource(o.gvr).Get(ctx, o.name, metav1.GetOptions{})
		} else {
			u, err = d.Resource(o.gvr).Namespace(o.namespace).Get(ctx, o.name, metav1.GetOptions{})
		}
		if err == nil && u.GetDeletionTimestamp() != nil && len(u.GetFinalizers()) == 0 {
			continue // being deleted, nothing holds it
		}
		assert.True(t, apierrors.IsNotFound(err) || kube.IsNotServed(err) || strings.Contains(errString(err), "the server could not find the requested resource"),
			"%s %s/%s still exists (%v)", o.gvr.Resource, o.namespace, o.name, err)
	}
	for _, g := range []schema.GroupVersionResource{msGVR, gvr("autoscaling.openshift.io", "v1beta1", "machineautoscalers")} {
		l, err := d.Resource(g).Namespace("openshift-machine-api").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/managed-by=rhoai-bootstrap"})
		require.NoError(t, err)
		assert.Empty(t, l.Items, "%s left", g.Resource)
	}
	apps, err := d.Resource(appsGVR).Namespace("openshift-gitops").List(ctx, metav1.ListOptions{})
	if err == nil {
		assert.Empty(t, apps.Items, "applications left")
	}
	oa, err := d.Resource(gvr("config.openshift.io", "v1", "oauths")).Get(ctx, "cluster", metav1.GetOptions{})
	require.NoError(t, err)
	idps, _, _ := unstructured.NestedSlice(oa.Object, "spec", "identityProviders")
	for _, i := range idps {
		assert.NotEqual(t, "google", i.(map[string]any)["name"], "our identity provider is still in oauth/cluster")
	}
	ic, err := d.Resource(gvr("operator.openshift.io", "v1", "ingresscontrollers")).Namespace("openshift-ingress-operator").Get(ctx, "default", metav1.GetOptions{})
	require.NoError(t, err)
	dc, _, _ := unstructured.NestedString(ic.Object, "spec", "defaultCertificate", "name")
	assert.Empty(t, dc, "ingress default certificate restored")
	as, err := d.Resource(gvr("config.openshift.io", "v1", "apiservers")).Get(ctx, "cluster", metav1.GetOptions{})
	require.NoError(t, err)
	nc, _, _ := unstructured.NestedSlice(as.Object, "spec", "servingCerts", "namedCertificates")
	assert.Empty(t, nc, "API server named certificates restored")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestDestroyReportsStuckFinalizer installs, makes one child application hang on its
// finalizer the way it happens on a real cluster — a resource it deployed carries a
// finalizer nobody removes, so Argo CD's cascading delete waits for it — and checks that
// destroy names the application, keeps what must outlive it (Argo CD, the cluster) and
// exits non-zero; then that once that finalizer is released, destroy again finishes and
// leaves nothing of ours.
func TestDestroyReportsStuckFinalizer(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	r := rehearsal(t, testbed.BedOverlay)
	state := filepath.Join(r.WorkDir, "state")
	env := r.Env()
	requireSuccess(t, install(t, r, state, env))
	const stuck = "operator-nfd"
	const hold = "e2e.rhoai-bootstrap.io/hold"
	subs := dyn(t, r).Resource(gvr("operators.coreos.com", "v1alpha1", "subscriptions")).Namespace("openshift-nfd")
	_, err := subs.Patch(context.Background(), "nfd", types.MergePatchType,
		[]byte(`{"metadata":{"finalizers":["`+hold+`"]}}`), metav1.PatchOptions{})
	require.NoError(t, err, "a finalizer on a resource Argo CD deployed for %s", stuck)
	// Waiting for the stuck finalizer is the point: a short timeout (15 s for finalizers).
	res := destroy(t, r, state, env, 1, "--timeout-factor", "0.05")
	found := false
	for _, e := range res.Events {
		if strings.Contains(e.Error, "Application openshift-gitops/"+stuck+" is stuck on finalizer(s) resources-finalizer.argocd.argoproj.io") {
			found = true
		}
	}
	assert.True(t, found, "destroy names the stuck application and its finalizer")
	sum := res.Summary().Summary
	assert.Equal(t, "failed", sum.Phases["root-app"])
	assert.Equal(t, "blocked", sum.Phases["gitops-operator"], "Argo CD outlives the stuck application")
	assert.Equal(t, "blocked", sum.Phases["cluster"])
	assert.Equal(t, "blocked", sum.Phases["certificates"], "root-app depends on the certificate Secrets: kept too")
	assert.Equal(t, "blocked", sum.Phases["gpu-pools"], "root-app depends on gpu-pools (the ClusterAutoscaler hand-over): kept too")
	assert.Equal(t, "destroyed", sum.Phases["oauth"], "nothing stuck depends on the login: it goes")
	clusters, err := r.RegistryClusters()
	require.NoError(t, err)
	for _, c := range clusters {
		assert.False(t, c.Destroyed, "cluster %s kept while something is stuck", c.InfraID)
	}

	_, err = subs.Patch(context.Background(), "nfd", types.MergePatchType,
		[]byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	res = destroy(t, r, state, env, 0)
	clusters, err = r.RegistryClusters()
	require.NoError(t, err)
	for _, c := range clusters {
		assert.True(t, c.Destroyed, "cluster %s destroyed", c.InfraID)
	}
	assertNothingOfOurs(t, r)
}

// TestExistingCluster runs the bootstrap against a running cluster (platform.existing):
// no installer, the day-2 phases only, and destroy leaves the cluster itself alone.
func TestExistingCluster(t *testing.T) {
	t.Parallel() // each test borrows a bed of its own from the pool
	r := rehearsal(t, testbed.BedOverlay)
	ctx := context.Background()
	// An existing cluster has worker MachineSets to clone GPU pools from.
	workers, err := kube.DecodeYAML([]byte(existingWorker))
	require.NoError(t, err)
	_, err = dyn(t, r).Resource(msGVR).Namespace("openshift-machine-api").Create(ctx, workers[0], metav1.CreateOptions{})
	require.NoError(t, err)
	b, err := os.ReadFile(r.Config())
	require.NoError(t, err)
	doc := strings.Replace(string(b), "      zones: [us-east-1a, us-east-1b]\n", "      zones: [us-east-1a, us-east-1b]\n    existing:\n      kubeconfig: ${KUBECONFIG}\n", 1)
	cfgFile := filepath.Join(r.WorkDir, "existing.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte(doc), 0o600))
	state := filepath.Join(r.WorkDir, "state")
	env := r.Env("RHOAI_BED_OPENSHIFT_INSTALL=/nonexistent/openshift-install")
	res := r.Run(ctx, env, append([]string{"install", "-f", cfgFile}, r.Flags(state)...)...)
	requireSuccess(t, res)
	assert.Equal(t, "done", res.Summary().Summary.Phases["cluster"])
	invs, _ := os.ReadDir(r.Registry())
	assert.Empty(t, invs, "the installer was never run")
	ms, err := dyn(t, r).Resource(msGVR).Namespace("openshift-machine-api").List(ctx, metav1.ListOptions{LabelSelector: "rhoai-bootstrap.io/gpu-pool"})
	require.NoError(t, err)
	assert.Len(t, ms.Items, 5)
	res = r.Run(ctx, env, append([]string{"destroy", "--yes", "-f", cfgFile}, r.Flags(state)...)...)
	require.Equal(t, 0, res.Code, res.Stderr)
	_, err = dyn(t, r).Resource(msGVR).Namespace("openshift-machine-api").Get(ctx, workers[0].GetName(), metav1.GetOptions{})
	assert.NoError(t, err, "the existing cluster's own MachineSet is untouched")
	assertNothingOfOurs(t, r)
}

const existingWorker = `apiVersion: machine.openshift.io/v1beta1
kind: MachineSet
metadata:
  name: byo-4t9xq-worker-us-east-1a
  namespace: openshift-machine-api
  labels: {machine.openshift.io/cluster-api-cluster: byo-4t9xq}
spec:
  replicas: 2
  selector:
    matchLabels: {machine.openshift.io/cluster-api-cluster: byo-4t9xq, machine.openshift.io/cluster-api-machineset: byo-4t9xq-worker-us-east-1a}
  template:
    metadata:
      labels: {machine.openshift.io/cluster-api-cluster: byo-4t9xq, machine.openshift.io/cluster-api-machine-role: worker, machine.openshift.io/cluster-api-machine-type: worker, machine.openshift.io/cluster-api-machineset: byo-4t9xq-worker-us-east-1a}
    spec:
      providerSpec:
        value:
          apiVersion: machine.openshift.io/v1beta1
          kind: AWSMachineProviderConfig
          ami: {id: ami-0a1b2c3d4e5f}
          instanceType: m6i.xlarge
          placement: {availabilityZone: us-east-1a, region: us-east-1}
          subnet: {filters: [{name: "tag:Name", values: [byo-4t9xq-subnet-private-us-east-1a]}]}
          iamInstanceProfile: {id: byo-4t9xq-worker-profile}
          userDataSecret: {name: worker-user-data}
          credentialsSecret: {name: aws-cloud-credentials}
`
