package simulator

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const (
	mgrODH = "rhods-operator"
	// defaultAppsNamespace is OpenShift AI's applications namespace.
	defaultAppsNamespace = "redhat-ods-applications"
)

// syncDSCInitialization is the part of the OpenShift AI operator's DSCInitialization
// controller the payload depends on: the applications namespace (spec.applicationsNamespace)
// is created with the operator's labels, so the payload's HardwareProfiles, ImageStreams
// and RoleBindings have somewhere to go. Followed: opendatahub-io/opendatahub-operator
// internal/controller/dscinitialization/utils.go (appNamespaceHandler, createAppNamespace).
// Nothing else of the operator is played: Argo CD has no health check for its kinds.
func (s *Simulator) syncDSCInitialization(ctx context.Context, name string) (time.Duration, error) {
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
