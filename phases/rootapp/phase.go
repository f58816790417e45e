// Package rootapp is the hand-off: the Argo CD root Application pointing at the cluster's
// GitOps overlay, the RBAC its controller needs to manage the platform, and a wait until it
// is Synced and Healthy (or deliberately Suspended). On timeout it names each unhealthy child
// application and why.
package rootapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/manifests"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/catalog"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/certificates"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/gitopsoperator"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/gpupools"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// Names of what the phase makes.
const (
	Name        = "root-app"
	AppName     = "rhoai-root"
	RBACName    = "rhoai-bootstrap-argocd-controller"
	controller  = "openshift-gitops-argocd-application-controller"
	appFinalize = "resources-finalizer.argocd.argoproj.io"
)

var appGVK = kube.GVK("argoproj.io/v1alpha1", "Application")

type phase struct{ env *phases.Env }

// New returns the root-app phase.
func New(env *phases.Env) installer.Phase { return &phase{env: env} }

func (p *phase) Name() string { return Name }

// DependsOn lists only what the hand-off needs; what would break without each:
//
//   - gitops-operator: no Argo CD to hand over to — the Application kind is not served
//     and nothing would sync it; without our health checks in the ArgoCD CR, a parent
//     application would report Healthy before its children are.
//   - gpu-pools: the payload's ClusterAutoscaler "default" (components/configs/autoscaling)
//     is the object gpu-pools creates when absent. If Argo CD synced it first, gpu-pools
//     would adopt it instead of creating it (and so never delete it on destroy), or its
//     create would fail with AlreadyExists mid-phase. The phase is seconds of server-side
//     applies, off the critical path (gitops-operator takes minutes).
//   - certificates (the Secrets written, not rolled out): the payload's cert-manager
//     Certificates must find our Secrets already issued, with cert-manager's annotations,
//     or cert-manager places new ACME orders for the same names (Let's Encrypt's limit of
//     5 per week for one set of names; handoff.go in phases/certificates).
//
// Not edges, on purpose: certificates-rollout (Argo CD talks to the in-cluster endpoint,
// kubernetes.default.svc, whose certificate is the service network's, not the named
// certificate; the router and kube-apiserver rollouts take 10–20 minutes on a real
// cluster), and oauth (neither Argo CD nor this phase logs in through Google; the payload
// grants RBAC to groups, which need no identity provider to exist). The run ends only when
// every phase has, so "done" still means the certificate is served and the login rolled out.
func (p *phase) DependsOn() []string {
	return []string{gitopsoperator.Name, gpupools.Name, certificates.Name}
}

func (p *phase) objects(ctx context.Context) ([]*unstructured.Unstructured, error) {
	g := p.env.Cluster.Spec.GitOps
	patches, err := p.certificatesPatches(ctx)
	if err != nil {
		return nil, err
	}
	// kube.Obj needs plain JSON values.
	var kpatches []any
	if err := roundTrip(patches, &kpatches); err != nil {
		return nil, err
	}
	// The platform's operators, CRDs and cluster configuration are cluster-scoped: the
	// default OpenShift GitOps controller may not manage them, so it gets cluster-admin.
	crb := kube.Obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", RBACName, map[string]any{
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": controller, "namespace": gitopsoperator.ArgoNS}},
	})
	crb.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "rhoai-bootstrap"})
	app := kube.Obj("argoproj.io/v1alpha1", "Application", gitopsoperator.ArgoNS, AppName, map[string]any{
		"spec": map[string]any{
			"project": "default",
			"source": map[string]any{
				"repoURL":        g.Root.RepoURL,
				"targetRevision": g.Root.Revision,
				"path":           g.Root.Path,
				"kustomize":      map[string]any{"patches": kpatches},
			},
			"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": gitopsoperator.ArgoNS},
			"syncPolicy": map[string]any{
				"automated":   map[string]any{"prune": true, "selfHeal": true},
				"syncOptions": []any{"CreateNamespace=false"},
				"retry": map[string]any{"limit": int64(10),
					"backoff": map[string]any{"duration": "10s", "factor": int64(2), "maxDuration": "5m"}},
			},
		},
	})
	app.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "rhoai-bootstrap"})
	app.SetFinalizers([]string{appFinalize})
	return []*unstructured.Unstructured{crb, app}, nil
}

