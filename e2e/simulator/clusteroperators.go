package simulator

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

const (
	coIngress        = "ingress"
	coKubeAPIServer  = "kube-apiserver"
	coAuthentication = "authentication"

	// OpenShiftVersion is what the simulated ClusterOperators report in status.versions.
	OpenShiftVersion = "4.21.0"

	mgrCVO = "cluster-version-operator"

	// The simulated operators remember what they last rolled out on their ClusterOperator
	// (real ones keep it in their operator CRs, which the bed does not serve); absent
	// annotations mean "the configuration the cluster was installed with".
	annRolledOut = "simulator.e2e.rhoai-bootstrap.io/rolled-out-config"
	annRevision  = "simulator.e2e.rhoai-bootstrap.io/revision"
)

var relatedObjects = map[string][]configv1.ObjectReference{
	coIngress: {
		{Group: "", Resource: "namespaces", Name: ingressOperatorNS},
		{Group: "operator.openshift.io", Resource: "ingresscontrollers", Namespace: ingressOperatorNS, Name: defaultIngressCtlName},
		{Group: "", Resource: "namespaces", Name: ingressNS}},
	coKubeAPIServer: {
		{Group: "operator.openshift.io", Resource: "kubeapiservers", Name: clusterConfigName},
		{Group: "config.openshift.io", Resource: "apiservers", Name: clusterConfigName},
		{Group: "", Resource: "namespaces", Name: "openshift-kube-apiserver"}},
	coAuthentication: {
		{Group: "operator.openshift.io", Resource: "authentications", Name: clusterConfigName},
		{Group: "config.openshift.io", Resource: "oauths", Name: clusterConfigName},
		{Group: "", Resource: "namespaces", Name: "openshift-authentication"}},
}

// syncClusterOperator makes sure a ClusterOperator exists and, when new, reports the
// installed cluster's steady state (Available, not Progressing, not Degraded).
func (s *Simulator) syncClusterOperator(ctx context.Context, name string) (time.Duration, error) {
	if _, ok := relatedObjects[name]; !ok {
		return 0, nil // not one the simulator plays
	}
	if ok, err := s.crdReady(ctx, crdName(gvrClusterOperator), gvrClusterOperator.Version); err != nil || !ok {
		return 0, err
	}
	co := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "config.openshift.io/v1", "kind": "ClusterOperator",
		"metadata": map[string]any{"name": name}, "spec": map[string]any{}}}
	if _, err := s.create(ctx, gvrClusterOperator, mgrCVO, co); err != nil {
		return 0, err
	}
	return 0, s.updateOperatorStatus(ctx, mgrCVO, name, func(st *configv1.ClusterOperatorStatus) bool {
		if len(st.Conditions) > 0 {
			return false
		}
		st.Versions = []configv1.OperandVersion{{Name: "operator", Version: OpenShiftVersion}}
		st.RelatedObjects = relatedObjects[name]
		setOperatorConds(st,
			cond{Type: "Available", Status: "True", Reason: "AsExpected"},
			cond{Type: "Progressing", Status: "False", Reason: "AsExpected"},
			cond{Type: "Degraded", Status: "False", Reason: "AsExpected"},
			cond{Type: "Upgradeable", Status: "True", Reason: "AsExpected"})
		return true
	})
}

// setOperatorConditions upserts conditions on a ClusterOperator's status.
func (s *Simulator) setOperatorConditions(ctx context.Context, manager, name string, conds ...cond) error {
	return s.updateOperatorStatus(ctx, manager, name, func(st *configv1.ClusterOperatorStatus) bool {
		return setOperatorConds(st, conds...)
	})
}

// updateOperatorStatus changes a ClusterOperator's status through its Go type
// (openshift/api config/v1 ClusterOperatorStatus), the type the bootstrap reads it with:
// a field misnamed on either side fails to compile instead of passing the tests.
func (s *Simulator) updateOperatorStatus(ctx context.Context, manager, name string, mutate func(*configv1.ClusterOperatorStatus) bool) error {
	return s.update(ctx, manager, gvrClusterOperator, "", name, true, func(u *unstructured.Unstructured) (bool, error) {
		var co configv1.ClusterOperator
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &co); err != nil {
			return false, fmt.Errorf("reading ClusterOperator %s: %w", name, err)
		}
		if !mutate(&co.Status) {
			return false, nil
		}
		st, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&co.Status)
		if err != nil {
			return false, fmt.Errorf("encoding ClusterOperator %s status: %w", name, err)
		}
		u.Object["status"] = st
		return true, nil
	})
}

