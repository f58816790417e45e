package kube

import (
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	configv1ac "github.com/openshift/client-go/config/applyconfigurations/config/v1"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// An apply configuration carries exactly the fields that were set: no zero value of the
// Go type (hostedDomain "", a null creationTimestamp, an empty status) reaches the body,
// where it would be a field we own and, against a live object without it, a write on
// every run.
func TestFromApplyCarriesOnlyWhatWasSet(t *testing.T) {
	ac := configv1ac.APIServer("cluster").WithSpec(configv1ac.APIServerSpec().
		WithServingCerts(configv1ac.APIServerServingCerts().WithNamedCertificates(
			configv1ac.APIServerNamedServingCert().WithNames("api.x").WithServingCertificate(configv1ac.SecretNameReference().WithName("tls")))))
	u, err := FromApply(ac)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"apiVersion": "config.openshift.io/v1", "kind": "APIServer",
		"metadata": map[string]any{"name": "cluster"},
		"spec": map[string]any{"servingCerts": map[string]any{"namedCertificates": []any{
			map[string]any{"names": []any{"api.x"}, "servingCertificate": map[string]any{"name": "tls"}},
		}}},
	}, u.Object)
}

// A typed object of a kind without apply configurations loses its status and null
// metadata fields, and compares equal (Subset) to the live object the API server returns
// for it, so Diff finds nothing to do and Apply sends nothing.
func TestFromObjectMatchesWhatTheServerReturns(t *testing.T) {
	sub := &operatorsv1alpha1.Subscription{
		TypeMeta:   metav1.TypeMeta{APIVersion: "operators.coreos.com/v1alpha1", Kind: "Subscription"},
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec:       &operatorsv1alpha1.SubscriptionSpec{Package: "p", CatalogSource: "c", CatalogSourceNamespace: "m", Channel: "latest"},
	}
	u, err := FromObject(sub)
	require.NoError(t, err)
	assert.NotContains(t, u.Object, "status")
	assert.NotContains(t, u.Object["metadata"], "creationTimestamp")
	live := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "operators.coreos.com/v1alpha1", "kind": "Subscription",
		"metadata": map[string]any{"name": "p", "namespace": "ns", "uid": "u1", "creationTimestamp": "2026-01-01T00:00:00Z", "generation": int64(1)},
		"spec":     map[string]any{"name": "p", "source": "c", "sourceNamespace": "m", "channel": "latest"},
		"status":   map[string]any{"state": "AtLatestKnown"},
	}}
	path, same := Subset(u.Object, live.Object, "")
	assert.True(t, same, "differs at %s", path)
	var got operatorsv1alpha1.Subscription
	require.NoError(t, Into(live, &got))
	assert.Equal(t, operatorsv1alpha1.SubscriptionState(operatorsv1alpha1.SubscriptionStateAtLatest), got.Status.State)
}

// Entries the edit does not change are written back as they were read, fields our Go
// type does not know included; the entry it changes is rebuilt from the type.
func TestEditTypedKeepsOtherEntriesAsRead(t *testing.T) {
	live := []any{
		map[string]any{"name": "corp", "type": "OpenID", "mappingMethod": "claim", "fieldFromANewerRelease": "kept",
			"openID": map[string]any{"clientID": "c", "clientSecret": map[string]any{"name": "s"}, "issuer": "https://i"}},
		map[string]any{"name": "google", "type": "Google", "mappingMethod": "lookup",
			"google": map[string]any{"clientID": "old", "clientSecret": map[string]any{"name": "s"}}},
	}
	out, err := editTyped(live, "name", func(idps []configv1.IdentityProvider) []configv1.IdentityProvider {
		idps[1].MappingMethod = configv1.MappingMethodClaim
		idps[1].Google.ClientID = "new"
		return idps
	})
	require.NoError(t, err)
	require.Len(t, out, 2)
	assert.Equal(t, live[0], out[0], "someone else's entry is kept as read")
	google := out[1].(map[string]any)
	assert.Equal(t, "claim", google["mappingMethod"])
	assert.Equal(t, "new", google["google"].(map[string]any)["clientID"])
	assert.NotContains(t, google, "fieldFromANewerRelease")
}

// kstatus decides the standard kinds: a CRD is ready once Established.
func TestReadyFollowsKstatus(t *testing.T) {
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "argocds.argoproj.io"},
		"status": map[string]any{"conditions": []any{
			map[string]any{"type": "NamesAccepted", "status": "True"},
			map[string]any{"type": "Established", "status": "False", "reason": "Installing", "message": "the initial names have not been accepted"},
		}},
	}}
	ok, why, err := Ready(crd)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Contains(t, why, "InProgress")
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	conds[1].(map[string]any)["status"] = "True"
	require.NoError(t, unstructured.SetNestedSlice(crd.Object, conds, "status", "conditions"))
	ok, _, err = Ready(crd)
	require.NoError(t, err)
	assert.True(t, ok)
}

func TestOperatorSettled(t *testing.T) {
	co := &configv1.ClusterOperator{Status: configv1.ClusterOperatorStatus{Conditions: []configv1.ClusterOperatorStatusCondition{
		{Type: configv1.OperatorAvailable, Status: configv1.ConditionTrue},
		{Type: configv1.OperatorProgressing, Status: configv1.ConditionTrue, Message: "rolling"},
	}}}
	ok, why := OperatorSettled(co)
	assert.False(t, ok)
	assert.Equal(t, "Progressing: rolling", why)
	co.Status.Conditions[1].Status = configv1.ConditionFalse
	ok, _ = OperatorSettled(co)
	assert.True(t, ok)
	co.Status.Conditions[0].Status = configv1.ConditionFalse
	ok, why = OperatorSettled(co)
	assert.False(t, ok)
	assert.Equal(t, "not Available", why)
}
