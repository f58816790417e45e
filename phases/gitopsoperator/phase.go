// Package gitopsoperator installs the OpenShift GitOps operator through OLM and waits for
// it the way a person would check it: Subscription → InstallPlan → CSV Succeeded → Argo CD
// CRDs Established → ArgoCD openshift-gitops Available. It also gives that Argo CD the
// health checks a bootstrap needs (an Application is healthy only when its children are; a
// Subscription only when its CSV is installed).
package gitopsoperator

import (
	"context"
	"fmt"
	"strings"

	operatorsv1 "github.com/operator-framework/api/pkg/operators/v1"
	operatorsv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/catalog"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// Names of what the phase makes and waits on.
const (
	Name            = "gitops-operator"
	OperatorNS      = "openshift-gitops-operator"
	Package         = "openshift-gitops-operator"
	ArgoNS          = "openshift-gitops"
	ArgoName        = "openshift-gitops"
	CatalogSource   = "redhat-operators"
	CatalogSourceNS = "openshift-marketplace"
)

var (
	subGVK = operatorsv1alpha1.SchemeGroupVersion.WithKind(operatorsv1alpha1.SubscriptionKind)
	csvGVK = operatorsv1alpha1.SchemeGroupVersion.WithKind(operatorsv1alpha1.ClusterServiceVersionKind)
	ogGVK  = operatorsv1.SchemeGroupVersion.WithKind(operatorsv1.OperatorGroupKind)
	crdGVK = kube.GVK("apiextensions.k8s.io/v1", "CustomResourceDefinition") // readiness by kstatus; no Go type linked for it
	// The ArgoCD CR (argoproj-labs/argocd-operator api/v1beta1) has no Go module
	// importable here: it stays unstructured.
	argoGVK = kube.GVK("argoproj.io/v1beta1", "ArgoCD")
)

// crds are the Argo CD CRDs the operator brings; the root app needs them Established.
var crds = []string{"applications.argoproj.io", "appprojects.argoproj.io", "argocds.argoproj.io"}

// healthApplication makes an Application report its own health, so an app-of-apps parent
// is Healthy only once its children are (Argo CD dropped this built-in check in 1.8).
const healthApplication = `hs = {}
hs.status = "Progressing"
hs.message = ""
if obj.status ~= nil and obj.status.health ~= nil then
  hs.status = obj.status.health.status
  if obj.status.health.message ~= nil then
    hs.message = obj.status.health.message
  end
end
return hs
`

// healthSubscription is Healthy only when OLM installed the CSV the Subscription wants.
const healthSubscription = `hs = {}
hs.status = "Progressing"
hs.message = "waiting for the CSV"
if obj.status ~= nil then
  if obj.status.conditions ~= nil then
    for i, c in ipairs(obj.status.conditions) do
      if (c.type == "CatalogSourcesUnhealthy" or c.type == "ResolutionFailed" or c.type == "InstallPlanFailed") and c.status == "True" then
        hs.status = "Degraded"
        hs.message = c.message
        return hs
      end
    end
  end
  if obj.status.state == "AtLatestKnown" and obj.status.installedCSV ~= nil then
    hs.status = "Healthy"
    hs.message = obj.status.installedCSV
  end
end
return hs
`

type phase struct{ env *phases.Env }

// New returns the gitops-operator phase.
func New(env *phases.Env) installer.Phase { return &phase{env: env} }

func (p *phase) Name() string { return Name }

// DependsOn: it talks to the cluster's API server, which exists (and whose kubeconfig
// we have) only once the cluster phase is done.
func (p *phase) DependsOn() []string { return []string{"cluster"} }

func (p *phase) channel() string {
	if g := p.env.Cluster.Spec.GitOps; g != nil {
		return g.OperatorChannel
	}
	return ""
}

// subscription is our Subscription to the operator; config, when set, is its
// spec.config (the operator's environment).
func (p *phase) subscription(config *operatorsv1alpha1.SubscriptionConfig) *operatorsv1alpha1.Subscription {
	return &operatorsv1alpha1.Subscription{
		TypeMeta:   metav1.TypeMeta{APIVersion: subGVK.GroupVersion().String(), Kind: subGVK.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: Package, Namespace: OperatorNS},
		Spec: &operatorsv1alpha1.SubscriptionSpec{
			Channel:                p.channel(),
			Package:                Package,
			CatalogSource:          CatalogSource,
			CatalogSourceNamespace: CatalogSourceNS,
			InstallPlanApproval:    operatorsv1alpha1.ApprovalAutomatic,
			Config:                 config,
		},
	}
}

// olmObjects are the operator's Namespace, OperatorGroup and Subscription. OLM's kinds
// have Go types (operator-framework/api) but no apply configurations: kube.FromObject
// turns them into what Apply takes.
func (p *phase) olmObjects() []*unstructured.Unstructured {
	ns := kube.MustApply(corev1ac.Namespace(OperatorNS).WithLabels(map[string]string{"openshift.io/cluster-monitoring": "true"}))
	og, err := kube.FromObject(&operatorsv1.OperatorGroup{
		TypeMeta:   metav1.TypeMeta{APIVersion: ogGVK.GroupVersion().String(), Kind: ogGVK.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: OperatorNS, Namespace: OperatorNS},
		Spec:       operatorsv1.OperatorGroupSpec{UpgradeStrategy: operatorsv1.UpgradeStrategyDefault},
	})
	if err != nil {
		panic(err) // built from constants: cannot fail to encode
	}
	sub, err := kube.FromObject(p.subscription(nil))
	if err != nil {
		panic(err)
	}
	return []*unstructured.Unstructured{ns, og, sub}
}

func healthChecksPatch() *unstructured.Unstructured {
	return kube.Obj("argoproj.io/v1beta1", "ArgoCD", ArgoNS, ArgoName, map[string]any{
		"spec": map[string]any{
			"resourceHealthChecks": []any{
				map[string]any{"group": "argoproj.io", "kind": "Application", "check": healthApplication},
				map[string]any{"group": "operators.coreos.com", "kind": "Subscription", "check": healthSubscription},
			},
		},
	})
}

// readiness reports the first thing not ready yet, or "" when everything is. ns/name is
// the Subscription: ours, or one installed before the bootstrap.
func (p *phase) readiness(ctx context.Context, c *kube.Clients, ns, name string) (string, error) {
	sub, err := kube.GetAs[operatorsv1alpha1.Subscription](ctx, c, subGVK, ns, name)
	if err != nil || sub == nil {
		return "Subscription " + name + ": not created", err
	}
	csvName := sub.Status.InstalledCSV
	if csvName == "" {
		if cond := sub.Status.GetCondition(operatorsv1alpha1.SubscriptionResolutionFailed); cond.Status == corev1.ConditionTrue {
			ch := ""
			if sub.Spec != nil {
				ch = sub.Spec.Channel
			}
			return "", fmt.Errorf("OLM cannot resolve %s in channel %s of Subscription %s: %s (check spec.gitops.operatorChannel, or that Subscription if it was made before the bootstrap)",
				Package, nonEmpty(ch, "default"), kube.Ref(ns, name), cond.Message)
		}
		return fmt.Sprintf("Subscription %s: %s", Package, nonEmpty(string(sub.Status.State), "waiting for an InstallPlan")), nil
	}
	csv, err := kube.GetAs[operatorsv1alpha1.ClusterServiceVersion](ctx, c, csvGVK, ns, csvName)
	if err != nil || csv == nil {
		return "CSV " + csvName + ": not created yet", err
	}
	// A CSV does not follow the standard conditions: OLM reports its install by
	// status.phase, Succeeded once the operator's deployments are available, Failed with
	// status.reason and message (operator-framework/api pkg/operators/v1alpha1
	// clusterserviceversion_types.go ClusterServiceVersionPhase; OLM's
	// doc/design/architecture.md, "ClusterServiceVersion Control Loop").
	switch csv.Status.Phase {
	case operatorsv1alpha1.CSVPhaseFailed:
		return fmt.Sprintf("CSV %s: Failed (%s: %s)", csvName, csv.Status.Reason, csv.Status.Message), nil
	case operatorsv1alpha1.CSVPhaseSucceeded:
	default:
		return fmt.Sprintf("CSV %s: %s", csvName, nonEmpty(string(csv.Status.Phase), "Pending")), nil
	}
	for _, name := range crds {
		crd, err := c.Get(ctx, crdGVK, "", name)
		if err != nil {
			return "", err
		}
		if crd == nil {
			return "CRD " + name + ": not created yet", nil
		}
		if ready, status, err := kube.Ready(crd); err != nil || !ready {
			return "CRD " + name + ": " + status, err
		}
	}
	argo, err := c.Get(ctx, argoGVK, ArgoNS, ArgoName)
	if err != nil || argo == nil {
		return "ArgoCD " + ArgoNS + "/" + ArgoName + ": not created yet", err
	}
	if ph, _, _ := unstructured.NestedString(argo.Object, "status", "phase"); ph != "Available" {
		return fmt.Sprintf("ArgoCD %s/%s: %s", ArgoNS, ArgoName, nonEmpty(ph, "Pending")), nil
	}
	return "", nil
}

// checkChannel makes sure the cluster's catalog offers the package in the configured channel.
func (p *phase) checkChannel(ctx context.Context, c *kube.Clients) error {
	pkg, err := catalog.Lookup(ctx, c, CatalogSource, CatalogSourceNS, Package)
	if err != nil {
		return err
	}
	switch {
	case pkg == nil:
		return fmt.Errorf("the catalog %s (%s) offers no %s, so OpenShift GitOps cannot be installed: "+
			"check the cluster's CatalogSources (a disconnected cluster needs the package mirrored); nothing was changed",
			CatalogSource, CatalogSourceNS, Package)
	case !pkg.Offers(p.channel()):
		return fmt.Errorf("spec.gitops.operatorChannel: channel %q of %s is not offered by this cluster's catalog %s; it offers %s: "+
			"set spec.gitops.operatorChannel to one of them (nothing was changed)", p.channel(), Package, CatalogSource, pkg.Offered())
	}
	return nil
}

// subChannel is a Subscription's channel ("" for the package's default).
func subChannel(sub *operatorsv1alpha1.Subscription) string {
	if sub.Spec == nil {
		return ""
	}
	return sub.Spec.Channel
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// existing is how OpenShift GitOps is, or is to be, installed on the cluster.
type existing struct {
	// sub is the live Subscription to the package (nil: none yet), at ns/name.
	sub      *operatorsv1alpha1.Subscription
	ns, name string
	// adopted: the operator was installed before the bootstrap (from the console, by
	// another tool); it is taken as it is and never changed or removed by us.
	adopted bool
	// groups are the OperatorGroups in ns that are not ours. OLM fails every CSV in a
	// namespace with more than one OperatorGroup (TooManyOperatorGroups:
	// operator-lifecycle-manager pkg/controller/operators/olm/operator.go, and
	// doc/design/operatorgroups.md), so when one is there we never add ours.
	groups []*operatorsv1.OperatorGroup
}

// find looks for a Subscription to the GitOps operator in every namespace: ours (recorded
// as created in the inventory), or one made before the bootstrap, which is adopted.
func (p *phase) find(ctx context.Context, s *installer.Scope, c *kube.Clients) (*existing, error) {
	ex := &existing{ns: OperatorNS, name: Package}
	ours, isOurs := s.Tracked(kube.EntryID(subGVK, OperatorNS, Package))
	subs, err := kube.ListAs[operatorsv1alpha1.Subscription](ctx, c, subGVK, "", metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, sub := range subs {
		if sub.Spec == nil || sub.Spec.Package != Package {
			continue
		}
		if isOurs && ours.Action == installer.Created && sub.GetNamespace() == OperatorNS && sub.GetName() == Package &&
			(ours.Pending || ours.UID == string(sub.GetUID())) {
			ex.sub, ex.adopted = sub, false
			break
		}
		if ex.sub == nil {
			ex.sub, ex.ns, ex.name, ex.adopted = sub, sub.GetNamespace(), sub.GetName(), true
		}
	}
	groups, err := kube.ListAs[operatorsv1.OperatorGroup](ctx, c, ogGVK, ex.ns, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	for _, og := range groups {
		if e, ok := s.Tracked(kube.EntryID(ogGVK, og.GetNamespace(), og.GetName())); ok && e.Action == installer.Created {
			continue
		}
		ex.groups = append(ex.groups, og)
	}
	return ex, nil
}

// desired is what the phase applies for the operator: nothing when adopted; without our
// OperatorGroup when the namespace has one already.
func (p *phase) desired(ex *existing) []*unstructured.Unstructured {
	if ex.adopted {
		return nil
	}
	objs := p.olmObjects()
	if len(ex.groups) > 0 {
		objs = []*unstructured.Unstructured{objs[0], objs[2]}
	}
	return objs
}

// adoptions lists what Apply would adopt that the inventory does not hold yet.
func (p *phase) adoptions(s *installer.Scope, ex *existing) []installer.Change {
	var out []installer.Change
	tracked := func(o kube.Object) bool {
		_, ok := s.Tracked(kube.EntryID(o.GetObjectKind().GroupVersionKind(), o.GetNamespace(), o.GetName()))
		return ok
	}
	if ex.adopted && !tracked(ex.sub) {
		out = append(out, installer.Change{Action: installer.Adopt, Target: kube.Describe(ex.sub), Detail: p.adoptNote(ex)})
	}
	for _, og := range ex.groups {
		if !tracked(og) {
			out = append(out, installer.Change{Action: installer.Adopt, Target: kube.Describe(og),
				Detail: "the namespace's OperatorGroup; no second one is added (OLM would fail the operator: TooManyOperatorGroups)"})
		}
	}
	return out
}

// adoptNote says how an adopted Subscription is treated, naming a channel the file asks
// for that is not applied.
func (p *phase) adoptNote(ex *existing) string {
	ch := subChannel(ex.sub)
	note := "installed before the bootstrap (channel " + nonEmpty(ch, "default") + "); kept as it is, and left by destroy"
	if want := p.channel(); want != "" && want != ch {
		note += "; spec.gitops.operatorChannel " + want + " is not applied to it"
	}
	return note
}

func (p *phase) Check(ctx context.Context, s *installer.Scope) (installer.Status, error) {
	if p.env.Cluster.Spec.GitOps == nil {
		return installer.Done("spec.gitops not set: no GitOps operator"), nil
	}
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return installer.Status{}, err
	}
	ex, err := p.find(ctx, s, c)
	if err != nil {
		return installer.Status{}, err
	}
	changes, err := c.Diff(ctx, p.desired(ex))
	if err != nil {
		return installer.Status{}, err
	}
	changes = append(p.adoptions(s, ex), changes...)
	if len(changes) > 0 {
		// Before subscribing: a channel the catalog does not offer would leave the
		// Subscription in ResolutionFailed. Failing here changes nothing, and plan shows it.
		// An adopted Subscription is not ours to subscribe: its channel stays what it is
		// (adoptNote says the file's is not applied), so the file's is not checked.
		if !ex.adopted {
			if err := p.checkChannel(ctx, c); err != nil {
				return installer.Status{}, err
			}
		}
		return installer.Pending("operator not subscribed", append(changes, installer.Change{Action: installer.Update, Target: "ArgoCD " + ArgoNS + "/" + ArgoName, Detail: "health checks"})...), nil
	}
	waiting, err := p.readiness(ctx, c, ex.ns, ex.name)
	if err != nil {
		return installer.Status{}, err
	}
	if waiting != "" {
		return installer.Pending(waiting), nil
	}
	if hc, err := c.Diff(ctx, []*unstructured.Unstructured{healthChecksPatch()}); err != nil || len(hc) > 0 {
		return installer.Pending("Argo CD health checks not set", hc...), err
	}
	if ex.adopted {
		return installer.Done("OpenShift GitOps installed before the bootstrap (Subscription " + kube.Ref(ex.ns, ex.name) + "), Argo CD available"), nil
	}
	return installer.Done("OpenShift GitOps installed, Argo CD available"), nil
}

func (p *phase) Apply(ctx context.Context, s *installer.Scope) error {
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return err
	}
	ex, err := p.find(ctx, s, c)
	if err != nil {
		return err
	}
	if ex.adopted {
		if err := c.Adopt(ctx, s, ex.sub, p.adoptNote(ex)); err != nil {
			return err
		}
	}
	for _, og := range ex.groups {
		if err := c.Adopt(ctx, s, og, "the namespace's OperatorGroup (OLM allows one per namespace)"); err != nil {
			return err
		}
	}
	if err := c.Apply(ctx, s, p.desired(ex)...); err != nil {
		return err
	}
	var failedCSV string
	channel := p.channel()
	if ex.adopted {
		channel = subChannel(ex.sub)
	}
	// What readiness reads, watched so each step is seen when it happens: the
	// Subscription, the CSVs of its namespace (the CSV's name is known only from the
	// Subscription's status), Argo CD's CRDs and the ArgoCD instance.
	watches := []kube.Watch{{GVK: subGVK, Namespace: ex.ns, Name: ex.name}, {GVK: csvGVK, Namespace: ex.ns},
		{GVK: argoGVK, Namespace: ArgoNS, Name: ArgoName}}
	for _, name := range crds {
		watches = append(watches, kube.Watch{GVK: crdGVK, Name: name})
	}
	err = c.WaitWatching(ctx, s, "the OpenShift GitOps operator ("+nonEmpty(channel, "default channel")+")", p.env.Timeouts.OperatorInstall, watches, func(ctx context.Context) (bool, string, error) {
		waiting, err := p.readiness(ctx, c, ex.ns, ex.name)
		if err != nil {
			return false, "", err
		}
		failedCSV = waiting
		return waiting == "" || strings.HasPrefix(waiting, "ArgoCD "), waiting, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last: %s)", err, failedCSV)
	}
	// The operator creates ArgoCD openshift-gitops; add our health checks, then wait for it.
	argoWatch := []kube.Watch{{GVK: argoGVK, Namespace: ArgoNS, Name: ArgoName}}
	if err := c.WaitWatching(ctx, s, "ArgoCD "+ArgoNS+"/"+ArgoName+" to be created", p.env.Timeouts.ArgoCD, argoWatch, func(ctx context.Context) (bool, string, error) {
		a, err := c.Get(ctx, argoGVK, ArgoNS, ArgoName)
		return a != nil, "not created yet", err
	}); err != nil {
		return err
	}
	if err := c.Apply(ctx, s, healthChecksPatch()); err != nil {
		return err
	}
	return c.WaitWatching(ctx, s, "ArgoCD "+ArgoNS+"/"+ArgoName+" to be Available", p.env.Timeouts.ArgoCD, append(argoWatch, watches[:2]...), func(ctx context.Context) (bool, string, error) {
		waiting, err := p.readiness(ctx, c, ex.ns, ex.name)
		return waiting == "", waiting, err
	})
}

// Destroy undoes what the inventory records. When the operator is ours (its Subscription
// created by us, with the recorded uid), what it made goes first: the default ArgoCD
// instance and the CSV (OLM's uninstall is Subscription and CSV). An operator installed
// before the bootstrap is left installed, its Subscription as it was; only our changes
// to its ArgoCD (the health checks) are put back. The root-app phase has removed the
// applications by then (it depends on this phase, so it is destroyed first).
func (p *phase) Destroy(ctx context.Context, s *installer.Scope) error {
	c, gone, err := p.env.KubeForDestroy(ctx, s)
	if err != nil || gone {
		return err
	}
	t, strip := p.env.Timeouts.Finalizers, p.env.StripFinalizers
	if ours, ok := s.Tracked(kube.EntryID(subGVK, OperatorNS, Package)); ok && ours.Action == installer.Created {
		sub, err := kube.GetAs[operatorsv1alpha1.Subscription](ctx, c, subGVK, OperatorNS, Package)
		if err != nil {
			return err
		}
		if sub != nil && (ours.Pending || string(sub.GetUID()) == ours.UID) {
			if err := p.uninstall(ctx, s, c, sub); err != nil {
				return err
			}
		}
	}
	return c.DestroyInventory(ctx, s, t, strip)
}

// uninstall removes what our operator made: its default ArgoCD instance and its CSV.
func (p *phase) uninstall(ctx context.Context, s *installer.Scope, c *kube.Clients, sub *operatorsv1alpha1.Subscription) error {
	t, strip := p.env.Timeouts.Finalizers, p.env.StripFinalizers
	// The operator recreates a deleted default instance; the documented way to remove it
	// is to tell the operator so, and let it delete the instance itself.
	if p.env.Cluster.Spec.GitOps != nil {
		if argo, err := c.Get(ctx, argoGVK, ArgoNS, ArgoName); err == nil && argo != nil {
			disable, err := kube.FromObject(p.subscription(&operatorsv1alpha1.SubscriptionConfig{
				Env: []corev1.EnvVar{{Name: "DISABLE_DEFAULT_ARGOCD_INSTANCE", Value: "true"}},
			}))
			if err != nil {
				return err
			}
			if err := c.Apply(ctx, s, disable); err != nil {
				return err
			}
			_ = kube.Wait(ctx, s, "the operator to remove ArgoCD "+ArgoNS+"/"+ArgoName, t, func(ctx context.Context) (bool, string, error) {
				a, err := c.Get(ctx, argoGVK, ArgoNS, ArgoName)
				return a == nil, "still there", err
			})
		}
	}
	if err := c.DeleteAndWait(ctx, s, argoGVK, ArgoNS, ArgoName, t, strip); err != nil && !kube.IsNotServed(err) {
		return err
	}
	if csvName := sub.Status.InstalledCSV; csvName != "" {
		if err := c.DeleteAndWait(ctx, s, csvGVK, OperatorNS, csvName, t, strip); err != nil {
			return err
		}
	}
	return nil
}
