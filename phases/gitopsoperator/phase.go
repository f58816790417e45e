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

func (p *phase) Name() string        { return Name }
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

// readiness reports the first thing not ready yet, or "" when everything is.
func (p *phase) readiness(ctx context.Context, c *kube.Clients) (string, error) {
	sub, err := c.Get(ctx, subGVK, OperatorNS, Package)
	if err != nil || sub == nil {
		return "Subscription " + Package + ": not created", err
	}
	csvName, _, _ := unstructured.NestedString(sub.Object, "status", "installedCSV")
	if csvName == "" {
		state, _, _ := unstructured.NestedString(sub.Object, "status", "state")
		if st, _, msg := kube.Condition(sub, "ResolutionFailed"); st == "True" {
			return "", fmt.Errorf("OLM cannot resolve %s in channel %s: %s (check spec.gitops.operatorChannel)", Package, p.channel(), msg)
		}
		return fmt.Sprintf("Subscription %s: %s", Package, nonEmpty(state, "waiting for an InstallPlan")), nil
	}
	csv, err := c.Get(ctx, csvGVK, OperatorNS, csvName)
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

func (p *phase) Check(ctx context.Context, s *installer.Scope) (installer.Status, error) {
	if p.env.Cluster.Spec.GitOps == nil {
		return installer.Done("spec.gitops not set: no GitOps operator"), nil
	}
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return installer.Status{}, err
	}
	changes, err := c.Diff(ctx, p.olmObjects())
	if err != nil {
		return installer.Status{}, err
	}
	if len(changes) > 0 {
		// Before subscribing: a channel the catalog does not offer would leave the
		// Subscription in ResolutionFailed. Failing here changes nothing, and plan shows it.
		if err := p.checkChannel(ctx, c); err != nil {
			return installer.Status{}, err
		}
		return installer.Pending("operator not subscribed", append(changes, installer.Change{Action: installer.Update, Target: "ArgoCD " + ArgoNS + "/" + ArgoName, Detail: "health checks"})...), nil
	}
	waiting, err := p.readiness(ctx, c)
	if err != nil {
		return installer.Status{}, err
	}
	if waiting != "" {
		return installer.Pending(waiting), nil
	}
	if hc, err := c.Diff(ctx, []*unstructured.Unstructured{healthChecksPatch()}); err != nil || len(hc) > 0 {
		return installer.Pending("Argo CD health checks not set", hc...), err
	}
	return installer.Done("OpenShift GitOps installed, Argo CD available"), nil
}

func (p *phase) Apply(ctx context.Context, s *installer.Scope) error {
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return err
	}
	if err := c.Apply(ctx, s, p.olmObjects()...); err != nil {
		return err
	}
	var failedCSV string
	err = kube.Wait(ctx, s, "the OpenShift GitOps operator ("+p.channel()+")", p.env.Timeouts.OperatorInstall, func(ctx context.Context) (bool, string, error) {
		waiting, err := p.readiness(ctx, c)
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
	if err := kube.Wait(ctx, s, "ArgoCD "+ArgoNS+"/"+ArgoName+" to be created", p.env.Timeouts.ArgoCD, func(ctx context.Context) (bool, string, error) {
		a, err := c.Get(ctx, argoGVK, ArgoNS, ArgoName)
		return a != nil, "not created yet", err
	}); err != nil {
		return err
	}
	if err := c.Apply(ctx, s, healthChecksPatch()); err != nil {
		return err
	}
	return kube.Wait(ctx, s, "ArgoCD "+ArgoNS+"/"+ArgoName+" to be Available", p.env.Timeouts.ArgoCD, func(ctx context.Context) (bool, string, error) {
		waiting, err := p.readiness(ctx, c)
		return waiting == "", waiting, err
	})
}

// Destroy removes the ArgoCD instance, then the Subscription and its CSV (OLM's uninstall),
// the OperatorGroup and the namespace we created. The root-app phase has removed the
// applications by then (it depends on this phase, so it is destroyed first).
func (p *phase) Destroy(ctx context.Context, s *installer.Scope) error {
	c, gone, err := p.env.KubeForDestroy(ctx, s)
	if err != nil || gone {
		return err
	}
	t, strip := p.env.Timeouts.Finalizers, p.env.StripFinalizers
	sub, err := c.Get(ctx, subGVK, OperatorNS, Package)
	if err != nil {
		return err
	}
	// The operator recreates a deleted default instance; the documented way to remove it
	// is to tell the operator so, and let it delete the instance itself.
	if sub != nil && p.env.Cluster.Spec.GitOps != nil {
		if argo, err := c.Get(ctx, argoGVK, ArgoNS, ArgoName); err == nil && argo != nil {
			disable := p.olmObjects()[2]
			if err := unstructured.SetNestedSlice(disable.Object, []any{map[string]any{"name": "DISABLE_DEFAULT_ARGOCD_INSTANCE", "value": "true"}}, "spec", "config", "env"); err != nil {
				return err
			}
			if err := c.ApplyOne(ctx, disable); err != nil {
				return err
			}
			s.Changed(installer.Change{Action: installer.Update, Target: "Subscription " + OperatorNS + "/" + Package, Detail: "DISABLE_DEFAULT_ARGOCD_INSTANCE=true"})
			_ = kube.Wait(ctx, s, "the operator to remove ArgoCD "+ArgoNS+"/"+ArgoName, t, func(ctx context.Context) (bool, string, error) {
				a, err := c.Get(ctx, argoGVK, ArgoNS, ArgoName)
				return a == nil, "still there", err
			})
		}
	}
	if err := c.DeleteAndWait(ctx, s, argoGVK, ArgoNS, ArgoName, t, strip); err != nil && !kube.IsNotServed(err) {
		return err
	}
	csvName := ""
	if sub != nil {
		csvName, _, _ = unstructured.NestedString(sub.Object, "status", "installedCSV")
	}
	if err := c.DeleteAndWait(ctx, s, subGVK, OperatorNS, Package, t, strip); err != nil {
		return err
	}
	if csvName != "" {
		if err := c.DeleteAndWait(ctx, s, csvGVK, OperatorNS, csvName, t, strip); err != nil {
			return err
		}
	}
	if err := c.DeleteAndWait(ctx, s, ogGVK, OperatorNS, OperatorNS, t, strip); err != nil {
		return err
	}
	// Wait for the namespace to go, so an install right after a destroy does not meet a
	// terminating namespace.
	return c.DeleteAndWait(ctx, s, nsGVK, "", OperatorNS, t, strip)
}