// setOperatorConds upserts conditions, keeping a condition's lastTransitionTime while its
// status is unchanged and reporting whether anything changed, as library-go's
// v1helpers.SetStatusCondition does for ClusterOperators
// (openshift/library-go pkg/config/clusteroperator/v1helpers/status.go).
func setOperatorConds(st *configv1.ClusterOperatorStatus, conds ...cond) bool {
	changed := false
	for _, c := range conds {
		want := configv1.ClusterOperatorStatusCondition{Type: configv1.ClusterStatusConditionType(c.Type), Status: configv1.ConditionStatus(c.Status),
			Reason: c.Reason, Message: c.Message, LastTransitionTime: metav1.NewTime(time.Now().UTC().Truncate(time.Second))}
		i := slices.IndexFunc(st.Conditions, func(old configv1.ClusterOperatorStatusCondition) bool { return old.Type == want.Type })
		switch {
		case i < 0:
			st.Conditions = append(st.Conditions, want)
			changed = true
		case st.Conditions[i].Status == want.Status && st.Conditions[i].Reason == want.Reason && st.Conditions[i].Message == want.Message:
		default:
			if st.Conditions[i].Status == want.Status && !st.Conditions[i].LastTransitionTime.IsZero() {
				want.LastTransitionTime = st.Conditions[i].LastTransitionTime
			}
			st.Conditions[i] = want
			changed = true
		}
	}
	return changed
}

// configRollout is an operator that rolls its operand out again whenever part of a cluster
// config object changes: the ClusterOperator goes Progressing=True, then after the latency
// Progressing=False with a new revision. Secrets the new config names must exist first;
// otherwise the operator reports Degraded and rolls nothing out, like the real operators'
// config observers.
type configRollout struct {
	s        *Simulator
	operator string
	manager  string
	config   schema.GroupVersionResource
	watched  func(cfg *unstructured.Unstructured) any
	secrets  func(cfg *unstructured.Unstructured) (ns string, names []string)
	latency  func(Latencies) time.Duration
	// rolling and settled are the ClusterOperator conditions during and after a rollout from
	// revision rev to rev+1.
	rolling, settled func(rev int64) []cond
	degraded         func(missing string) cond
}

func (r *configRollout) sync(ctx context.Context, name string) (time.Duration, error) {
	s := r.s
	cfg, err := s.get(ctx, r.config, "", name)
	if err != nil || cfg == nil || name != clusterConfigName {
		return 0, err
	}
	co, err := s.get(ctx, gvrClusterOperator, "", r.operator)
	if err != nil || co == nil {
		return 0, err // created by syncClusterOperator, whose event brings us back
	}
	want := fingerprint(jsonValue(r.watched(cfg)))
	ann := co.GetAnnotations()
	if ann[annRolledOut] == want {
		if condStatus(co.Object, "Degraded", "status", "conditions") == "True" {
			// The configuration that made us degraded is gone again.
			return 0, s.setOperatorConditions(ctx, r.manager, r.operator, cond{Type: "Degraded", Status: "False", Reason: "AsExpected"})
		}
		return 0, nil
	}
	rev, err := strconv.ParseInt(ann[annRevision], 10, 64)
	if err != nil {
		rev = 7 // a freshly installed cluster is a few revisions in
	}
	if ns, names := r.secrets(cfg); len(names) > 0 {
		for _, n := range names {
			sec, err := s.get(ctx, gvrSecret, ns, n)
			if err != nil {
				return 0, err
			}
			if sec == nil {
				missing := fmt.Sprintf("%s/%s", ns, n)
				s.logf("%s: secret %s not found; not rolling out", r.operator, missing)
				return 2 * time.Second, s.setOperatorConditions(ctx, r.manager, r.operator, r.degraded(missing),
					cond{Type: "Progressing", Status: "False", Reason: "AsExpected"})
			}
		}
	}
	clock := r.operator + "/" + want
	if wait := s.after(clock, r.latency(s.lat())); wait > 0 {
		conds := append(r.rolling(rev), cond{Type: "Degraded", Status: "False", Reason: "AsExpected"})
		return wait, s.setOperatorConditions(ctx, r.manager, r.operator, conds...)
	}
	if err := s.setOperatorConditions(ctx, r.manager, r.operator, r.settled(rev)...); err != nil {
		return 0, err
	}
	err = s.update(ctx, r.manager, gvrClusterOperator, "", r.operator, false, func(u *unstructured.Unstructured) (bool, error) {
		a := u.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[annRolledOut], a[annRevision] = want, strconv.FormatInt(rev+1, 10)
		u.SetAnnotations(a)
		return true, nil
	})
	if err == nil {
		s.done(clock)
		s.logf("%s: rolled out revision %d", r.operator, rev+1)
	}
	return 0, err
}

