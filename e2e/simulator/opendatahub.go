package simulator

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	mgrODH = "rhods-operator"
	// defaultAppsNamespace is OpenShift AI's applications namespace.
	defaultAppsNamespace = "redhat-ods-applications"
	// defaultDSCIName is the DSCInitialization the operator creates when it starts.
	defaultDSCIName = "default-dsci"
	// odhOperatorStarted is the odh loop's key for "the operator's CSV succeeded".
	odhOperatorStarted = "<operator started>"
	// odhCSVPrefix names OpenShift AI's CSVs (rhods-operator.3.4.1).
	odhCSVPrefix = "rhods-operator."
	// maasSubscriptionNamespace is where MaaSAuthPolicies, MaaSSubscriptions and the
	// Tenant live (maas-controller's --maas-subscription-namespace default).
	maasSubscriptionNamespace = "models-as-a-service"
	// dscKeyPrefix marks the odh loop's keys of DataScienceClusters.
	dscKeyPrefix = "dsc:"
)

// syncMaaS is the part of Models-as-a-Service the payload depends on: once a
// DataScienceCluster switches it on (3.4: spec.components.kserve.modelsAsService, 3.5+:
// spec.components.aigateway.modelsAsAService, managementState Managed) the operator
// deploys maas-controller, which creates its subscription namespace models-as-a-service
// and keeps it (opendatahub-io/models-as-a-service maas-controller/cmd/manager/main.go:
// --maas-subscription-namespace, --subscription-namespace-maintain-interval; docs/samples/
// maas-system: "custom subscription namespace is auto-created by controller"). The
// payload's plans (config-maas-access) go there. Not simulated: the Tenant the controller
// bootstraps (the payload creates and owns default-tenant itself), maas-api, and the
// Kuadrant policies it generates.
func (s *Simulator) syncMaaS(ctx context.Context, name string) (time.Duration, error) {
	dsc, err := s.get(ctx, gvrDataScienceCluster, "", name)
	if err != nil || dsc == nil || dsc.GetDeletionTimestamp() != nil {
		return 0, err
	}
	if nestedStr(dsc, "spec", "components", "kserve", "modelsAsService", "managementState") != "Managed" &&
		nestedStr(dsc, "spec", "components", "aigateway", "modelsAsAService", "managementState") != "Managed" {
		return 0, nil
	}
	if ok, err := s.csvSucceeded(ctx, odhCSVPrefix, "redhat-ods-operator"); err != nil || !ok {
		return 0, err // the operator's start re-queues every DataScienceCluster
	}
	if existing, err := s.get(ctx, gvrNamespace, "", maasSubscriptionNamespace); err != nil || existing != nil {
		return 0, err
	}
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": maasSubscriptionNamespace}}}
	if _, err := s.create(ctx, gvrNamespace, "maas-controller", ns); err != nil {
		return 0, fmt.Errorf("creating the MaaS subscription namespace: %w", err)
	}
	s.logf("maas-controller: DataScienceCluster %s: subscription namespace %s created", name, maasSubscriptionNamespace)
	return 0, nil
}

// createDefaultDSCI is what the OpenShift AI operator does when it starts: with no
// DSCInitialization on the cluster it creates default-dsci with the platform's defaults
// (opendatahub-io/opendatahub-operator pkg/initialinstall CreateDefaultDSCI, run from
// cmd/main.go at start unless DISABLE_DSC_CONFIG is set; RHOAI's applications namespace
// redhat-ods-applications and monitoring namespace redhat-ods-monitoring). The payload
// relies on it: applications of an earlier wave than instance-openshift-ai (which then
// adopts default-dsci by server-side apply) deploy into the applications namespace.
func (s *Simulator) createDefaultDSCI(ctx context.Context) (time.Duration, error) {
	if ok, err := s.csvSucceeded(ctx, odhCSVPrefix, "redhat-ods-operator"); err != nil || !ok {
		return 0, err
	}
	existing, err := s.list(ctx, gvrDSCInitialization, "")
	if err != nil || len(existing) > 0 {
		return 0, err
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": gvrDSCInitialization.GroupVersion().String(), "kind": "DSCInitialization",
		"metadata": map[string]any{"name": defaultDSCIName},
		"spec": map[string]any{
			"applicationsNamespace": defaultAppsNamespace,
			"monitoring":            map[string]any{"managementState": "Managed", "namespace": "redhat-ods-monitoring"},
			"trustedCABundle":       map[string]any{"managementState": "Managed"},
		},
	}}
	if _, err := s.create(ctx, gvrDSCInitialization, mgrODH, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return 0, fmt.Errorf("creating the default DSCInitialization: %w", err)
	}
	s.logf("opendatahub: operator started: DSCInitialization %s created", defaultDSCIName)
	return 0, nil
}

// syncDSCInitialization is the part of the OpenShift AI operator's DSCInitialization
// controller the payload depends on: the applications namespace (spec.applicationsNamespace)
// is created with the operator's labels, so the payload's HardwareProfiles, ImageStreams
// and RoleBindings have somewhere to go. Followed: opendatahub-io/opendatahub-operator
// internal/controller/dscinitialization/utils.go (appNamespaceHandler, createAppNamespace).
// Nothing else of the operator is played: Argo CD has no health check for its kinds.
func (s *Simulator) syncDSCInitialization(ctx context.Context, name string) (time.Duration, error) {
	if name == odhOperatorStarted {
		dscs, err := s.list(ctx, gvrDataScienceCluster, "")
		if err != nil {
			return 0, err
		}
		for _, dsc := range dscs {
			s.odh.add(dscKeyPrefix + dsc.GetName())
		}
		return s.createDefaultDSCI(ctx)
	}
	if dsc, ok := strings.CutPrefix(name, dscKeyPrefix); ok {
		return s.syncMaaS(ctx, dsc)
	}
	dsci, err := s.get(ctx, gvrDSCInitialization, "", name)
	if err != nil || dsci == nil || dsci.GetDeletionTimestamp() != nil {
		return 0, err
	}
	ns := nestedStr(dsci, "spec", "applicationsNamespace")
	if ns == "" {
		ns = defaultAppsNamespace
	}
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": ns, "labels": map[string]any{
			"opendatahub.io/generated-namespace": "true",
			"opendatahub.io/dashboard":           "true",
			"pod-security.kubernetes.io/enforce": "baseline",
		}}}}
	created, err := s.get(ctx, gvrNamespace, "", ns)
	if err != nil || created != nil {
		return 0, err
	}
	if _, err := s.create(ctx, gvrNamespace, mgrODH, obj); err != nil {
		return 0, err
	}
	s.logf("opendatahub: DSCInitialization %s: applications namespace %s created", name, ns)
	return 0, nil
}
