package simulator

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

const (
	mgrKServe = "kserve-controller-manager"
	// stopAnnotation is KServe's force-stop switch (constants.StopAnnotationKey).
	stopAnnotation = "serving.kserve.io/stop"
)

// syncInferenceService is KServe's InferenceService controller as OpenShift AI runs it
// (RawDeployment), reduced to the status it reports: a model comes up after the
// ModelServing latency with PredictorReady, IngressReady and Ready true (KServe's living
// condition set, pkg/apis/serving/v1beta1/inference_service_status.go: conditionSet) and
// its model UpToDate/Loaded; a model carrying serving.kserve.io/stop: "true" gets
// Stopped=True and is not Ready (pkg/controller/v1beta1/inferenceservice/controller.go,
// "Handle InferenceService status updates based on the force stop annotation"), which
// Argo CD's health check reports as Suspended. Followed at github.com/kserve/kserve
// v0.16.0. No Pod runs: the bed has no nodes.
func (s *Simulator) syncInferenceService(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	isvc, err := s.get(ctx, gvrInferenceService, ns, name)
	if err != nil || isvc == nil || isvc.GetDeletionTimestamp() != nil {
		return 0, err
	}
	stopped := isvc.GetAnnotations()[stopAnnotation] == "true"
	var conds []cond
	modelStatus := map[string]any{"transitionStatus": "InProgress"}
	wait := time.Duration(0)
	switch {
	case stopped:
		conds = []cond{{Type: "Stopped", Status: "True"},
			{Type: "PredictorReady", Status: "False", Reason: "Stopped", Message: "The inference service is stopped"},
			{Type: "IngressReady", Status: "False", Reason: "Stopped"},
			{Type: "Ready", Status: "False", Reason: "Stopped", Message: "The inference service is stopped"}}
		modelStatus = map[string]any{"transitionStatus": "UpToDate", "states": map[string]any{
			"activeModelState": "", "targetModelState": ""}}
	default:
		wait = s.after(fmt.Sprintf("isvc/%s/%d", isvc.GetUID(), isvc.GetGeneration()), s.lat().ModelServing)
		if wait > 0 {
			conds = []cond{{Type: "Stopped", Status: "False"},
				{Type: "PredictorReady", Status: "Unknown", Reason: "Progressing", Message: "Deployment is progressing"},
				{Type: "IngressReady", Status: "Unknown"},
				{Type: "Ready", Status: "Unknown", Reason: "Progressing"}}
		} else {
			conds = []cond{{Type: "Stopped", Status: "False"}, {Type: "PredictorReady", Status: "True"},
				{Type: "IngressReady", Status: "True"}, {Type: "Ready", Status: "True"}}
			modelStatus = map[string]any{"transitionStatus": "UpToDate", "states": map[string]any{
				"activeModelState": "Loaded", "targetModelState": "Loaded"}}
		}
	}
	changed := false
	err = s.update(ctx, mgrKServe, gvrInferenceService, ns, name, true, func(u *unstructured.Unstructured) (bool, error) {
		st, _, _ := unstructured.NestedMap(u.Object, "status")
		if st == nil {
			st = map[string]any{}
		}
		before := jsonValue(st)
		st["modelStatus"] = modelStatus
		st["observedGeneration"] = u.GetGeneration()
		u.Object["status"] = st
		setConds(u.Object, []string{"status", "conditions"}, conds...)
		after, _, _ := unstructured.NestedMap(u.Object, "status")
		if semanticEqual(before, after) {
			return false, nil
		}
		changed = true
		return true, nil
	})
	if err == nil && changed && wait == 0 {
		state := "Ready"
		if stopped {
			state = "Stopped"
		}
		s.logf("kserve: inferenceservice %s %s", key, state)
	}
	return wait, err
}
