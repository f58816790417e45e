package simulator

import (
	"context"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

const (
	gitopsNS          = "openshift-gitops"
	gitopsPackage     = "openshift-gitops-operator"
	gitopsCSVPrefix   = gitopsPackage + "."
	argocdCM          = "argocd-cm"
	mgrGitOps         = "gitops-operator"
	mgrArgoCDOperator = "argocd-operator"
	// healthKeyPrefix is how argocd-operator writes spec.resourceHealthChecks into argocd-cm.
	healthKeyPrefix = "resource.customizations.health."
)

// gitopsOperatorNamespaces are where the GitOps operator's CSV may live (its own namespace
// since 1.10, openshift-operators before).
var gitopsOperatorNamespaces = []string{"openshift-gitops-operator", "openshift-operators"}

func (s *Simulator) gitopsInstalled(ctx context.Context) (bool, error) {
	return s.csvSucceeded(ctx, gitopsCSVPrefix, gitopsOperatorNamespaces...)
}

// syncGitOpsOperator is the OpenShift GitOps operator's start-up: once its CSV succeeded it
// creates the openshift-gitops namespace and the default ArgoCD instance (and, as
// argocd-operator does, the "default" AppProject), waiting for their CRDs if need be.
func (s *Simulator) syncGitOpsOperator(ctx context.Context, _ string) (time.Duration, error) {
	if ok, err := s.gitopsInstalled(ctx); err != nil || !ok {
		return 0, err
	}
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": gitopsNS, "labels": map[string]any{"openshift.io/cluster-monitoring": "true"}}}}
	if _, err := s.create(ctx, gvrNamespace, mgrGitOps, ns); err != nil {
		return 0, err
	}
	if ok, err := s.crdReady(ctx, crdName(gvrArgoCD), gvrArgoCD.Version); err != nil || !ok {
		return 0, err // the CRD event brings us back
	}
	if disabled, err := s.defaultInstanceDisabled(ctx); err != nil {
		return 0, err
	} else if disabled {
		// The documented switch: the operator removes its default instance and keeps it away.
		cd, err := s.get(ctx, gvrArgoCD, gitopsNS, gitopsNS)
		if err != nil || cd == nil || cd.GetDeletionTimestamp() != nil {
			return 0, err
		}
		s.logf("gitops: DISABLE_DEFAULT_ARGOCD_INSTANCE set, deleting argocd %s/%s", gitopsNS, gitopsNS)
		return 0, s.res(gvrArgoCD, gitopsNS).Delete(ctx, gitopsNS, metav1.DeleteOptions{})
	}
	cd := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1beta1", "kind": "ArgoCD",
		"metadata": map[string]any{"name": gitopsNS, "namespace": gitopsNS},
		"spec": map[string]any{
			"server":         map[string]any{"route": map[string]any{"enabled": true}},
			"applicationSet": map[string]any{},
			"rbac": map[string]any{"defaultPolicy": "", "scopes": "[groups]",
				"policy": "g, system:cluster-admins, role:admin\ng, cluster-admins, role:admin\n"},
		}}}
	if _, err := s.create(ctx, gvrArgoCD, mgrGitOps, cd); err != nil {
		return 0, err
	}
	if ok, err := s.crdReady(ctx, crdName(gvrAppProject), gvrAppProject.Version); err != nil {
		return 0, err
	} else if ok {
		proj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
			"metadata": map[string]any{"name": "default", "namespace": gitopsNS},
			"spec": map[string]any{
				"sourceRepos":              []any{"*"},
				"destinations":             []any{map[string]any{"namespace": "*", "server": "*"}},
				"clusterResourceWhitelist": []any{map[string]any{"group": "*", "kind": "*"}},
			}}}
		if _, err := s.create(ctx, gvrAppProject, mgrArgoCDOperator, proj); err != nil {
			return 0, err
		}
	}
	s.argocds.add(allKey)
	return 0, nil
}

