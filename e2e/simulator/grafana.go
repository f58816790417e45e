package simulator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

const mgrGrafana = "grafana-operator"

// syncGrafana is the community Grafana operator's Grafana controller reduced to the status
// Argo CD's health check reads (resource_customizations/grafana.integreatly.org/Grafana):
// the reconcile stages run, the last one "deployment" in progress until the Grafana Pod
// would be up (PodStartup latency), then stage "complete", stageStatus "success" and the
// GrafanaReady condition (grafana/grafana-operator api/v1beta1/grafana_types.go,
// controllers/grafana_controller.go). No Grafana runs.
func (s *Simulator) syncGrafana(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	g, err := s.get(ctx, gvrGrafana, ns, name)
	if err != nil || g == nil || g.GetDeletionTimestamp() != nil {
		return 0, err
	}
	stage, result := "complete", "success"
	wait := s.after(fmt.Sprintf("grafana/%s/%d", g.GetUID(), g.GetGeneration()), s.lat().PodStartup)
	if wait > 0 {
		stage, result = "deployment", "in progress"
	}
	changed := false
	err = s.update(ctx, mgrGrafana, gvrGrafana, ns, name, true, func(u *unstructured.Unstructured) (bool, error) {
		before, _, _ := unstructured.NestedMap(u.Object, "status")
		st := map[string]any{}
		for k, v := range before {
			st[k] = v
		}
		st["stage"], st["stageStatus"] = stage, result
		old, _ := before["conditions"].([]any)
		if result == "success" {
			st["conditions"] = metaConds(old, u.GetGeneration(),
				cond{Type: "GrafanaReady", Status: "True", Reason: "GrafanaReady", Message: "Grafana reconcile completed"})
		}
		if semanticEqual(before, st) {
			return false, nil
		}
		changed = true
		u.Object["status"] = st
		return true, nil
	})
	if err == nil && changed && result == "success" {
		s.logf("grafana: %s complete", key)
		// Dashboards and data sources apply to ready instances only.
		s.grafanaContent.add(allKey)
	}
	return wait, err
}

// syncGrafanaContent is the operator's GrafanaDashboard and GrafanaDatasource controllers'
// status: the Grafana instances in the object's namespace (or any, with
// allowCrossNamespaceImport) matching spec.instanceSelector and at stage complete/success
// are the targets (controllers/controller_shared.go GetScopedMatchingInstances). None:
// NoMatchingInstances true and the NoMatchingInstance condition; some: the
// <Kind>Synchronized condition True, ApplySuccessful, "<Kind> was successfully applied to
// N instances" (buildSynchronizedCondition), and a data source's status.uid (its
// metadata.uid unless spec.uid or spec.datasource.uid is set). Keys are
// "<resource>/<namespace>/<name>".
func (s *Simulator) syncGrafanaContent(ctx context.Context, key string) (time.Duration, error) {
	if key == allKey {
		for _, gvr := range []schema.GroupVersionResource{gvrGrafanaDashboard, gvrGrafanaDatasource} {
			items, err := s.list(ctx, gvr, "")
			if err != nil {
				return 0, err
			}
			for _, it := range items {
				s.grafanaContent.add(gvr.Resource + "/" + keyOf(&it))
			}
		}
		return 0, nil
	}
	resource, rest, _ := strings.Cut(key, "/")
	gvr, kind := gvrGrafanaDashboard, "Dashboard"
	if resource == gvrGrafanaDatasource.Resource {
		gvr, kind = gvrGrafanaDatasource, "Datasource"
	}
	ns, name, err := cache.SplitMetaNamespaceKey(rest)
	if err != nil {
		return 0, nil
	}
	obj, err := s.get(ctx, gvr, ns, name)
	if err != nil || obj == nil || obj.GetDeletionTimestamp() != nil {
		return 0, err
	}
	sel, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "instanceSelector", "matchLabels")
	scope := ns
	if cross, _, _ := unstructured.NestedBool(obj.Object, "spec", "allowCrossNamespaceImport"); cross {
		scope = ""
	}
	grafanas, err := s.list(ctx, gvrGrafana, scope)
	if err != nil {
		return 0, err
	}
	ready := 0
	for _, g := range grafanas {
		if labels.SelectorFromSet(sel).Matches(labels.Set(g.GetLabels())) &&
			nestedStr(&g, "status", "stage") == "complete" && nestedStr(&g, "status", "stageStatus") == "success" {
			ready++
		}
	}
	err = s.update(ctx, mgrGrafana, gvr, ns, name, true, func(u *unstructured.Unstructured) (bool, error) {
		before, _, _ := unstructured.NestedMap(u.Object, "status")
		st := map[string]any{}
		for k, v := range before {
			st[k] = v
		}
		old, _ := before["conditions"].([]any)
		if ready == 0 {
			st["NoMatchingInstances"] = true
			st["conditions"] = metaConds(old, u.GetGeneration(), cond{Type: "NoMatchingInstance", Status: "True",
				Reason: "EmptyAPIReply", Message: "None of the available Grafana instances matched the selector, skipping reconciliation"})
		} else {
			delete(st, "NoMatchingInstances")
			st["conditions"] = metaConds(old, u.GetGeneration(), cond{Type: kind + "Synchronized", Status: "True",
				Reason: "ApplySuccessful", Message: fmt.Sprintf("%s was successfully applied to %d instances", kind, ready)})
			if kind == "Datasource" {
				uid := nestedStr(u, "spec", "uid")
				if uid == "" {
					uid = nestedStr(u, "spec", "datasource", "uid")
				}
				if uid == "" {
					uid = string(u.GetUID())
				}
				st["uid"] = uid
			}
		}
		if semanticEqual(before, st) {
			return false, nil
		}
		u.Object["status"] = st
		return true, nil
	})
	return 0, err
}
