package simulator

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	configv1 "github.com/openshift/api/config/v1"
	operatorv1 "github.com/openshift/api/operator/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
	co := &configv1.ClusterOperator{TypeMeta: metav1.TypeMeta{APIVersion: configv1.GroupVersion.String(), Kind: "ClusterOperator"},
		ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := createAs[configv1.ClusterOperator](ctx, s, gvrClusterOperator, mgrCVO, co); err != nil {
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
	return updateStatusAs(ctx, s, manager, gvrClusterOperator, "", name, func(co *configv1.ClusterOperator) (bool, error) {
		return mutate(&co.Status), nil
	})
}

// setOperatorConds upserts conditions, keeping a condition's lastTransitionTime while its
// status is unchanged and reporting whether anything changed, as library-go's
// v1helpers.SetStatusCondition does for ClusterOperators
// (openshift/library-go pkg/config/clusteroperator/v1helpers/status.go).
func setOperatorConds(st *configv1.ClusterOperatorStatus, conds ...cond) bool {
	changed := false
	for _, c := range conds {
		var ch bool
		st.Conditions, ch = setTypedCond(st.Conditions, configv1.ClusterOperatorStatusCondition{Type: configv1.ClusterStatusConditionType(c.Type),
			Status: configv1.ConditionStatus(c.Status), Reason: c.Reason, Message: c.Message, LastTransitionTime: stamp()},
			func(c configv1.ClusterOperatorStatusCondition) cond {
				return cond{Type: string(c.Type), Status: string(c.Status), Reason: c.Reason, Message: c.Message}
			},
			func(old configv1.ClusterOperatorStatusCondition, want *configv1.ClusterOperatorStatusCondition) {
				if !old.LastTransitionTime.IsZero() {
					want.LastTransitionTime = old.LastTransitionTime
				}
			})
		changed = changed || ch
	}
	return changed
}

// setIngressConds upserts an IngressController's conditions (operator/v1
// OperatorCondition) as the ingress operator's MergeConditions does
// (openshift/cluster-ingress-operator pkg/operator/controller/ingress/status.go): a
// condition whose status, reason or message changed gets a new lastTransitionTime, an
// unchanged one keeps it.
func setIngressConds(list []operatorv1.OperatorCondition, conds ...cond) []operatorv1.OperatorCondition {
	for _, c := range conds {
		list, _ = setTypedCond(list, operatorv1.OperatorCondition{Type: c.Type, Status: operatorv1.ConditionStatus(c.Status),
			Reason: c.Reason, Message: c.Message, LastTransitionTime: stamp()},
			func(c operatorv1.OperatorCondition) cond {
				return cond{Type: c.Type, Status: string(c.Status), Reason: c.Reason, Message: c.Message}
			},
			func(operatorv1.OperatorCondition, *operatorv1.OperatorCondition) {})
	}
	return list
}

// conditionStatus is the status of condition typ in a typed list, "" when it is absent.
func conditionStatus[C any](list []C, typ string, view func(C) (string, string)) string {
	for _, c := range list {
		if t, st := view(c); t == typ {
			return st
		}
	}
	return ""
}

func coCond(c configv1.ClusterOperatorStatusCondition) (string, string) {
	return string(c.Type), string(c.Status)
}

func opCond(c operatorv1.OperatorCondition) (string, string) { return c.Type, string(c.Status) }

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
	// observe reads the config object as the operator's config observer does: the part
	// whose change means a rollout, and the secrets in openshift-config it names.
	observe func(cfg *unstructured.Unstructured) (watched any, secrets []string, err error)
	latency func(Latencies) time.Duration
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
	co, err := getAs[configv1.ClusterOperator](ctx, s, gvrClusterOperator, "", r.operator)
	if err != nil || co == nil {
		return 0, err // created by syncClusterOperator, whose event brings us back
	}
	watched, secrets, err := r.observe(cfg)
	if err != nil {
		return 0, err
	}
	want := fingerprint(jsonValue(watched))
	ann := co.Annotations
	if ann[annRolledOut] == want {
		if conditionStatus(co.Status.Conditions, "Degraded", coCond) == "True" {
			// The configuration that made us degraded is gone again.
			return 0, s.setOperatorConditions(ctx, r.manager, r.operator, cond{Type: "Degraded", Status: "False", Reason: "AsExpected"})
		}
		return 0, nil
	}
	rev, err := strconv.ParseInt(ann[annRevision], 10, 64)
	if err != nil {
		rev = 7 // a freshly installed cluster is a few revisions in
	}
	for _, n := range secrets {
		sec, err := s.get(ctx, gvrSecret, openshiftConfigNS, n)
		if err != nil {
			return 0, err
		}
		if sec == nil {
			missing := fmt.Sprintf("%s/%s", openshiftConfigNS, n)
			s.logf("%s: secret %s not found; not rolling out", r.operator, missing)
			return 2 * time.Second, s.setOperatorConditions(ctx, r.manager, r.operator, r.degraded(missing),
				cond{Type: "Progressing", Status: "False", Reason: "AsExpected"})
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
		observe: func(cfg *unstructured.Unstructured) (any, []string, error) {
			api, err := as[configv1.APIServer](cfg)
			if err != nil {
				return nil, nil, err
			}
			var names []string
			for _, nc := range api.Spec.ServingCerts.NamedCertificates {
				if n := nc.ServingCertificate.Name; n != "" {
					names = append(names, n)
				}
			}
			return api.Spec.ServingCerts.NamedCertificates, names, nil
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

// idpSecret is the secret an identity provider of the provider's type names, "" for
// types whose secrets the simulated operator does not check.
func idpSecret(idp configv1.IdentityProvider) string {
	switch {
	case idp.Type == configv1.IdentityProviderTypeGoogle && idp.Google != nil:
		return idp.Google.ClientSecret.Name
	case idp.Type == configv1.IdentityProviderTypeGitHub && idp.GitHub != nil:
		return idp.GitHub.ClientSecret.Name
	case idp.Type == configv1.IdentityProviderTypeGitLab && idp.GitLab != nil:
		return idp.GitLab.ClientSecret.Name
	case idp.Type == configv1.IdentityProviderTypeOpenID && idp.OpenID != nil:
		return idp.OpenID.ClientSecret.Name
	case idp.Type == configv1.IdentityProviderTypeHTPasswd && idp.HTPasswd != nil:
		return idp.HTPasswd.FileData.Name
	}
	return ""
}

// authenticationRollout: the whole spec of oauth/cluster (identity providers, token config).
func (s *Simulator) authenticationRollout() *configRollout {
	return &configRollout{s: s, operator: coAuthentication, manager: "cluster-authentication-operator", config: gvrOAuth,
		observe: func(cfg *unstructured.Unstructured) (any, []string, error) {
			oauth, err := as[configv1.OAuth](cfg)
			if err != nil {
				return nil, nil, err
			}
			var names []string
			for _, idp := range oauth.Spec.IdentityProviders {
				if n := idpSecret(idp); n != "" {
					names = append(names, n)
				}
			}
			// Any change of the spec as served counts (the typed spec would encode its
			// empty structs, which an untouched oauth/cluster does not have).
			return cfg.Object["spec"], names, nil
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
	ic, err := getAs[operatorv1.IngressController](ctx, s, gvrIngressController, ns, name)
	if err != nil || ic == nil || ic.DeletionTimestamp != nil {
		return 0, err
	}
	gen := ic.Generation
	// Generations start at 1: an observedGeneration of 0 is one never written.
	observed := ic.Status.ObservedGeneration
	seen := observed != 0
	rolling := conditionStatus(ic.Status.Conditions, "Progressing", opCond) == "True"
	cert := ""
	if ic.Spec.DefaultCertificate != nil {
		cert = ic.Spec.DefaultCertificate.Name
	}
	isDefault := name == defaultIngressCtlName
	if seen && observed == gen && !rolling && conditionStatus(ic.Status.Conditions, "Available", opCond) == "True" {
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
	clock := "ingress/" + string(ic.UID) + "/" + strconv.FormatInt(gen, 10)
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
func (s *Simulator) setIngressStatus(ctx context.Context, ic *operatorv1.IngressController, gen int64, rollout ...cond) error {
	domain := ic.Spec.Domain
	if domain == "" {
		if cfg, err := getAs[configv1.Ingress](ctx, s, gvrIngressConfig, "", clusterConfigName); err == nil && cfg != nil {
			domain = cfg.Spec.Domain
		}
	}
	replicas := int32(2)
	if ic.Spec.Replicas != nil {
		replicas = *ic.Spec.Replicas
	}
	return updateStatusAs(ctx, s, mgrIngress, gvrIngressController, ic.Namespace, ic.Name, func(live *operatorv1.IngressController) (bool, error) {
		st := &live.Status
		before := st.DeepCopy()
		st.ObservedGeneration = gen
		st.AvailableReplicas = replicas
		st.Selector = "ingresscontroller.operator.openshift.io/deployment-ingresscontroller=" + ic.Name
		if domain != "" {
			st.Domain = domain
		}
		st.Conditions = setIngressConds(st.Conditions, append([]cond{
			{Type: "Admitted", Status: "True", Reason: "Valid"},
			{Type: "DeploymentAvailable", Status: "True", Reason: "DeploymentAvailable", Message: "The deployment has Available status condition set to True"},
			{Type: "DeploymentReplicasAllAvailable", Status: "True", Reason: "DeploymentReplicasAvailable", Message: "All replicas are available"},
			{Type: "Available", Status: "True"},
			{Type: "Degraded", Status: "False"},
		}, rollout...)...)
		return !semanticEqual(before, st), nil
	})
}
