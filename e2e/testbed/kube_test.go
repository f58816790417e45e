package testbed_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

var (
	ingressControllers = schema.GroupVersionResource{Group: "operator.openshift.io", Version: "v1", Resource: "ingresscontrollers"}
	ingresses          = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "ingresses"}
	infrastructures    = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "infrastructures"}
	hardwareProfiles   = schema.GroupVersionResource{Group: "infrastructure.opendatahub.io", Version: "v1", Resource: "hardwareprofiles"}
	applications       = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
)

func dynClient(t *testing.T) dynamic.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", bed.Kubeconfig())
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	return dyn
}

// The API server validates against the real OpenShift schema: a string
// where an integer belongs is refused.
func TestIngressControllerSchemaIsEnforced(t *testing.T) {
	dyn := dynClient(t)
	ic := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "operator.openshift.io/v1",
		"kind":       "IngressController",
		"metadata":   map[string]any{"name": "bad-replicas", "namespace": "openshift-ingress-operator"},
		"spec":       map[string]any{"replicas": "two"},
	}}
	_, err := dyn.Resource(ingressControllers).Namespace("openshift-ingress-operator").Create(t.Context(), ic, metav1.CreateOptions{})
	require.Error(t, err)
	assert.True(t, apierrors.IsInvalid(err), "want 422 Invalid, got %v", err)
	assert.Contains(t, err.Error(), "spec.replicas")
}

// OpenShift AI's real HardwareProfile CRD, installed as the simulated OLM installs it with
// the operator (the bed starts with OpenShift's own kinds only), enforces its enum and CEL
// rules.
func TestHardwareProfileSchemaIsEnforced(t *testing.T) {
	dyn := dynClient(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", bed.Kubeconfig())
	require.NoError(t, err)
	require.NoError(t, testbed.InstallCRDs(t.Context(), cfg, testbed.CRDSetOpenShiftAI))
	hp := func(name string, scheduling map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "infrastructure.opendatahub.io/v1",
			"kind":       "HardwareProfile",
			"metadata":   map[string]any{"name": name, "namespace": "default"},
			"spec": map[string]any{
				"identifiers": []any{map[string]any{
					"identifier": "nvidia.com/gpu", "displayName": "GPU", "resourceType": "Accelerator",
					"minCount": int64(1), "maxCount": int64(4), "defaultCount": int64(1),
				}},
				"scheduling": scheduling,
			},
		}}
	}
	client := dyn.Resource(hardwareProfiles).Namespace("default")
	good := hp("l40s-shared", map[string]any{
		"type": "Node",
		"node": map[string]any{
			"nodeSelector": map[string]any{"cluster-api/accelerator": "L40S-SHARED"},
			"tolerations":  []any{map[string]any{"key": "nvidia.com/gpu", "operator": "Equal", "value": "L40S-SHARED", "effect": "NoSchedule"}},
		},
	})
	_, err = client.Create(t.Context(), good, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Delete(context.Background(), "l40s-shared", metav1.DeleteOptions{}) })

	_, err = client.Create(t.Context(), hp("queue-without-kueue", map[string]any{"type": "Queue"}), metav1.CreateOptions{})
	require.Error(t, err)
	assert.True(t, apierrors.IsInvalid(err), "want 422 Invalid, got %v", err)

	_, err = client.Create(t.Context(), hp("bad-type", map[string]any{"type": "Nodes"}), metav1.CreateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Unsupported value")
}

// Server-side apply reports conflicts between field managers: the seeded
// Ingress config's domain belongs to the bed's field manager.
func TestServerSideApplyConflict(t *testing.T) {
	dyn := dynClient(t)
	ing := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "config.openshift.io/v1",
		"kind":       "Ingress",
		"metadata":   map[string]any{"name": "cluster"},
		"spec":       map[string]any{"domain": "apps.elsewhere.example.com"},
	}}
	_, err := dyn.Resource(ingresses).Apply(t.Context(), "cluster", ing, metav1.ApplyOptions{FieldManager: "intruder"})
	require.Error(t, err)
	assert.True(t, apierrors.IsConflict(err), "want 409 Conflict, got %v", err)

	got, err := dyn.Resource(ingresses).Get(t.Context(), "cluster", metav1.GetOptions{})
	require.NoError(t, err)
	domain, _, _ := unstructured.NestedString(got.Object, "spec", "domain")
	assert.Equal(t, "apps.rhoai-local.bed.example.com", domain)
}

// The seeded Infrastructure carries what the bootstrap reads from it.
func TestSeededInfrastructure(t *testing.T) {
	dyn := dynClient(t)
	infra, err := dyn.Resource(infrastructures).Get(t.Context(), "cluster", metav1.GetOptions{})
	require.NoError(t, err)
	name, _, _ := unstructured.NestedString(infra.Object, "status", "infrastructureName")
	assert.Equal(t, bed.InfraID(), name)
	assert.Regexp(t, `^rhoai-local-[0-9a-f]{5}$`, name)
	platform, _, _ := unstructured.NestedString(infra.Object, "status", "platformStatus", "type")
	assert.Equal(t, "AWS", platform)
}

