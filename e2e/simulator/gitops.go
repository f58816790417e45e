package simulator

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	olmv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
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
// creates the openshift-gitops namespace and the default ArgoCD instance (and the
// "default" AppProject, which argocd-server creates at start-up on a real cluster —
// argo-cd server/server.go initializeDefaultProject — and the bed does not run
// argocd-server), waiting for their CRDs if need be.
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
		subs, err := listAs[olmv1alpha1.Subscription](ctx, s, gvrSubscription, ns)
		if err != nil {
			return false, err
		}
		for _, sub := range subs {
			if sub.Spec == nil || sub.Spec.Package != gitopsPackage {
				continue
			}
			disabled := strings.EqualFold(subscriptionEnv(sub, "DISABLE_DEFAULT_ARGOCD_INSTANCE"), "true")
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

// syncArgoCD is argocd-operator for one ArgoCD: it writes Argo CD's own configuration from
// the CR (configArgoCD), gives the application controller its service account and RBAC,
// then has the real Argo CD started (Options.StartArgoCD, what the operator's Deployments
// and StatefulSet run) and reports the instance Available. Without the GitOps operator
// installed nothing reconciles ArgoCDs, as on a real cluster.
func (s *Simulator) syncArgoCD(ctx context.Context, key string) (time.Duration, error) {
	if ok, err := s.gitopsInstalled(ctx); err != nil || !ok {
		return 0, err
	}
	if key == allKey {
		return 0, s.enqueueAll(ctx, s.argocds, gvrArgoCD, "")
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cd, err := s.get(ctx, gvrArgoCD, ns, name)
	if err != nil {
		return 0, err
	}
	if cd == nil || cd.GetDeletionTimestamp() != nil {
		// The operator's Pods go with their owner.
		return 0, s.stopArgoCD(key)
	}
	cmdParams, err := s.configArgoCD(ctx, cd)
	if err != nil {
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
	if wait == 0 {
		if err := s.startArgoCD(ctx, key, cd.GetUID(), cmdParams); err != nil {
			return 0, err
		}
	}
	if wait > 0 || !s.argoCDRunning(key) {
		phase, component = "Pending", "Pending"
	}
	changed := false
	err = s.update(ctx, mgrArgoCDOperator, gvrArgoCD, ns, name, true, func(u *unstructured.Unstructured) (bool, error) {
		if u.GetUID() != cd.GetUID() {
			return false, nil // re-created meanwhile: this status is not the new instance's
		}
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
		s.logf("gitops: argocd %s Available (real application controller and repo-server running)", key)
	}
	return wait, err
}

// startArgoCD starts the real Argo CD for the instance once per UID (a re-created ArgoCD
// gets new Pods, so a new Argo CD with empty caches).
func (s *Simulator) startArgoCD(ctx context.Context, key string, uid types.UID, cmdParams map[string]string) error {
	hook := s.options().StartArgoCD
	if hook == nil {
		return nil // nothing runs Argo CD: the instance stays Pending
	}
	s.mu.Lock()
	run := s.argoRuns[key]
	s.mu.Unlock()
	if run != nil && run.uid == uid {
		return nil
	}
	if err := s.stopArgoCD(key); err != nil {
		return err
	}
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	start := time.Now()
	stop, err := hook(s.runContext(), ArgoCDInstance{Namespace: ns, Name: name, CmdParams: cmdParams})
	if err != nil {
		return fmt.Errorf("starting Argo CD for %s: %w", key, err)
	}
	s.mu.Lock()
	s.argoRuns[key] = &argoRun{uid: uid, stop: stop}
	s.mu.Unlock()
	s.logf("gitops: argocd %s: application controller and repo-server started in %s", key, time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *Simulator) argoCDRunning(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.argoRuns[key] != nil
}

// stopArgoCD stops the Argo CD of an instance, if one runs.
func (s *Simulator) stopArgoCD(key string) error {
	s.mu.Lock()
	run := s.argoRuns[key]
	delete(s.argoRuns, key)
	s.mu.Unlock()
	if run == nil {
		return nil
	}
	s.logf("gitops: argocd %s gone, stopping its application controller and repo-server", key)
	return run.stop()
}

// stopAllArgoCDs stops every Argo CD the simulator started (Run's end).
func (s *Simulator) stopAllArgoCDs() error {
	s.mu.Lock()
	keys := make([]string, 0, len(s.argoRuns))
	for k := range s.argoRuns {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	var errs []error
	for _, k := range keys {
		errs = append(errs, s.stopArgoCD(k))
	}
	return errors.Join(errs...)
}

// Argo CD's configuration objects, as argocd-operator names them (its common/keys.go).
const (
	argocdRBACCM      = "argocd-rbac-cm"
	argocdCmdParamsCM = "argocd-cmd-params-cm"
	argocdSecret      = "argocd-secret"
	argocdKnownHosts  = "argocd-ssh-known-hosts-cm"
	argocdTLSCertsCM  = "argocd-tls-certs-cm"
	argocdGPGKeysCM   = "argocd-gpg-keys-cm"
)

// configArgoCD writes what argocd-operator derives from an ArgoCD CR before it starts any
// Pod, and returns argocd-cmd-params-cm's data. Followed, in
// github.com/argoproj-labs/argocd-operator (commit cf5d1c02):
//   - controllers/argocd/configmap.go reconcileArgoConfigMap: argocd-cm, the operator owning
//     every key (foreign edits are reverted); spec.resourceHealthChecks become
//     resource.customizations.health.<group>_<kind> (getResourceHealthChecks);
//     resource.exclusions defaults to getDefaultResourceExclusions; tracking method
//     annotation (getResourceTrackingMethod's default);
//   - reconcileRBACConfigMap / createRBACConfigMap: argocd-rbac-cm from spec.rbac;
//   - reconcileArgoCmdParamsConfigMap: argocd-cmd-params-cm with
//     controller.resource.health.persist "true" unless spec.cmdParams says otherwise, plus
//     spec.cmdParams;
//   - reconcileSSHKnownHosts, reconcileTLSCerts, reconcileGPGKeysConfigMap: the (here empty)
//     known-hosts, TLS-certificate and GnuPG ConfigMaps;
//   - controllers/argocd/secret.go reconcileArgoSecret: argocd-secret with server.secretkey
//     (the admin password and the server's TLS pair are for argocd-server, which the bed
//     does not run; Argo CD generates the TLS pair itself when it is missing);
//   - controllers/argocd/service_account.go, role.go, rolebinding.go, policyrule.go: the
//     application controller's service account, a Role with every verb in the instance's
//     namespace (policyRuleForApplicationController) and, the default instance being
//     cluster-scoped, read access to everything (policyRuleForApplicationControllerView).
//     Writing cluster-wide is left to whoever installs what needs it (the bootstrap binds
//     cluster-admin), as OpenShift GitOps documents for its default instance.
func (s *Simulator) configArgoCD(ctx context.Context, cd *unstructured.Unstructured) (map[string]string, error) {
	ns, name := cd.GetNamespace(), cd.GetName()
	labels := func(cm string) map[string]any {
		return map[string]any{"app.kubernetes.io/name": cm, "app.kubernetes.io/part-of": "argocd",
			"app.kubernetes.io/managed-by": name}
	}
	data := map[string]any{
		"application.instanceLabelKey":       "app.kubernetes.io/instance",
		"application.resourceTrackingMethod": "annotation",
		"admin.enabled":                      "true",
		"resource.exclusions":                defaultResourceExclusions,
		"resource.inclusions":                "",
	}
	if t := nestedStr(cd, "spec", "resourceTrackingMethod"); t != "" {
		data["application.resourceTrackingMethod"] = strings.ToLower(t[:1]) + t[1:]
	}
	if e := nestedStr(cd, "spec", "resourceExclusions"); e != "" {
		data["resource.exclusions"] = e
	}
	checks, _, _ := unstructured.NestedSlice(cd.Object, "spec", "resourceHealthChecks")
	for _, c := range checks {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		group := str(m["group"])
		if group != "" {
			group += "_"
		}
		data[healthKeyPrefix+group+str(m["kind"])] = str(m["check"])
	}
	if err := s.ownConfigMap(ctx, ns, argocdCM, labels(argocdCM), data); err != nil {
		return nil, err
	}
	rbac := map[string]any{"policy.csv": "", "policy.default": "role:readonly", "scopes": "[groups]"}
	for k, f := range map[string]string{"policy.csv": "policy", "policy.default": "defaultPolicy", "scopes": "scopes"} {
		if v, ok, _ := unstructured.NestedString(cd.Object, "spec", "rbac", f); ok {
			rbac[k] = v
		}
	}
	if err := s.ownConfigMap(ctx, ns, argocdRBACCM, labels(argocdRBACCM), rbac); err != nil {
		return nil, err
	}
	params := map[string]string{"controller.resource.health.persist": "true",
		"applicationsetcontroller.enable.tokenref.strict.mode": "false"}
	extra, _, _ := unstructured.NestedStringMap(cd.Object, "spec", "cmdParams")
	for k, v := range extra {
		params[k] = v
	}
	paramsData := map[string]any{}
	for k, v := range params {
		paramsData[k] = v
	}
	if err := s.ownConfigMap(ctx, ns, argocdCmdParamsCM, labels(argocdCmdParamsCM), paramsData); err != nil {
		return nil, err
	}
	for _, cm := range []string{argocdKnownHosts, argocdTLSCertsCM, argocdGPGKeysCM} {
		obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"name": cm, "namespace": ns, "labels": labels(cm)}}}
		if _, err := s.create(ctx, gvrConfigMap, mgrArgoCDOperator, obj); err != nil {
			return nil, err
		}
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	secret := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": argocdSecret, "namespace": ns, "labels": labels(argocdSecret)},
		"type":     "Opaque",
		"data":     map[string]any{"server.secretkey": base64.StdEncoding.EncodeToString(key)}}}
	if _, err := s.create(ctx, gvrSecret, mgrArgoCDOperator, secret); err != nil {
		return nil, err
	}
	return params, s.controllerRBAC(ctx, ns, name)
}

// defaultResourceExclusions is argocd-operator's getDefaultResourceExclusions
// (controllers/argocd/configmap.go) as the YAML it writes into argocd-cm.
const defaultResourceExclusions = `- apiGroups:
  - ""
  - discovery.k8s.io
  kinds:
  - Endpoints
  - EndpointSlice
- apiGroups:
  - apiregistration.k8s.io
  kinds:
  - APIService
- apiGroups:
  - coordination.k8s.io
  kinds:
  - Lease
- apiGroups:
  - authentication.k8s.io
  - authorization.k8s.io
  kinds:
  - SelfSubjectReview
  - TokenReview
  - LocalSubjectAccessReview
  - SelfSubjectAccessReview
  - SelfSubjectRulesReview
  - SubjectAccessReview
- apiGroups:
  - certificates.k8s.io
  kinds:
  - CertificateSigningRequest
- apiGroups:
  - cert-manager.io
  kinds:
  - CertificateRequest
- apiGroups:
  - cilium.io
  kinds:
  - CiliumIdentity
  - CiliumEndpoint
  - CiliumEndpointSlice
- apiGroups:
  - kyverno.io
  - reports.kyverno.io
  - wgpolicyk8s.io
  kinds:
  - PolicyReport
  - ClusterPolicyReport
  - EphemeralReport
  - ClusterEphemeralReport
  - AdmissionReport
  - ClusterAdmissionReport
  - BackgroundScanReport
  - ClusterBackgroundScanReport
  - UpdateRequest
`

// ownConfigMap creates or overwrites the data of a ConfigMap the operator owns whole.
func (s *Simulator) ownConfigMap(ctx context.Context, ns, name string, labels, data map[string]any) error {
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": labels},
		"data":     data}}
	if _, err := s.create(ctx, gvrConfigMap, mgrArgoCDOperator, cm); err != nil {
		return err
	}
	return s.update(ctx, mgrArgoCDOperator, gvrConfigMap, ns, name, false, func(u *unstructured.Unstructured) (bool, error) {
		if have, _, _ := unstructured.NestedMap(u.Object, "data"); semanticEqual(have, data) {
			return false, nil
		}
		u.Object["data"] = data
		return true, nil
	})
}

