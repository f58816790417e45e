package simulator

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

const (
	mgrAppController   = "argocd-application-controller"
	mgrArgoApply       = "argocd-controller"
	trackingAnnotation = "argocd.argoproj.io/tracking-id"
	refreshAnnotation  = "argocd.argoproj.io/refresh"
	// resourcesFinalizer and its /foreground and /background variants make deletion cascade.
	resourcesFinalizer = "resources-finalizer.argocd.argoproj.io"
)

// appState is what the simulated controller remembers of an Application between syncs;
// it is keyed by namespace/name and reset when the UID changes (app re-created).
type appState struct {
	uid        types.UID
	synced     string // fingerprint of the spec (and injected failure) last synced
	objects    []*unstructured.Unstructured
	revision   string
	failMsg    string
	manual     bool // the last sync was requested through .operation
	startedAt  string
	finishedAt string
	history    []any
}

func (s *Simulator) appState(key string, uid types.UID) *appState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.appStates[key]
	if st == nil || st.uid != uid {
		st = &appState{uid: uid}
		s.appStates[key] = st
	}
	return st
}

// trackingParent returns the name of the Application that manages u as a child Application,
// read from Argo CD's annotation tracking id "<app>:<group>/<kind>:<namespace>/<name>".
func trackingParent(u *unstructured.Unstructured) string {
	parent, rest, ok := strings.Cut(u.GetAnnotations()[trackingAnnotation], ":")
	if !ok || !strings.HasPrefix(rest, "argoproj.io/Application:") {
		return ""
	}
	return parent
}

func isApp(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	return gvk.Group == "argoproj.io" && gvk.Kind == "Application"
}

