package simulator

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

const (
	// openshiftGatewayController is the controllerName OpenShift's own Gateway API
	// implementation handles: the ingress operator installs Istio (through the Sail
	// operator) for GatewayClasses naming it (openshift/cluster-ingress-operator
	// pkg/operator/controller/gatewayclass), and istiod reconciles their Gateways.
	openshiftGatewayController = "openshift.io/gateway-controller/v1"
	mgrIstio                   = "istiod"
)

// syncGatewayClass is istiod accepting a GatewayClass of OpenShift's controller: Accepted
// True, "Handled by Istio controller" (istio/istio pilot/pkg/config/kube/gateway/
// gatewayclass.go). Classes of other controllers are left alone, as on a cluster where
// nothing implements them (Argo CD keeps them Progressing).
func (s *Simulator) syncGatewayClass(ctx context.Context, name string) (time.Duration, error) {
	gc, err := s.get(ctx, gvrGatewayClass, "", name)
	if err != nil || gc == nil || gc.GetDeletionTimestamp() != nil {
		return 0, err
	}
	if nestedStr(gc, "spec", "controllerName") != openshiftGatewayController {
		return 0, nil
	}
	err = s.update(ctx, mgrIstio, gvrGatewayClass, "", name, true, func(u *unstructured.Unstructured) (bool, error) {
		old, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		conds := metaConds(old, u.GetGeneration(), cond{Type: "Accepted", Status: "True", Reason: "Accepted", Message: "Handled by Istio controller"})
		if semanticEqual(old, conds) {
			return false, nil
		}
		return true, unstructured.SetNestedSlice(u.Object, conds, "status", "conditions")
	})
	if err == nil {
		s.gateways.add(allKey) // Gateways of this class wait for it
	}
	return 0, err
}

// syncGateway is istiod programming a Gateway of an accepted OpenShift GatewayClass, as
// Gateway API v1.2.1 defines its status (sigs.k8s.io/gateway-api apis/v1/gateway_types.go)
// and Istio fills it (pilot/pkg/config/kube/gateway/conditions.go, conversion.go): the
// Gateway Accepted and Programmed; per listener Accepted, Conflicted False, ResolvedRefs and
// Programmed. A TLS listener resolves its certificate references only when each Secret
// exists in the Gateway's namespace; otherwise ResolvedRefs and Programmed are False with
// reason InvalidCertificateRef and the Gateway is not Programmed — what happens on a
// cluster when the bootstrap's certificate Secret is missing. No proxy runs: the bed has
// no data plane.
func (s *Simulator) syncGateway(ctx context.Context, key string) (time.Duration, error) {
	if key == allKey {
		return 0, s.enqueueAll(ctx, s.gateways, gvrGateway, "")
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	gw, err := s.get(ctx, gvrGateway, ns, name)
	if err != nil || gw == nil || gw.GetDeletionTimestamp() != nil {
		return 0, err
	}
	gc, err := s.get(ctx, gvrGatewayClass, "", nestedStr(gw, "spec", "gatewayClassName"))
	if err != nil || gc == nil || nestedStr(gc, "spec", "controllerName") != openshiftGatewayController ||
		condStatus(gc.Object, "Accepted", "status", "conditions") != "True" {
		return 0, err // not ours, or the class is not accepted yet (its sync requeues us)
	}
	listeners, _, _ := unstructured.NestedSlice(gw.Object, "spec", "listeners")
	var statuses []any
	var broken []string
	for _, l := range listeners {
		lm := asMap(l)
		resolved := cond{Type: "ResolvedRefs", Status: "True", Reason: "ResolvedRefs", Message: "No errors found"}
		programmed := cond{Type: "Programmed", Status: "True", Reason: "Programmed", Message: "No errors found"}
		refs, _, _ := unstructured.NestedSlice(lm, "tls", "certificateRefs")
		for _, r := range refs {
			rm := asMap(r)
			refNS := str(rm["namespace"])
			if refNS == "" {
				refNS = ns
			}
			secret, err := s.get(ctx, gvrSecret, refNS, str(rm["name"]))
			if err != nil {
				return 0, err
			}
			if secret == nil {
				msg := fmt.Sprintf("invalid certificate reference /Secret/%s. secret %s/%s not found", str(rm["name"]), refNS, str(rm["name"]))
				resolved = cond{Type: "ResolvedRefs", Status: "False", Reason: "InvalidCertificateRef", Message: msg}
				programmed = cond{Type: "Programmed", Status: "False", Reason: "Invalid", Message: msg}
				broken = append(broken, str(lm["name"])+": "+msg)
			}
		}
		old := listenerConditions(gw, str(lm["name"]))
		statuses = append(statuses, map[string]any{
			"name":           lm["name"],
			"attachedRoutes": int64(0),
			"supportedKinds": []any{
				map[string]any{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"},
				map[string]any{"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"},
			},
			"conditions": metaConds(old, gw.GetGeneration(),
				cond{Type: "Accepted", Status: "True", Reason: "Accepted", Message: "No errors found"},
				cond{Type: "Conflicted", Status: "False", Reason: "NoConflicts", Message: "No errors found"},
				resolved, programmed),
		})
	}
	programmed := cond{Type: "Programmed", Status: "True", Reason: "Programmed",
		Message: fmt.Sprintf("Resource programmed, assigned to service(s) %s-%s.%s.svc.cluster.local", name, nestedStr(gw, "spec", "gatewayClassName"), ns)}
	if len(broken) > 0 {
		programmed = cond{Type: "Programmed", Status: "False", Reason: "Invalid", Message: fmt.Sprintf("Failed to program listeners: %v", broken)}
	}
	changed := false
	err = s.update(ctx, mgrIstio, gvrGateway, ns, name, true, func(u *unstructured.Unstructured) (bool, error) {
		before, _, _ := unstructured.NestedMap(u.Object, "status")
		old, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		st := map[string]any{"conditions": metaConds(old, u.GetGeneration(),
			cond{Type: "Accepted", Status: "True", Reason: "Accepted", Message: "Resource accepted"}, programmed),
			"listeners": statuses}
		if semanticEqual(before, st) {
			return false, nil
		}
		changed = true
		u.Object["status"] = st
		return true, nil
	})
	if err == nil && changed {
		s.logf("istio: gateway %s Programmed=%s", key, programmed.Status)
		// Models routed through this Gateway report its readiness.
		s.llmisvc.add(allKey)
	}
	return 0, err
}

// listenerConditions are the conditions the Gateway's status has for listener name.
func listenerConditions(gw *unstructured.Unstructured, name string) []any {
	ls, _, _ := unstructured.NestedSlice(gw.Object, "status", "listeners")
	for _, l := range ls {
		if m := asMap(l); str(m["name"]) == name {
			c, _ := m["conditions"].([]any)
			return c
		}
	}
	return nil
}

// gatewayProgrammed is KServe's IsGatewayReady: the Gateway's Programmed condition is True
// (opendatahub-io/kserve pkg/controller/v1alpha2/llmisvc/router_discovery.go).
func gatewayProgrammed(gw *unstructured.Unstructured) bool {
	return gw != nil && condStatus(gw.Object, "Programmed", "status", "conditions") == "True"
}
