package simulator

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Installing OpenShift AI makes default-dsci and the applications namespace appear before
// anything creates a DSCInitialization: the payload deploys into redhat-ods-applications
// one wave before it adopts default-dsci. Then MaaS brings its own namespace.
func TestOpenShiftAIOperatorCreatesDefaultDSCI(t *testing.T) {
	b := getBed(t)
	require.NoError(t, b.applyCRDs(t.Context(), sharedCRD(t, "odh-v3.4.0/dscinitialization.opendatahub.io_dscinitializations.yaml"),
		sharedCRD(t, "odh-v3.4.0/datasciencecluster.opendatahub.io_datascienceclusters.yaml")))
	ns := "redhat-ods-operator"
	b.namespace(t, ns)
	b.mustCreate(t, gvrOperatorGroup, operatorGroup(ns))
	b.mustCreate(t, gvrSubscription, subscription(ns, "rhods-operator", "rhods-operator", "stable-3.4"))
	b.eventually(t, 20*time.Second, "default-dsci and its applications namespace", func(ctx context.Context) (bool, error) {
		apps, err := b.get(ctx, gvrNamespace, "", defaultAppsNamespace)
		return apps != nil, err
	})
	dsci := b.mustGet(t, gvrDSCInitialization, "", defaultDSCIName)
	assert.Equal(t, defaultAppsNamespace, nestedStr(dsci, "spec", "applicationsNamespace"))
	assert.Equal(t, "Managed", nestedStr(dsci, "spec", "monitoring", "managementState"))
	list, err := b.dyn.Resource(gvrDSCInitialization).List(t.Context(), listAll)
	require.NoError(t, err)
	assert.Len(t, list.Items, 1, "the operator creates one DSCInitialization, only when there is none")

	// A DataScienceCluster switching Models-as-a-Service on makes maas-controller create
	// its subscription namespace, where the payload's plans go (config-maas-access).
	maas, err := b.get(t.Context(), gvrNamespace, "", maasSubscriptionNamespace)
	require.NoError(t, err)
	require.Nil(t, maas, "no MaaS before a DataScienceCluster asks for it")
	b.mustCreate(t, gvrDataScienceCluster, obj("datasciencecluster.opendatahub.io/v2", "DataScienceCluster", "", "default-dsc",
		map[string]any{"components": map[string]any{"kserve": map[string]any{"managementState": "Managed",
			"modelsAsService": map[string]any{"managementState": "Managed"}}}}))
	b.eventually(t, 10*time.Second, "the MaaS subscription namespace", func(ctx context.Context) (bool, error) {
		ns, err := b.get(ctx, gvrNamespace, "", maasSubscriptionNamespace)
		return ns != nil, err
	})
}