func roundTrip(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// health reads an Application's sync and health status.
func health(app *unstructured.Unstructured) (sync, health, message string) {
	sync, _, _ = unstructured.NestedString(app.Object, "status", "sync", "status")
	health, _, _ = unstructured.NestedString(app.Object, "status", "health", "status")
	message, _, _ = unstructured.NestedString(app.Object, "status", "health", "message")
	if message == "" {
		message, _, _ = unstructured.NestedString(app.Object, "status", "operationState", "message")
	}
	return
}

func (p *phase) Check(ctx context.Context, s *installer.Scope) (installer.Status, error) {
	if p.env.Cluster.Spec.GitOps == nil {
		return installer.Done("spec.gitops not set: no root application"), nil
	}
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return installer.Status{}, err
	}
	objs, err := p.objects(ctx)
	if err != nil {
		return installer.Status{}, err
	}
	changes, err := c.Diff(ctx, objs)
	if err != nil {
		return installer.Status{}, err
	}
	if len(changes) > 0 {
		// Before the hand-off: what Argo CD would wait on forever is reported now.
		if err := p.checkPayload(ctx, s, c); err != nil {
			return installer.Status{}, err
		}
		return installer.Pending("root application not applied", changes...), nil
	}
	app, err := c.Get(ctx, appGVK, gitopsoperator.ArgoNS, AppName)
	if err != nil {
		return installer.Status{}, err
	}
	if sy, h, _ := health(app); !settled(sy, h) {
		return installer.Pending(fmt.Sprintf("Application %s: %s/%s", AppName, nonEmpty(sy, "Unknown"), nonEmpty(h, "Unknown"))), nil
	}
	children, unhealthy, err := p.children(ctx, c)
	if err != nil {
		return installer.Status{}, err
	}
	if len(unhealthy) > 0 {
		return installer.Pending(fmt.Sprintf("%d of %d child applications not Synced and Healthy (first: %s)", len(unhealthy), children, unhealthy[0])), nil
	}
	return installer.Done(fmt.Sprintf("Application %s and its %d children Synced and Healthy%s", AppName, children, suspendedNote(ctx, c))), nil
}