// defaultInstanceDisabled reads DISABLE_DEFAULT_ARGOCD_INSTANCE from the GitOps operator's
// Subscription spec.config.env, where OLM passes it to the operator's deployment. With the
// Subscription deleted (uninstall in progress) the deployment keeps the env it had, so the
// last value seen stands.
func (s *Simulator) defaultInstanceDisabled(ctx context.Context) (bool, error) {
	for _, ns := range gitopsOperatorNamespaces {
		subs, err := s.list(ctx, gvrSubscription, ns)
		if err != nil {
			return false, err
		}
		for _, sub := range subs {
			if nestedStr(&sub, "spec", "name") != gitopsPackage {
				continue
			}
			disabled := false
			env, _, _ := unstructured.NestedSlice(sub.Object, "spec", "config", "env")
			for _, e := range env {
				if m := asMap(e); m["name"] == "DISABLE_DEFAULT_ARGOCD_INSTANCE" && strings.EqualFold(str(m["value"]), "true") {
					disabled = true
				}
			}
			s.mu.Lock()
			s.argoDisabled = disabled
			s.mu.Unlock()
			return disabled, nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.argoDisabled, nil
}

// syncArgoCD is argocd-operator for one ArgoCD: it renders argocd-cm from the spec and
// reports the instance Available after ArgoCDReady. Without the GitOps operator installed
// nothing reconciles ArgoCDs, as on a real cluster.
func (s *Simulator) syncArgoCD(ctx context.Context, key string) (time.Duration, error) {
	if ok, err := s.gitopsInstalled(ctx); err != nil || !ok {
		return 0, err
	}
	if key == allKey {
		cds, err := s.list(ctx, gvrArgoCD, "")
		for _, cd := range cds {
			s.argocds.add(keyOf(&cd))
		}
		return 0, err
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cd, err := s.get(ctx, gvrArgoCD, ns, name)
	if err != nil || cd == nil || cd.GetDeletionTimestamp() != nil {
		return 0, err
	}
	if err := s.syncArgoCDConfigMap(ctx, cd); err != nil {
		return 0, err
	}
	host := ""
	if ic, err := s.get(ctx, gvrIngressConfig, "", clusterConfigName); err == nil && ic != nil {
		if domain := nestedStr(ic, "spec", "domain"); domain != "" {
			host = name + "-server-" + ns + "." + domain
		}
	}
	phase, component := "Available", "Running"
	wait := s.after("argocd/"+string(cd.GetUID()), s.lat().ArgoCDReady)
	if wait > 0 {
		phase, component = "Pending", "Pending"
	}
	changed := false
	err = s.update(ctx, mgrArgoCDOperator, gvrArgoCD, ns, name, true, func(u *unstructured.Unstructured) (bool, error) {
		st := map[string]any{"phase": phase, "applicationController": component, "redis": component,
			"repo": component, "server": component}
		if _, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "applicationSet"); ok {
			st["applicationSetController"] = component
		}
		if _, ok, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "sso"); ok {
			st["sso"] = component
		}
		if host != "" {
			st["host"] = host
		}
		old, _, _ := unstructured.NestedMap(u.Object, "status")
		if semanticEqual(old, st) {
			return false, nil
		}
		u.Object["status"] = st
		changed = true
		return true, nil
	})
	if err == nil && changed && phase == "Available" {
		s.logf("gitops: argocd %s Available", key)
	}
	return wait, err
}

// syncArgoCDConfigMap writes argocd-cm as argocd-operator does: the operator owns the whole
// ConfigMap, so keys written there by anyone else are dropped; resource health checks must
// be configured through ArgoCD spec.resourceHealthChecks.
func (s *Simulator) syncArgoCDConfigMap(ctx context.Context, cd *unstructured.Unstructured) error {
	data := map[string]any{"application.resourceTrackingMethod": "annotation"}
	checks, _, _ := unstructured.NestedSlice(cd.Object, "spec", "resourceHealthChecks")
	for _, c := range checks {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		data[healthKeyPrefix+str(m["group"])+"_"+str(m["kind"])] = str(m["check"])
	}
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": argocdCM, "namespace": cd.GetNamespace(), "labels": map[string]any{
			"app.kubernetes.io/name": argocdCM, "app.kubernetes.io/part-of": "argocd",
			"app.kubernetes.io/managed-by": cd.GetName()}},
		"data": data}}
	if _, err := s.create(ctx, gvrConfigMap, mgrArgoCDOperator, cm); err != nil {
		return err
	}
	return s.update(ctx, mgrArgoCDOperator, gvrConfigMap, cd.GetNamespace(), argocdCM, false, func(u *unstructured.Unstructured) (bool, error) {
		if have, _, _ := unstructured.NestedMap(u.Object, "data"); semanticEqual(have, data) {
			return false, nil
		}
		u.Object["data"] = data
		return true, nil
	})
}

// appHealthCheckEnabled tells whether Argo CD assesses the health of child Applications:
// since Argo CD 1.8 it does only when argocd-cm carries a health customization for
// argoproj.io/Application, so a parent app waits for its children only when configured to.
func (s *Simulator) appHealthCheckEnabled(ctx context.Context) (bool, error) {
	cm, err := s.get(ctx, gvrConfigMap, gitopsNS, argocdCM)
	if err != nil || cm == nil {
		return false, err
	}
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	if _, ok := data[healthKeyPrefix+"argoproj.io_Application"]; ok {
		return true, nil
	}
	// The pre-2.x single-key form, still honoured by Argo CD.
	legacy := data["resource.customizations"]
	return strings.Contains(legacy, "argoproj.io/Application") && strings.Contains(legacy, "health.lua"), nil
}

// argoCDAvailable tells whether the default Argo CD instance runs, i.e. whether anything would
// reconcile Applications in openshift-gitops.
func (s *Simulator) argoCDAvailable(ctx context.Context) (bool, error) {
	cd, err := s.get(ctx, gvrArgoCD, gitopsNS, gitopsNS)
	if err != nil || cd == nil {
		return false, err
	}
	return cd.GetDeletionTimestamp() == nil && nestedStr(cd, "status", "phase") == "Available", nil
}
