// Package gitopsoperator installs the OpenShift GitOps operator through OLM and waits for
// it the way a person would check it: Subscription → InstallPlan → CSV Succeeded → Argo CD
// CRDs Established → ArgoCD openshift-gitops Available. It also gives that Argo CD the
// health checks a bootstrap needs (an Application is healthy only when its children are; a
// Subscription only when its CSV is installed).
package gitopsoperator

import (
	"context"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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
	subGVK  = kube.GVK("operators.coreos.com/v1alpha1", "Subscription")
	csvGVK  = kube.GVK("operators.coreos.com/v1alpha1", "ClusterServiceVersion")
	ogGVK   = kube.GVK("operators.coreos.com/v1", "OperatorGroup")
	nsGVK   = kube.GVK("v1", "Namespace")
	crdGVK  = kube.GVK("apiextensions.k8s.io/v1", "CustomResourceDefinition")
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

func (p *phase) olmObjects() []*unstructured.Unstructured {
	ns := kube.Obj("v1", "Namespace", "", OperatorNS, nil)
	ns.SetLabels(map[string]string{"openshift.io/cluster-monitoring": "true"})
	og := kube.Obj("operators.coreos.com/v1", "OperatorGroup", OperatorNS, OperatorNS, map[string]any{
		"spec": map[string]any{"upgradeStrategy": "Default"},
	})
	sub := kube.Obj("operators.coreos.com/v1alpha1", "Subscription", OperatorNS, Package, map[string]any{
		"spec": map[string]any{
			"channel":             p.channel(),
			"name":                Package,
			"source":              CatalogSource,
			"sourceNamespace":     CatalogSourceNS,
			"installPlanApproval": "Automatic",
		},
	})
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
	sub, err := c.Get(ctx, subGVK, ns, name)
	if err != nil || sub == nil {
		return "Subscription " + name + ": not created", err
	}
	csvName, _, _ := unstructured.NestedString(sub.Object, "status", "installedCSV")
	if csvName == "" {
		state, _, _ := unstructured.NestedString(sub.Object, "status", "state")
		if st, _, msg := kube.Condition(sub, "ResolutionFailed"); st == "True" {
			ch, _, _ := unstructured.NestedString(sub.Object, "spec", "channel")
			return "", fmt.Errorf("OLM cannot resolve %s in channel %s of Subscription %s: %s (check spec.gitops.operatorChannel, or that Subscription if it was made before the bootstrap)",
				Package, nonEmpty(ch, "default"), kube.Ref(ns, name), msg)
		}
		return fmt.Sprintf("Subscription %s: %s", Package, nonEmpty(state, "waiting for an InstallPlan")), nil
	}
	csv, err := c.Get(ctx, csvGVK, ns, csvName)
	if err != nil || csv == nil {
		return "CSV " + csvName + ": not created yet", err
	}
	phase, _, _ := unstructured.NestedString(csv.Object, "status", "phase")
	if phase == "Failed" {
		reason, _, _ := unstructured.NestedString(csv.Object, "status", "reason")
		msg, _, _ := unstructured.NestedString(csv.Object, "status", "message")
		return fmt.Sprintf("CSV %s: Failed (%s: %s)", csvName, reason, msg), nil
	}
	if phase != "Succeeded" {
		return fmt.Sprintf("CSV %s: %s", csvName, nonEmpty(phase, "Pending")), nil
	}
	for _, name := range crds {
		crd, err := c.Get(ctx, crdGVK, "", name)
		if err != nil {
			return "", err
		}
		if st, _, _ := kube.Condition(crd, "Established"); st != "True" {
			return "CRD " + name + ": not Established", nil
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

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// existing is how OpenShift GitOps is, or is to be, installed on the cluster.
type existing struct {
	// sub is the live Subscription to the package (nil: none yet), at ns/name.
	sub      *unstructured.Unstructured
	ns, name string
	// adopted: the operator was installed before the bootstrap (from the console, by
	// another tool); it is taken as it is and never changed or removed by us.
	adopted bool
	// groups are the OperatorGroups in ns that are not ours. OLM fails every CSV in a
	// namespace with more than one OperatorGroup (TooManyOperatorGroups:
	// operator-lifecycle-manager pkg/controller/operators/olm/operator.go, and
	// doc/design/operatorgroups.md), so when one is there we never add ours.
	groups []*unstructured.Unstructured
}

// find looks for a Subscription to the GitOps operator in every namespace: ours (recorded
// as created in the inventory), or one made before the bootstrap, which is adopted.
func (p *phase) find(ctx context.Context, s *installer.Scope, c *kube.Clients) (*existing, error) {
	ex := &existing{ns: OperatorNS, name: Package}
	ours, isOurs := s.Tracked(kube.EntryID(subGVK, OperatorNS, Package))
	ri, err := c.Resource(subGVK, "")
	if err != nil {
		return nil, err
	}
	list, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing Subscriptions: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool {
		return kube.Describe(&list.Items[i]) < kube.Describe(&list.Items[j])
	})
	for i := range list.Items {
		sub := &list.Items[i]
		if pkg, _, _ := unstructured.NestedString(sub.Object, "spec", "name"); pkg != Package {
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
	ogs, err := c.Resource(ogGVK, ex.ns)
	if err != nil {
		return nil, err
	}
	groups, err := ogs.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing OperatorGroups in %s: %w", ex.ns, err)
	}
	for i := range groups.Items {
		og := &groups.Items[i]
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
	tracked := func(u *unstructured.Unstructured) bool {
		_, ok := s.Tracked(kube.EntryID(u.GroupVersionKind(), u.GetNamespace(), u.GetName()))
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
	ch, _, _ := unstructured.NestedString(ex.sub.Object, "spec", "channel")
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
		channel, _, _ = unstructured.NestedString(ex.sub.Object, "spec", "channel")
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
		sub, err := c.Get(ctx, subGVK, OperatorNS, Package)
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
func (p *phase) uninstall(ctx context.Context, s *installer.Scope, c *kube.Clients, sub *unstructured.Unstructured) error {
	t, strip := p.env.Timeouts.Finalizers, p.env.StripFinalizers
	// The operator recreates a deleted default instance; the documented way to remove it
	// is to tell the operator so, and let it delete the instance itself.
	if p.env.Cluster.Spec.GitOps != nil {
		if argo, err := c.Get(ctx, argoGVK, ArgoNS, ArgoName); err == nil && argo != nil {
			disable := p.olmObjects()[2]
			if err := unstructured.SetNestedSlice(disable.Object, []any{map[string]any{"name": "DISABLE_DEFAULT_ARGOCD_INSTANCE", "value": "true"}}, "spec", "config", "env"); err != nil {
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
	if csvName, _, _ := unstructured.NestedString(sub.Object, "status", "installedCSV"); csvName != "" {
		if err := c.DeleteAndWait(ctx, s, csvGVK, OperatorNS, csvName, t, strip); err != nil {
			return err
		}
	}
	return nil
}