// kubeAPIServerRollout: spec.servingCerts.namedCertificates of apiserver/cluster.
func (s *Simulator) kubeAPIServerRollout() *configRollout {
	return &configRollout{s: s, operator: coKubeAPIServer, manager: "cluster-kube-apiserver-operator", config: gvrAPIServer,
		watched: func(cfg *unstructured.Unstructured) any {
			v, _, _ := unstructured.NestedFieldCopy(cfg.Object, "spec", "servingCerts", "namedCertificates")
			return v
		},
		secrets: func(cfg *unstructured.Unstructured) (string, []string) {
			list, _, _ := unstructured.NestedSlice(cfg.Object, "spec", "servingCerts", "namedCertificates")
			var names []string
			for _, item := range list {
				if n, _, _ := unstructured.NestedString(asMap(item), "servingCertificate", "name"); n != "" {
					names = append(names, n)
				}
			}
			return openshiftConfigNS, names
		},
		latency: func(l Latencies) time.Duration { return l.APIServerRollout },
		rolling: func(rev int64) []cond {
			return []cond{
				{Type: "Progressing", Status: "True", Reason: "NodeInstaller",
					Message: fmt.Sprintf("NodeInstallerProgressing: 3 nodes are at revision %d; 0 nodes have achieved new revision %d", rev, rev+1)},
				{Type: "Available", Status: "True", Reason: "AsExpected",
					Message: fmt.Sprintf("StaticPodsAvailable: 3 nodes are active; 3 nodes are at revision %d; 0 nodes have achieved new revision %d", rev, rev+1)},
			}
		},
		settled: func(rev int64) []cond {
			return []cond{
				{Type: "Progressing", Status: "False", Reason: "AsExpected",
					Message: fmt.Sprintf("NodeInstallerProgressing: 3 nodes are at revision %d", rev+1)},
				{Type: "Available", Status: "True", Reason: "AsExpected",
					Message: fmt.Sprintf("StaticPodsAvailable: 3 nodes are active; 3 nodes are at revision %d", rev+1)},
				{Type: "Degraded", Status: "False", Reason: "AsExpected", Message: "NodeControllerDegraded: All master nodes are ready"},
			}
		},
		degraded: func(missing string) cond {
			return cond{Type: "Degraded", Status: "True", Reason: "ConfigObservation_Error",
				Message: fmt.Sprintf("ConfigObservationDegraded: secret %q not found", missing)}
		},
	}
}

// oauthSecretFields maps identity provider types to the field naming their secret.
var oauthSecretFields = map[string][2]string{
	"Google": {"google", "clientSecret"}, "GitHub": {"github", "clientSecret"}, "GitLab": {"gitlab", "clientSecret"},
	"OpenID": {"openID", "clientSecret"}, "HTPasswd": {"htpasswd", "fileData"},
}

