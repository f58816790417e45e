package simulator

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

// syncLLMInferenceService is KServe's LLMInferenceService controller as OpenShift AI runs
// it, reduced to the status it reports (opendatahub-io/kserve at 3cf0a041, the commit the
// bed's CRD comes from: pkg/apis/serving/v1alpha2/llm_inference_service_lifecycle.go and
// pkg/controller/v1alpha2/llmisvc/{controller,workload_single_node,router}.go):
//   - PresetsCombined True (the model's base configurations merged);
//   - MainWorkloadReady from the model's Deployment: False with the Deployment
//     controller's MinimumReplicasUnavailable while it rolls out (ModelServing latency),
//     then True; a model scaled to spec.replicas 0 is available at once (a Deployment of 0
//     replicas has minimum availability); WorkloadsReady follows it;
//   - GatewaysReady when spec.router.gateway.refs is set: True when every referenced
//     Gateway is Programmed, else False, GatewaysNotReady; RouterReady False with the
//     first False sub-condition's reason, else True (DetermineRouterReadiness);
//   - Ready, the living condition set's summary of PresetsCombined, WorkloadsReady and
//     RouterReady; observedGeneration;
//   - serving.kserve.io/stop: "true" marks the workload and gateway conditions False with
//     reason Stopped (utils.GetForceStopRuntime), which Argo CD's health check reports as
//     Suspended.
//
// Argo CD's own check (resource_customizations/serving.kserve.io/LLMInferenceService)
// turns Ready into Healthy, Ready False into Degraded. Not simulated: the Deployments,
// HTTPRoutes, the scheduler and the controller's finalizer; no vLLM runs.
func (s *Simulator) syncLLMInferenceService(ctx context.Context, key string) (time.Duration, error) {
	if key == allKey {
		return 0, s.enqueueAll(ctx, s.llmisvc, gvrLLMInferenceService, "")
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	svc, err := s.get(ctx, gvrLLMInferenceService, ns, name)
	if err != nil || svc == nil || svc.GetDeletionTimestamp() != nil {
		return 0, err
	}
	stopped := svc.GetAnnotations()[stopAnnotation] == "true"
	wait := time.Duration(0)
	workload := cond{Type: "MainWorkloadReady", Status: "True", Reason: "", Message: ""}
	switch replicas, set, _ := unstructured.NestedInt64(svc.Object, "spec", "replicas"); {
	case stopped:
		workload = cond{Type: "MainWorkloadReady", Status: "False", Reason: "Stopped", Message: "Service is stopped"}
	case set && replicas == 0:
	default:
		wait = s.after(fmt.Sprintf("llmisvc/%s/%d", svc.GetUID(), svc.GetGeneration()), s.lat().ModelServing)
		if wait > 0 {
			workload = cond{Type: "MainWorkloadReady", Status: "False", Reason: "MinimumReplicasUnavailable",
				Message: "Deployment does not have minimum availability."}
		}
	}
	conds := []cond{{Type: "PresetsCombined", Status: "True"}, workload}
	workloads := cond{Type: "WorkloadsReady", Status: "True"}
	if workload.Status == "False" {
		workloads = cond{Type: "WorkloadsReady", Status: "False", Reason: workload.Reason, Message: workload.Message}
	}
	conds = append(conds, workloads)
	router := cond{Type: "RouterReady", Status: "True"}
	refs, _, _ := unstructured.NestedSlice(svc.Object, "spec", "router", "gateway", "refs")
	if len(refs) > 0 {
		gateways := cond{Type: "GatewaysReady", Status: "True"}
		var notReady []string
		for _, r := range refs {
			rm := asMap(r)
			refNS := str(rm["namespace"])
			if refNS == "" {
				refNS = ns
			}
			gw, err := s.get(ctx, gvrGateway, refNS, str(rm["name"]))
			if err != nil {
				return 0, err
			}
			if !gatewayProgrammed(gw) {
				notReady = append(notReady, refNS+"/"+str(rm["name"]))
			}
		}
		switch {
		case stopped:
			gateways = cond{Type: "GatewaysReady", Status: "False", Reason: "Stopped", Message: "Service is stopped"}
		case len(notReady) > 0:
			gateways = cond{Type: "GatewaysReady", Status: "False", Reason: "GatewaysNotReady",
				Message: fmt.Sprintf("The following Gateways are not ready: %v", notReady)}
		}
		conds = append(conds, gateways)
		if gateways.Status == "False" {
			router = cond{Type: "RouterReady", Status: "False", Reason: gateways.Reason, Message: gateways.Message}
		}
	}
	conds = append(conds, router)
	ready := cond{Type: "Ready", Status: "True"}
	for _, c := range []cond{conds[0], workloads, router} {
		if c.Status == "False" {
			ready = cond{Type: "Ready", Status: "False", Reason: c.Reason, Message: c.Message}
			break
		}
	}
	conds = append(conds, ready)
	changed := false
	err = s.update(ctx, mgrKServe, gvrLLMInferenceService, ns, name, true, func(u *unstructured.Unstructured) (bool, error) {
		before, _, _ := unstructured.NestedMap(u.Object, "status")
		st := map[string]any{}
		for k, v := range before {
			st[k] = v
		}
		// Knative's condition shape (knative.dev/pkg/apis Condition): reason and message
		// only when set.
		st["conditions"] = nil
		setConds(st, []string{"conditions"}, conds...)
		if old, ok := before["conditions"].([]any); ok {
			keepTransitionTimes(st["conditions"].([]any), old)
		}
		st["observedGeneration"] = u.GetGeneration()
		if semanticEqual(before, st) {
			return false, nil
		}
		changed = true
		u.Object["status"] = st
		return true, nil
	})
	if err == nil && changed {
		s.logf("kserve: llminferenceservice %s Ready=%s %s", key, ready.Status, ready.Reason)
	}
	return wait, err
}

// keepTransitionTimes carries lastTransitionTime over from old for conditions whose
// status did not change.
func keepTransitionTimes(conds, old []any) {
	for _, c := range conds {
		cm := asMap(c)
		for _, o := range old {
			if om := asMap(o); om["type"] == cm["type"] && om["status"] == cm["status"] && om["lastTransitionTime"] != nil {
				cm["lastTransitionTime"] = om["lastTransitionTime"]
			}
		}
	}
}