// controllerRBAC creates the application controller's service account, its Role and
// RoleBinding in the instance's namespace and its cluster-wide read access (see
// configArgoCD for the operator's source).
func (s *Simulator) controllerRBAC(ctx context.Context, ns, name string) error {
	sa := name + "-argocd-application-controller"
	subject := []any{map[string]any{"kind": "ServiceAccount", "name": sa, "namespace": ns}}
	objs := []struct {
		gvr schema.GroupVersionResource
		obj map[string]any
	}{
		{gvrServiceAccount, map[string]any{"apiVersion": "v1", "kind": "ServiceAccount",
			"metadata": map[string]any{"name": sa, "namespace": ns}}},
		{gvrRole, map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
			"metadata": map[string]any{"name": sa, "namespace": ns},
			"rules": []any{
				map[string]any{"apiGroups": []any{"*"}, "resources": []any{"*"}, "verbs": []any{"*"}},
				map[string]any{"apiGroups": []any{""}, "resources": []any{"serviceaccounts"}, "verbs": []any{"impersonate"}},
			}}},
		{gvrRoleBinding, map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
			"metadata": map[string]any{"name": sa, "namespace": ns},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
			"subjects": subject}},
		{gvrClusterRole, map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
			"metadata": map[string]any{"name": ns + "-" + sa + "-view"},
			"rules": []any{
				map[string]any{"apiGroups": []any{"*"}, "resources": []any{"*"}, "verbs": []any{"get", "list", "watch"}},
				map[string]any{"nonResourceURLs": []any{"*"}, "verbs": []any{"get", "list"}},
			}}},
		{gvrClusterRoleBinding, map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
			"metadata": map[string]any{"name": ns + "-" + sa + "-view"},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ns + "-" + sa + "-view"},
			"subjects": subject}},
	}
	for _, o := range objs {
		if _, err := s.create(ctx, o.gvr, mgrArgoCDOperator, &unstructured.Unstructured{Object: o.obj}); err != nil {
			return err
		}
	}
	return nil
}