// syncApp is the Argo CD application controller for one Application in openshift-gitops.
func (s *Simulator) syncApp(ctx context.Context, key string) (time.Duration, error) {
	if key == allKey {
		apps, err := s.list(ctx, gvrApplication, gitopsNS)
		for i := range apps {
			s.apps.add(keyOf(&apps[i]))
		}
		return 0, err
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	app, err := s.get(ctx, gvrApplication, ns, name)
	if err != nil {
		return 0, err
	}
	if app == nil {
		s.mu.Lock()
		delete(s.appStates, key)
		s.mu.Unlock()
		return 0, nil
	}
	if ok, err := s.argoCDAvailable(ctx); err != nil || !ok {
		return 0, err // no Argo CD runs; the ArgoCD's events bring us back
	}
	if app.GetDeletionTimestamp() != nil {
		return s.finalizeApp(ctx, app)
	}
	if msg, err := s.projectProblem(ctx, app); err != nil || msg != "" {
		if err != nil {
			return 0, err
		}
		return 0, s.writeAppStatus(ctx, app, false, func(map[string]any) map[string]any {
			return map[string]any{"sync": map[string]any{"status": "Unknown"}, "health": map[string]any{"status": "Unknown"},
				"conditions":   []any{map[string]any{"type": "InvalidSpecError", "message": msg, "lastTransitionTime": now()}},
				"reconciledAt": now(), "controllerNamespace": gitopsNS}
		})
	}

	fail := s.failure(name)
	spec, _, _ := unstructured.NestedMap(app.Object, "spec")
	want := fingerprint(spec) + "/" + fail
	st := s.appState(key, app.GetUID())
	// The refresh annotation makes Argo CD re-read the source (a new commit, for us a new
	// rendering); with auto-sync that means a sync.
	refresh := app.GetAnnotations()[refreshAnnotation] != ""
	if refresh {
		st.synced = ""
	}
	_, automated, _ := unstructured.NestedFieldNoCopy(app.Object, "spec", "syncPolicy", "automated")
	selfHeal, _, _ := unstructured.NestedBool(app.Object, "spec", "syncPolicy", "automated", "selfHeal")
	_, manual, _ := unstructured.NestedFieldNoCopy(app.Object, "operation", "sync")

	if st.synced == want && automated && selfHeal && fail == "" {
		if missing, err := s.missingChildren(ctx, app, st.objects); err != nil {
			return 0, err
		} else if missing {
			st.synced = "" // self-heal re-applies what someone deleted
		}
	}
	if st.synced != want {
		objs, err := s.render(ctx, app)
		if err != nil {
			msg := "Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown desc = " + err.Error()
			return 5 * time.Second, s.writeAppStatus(ctx, app, false, func(old map[string]any) map[string]any {
				old["sync"] = map[string]any{"status": "Unknown"}
				old["conditions"] = []any{map[string]any{"type": "ComparisonError", "message": msg, "lastTransitionTime": now()}}
				return old
			})
		}
		if !automated && !manual {
			// Nothing asks for a sync: report the comparison only, as Argo CD does.
			return 0, s.writeAppStatus(ctx, app, false, func(map[string]any) map[string]any {
				return s.comparisonStatus(ctx, app, objs)
			})
		}
		clock := "app/" + string(app.GetUID()) + "/" + want
		if wait := s.after(clock, s.lat().AppSync); wait > 0 {
			return wait, s.writeAppStatus(ctx, app, false, func(old map[string]any) map[string]any {
				return runningStatus(app, old)
			})
		}
		st.startedAt, st.manual = now(), manual
		if nestedStr(app, "status", "operationState", "phase") == "Running" {
			st.startedAt = nestedStr(app, "status", "operationState", "startedAt")
		}
		if fail == "" {
			if err := s.applyChildren(ctx, app, objs); err != nil {
				return 0, err
			}
		}
		st.synced, st.objects, st.revision, st.failMsg, st.finishedAt = want, objs, appRevision(app), fail, now()
		if fail == "" {
			st.history = appendHistory(st.history, app, st)
			s.logf("argocd: app %s synced (%d objects) at %s", key, len(objs), st.revision[:7])
		} else {
			s.logf("argocd: app %s sync failed: %s", key, fail)
		}
		s.done(clock)
	}
	healthCheck, err := s.appHealthCheckEnabled(ctx)
	if err != nil {
		return 0, err
	}
	status, err := s.syncedStatus(ctx, app, st, healthCheck)
	if err != nil {
		return 0, err
	}
	return 0, s.writeAppStatus(ctx, app, manual, func(map[string]any) map[string]any { return status })
}

// projectProblem returns the condition message Argo CD gives an app whose AppProject is missing.
func (s *Simulator) projectProblem(ctx context.Context, app *unstructured.Unstructured) (string, error) {
	project := nestedStr(app, "spec", "project")
	proj, err := s.get(ctx, gvrAppProject, app.GetNamespace(), project)
	if err != nil || proj != nil {
		return "", err
	}
	return fmt.Sprintf("Application referencing project %s which does not exist", project), nil
}

// appSources returns spec.source or the entries of spec.sources.
func appSources(app *unstructured.Unstructured) []map[string]any {
	if src, ok, _ := unstructured.NestedMap(app.Object, "spec", "source"); ok {
		return []map[string]any{src}
	}
	list, _, _ := unstructured.NestedSlice(app.Object, "spec", "sources")
	var out []map[string]any
	for _, item := range list {
		if m, ok := item.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// render asks RenderApp for every source with a path (what the repo-server would generate).
func (s *Simulator) render(ctx context.Context, app *unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	hook := s.options().RenderApp
	if hook == nil {
		return nil, nil
	}
	var objs []*unstructured.Unstructured
	for _, src := range appSources(app) {
		path := str(src["path"])
		if path == "" {
			continue
		}
		rev := str(src["targetRevision"])
		if rev == "" {
			rev = "HEAD"
		}
		out, err := hook(ctx, str(src["repoURL"]), rev, path)
		if err != nil {
			return nil, fmt.Errorf("render %s@%s %s: %w", str(src["repoURL"]), rev, path, err)
		}
		objs = append(objs, out...)
	}
	return objs, nil
}

// appRevision stands in for the commit SHA Argo CD resolves targetRevision to.
func appRevision(app *unstructured.Unstructured) string {
	var b strings.Builder
	for _, src := range appSources(app) {
		fmt.Fprintf(&b, "%s@%s;", str(src["repoURL"]), str(src["targetRevision"]))
	}
	sum := sha1.Sum([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

func destNamespace(app *unstructured.Unstructured) string {
	return nestedStr(app, "spec", "destination", "namespace")
}

// childNamespace is where a rendered object lands: its own namespace, else the app's
// destination namespace (cluster-scoped kinds stay without one).
func childNamespace(app, obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" || clusterScopedKinds[obj.GetKind()] {
		return ns
	}
	return destNamespace(app)
}

// clusterScopedKinds lists the cluster-scoped kinds a GitOps payload for OpenShift AI typically
// carries; only used to report resource namespaces like Argo CD does.
var clusterScopedKinds = map[string]bool{"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true,
	"CustomResourceDefinition": true, "StorageClass": true, "PriorityClass": true, "ClusterAutoscaler": true,
	"ClusterPolicy": true, "DataScienceCluster": true, "DSCInitialization": true, "OAuth": true,
	"ConsoleLink": true, "ConsoleNotification": true, "ClusterIssuer": true, "ClusterQueue": true,
	"ResourceFlavor": true, "Kueue": true, "MutatingWebhookConfiguration": true, "ValidatingWebhookConfiguration": true}

// applyChildren server-side applies the rendered Applications (the only kind whose controller
// runs here), marks them with the tracking id, and prunes tracked children no longer rendered
// when the sync policy prunes.
func (s *Simulator) applyChildren(ctx context.Context, app *unstructured.Unstructured, objs []*unstructured.Unstructured) error {
	// AppProjects first: child Applications name them, and Argo CD applies them like any
	// other rendered object (sync wave -10 in the payload).
	for _, obj := range objs {
		if gvk := obj.GroupVersionKind(); gvk.Group != "argoproj.io" || gvk.Kind != "AppProject" {
			continue
		}
		proj := obj.DeepCopy()
		unstructured.RemoveNestedField(proj.Object, "status")
		if proj.GetNamespace() == "" {
			proj.SetNamespace(app.GetNamespace())
		}
		ann := proj.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[trackingAnnotation] = fmt.Sprintf("%s:argoproj.io/AppProject:%s/%s", app.GetName(), proj.GetNamespace(), proj.GetName())
		proj.SetAnnotations(ann)
		if _, err := s.res(gvrAppProject, proj.GetNamespace()).Apply(ctx, proj.GetName(), proj,
			metav1.ApplyOptions{FieldManager: mgrArgoApply, Force: true}); err != nil {
			return fmt.Errorf("apply AppProject %s of %s: %w", proj.GetName(), app.GetName(), err)
		}
	}
	rendered := map[string]bool{}
	for _, obj := range objs {
		if !isApp(obj) {
			continue
		}
		child := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": obj.GetAPIVersion(), "kind": obj.GetKind(),
			"metadata": map[string]any{"name": obj.GetName(), "namespace": childNamespace(app, obj)},
		}}
		for k, v := range obj.Object {
			if k != "apiVersion" && k != "kind" && k != "metadata" && k != "status" && k != "operation" {
				child.Object[k] = v
			}
		}
		child.SetLabels(obj.GetLabels())
		child.SetFinalizers(obj.GetFinalizers())
		ann := map[string]string{}
		for k, v := range obj.GetAnnotations() {
			ann[k] = v
		}
		ann[trackingAnnotation] = fmt.Sprintf("%s:argoproj.io/Application:%s/%s", app.GetName(), child.GetNamespace(), child.GetName())
		child.SetAnnotations(ann)
		rendered[child.GetNamespace()+"/"+child.GetName()] = true
		_, err := s.res(gvrApplication, child.GetNamespace()).Apply(ctx, child.GetName(), child,
			metav1.ApplyOptions{FieldManager: mgrArgoApply, Force: true})
		if err != nil {
			return fmt.Errorf("apply child application %s/%s of %s: %w", child.GetNamespace(), child.GetName(), app.GetName(), err)
		}
	}
	if prune, _, _ := unstructured.NestedBool(app.Object, "spec", "syncPolicy", "automated", "prune"); !prune {
		return nil
	}
	tracked, err := s.trackedChildren(ctx, app)
	if err != nil {
		return err
	}
	for _, c := range tracked {
		if !rendered[c.GetNamespace()+"/"+c.GetName()] {
			s.logf("argocd: app %s prunes child %s", app.GetName(), c.GetName())
			if err := s.res(gvrApplication, c.GetNamespace()).Delete(ctx, c.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("prune child application %s: %w", c.GetName(), err)
			}
		}
	}
	return nil
}

// trackedChildren lists the Applications in the app's namespace whose tracking id names it.
func (s *Simulator) trackedChildren(ctx context.Context, app *unstructured.Unstructured) ([]unstructured.Unstructured, error) {
	all, err := s.list(ctx, gvrApplication, app.GetNamespace())
	return slices.DeleteFunc(all, func(u unstructured.Unstructured) bool { return trackingParent(&u) != app.GetName() }), err
}

func (s *Simulator) missingChildren(ctx context.Context, app *unstructured.Unstructured, objs []*unstructured.Unstructured) (bool, error) {
	for _, obj := range objs {
		if !isApp(obj) {
			continue
		}
		live, err := s.get(ctx, gvrApplication, childNamespace(app, obj), obj.GetName())
		if err != nil || live == nil {
			return live == nil, err
		}
	}
	return false, nil
}

// healthOrder is gitops-engine's ranking, best first: the app's health is its worst resource's.
var healthOrder = []string{"Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown"}

func worse(a, b string) bool { return slices.Index(healthOrder, b) > slices.Index(healthOrder, a) }

// syncedStatus is the status after a sync attempt: resources, sync and health as Argo CD 3.x
// reports them. Resource health is not persisted in the Application (Argo CD 3.0 default,
// resourceHealthSource appTree), so a child's health is read from the child itself.
func (s *Simulator) syncedStatus(ctx context.Context, app *unstructured.Unstructured, st *appState, healthCheck bool) (map[string]any, error) {
	health, syncCode := "Healthy", "Synced"
	var resources, results []any
	for _, obj := range st.objects {
		gvk := obj.GroupVersionKind()
		ns := childNamespace(app, obj)
		code := "Synced"
		if isApp(obj) {
			child, err := s.get(ctx, gvrApplication, ns, obj.GetName())
			if err != nil {
				return nil, err
			}
			switch {
			case child == nil:
				code = "OutOfSync" // Missing: does not count towards health
			case healthCheck:
				h := nestedStr(child, "status", "health", "status")
				if h == "" {
					h = "Progressing" // the documented Application health check's default
				}
				if h != "Missing" && h != "Unknown" && worse(health, h) {
					health = h
				}
			}
		}
		if st.failMsg != "" {
			code = "OutOfSync"
		}
		if code != "Synced" {
			syncCode = "OutOfSync"
		}
		res := map[string]any{"version": gvk.Version, "kind": gvk.Kind, "name": obj.GetName(), "status": code}
		if gvk.Group != "" {
			res["group"] = gvk.Group
		}
		if ns != "" {
			res["namespace"] = ns
		}
		resources = append(resources, res)
		result := map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind, "namespace": ns,
			"name": obj.GetName(), "status": "Synced", "syncPhase": "Sync", "hookPhase": "Running",
			"message": fmt.Sprintf("%s.%s/%s serverside-applied", strings.ToLower(gvk.Kind), gvk.Group, obj.GetName())}
		if st.failMsg != "" {
			result["status"], result["hookPhase"], result["message"] = "SyncFailed", "Failed", st.failMsg
		}
		results = append(results, result)
	}
	phase, message := "Succeeded", "successfully synced (all tasks run)"
	if st.failMsg != "" {
		health, syncCode, phase, message = "Degraded", "OutOfSync", "Failed", st.failMsg
	}
	syncResult := map[string]any{"revision": st.revision}
	if len(results) > 0 {
		syncResult["resources"] = results
	}
	if src, ok, _ := unstructured.NestedMap(app.Object, "spec", "source"); ok {
		syncResult["source"] = src
	}
	initiatedBy := map[string]any{"automated": true}
	if st.manual {
		initiatedBy = map[string]any{"username": "admin"}
	}
	status := map[string]any{
		"sync":   syncStatus(app, syncCode, st.revision),
		"health": map[string]any{"status": health, "lastTransitionTime": now()},
		"operationState": map[string]any{
			"operation": map[string]any{"sync": map[string]any{"revision": st.revision, "syncStrategy": map[string]any{"hook": map[string]any{}}},
				"initiatedBy": initiatedBy},
			"phase": phase, "message": message, "syncResult": syncResult,
			"startedAt": st.startedAt, "finishedAt": st.finishedAt,
		},
		"reconciledAt": now(), "controllerNamespace": gitopsNS, "resourceHealthSource": "appTree",
	}
	if len(resources) > 0 {
		status["resources"] = resources
	}
	if len(st.history) > 0 {
		status["history"] = st.history
	}
	if st.failMsg != "" {
		status["conditions"] = []any{map[string]any{"type": "SyncError", "lastTransitionTime": st.finishedAt,
			"message": fmt.Sprintf("Failed last sync attempt to %s: %s", st.revision, st.failMsg)}}
	}
	return status, nil
}

func syncStatus(app *unstructured.Unstructured, code, revision string) map[string]any {
	compared := map[string]any{"destination": map[string]any{}}
	if dest, ok, _ := unstructured.NestedMap(app.Object, "spec", "destination"); ok {
		compared["destination"] = dest
	}
	out := map[string]any{"status": code, "comparedTo": compared}
	if src, ok, _ := unstructured.NestedMap(app.Object, "spec", "source"); ok {
		compared["source"] = src
		out["revision"] = revision
	} else if srcs, ok, _ := unstructured.NestedSlice(app.Object, "spec", "sources"); ok {
		compared["sources"] = srcs
		revs := make([]any, len(srcs))
		for i := range revs {
			revs[i] = revision
		}
		out["revisions"] = revs
	}
	return out
}

// comparisonStatus is the status of an app that nobody asked to sync: everything OutOfSync.
func (s *Simulator) comparisonStatus(ctx context.Context, app *unstructured.Unstructured, objs []*unstructured.Unstructured) map[string]any {
	var resources []any
	for _, obj := range objs {
		gvk := obj.GroupVersionKind()
		res := map[string]any{"version": gvk.Version, "kind": gvk.Kind, "name": obj.GetName(), "status": "OutOfSync"}
		if gvk.Group != "" {
			res["group"] = gvk.Group
		}
		if ns := childNamespace(app, obj); ns != "" {
			res["namespace"] = ns
		}
		resources = append(resources, res)
	}
	status := map[string]any{"sync": syncStatus(app, "OutOfSync", appRevision(app)),
		"health":       map[string]any{"status": "Missing", "lastTransitionTime": now()},
		"reconciledAt": now(), "controllerNamespace": gitopsNS, "resourceHealthSource": "appTree"}
	if len(resources) > 0 {
		status["resources"] = resources
	}
	return status
}

// runningStatus marks a sync operation in flight on top of the previous status.
func runningStatus(app *unstructured.Unstructured, old map[string]any) map[string]any {
	if _, ok := old["sync"]; !ok {
		old["sync"] = syncStatus(app, "OutOfSync", appRevision(app))
	}
	if _, ok := old["health"]; !ok {
		// Resources are being created: Progressing. (Real Argo CD may report Missing for a
		// moment, which a parent ignores; the simulator keeps parents waiting instead.)
		old["health"] = map[string]any{"status": "Progressing", "lastTransitionTime": now()}
	}
	op, _ := old["operationState"].(map[string]any)
	if op == nil || op["phase"] != "Running" {
		old["operationState"] = map[string]any{
			"operation": map[string]any{"sync": map[string]any{"revision": appRevision(app)},
				"initiatedBy": map[string]any{"automated": true}},
			"phase": "Running", "message": "one or more tasks are running", "startedAt": now()}
	}
	old["reconciledAt"] = now()
	return old
}

func appendHistory(history []any, app *unstructured.Unstructured, st *appState) []any {
	id := int64(len(history))
	if n := len(history); n > 0 {
		if last, ok := history[n-1].(map[string]any); ok {
			id, _ = last["id"].(int64)
			id++
		}
	}
	entry := map[string]any{"id": id, "revision": st.revision, "deployedAt": st.finishedAt,
		"deployStartedAt": st.startedAt, "initiatedBy": map[string]any{"automated": !st.manual}}
	if src, ok, _ := unstructured.NestedMap(app.Object, "spec", "source"); ok {
		entry["source"] = src
	}
	history = append(history, entry)
	if len(history) > 10 { // Argo CD's default revisionHistoryLimit
		history = history[len(history)-10:]
	}
	return history
}

// writeAppStatus writes the status build returns (the Application CRD has no status
// subresource, so this is a whole-object update, as Argo CD does), keeping timestamps of
// unchanged parts and skipping writes that would change only timestamps. clearOperation
// removes a completed manual sync request; a refresh request seen in app is removed too.
func (s *Simulator) writeAppStatus(ctx context.Context, app *unstructured.Unstructured, clearOperation bool,
	build func(old map[string]any) map[string]any) error {
	return s.update(ctx, mgrAppController, gvrApplication, app.GetNamespace(), app.GetName(), false, func(u *unstructured.Unstructured) (bool, error) {
		if u.GetUID() != app.GetUID() || u.GetDeletionTimestamp() != nil {
			return false, nil
		}
		old, _, _ := unstructured.NestedMap(u.Object, "status")
		if old == nil {
			old = map[string]any{}
		}
		prev, _, _ := unstructured.NestedMap(u.Object, "status")
		st, _ := jsonValue(build(old)).(map[string]any)
		if h, _, _ := unstructured.NestedString(prev, "health", "status"); h != "" && h == nestedStr(&unstructured.Unstructured{Object: st}, "health", "status") {
			if t, ok, _ := unstructured.NestedString(prev, "health", "lastTransitionTime"); ok {
				_ = unstructured.SetNestedField(st, t, "health", "lastTransitionTime")
			}
		}
		_, hasOp := u.Object["operation"]
		ann := u.GetAnnotations()
		// Only a sync that saw the refresh request may consume it; a write racing with the
		// request would otherwise swallow it.
		_, refreshed := ann[refreshAnnotation]
		_, seen := app.GetAnnotations()[refreshAnnotation]
		refreshed = refreshed && seen
		if semanticEqual(prev, st) && !(clearOperation && hasOp) && !refreshed {
			return false, nil
		}
		u.Object["status"] = st
		if clearOperation {
			delete(u.Object, "operation")
		}
		if refreshed {
			delete(ann, refreshAnnotation)
			u.SetAnnotations(ann)
		}
		return true, nil
	})
}

// finalizeApp is Argo CD's cascading delete: delete the child Applications, wait until they
// are gone, then drop the resources finalizer. Apps told to get stuck keep it.
func (s *Simulator) finalizeApp(ctx context.Context, app *unstructured.Unstructured) (time.Duration, error) {
	if !slices.ContainsFunc(app.GetFinalizers(), isResourcesFinalizer) {
		return 0, nil
	}
	s.mu.Lock()
	stuck := s.stuck[app.GetName()]
	s.mu.Unlock()
	if stuck {
		s.logf("argocd: app %s/%s is stuck on its finalizer", app.GetNamespace(), app.GetName())
		return 0, nil
	}
	children, err := s.trackedChildren(ctx, app)
	if err != nil {
		return 0, err
	}
	for _, c := range children {
		if c.GetDeletionTimestamp() != nil {
			continue
		}
		if err := s.res(gvrApplication, c.GetNamespace()).Delete(ctx, c.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return 0, fmt.Errorf("delete child application %s of %s: %w", c.GetName(), app.GetName(), err)
		}
	}
	if len(children) > 0 {
		return 500 * time.Millisecond, nil // children's delete events also bring us back
	}
	s.logf("argocd: app %s/%s deleted its resources, removing finalizer", app.GetNamespace(), app.GetName())
	return 0, s.update(ctx, mgrAppController, gvrApplication, app.GetNamespace(), app.GetName(), false, func(u *unstructured.Unstructured) (bool, error) {
		fins := u.GetFinalizers()
		kept := slices.DeleteFunc(slices.Clone(fins), isResourcesFinalizer)
		if len(kept) == len(fins) {
			return false, nil
		}
		u.SetFinalizers(kept)
		return true, nil
	})
}

func isResourcesFinalizer(f string) bool {
	return f == resourcesFinalizer || strings.HasPrefix(f, resourcesFinalizer+"/")
}