// authenticationRollout: the whole spec of oauth/cluster (identity providers, token config).
func (s *Simulator) authenticationRollout() *configRollout {
	return &configRollout{s: s, operator: coAuthentication, manager: "cluster-authentication-operator", config: gvrOAuth,
		watched: func(cfg *unstructured.Unstructured) any {
			v, _, _ := unstructured.NestedFieldCopy(cfg.Object, "spec")
			return v
		},
		secrets: func(cfg *unstructured.Unstructured) (string, []string) {
			idps, _, _ := unstructured.NestedSlice(cfg.Object, "spec", "identityProviders")
			var names []string
			for _, item := range idps {
				f, ok := oauthSecretFields[str(asMap(item)["type"])]
				if !ok {
					continue
				}
				if n, _, _ := unstructured.NestedString(asMap(item), f[0], f[1], "name"); n != "" {
					names = append(names, n)
				}
			}
			return openshiftConfigNS, names
		},
		latency: func(l Latencies) time.Duration { return l.OAuthRollout },
		rolling: func(rev int64) []cond {
			return []cond{{Type: "Progressing", Status: "True", Reason: "OAuthServerDeployment_NewGeneration",
				Message: fmt.Sprintf("OAuthServerDeploymentProgressing: deployment/oauth-openshift.openshift-authentication: observed generation is %d, desired generation is %d.", rev, rev+1)},
				{Type: "Available", Status: "True", Reason: "AsExpected", Message: "All is well"}}
		},
		settled: func(int64) []cond {
			return []cond{
				{Type: "Progressing", Status: "False", Reason: "AsExpected", Message: "AuthenticatorCertKeyProgressing: All is well"},
				{Type: "Available", Status: "True", Reason: "AsExpected", Message: "All is well"},
				{Type: "Degraded", Status: "False", Reason: "AsExpected", Message: "All is well"},
			}
		},
		degraded: func(missing string) cond {
			return cond{Type: "Degraded", Status: "True", Reason: "OAuthServerConfigObservation_Error",
				Message: fmt.Sprintf("OAuthServerConfigObservationDegraded: failed to apply IDP config: secret %q not found", missing)}
		},
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

const mgrIngress = "ingress-operator"

// syncIngressController is the ingress operator for one IngressController: a spec change
// (status.observedGeneration behind metadata.generation) rolls the router out — conditions
// Progressing/DeploymentRollingOut True for IngressRollout, mirrored on ClusterOperator
// ingress for "default" — then everything settles Available.
func (s *Simulator) syncIngressController(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	ic, err := s.get(ctx, gvrIngressController, ns, name)
	if err != nil || ic == nil || ic.GetDeletionTimestamp() != nil {
		return 0, err
	}
	gen := ic.GetGeneration()
	observed, seen, _ := unstructured.NestedInt64(ic.Object, "status", "observedGeneration")
	rolling := condStatus(ic.Object, "Progressing", "status", "conditions") == "True"
	cert := nestedStr(ic, "spec", "defaultCertificate", "name")
	isDefault := name == defaultIngressCtlName
	if seen && observed == gen && !rolling && condStatus(ic.Object, "Available", "status", "conditions") == "True" {
		return 0, nil
	}
	if cert != "" {
		sec, err := s.get(ctx, gvrSecret, ingressNS, cert)
		if err != nil {
			return 0, err
		}
		if sec == nil {
			msg := fmt.Sprintf("secret %q not found in namespace %q", cert, ingressNS)
			s.logf("ingress: %s: %s; not rolling out", key, msg)
			if isDefault {
				err = s.setOperatorConditions(ctx, mgrIngress, coIngress, cond{Type: "Degraded", Status: "True", Reason: "IngressDegraded",
					Message: fmt.Sprintf("The %q ingress controller reports Degraded=True: DefaultCertificateMissing: %s", name, msg)})
			}
			return 2 * time.Second, err
		}
	}
	// A fresh controller with the generated default certificate is simply there, as after
	// install; anything else (a changed spec) means a router rollout.
	fresh := !seen && cert == ""
	clock := "ingress/" + string(ic.GetUID()) + "/" + strconv.FormatInt(gen, 10)
	if wait := s.after(clock, s.lat().IngressRollout); wait > 0 && !fresh {
		rollMsg := "Waiting for router deployment rollout to finish: 1 of 2 updated replica(s) are available...\n"
		err := s.setIngressStatus(ctx, ic, gen,
			cond{Type: "DeploymentRollingOut", Status: "True", Reason: "DeploymentRollingOut", Message: rollMsg},
			cond{Type: "Progressing", Status: "True", Reason: "IngressControllerProgressing",
				Message: "One or more status conditions indicate progressing: DeploymentRollingOut=True (DeploymentRollingOut: " + rollMsg + ")"})
		if err == nil && isDefault {
			err = s.setOperatorConditions(ctx, mgrIngress, coIngress,
				cond{Type: "Progressing", Status: "True", Reason: "Reconciling",
					Message: fmt.Sprintf("ingresscontroller %q is progressing: IngressControllerProgressing: One or more status conditions indicate progressing: DeploymentRollingOut=True (DeploymentRollingOut: %s).\nNot all ingress controllers are available.", name, strings.TrimSpace(rollMsg))},
				cond{Type: "Degraded", Status: "False", Reason: "IngressNotDegraded", Message: fmt.Sprintf("The %q ingress controller reports Degraded=False.", name)})
		}
		return wait, err
	}
	err = s.setIngressStatus(ctx, ic, gen,
		cond{Type: "DeploymentRollingOut", Status: "False", Reason: "DeploymentNotRollingOut", Message: "Deployment is not actively rolling out"},
		cond{Type: "Progressing", Status: "False"})
	if err == nil && isDefault {
		err = s.setOperatorConditions(ctx, mgrIngress, coIngress,
			cond{Type: "Progressing", Status: "False", Reason: "AsExpected", Message: "desired and current number of IngressControllers are equal"},
			cond{Type: "Available", Status: "True", Reason: "IngressAvailable", Message: fmt.Sprintf("The %q ingress controller reports Available=True.", name)},
			cond{Type: "Degraded", Status: "False", Reason: "IngressNotDegraded", Message: fmt.Sprintf("The %q ingress controller reports Degraded=False.", name)})
	}
	if err == nil {
		s.done(clock)
		if !fresh {
			s.logf("ingress: %s rolled out generation %d", key, gen)
		}
	}
	return 0, err
}

// setIngressStatus writes an IngressController's status for generation gen with the given
// rollout conditions on top of the steady ones.
func (s *Simulator) setIngressStatus(ctx context.Context, ic *unstructured.Unstructured, gen int64, rollout ...cond) error {
	domain := nestedStr(ic, "spec", "domain")
	if domain == "" {
		if cfg, err := s.get(ctx, gvrIngressConfig, "", clusterConfigName); err == nil && cfg != nil {
			domain = nestedStr(cfg, "spec", "domain")
		}
	}
	replicas, ok, _ := unstructured.NestedInt64(ic.Object, "spec", "replicas")
	if !ok {
		replicas = 2
	}
	return s.update(ctx, mgrIngress, gvrIngressController, ic.GetNamespace(), ic.GetName(), true, func(u *unstructured.Unstructured) (bool, error) {
		before := jsonValue(u.Object["status"])
		st, _, _ := unstructured.NestedMap(u.Object, "status")
		if st == nil {
			st = map[string]any{}
		}
		st["observedGeneration"] = gen
		st["availableReplicas"] = replicas
		st["selector"] = "ingresscontroller.operator.openshift.io/deployment-ingresscontroller=" + ic.GetName()
		if domain != "" {
			st["domain"] = domain
		}
		u.Object["status"] = st
		conds := append([]cond{
			{Type: "Admitted", Status: "True", Reason: "Valid"},
			{Type: "DeploymentAvailable", Status: "True", Reason: "DeploymentAvailable", Message: "The deployment has Available status condition set to True"},
			{Type: "DeploymentReplicasAllAvailable", Status: "True", Reason: "DeploymentReplicasAvailable", Message: "All replicas are available"},
			{Type: "Available", Status: "True"},
			{Type: "Degraded", Status: "False"},
		}, rollout...)
		setConds(u.Object, []string{"status", "conditions"}, conds...)
		return !semanticEqual(before, u.Object["status"]), nil
	})
}
