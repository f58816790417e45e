package kube

import (
	"fmt"

	configv1 "github.com/openshift/api/config/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// Ready reports whether an object of a kind that follows Kubernetes' standard status
// conventions is reconciled, by kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status: its
// generation, Reconciling/Stalled and Ready conditions, and the built-in rules for core
// kinds and CustomResourceDefinitions — Established and NamesAccepted). When it is not,
// status says why, in kstatus's words.
func Ready(u *unstructured.Unstructured) (bool, string, error) {
	res, err := status.Compute(u)
	if err != nil {
		return false, "", fmt.Errorf("computing the status of %s: %w", Describe(u), err)
	}
	if res.Status == status.CurrentStatus {
		return true, "", nil
	}
	if res.Message == "" {
		return false, res.Status.String(), nil
	}
	return false, res.Status.String() + ": " + res.Message, nil
}

// OperatorCondition returns a ClusterOperator's condition of that type (nil when absent).
func OperatorCondition(co *configv1.ClusterOperator, t configv1.ClusterStatusConditionType) *configv1.ClusterOperatorStatusCondition {
	for i := range co.Status.Conditions {
		if co.Status.Conditions[i].Type == t {
			return &co.Status.Conditions[i]
		}
	}
	return nil
}

// OperatorSettled reports whether a ClusterOperator is Available and not Progressing;
// else status says what is seen. ClusterOperators do not follow the standard conditions
// kstatus reads (no Ready, no observedGeneration): an operator reports Available,
// Progressing and Degraded, and "settled" is Available=True with Progressing=False, as
// the cluster-version operator reads them (openshift/cluster-version-operator
// docs/dev/clusteroperator.md, "Conditions"; the types in openshift/api
// config/v1/types_cluster_operator.go).
func OperatorSettled(co *configv1.ClusterOperator) (bool, string) {
	if c := OperatorCondition(co, configv1.OperatorProgressing); c != nil && c.Status == configv1.ConditionTrue {
		return false, "Progressing: " + c.Message
	}
	if c := OperatorCondition(co, configv1.OperatorAvailable); c == nil || c.Status != configv1.ConditionTrue {
		return false, "not Available"
	}
	return true, ""
}