// checkPayload checks, before the root application exists, that every OLM Subscription
// the payload will make Argo CD create resolves in the cluster's catalogs: its package is
// in the catalog it names and its channel is offered. Otherwise OLM leaves the
// Subscription in ResolutionFailed and the hand-off waits until its timeout. The payload
// is known from the index of the one this binary embeds (what `render --gitops` writes);
// a root path that is not one of its overlays is not checked, and says so.
func (p *phase) checkPayload(ctx context.Context, s *installer.Scope, c *kube.Clients) error {
	g := p.env.Cluster.Spec.GitOps
	index, err := manifests.Subscriptions()
	if err != nil {
		return err
	}
	overlay, ok := manifests.OverlayOf(g.Root.Path, index)
	if !ok {
		s.Progress("note: %s is not an overlay of the payload this binary embeds, so its Subscriptions are not checked against the catalog before the hand-off", g.Root.Path)
		return nil
	}
	var problems []string
	for _, sub := range index[overlay] {
		msg, err := catalog.Problem(ctx, c, catalog.Want{
			Where:   fmt.Sprintf("Subscription %s/%s (application %s)", sub.Namespace, sub.Name, sub.App),
			Package: sub.Package, Channel: sub.Channel, Source: sub.Source, SourceNamespace: sub.SourceNamespace,
		})
		if err != nil {
			return err
		}
		if msg != "" {
			problems = append(problems, msg)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d Subscription(s) of the GitOps payload (%s) would not resolve on this cluster, and Argo CD would wait on them in ResolutionFailed:\n  - %s\n"+
			"set channels the catalog offers in the GitOps repository (%s, %s), then run again; the root application was not created",
			len(problems), overlay, strings.Join(problems, "\n  - "), g.Root.RepoURL, g.Root.Path)
	}
	s.Debugf("the %d Subscriptions of %s resolve in the cluster's catalogs", len(index[overlay]), overlay)
	return nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (p *phase) Apply(ctx context.Context, s *installer.Scope) error {
	c, err := p.env.Kube(ctx, s)
	if err != nil {
		return err
	}
	objs, err := p.objects(ctx)
	if err != nil {
		return err
	}
	if err := c.Apply(ctx, s, objs...); err != nil {
		return err
	}
	// The root and its children are Applications of Argo CD's namespace: one watch.
	apps := []kube.Watch{{GVK: appGVK, Namespace: gitopsoperator.ArgoNS}}
	err = c.WaitWatching(ctx, s, "Application "+AppName+" to be Synced and Healthy", p.env.Timeouts.RootApp, apps, func(ctx context.Context) (bool, string, error) {
		app, err := c.Get(ctx, appGVK, gitopsoperator.ArgoNS, AppName)
		if err != nil || app == nil {
			return false, "not found", err
		}
		sy, h, msg := health(app)
		status := nonEmpty(sy, "Unknown") + "/" + nonEmpty(h, "Unknown")
		if msg != "" {
			status += ": " + msg
		}
		if !settled(sy, h) {
			return false, status, nil
		}
		// Argo CD counts children whose health is Missing or Unknown as fine; we do not.
		n, unhealthy, err := p.children(ctx, c)
		if err != nil || len(unhealthy) > 0 {
			return false, fmt.Sprintf("%d of %d child applications not ready (first: %s)", len(unhealthy), n, first(unhealthy)), err
		}
		return true, "", nil
	})
	var te *kube.TimeoutError
	if errors.As(err, &te) {
		_, children, cerr := p.children(ctx, c)
		if cerr != nil {
			return fmt.Errorf("%w (listing its child applications failed: %v)", err, cerr)
		}
		if len(children) > 0 {
			return fmt.Errorf("%w; unhealthy child applications:\n  %s", err, strings.Join(children, "\n  "))
		}
	}
	return err
}

func first(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

// children counts the Applications the root app manages and lists those that are not
// settled, each with why (Why).
func (p *phase) children(ctx context.Context, c *kube.Clients) (int, []string, error) {
	ri, err := c.Resource(appGVK, gitopsoperator.ArgoNS)
	if err != nil {
		return 0, nil, err
	}
	list, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		return 0, nil, err
	}
	var out []string
	n := 0
	for _, app := range list.Items {
		if app.GetName() == AppName || !childOf(&app, AppName) {
			continue
		}
		n++
		if line := Why(&app); line != "" {
			out = append(out, line)
		}
	}
	sort.Strings(out)
	return n, out, nil
}

// maxResources bounds how many resources Why names per application.
const maxResources = 3

// settled tells whether an application is where the hand-off can end: Synced, and Healthy
// or Suspended. Argo CD reports Suspended for what waits, by design, for someone to resume
// it (a model stopped with serving.kserve.io/stop, a paused rollout): a payload that
// declares it so is fully handed over.
func settled(sync, health string) bool {
	return sync == "Synced" && (health == "Healthy" || health == "Suspended")
}

// suspendedNote names the suspended children for the phase's done message.
func suspendedNote(ctx context.Context, c *kube.Clients) string {
	ri, err := c.Resource(appGVK, gitopsoperator.ArgoNS)
	if err != nil {
		return ""
	}
	list, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		return ""
	}
	var names []string
	for _, app := range list.Items {
		if _, h, _ := health(&app); h == "Suspended" && app.GetName() != AppName && childOf(&app, AppName) {
			names = append(names, app.GetName())
		}
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	return " (suspended by design: " + strings.Join(names, ", ") + ")"
}

// Why says why an Application is not Synced and Healthy, in Argo CD's own words: its
// sync and health status, the application's conditions (sync and comparison errors), then
// each resource whose health is not Healthy with the health message Argo CD's health check
// gave (status.resources[].health, persisted by the OpenShift GitOps operator's default
// controller.resource.health.persist=true). "" when it is settled (Synced, and
// Healthy or Suspended).
func Why(app *unstructured.Unstructured) string {
	sy, h, msg := health(app)
	if settled(sy, h) {
		return ""
	}
	line := fmt.Sprintf("%s: %s/%s", app.GetName(), nonEmpty(sy, "Unknown"), nonEmpty(h, "Unknown"))
	// Conditions first: a sync or comparison error says why everything below is Missing.
	var parts []string
	conds, _, _ := unstructured.NestedSlice(app.Object, "status", "conditions")
	for _, c := range conds {
		cond, _ := c.(map[string]any)
		typ, _ := cond["type"].(string)
		m, _ := cond["message"].(string)
		if typ != "" && m != "" {
			parts = append(parts, typ+": "+oneLine(m))
		}
	}
	resources, _, _ := unstructured.NestedSlice(app.Object, "status", "resources")
	named := 0
	for _, r := range resources {
		res, _ := r.(map[string]any)
		rh, _ := res["health"].(map[string]any)
		status, _ := rh["status"].(string)
		if status == "" || status == "Healthy" {
			continue
		}
		if named == maxResources {
			parts = append(parts, "…")
			break
		}
		named++
		kind, _ := res["kind"].(string)
		name, _ := res["name"].(string)
		if ns, _ := res["namespace"].(string); ns != "" {
			name = ns + "/" + name
		}
		part := fmt.Sprintf("%s %s %s", kind, name, status)
		if m, _ := rh["message"].(string); m != "" {
			part += ": " + oneLine(m)
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 && msg != "" {
		parts = append(parts, oneLine(msg))
	}
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, "; ")
	}
	return line
}

// oneLine folds a (multi-line) health message onto one line: Argo CD's Lua checks write
// one line per condition.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " / ")
}