// Argo CD's kinds are not served until the simulated GitOps operator
// installs them; InstallCRDs does that and is idempotent.
func TestInstallCRDSetArgoCD(t *testing.T) {
	dyn := dynClient(t)
	_, err := dyn.Resource(applications).Namespace("default").List(t.Context(), metav1.ListOptions{})
	require.True(t, apierrors.IsNotFound(err), "Applications must not be served before the GitOps operator: %v", err)

	start := time.Now()
	require.NoError(t, testbed.InstallCRDs(t.Context(), bed.Config(), testbed.CRDSetArgoCD))
	t.Logf("Argo CD CRDs installed in %s", time.Since(start).Round(time.Millisecond))
	// Installing a set that is already there is a no-op (a small one here:
	// Argo CD's CRDs weigh 1.8 MB).
	require.NoError(t, testbed.InstallCRDs(t.Context(), bed.Config(), testbed.CRDSetNVIDIA))

	_, err = dyn.Resource(applications).Namespace("default").List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	_, err = dyn.Resource(schema.GroupVersionResource{Group: "argoproj.io", Version: "v1beta1", Resource: "argocds"}).
		Namespace("default").List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
}

// Every mutating request lands in the audit log under its user and user
// agent, so tests can count the bootstrap's writes.
func TestAuditLogCountsWritesPerActor(t *testing.T) {
	cfg, err := bed.UserConfig("audit-tester", "system:masters")
	require.NoError(t, err)
	cfg.UserAgent = "audit-test/1.0"
	dyn, err := dynamic.NewForConfig(cfg)
	require.NoError(t, err)
	cms := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace("default")
	for _, name := range []string{"audit-a", "audit-b", "audit-c"} {
		cm := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": name},
			"data":     map[string]any{"k": "v"},
		}}
		_, err := cms.Apply(t.Context(), name, cm, metav1.ApplyOptions{FieldManager: "audit-test"})
		require.NoError(t, err)
	}
	_, err = cms.List(t.Context(), metav1.ListOptions{}) // reads are not audited
	require.NoError(t, err)
	require.NoError(t, cms.Delete(t.Context(), "audit-a", metav1.DeleteOptions{}))

	var mine []testbed.AuditEvent
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		events, err := bed.AuditEvents()
		if err != nil {
			return false, err
		}
		mine = mine[:0]
		for _, e := range events {
			if e.UserAgent == "audit-test/1.0" {
				mine = append(mine, e)
			}
		}
		return len(mine) >= 4, nil
	})
	require.NoError(t, err, "audit events seen: %+v", mine)
	require.Len(t, mine, 4)
	for _, e := range mine {
		assert.Equal(t, "audit-tester", e.User.Username)
		require.NotNil(t, e.ObjectRef)
		assert.Equal(t, "configmaps", e.ObjectRef.Resource)
	}
	assert.Equal(t, []string{"patch", "patch", "patch", "delete"}, []string{mine[0].Verb, mine[1].Verb, mine[2].Verb, mine[3].Verb})
}

// The default CRD set serves every kind the bootstrap, the simulator and the
// cluster-level payload touch, in the versions they use.
func TestRequiredKindsServed(t *testing.T) {
	dc, err := discovery.NewDiscoveryClientForConfig(bed.Config())
	require.NoError(t, err)
	_, lists, err := dc.ServerGroupsAndResources()
	require.NoError(t, err)
	served := map[string]bool{}
	for _, l := range lists {
		for _, r := range l.APIResources {
			served[l.GroupVersion+"/"+r.Kind] = true
		}
	}
	for _, gvk := range []string{
		"operators.coreos.com/v1alpha1/Subscription",
		"operators.coreos.com/v1alpha1/InstallPlan",
		"operators.coreos.com/v1alpha1/ClusterServiceVersion",
		"operators.coreos.com/v1alpha1/CatalogSource",
		"operators.coreos.com/v1/OperatorGroup",
		"config.openshift.io/v1/OAuth",
		"config.openshift.io/v1/APIServer",
		"config.openshift.io/v1/Infrastructure",
		"config.openshift.io/v1/ClusterVersion",
		"config.openshift.io/v1/ClusterOperator",
		"config.openshift.io/v1/Ingress",
		"operator.openshift.io/v1/IngressController",
		"machine.openshift.io/v1beta1/MachineSet",
		"machine.openshift.io/v1beta1/Machine",
		"autoscaling.openshift.io/v1/ClusterAutoscaler",
		"autoscaling.openshift.io/v1beta1/MachineAutoscaler",
		"console.openshift.io/v1/ConsoleLink",
		"console.openshift.io/v1/ConsoleNotification",
		"image.openshift.io/v1/ImageStream",
		"template.openshift.io/v1/Template",
		"user.openshift.io/v1/Group",
		"cloudcredential.openshift.io/v1/CredentialsRequest",
	} {
		assert.True(t, served[gvk], "%s is not served", gvk)
	}
	// Operators' kinds appear only when OLM installs the operator (testbed.CRDSetsOf).
	// Checked on sets no test of this package installs: the bed is shared, and other
	// tests install the Argo CD, NVIDIA and OpenShift AI sets before this one runs.
	for _, gvk := range []string{
		"cert-manager.io/v1/Certificate",
		"grafana.integreatly.org/v1beta1/Grafana",
	} {
		assert.False(t, served[gvk], "%s is served before its operator is installed", gvk)
	}
}
