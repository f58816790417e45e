package simulator

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	gvrCRD       = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	gvrNamespace = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrConfigMap = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	gvrSecret    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	gvrPod       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

	gvrServiceAccount     = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	gvrRole               = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}
	gvrRoleBinding        = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}
	gvrClusterRole        = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}
	gvrClusterRoleBinding = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}

	gvrSubscription  = schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "subscriptions"}
	gvrInstallPlan   = schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "installplans"}
	gvrCSV           = schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "clusterserviceversions"}
	gvrOperatorGroup = schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1", Resource: "operatorgroups"}

	gvrArgoCD     = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1beta1", Resource: "argocds"}
	gvrAppProject = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "appprojects"}

	gvrClusterOperator     = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "clusteroperators"}
	gvrAPIServer           = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "apiservers"}
	gvrOAuth               = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "oauths"}
	gvrIngressConfig       = schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "ingresses"}
	gvrIngressController   = schema.GroupVersionResource{Group: "operator.openshift.io", Version: "v1", Resource: "ingresscontrollers"}
	gvrDSCInitialization   = schema.GroupVersionResource{Group: "dscinitialization.opendatahub.io", Version: "v2", Resource: "dscinitializations"}
	gvrDataScienceCluster  = schema.GroupVersionResource{Group: "datasciencecluster.opendatahub.io", Version: "v2", Resource: "datascienceclusters"}
	gvrInferenceService    = schema.GroupVersionResource{Group: "serving.kserve.io", Version: "v1beta1", Resource: "inferenceservices"}
	gvrLLMInferenceService = schema.GroupVersionResource{Group: "serving.kserve.io", Version: "v1alpha1", Resource: "llminferenceservices"}
	gvrGatewayClass        = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gatewayclasses"}
	gvrGateway             = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "gateways"}
	gvrGrafana             = schema.GroupVersionResource{Group: "grafana.integreatly.org", Version: "v1beta1", Resource: "grafanas"}
	gvrGrafanaDashboard    = schema.GroupVersionResource{Group: "grafana.integreatly.org", Version: "v1beta1", Resource: "grafanadashboards"}
	gvrGrafanaDatasource   = schema.GroupVersionResource{Group: "grafana.integreatly.org", Version: "v1beta1", Resource: "grafanadatasources"}
	gvrMachineSet          = schema.GroupVersionResource{Group: "machine.openshift.io", Version: "v1beta1", Resource: "machinesets"}
	gvrMachine             = schema.GroupVersionResource{Group: "machine.openshift.io", Version: "v1beta1", Resource: "machines"}
	ingressOperatorNS      = "openshift-ingress-operator"
	ingressNS              = "openshift-ingress"
	openshiftConfigNS      = "openshift-config"
	machineAPINS           = "openshift-machine-api"
	clusterConfigName      = "cluster"
	defaultIngressCtlName  = "default"
)