// childOf reports whether Argo CD tracks app as a resource of the parent application
// (annotation tracking or the legacy instance label).
func childOf(app *unstructured.Unstructured, parent string) bool {
	if t := app.GetAnnotations()["argocd.argoproj.io/tracking-id"]; strings.HasPrefix(t, parent+":") {
		return true
	}
	return app.GetLabels()["app.kubernetes.io/instance"] == parent
}

// Destroy deletes the root application we created with Argo CD's cascade (its finalizer
// makes Argo delete the child applications and what they deployed first), waits for it
// and its children, then undoes the rest of the inventory (the controller's RBAC). A root
// application that is not the one we created (another uid) is left, and so are its
// children.
func (p *phase) Destroy(ctx context.Context, s *installer.Scope) error {
	c, gone, err := p.env.KubeForDestroy(ctx, s)
	if err != nil || gone {
		return err
	}
	t, strip := p.env.Timeouts.Finalizers, p.env.StripFinalizers
	var stuck []string
	keep := func(err error) error {
		if kube.IsStuck(err) {
			stuck = append(stuck, err.Error())
			return nil
		}
		return err
	}
	if root, ok := s.Tracked(kube.EntryID(appGVK, gitopsoperator.ArgoNS, AppName)); ok && root.Action == installer.Created {
		children, err := p.childNames(ctx, c)
		if err != nil {
			return err
		}
		if err := keep(c.DestroyEntry(ctx, s, root, t, strip)); err != nil {
			return err
		}
		for _, name := range children {
			if err := keep(c.DeleteAndWait(ctx, s, appGVK, gitopsoperator.ArgoNS, name, t, strip)); err != nil {
				return err
			}
		}
	}
	if len(stuck) > 0 {
		// Argo CD's controller needs its RBAC to finish the cascade: keep it.
		return fmt.Errorf("%d object(s) left behind:\n  %s", len(stuck), strings.Join(stuck, "\n  "))
	}
	return c.DestroyInventory(ctx, s, t, strip)
}

// childNames lists the Applications the root app manages.
func (p *phase) childNames(ctx context.Context, c *kube.Clients) ([]string, error) {
	ri, err := c.Resource(appGVK, gitopsoperator.ArgoNS)
	if err != nil {
		if kube.IsNotServed(err) {
			return nil, nil
		}
		return nil, err
	}
	list, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var children []string
	for _, app := range list.Items {
		if app.GetName() != AppName && childOf(&app, AppName) {
			children = append(children, app.GetName())
		}
	}
	return children, nil
}