// registerWatches wires informer events to the loops that care about them.
func (s *Simulator) registerWatches() {
	s.watches = append(s.watches, &watcher{gvr: gvrCRD, handler: s.crdHandler()})

	s.watch(gvrSubscription, "", func(u *unstructured.Unstructured) {
		s.subs.add(keyOf(u))
		s.gitops.add(gitopsNS) // DISABLE_DEFAULT_ARGOCD_INSTANCE lives in the Subscription
	})
	s.watch(gvrInstallPlan, "", func(u *unstructured.Unstructured) {
		for _, o := range u.GetOwnerReferences() {
			if o.Kind == "Subscription" {
				s.subs.add(u.GetNamespace() + "/" + o.Name)
			}
		}
	})
	s.watch(gvrCSV, "", func(u *unstructured.Unstructured) {
		s.csvs.add(u.GetNamespace())
		s.subs.add(u.GetNamespace() + "/" + allKey) // a deleted CSV is reinstalled by its Subscription
		s.gitops.add(gitopsNS)
	})
	s.watch(gvrOperatorGroup, "", func(u *unstructured.Unstructured) { s.csvs.add(u.GetNamespace()) })

	s.watch(gvrArgoCD, "", func(u *unstructured.Unstructured) {
		s.argocds.add(keyOf(u))
		if u.GetNamespace() == gitopsNS {
			s.gitops.add(gitopsNS) // the operator recreates its default instance
		}
	})
	s.watch(gvrConfigMap, gitopsNS, func(u *unstructured.Unstructured) {
		switch u.GetName() {
		case argocdCM, argocdRBACCM, argocdCmdParamsCM:
			s.argocds.add(allKey) // the operator owns these and reverts foreign edits
		}
	})

	s.watch(gvrClusterOperator, "", func(u *unstructured.Unstructured) {
		s.clusterOps.add(u.GetName()) // the CVO recreates a deleted ClusterOperator
		switch u.GetName() {
		case coIngress:
			s.ingress.add(ingressOperatorNS + "/" + defaultIngressCtlName)
		case coKubeAPIServer:
			s.apiserver.add(clusterConfigName)
		case coAuthentication:
			s.oauth.add(clusterConfigName)
		}
	})
	s.watch(gvrIngressController, ingressOperatorNS, func(u *unstructured.Unstructured) { s.ingress.add(keyOf(u)) })
	s.watch(gvrAPIServer, "", func(u *unstructured.Unstructured) { s.apiserver.add(u.GetName()) })
	s.watch(gvrOAuth, "", func(u *unstructured.Unstructured) { s.oauth.add(u.GetName()) })

	s.watch(gvrInferenceService, "", func(u *unstructured.Unstructured) { s.kserve.add(keyOf(u)) })
	s.watch(gvrLLMInferenceService, "", func(u *unstructured.Unstructured) { s.llmisvc.add(keyOf(u)) })
	s.watch(gvrGatewayClass, "", func(u *unstructured.Unstructured) { s.gatewayClasses.add(u.GetName()) })
	s.watch(gvrGateway, "", func(u *unstructured.Unstructured) { s.gateways.add(keyOf(u)) })
	// A listener's certificate Secret appearing or going changes the Gateways of its namespace.
	s.watch(gvrSecret, ingressNS, func(u *unstructured.Unstructured) { s.gateways.add(allKey) })
	s.watch(gvrGrafana, "", func(u *unstructured.Unstructured) { s.grafana.add(keyOf(u)) })
	s.watch(gvrGrafanaDashboard, "", func(u *unstructured.Unstructured) {
		s.grafanaContent.add(gvrGrafanaDashboard.Resource + "/" + keyOf(u))
	})
	s.watch(gvrGrafanaDatasource, "", func(u *unstructured.Unstructured) {
		s.grafanaContent.add(gvrGrafanaDatasource.Resource + "/" + keyOf(u))
	})
	s.watch(gvrCertificate, "", func(u *unstructured.Unstructured) { s.certificates.add(keyOf(u)) })
	s.watch(gvrClusterIssuer, "", func(u *unstructured.Unstructured) { s.issuers.add(u.GetName()) })
	// A CertificateRequest is the ACME issuer's to sign, and its Certificate's controllers'
	// input.
	s.watch(gvrCertificateRequest, "", func(u *unstructured.Unstructured) {
		s.certificateRequests.add(keyOf(u))
		if owner := ownerName(u, "Certificate"); owner != "" {
			s.certificates.add(u.GetNamespace() + "/" + owner)
		}
	})
	s.watch(gvrCredentialsRequest, "", func(u *unstructured.Unstructured) { s.credentialsRequests.add(keyOf(u)) })
	// cert-manager's controllers read a Certificate's Secrets (its own, the next private
	// key): a Secret written or removed runs them again for the Certificates of its namespace.
	s.watch(gvrSecret, "", func(u *unstructured.Unstructured) { s.certificates.add(u.GetNamespace() + "/" + allKey) })
	s.watch(gvrDSCInitialization, "", func(u *unstructured.Unstructured) { s.odh.add(u.GetName()) })
	s.watch(gvrDataScienceCluster, "", func(u *unstructured.Unstructured) { s.odh.add(dscKeyPrefix + u.GetName()) })

	s.watch(gvrPod, "", func(u *unstructured.Unstructured) { s.kubelet.add(keyOf(u)) })

	s.watch(gvrMachineSet, machineAPINS, func(u *unstructured.Unstructured) { s.machineSets.add(keyOf(u)) })
	s.watch(gvrMachine, machineAPINS, func(u *unstructured.Unstructured) {
		for _, o := range u.GetOwnerReferences() {
			if o.Kind == "MachineSet" {
				s.machineSets.add(u.GetNamespace() + "/" + o.Name)
			}
		}
	})
}
