package simulator

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func pod(ns, name, restartPolicy string) *unstructured.Unstructured {
	u := obj("v1", "Pod", ns, name, map[string]any{
		"restartPolicy": restartPolicy,
		"containers":    []any{map[string]any{"name": "main", "image": "registry.example.com/app:1"}},
	})
	return u
}

// The simulated node binds every Pod, runs it, and ends a Pod that does not restart with
// exit code 0 — what kube-controller-manager's Job and StatefulSet controllers then read.
func TestKubeletRunsAndFinishesPods(t *testing.T) {
	b := getBed(t)
	ns := "kubelet"
	b.namespace(t, ns)
	b.mustCreate(t, gvrPod, pod(ns, "server", "Always"))
	b.mustCreate(t, gvrPod, pod(ns, "job", "Never"))
	b.eventually(t, 10*time.Second, "server Running and Ready, job Succeeded", func(ctx context.Context) (bool, error) {
		server, err := b.get(ctx, gvrPod, ns, "server")
		if err != nil || server == nil {
			return false, err
		}
		job, err := b.get(ctx, gvrPod, ns, "job")
		return job != nil && nestedStr(server, "status", "phase") == "Running" && condString(server, "Ready") == "Ready=True" &&
			nestedStr(job, "status", "phase") == "Succeeded", err
	})
	server := b.mustGet(t, gvrPod, ns, "server")
	assert.Equal(t, bedNode, nestedStr(server, "spec", "nodeName"), "bound through pods/binding")
	assert.Equal(t, "PodScheduled=True,Initialized=True,ContainersReady=True", condString(server, "PodScheduled", "Initialized", "ContainersReady"))
	job := b.mustGet(t, gvrPod, ns, "job")
	statuses, _, _ := unstructured.NestedSlice(job.Object, "status", "containerStatuses")
	require.Len(t, statuses, 1)
	exit, _, _ := unstructured.NestedInt64(asMap(statuses[0]), "state", "terminated", "exitCode")
	assert.Equal(t, int64(0), exit)
	assert.Equal(t, "Ready=False", condString(job, "Ready"), "a finished Pod is not Ready (PodCompleted)")

	// A deleted bound Pod goes once the "kubelet" has stopped it.
	b.mustDelete(t, gvrPod, ns, "server")
	b.eventually(t, 10*time.Second, "server removed", func(ctx context.Context) (bool, error) {
		u, err := b.get(ctx, gvrPod, ns, "server")
		return u == nil, err
	})
}

// OpenShift's GatewayClass is accepted; a Gateway whose TLS listener lacks its Secret is
// not Programmed until the Secret exists; an LLMInferenceService routed through it is
// Ready only then, and a stopped one reports Stopped.
func TestGatewayAndLLMInferenceServiceStatus(t *testing.T) {
	b := getBed(t)
	dir, err := moduleDir("sigs.k8s.io/gateway-api@v1.2.1")
	require.NoError(t, err)
	var crds []*unstructured.Unstructured
	for _, f := range []string{"gateway.networking.k8s.io_gatewayclasses.yaml", "gateway.networking.k8s.io_gateways.yaml"} {
		u, err := readCRDFile(filepath.Join(dir, "config", "crd", "standard", f))
		require.NoError(t, err)
		crds = append(crds, u)
	}
	crds = append(crds, sharedCRD(t, "kserve/serving.kserve.io_llminferenceservices.yaml"))
	require.NoError(t, b.applyCRDs(t.Context(), crds...))
	// The simulated Istio watches Secrets in openshift-ingress, where the payload's Gateway is.
	ns := ingressNS
	require.NoError(t, b.create(t.Context(), gvrNamespace, obj("v1", "Namespace", "", ns, nil)))
	b.mustCreate(t, gvrGatewayClass, obj("gateway.networking.k8s.io/v1", "GatewayClass", "", "openshift-default",
		map[string]any{"controllerName": openshiftGatewayController}))
	b.mustCreate(t, gvrGateway, obj("gateway.networking.k8s.io/v1", "Gateway", ns, "maas-test", map[string]any{
		"gatewayClassName": "openshift-default",
		"listeners": []any{map[string]any{"name": "https", "port": int64(443), "protocol": "HTTPS",
			"tls": map[string]any{"mode": "Terminate", "certificateRefs": []any{map[string]any{"name": "maas-test-tls"}}}}},
	}))
	llm := func(name string, stop bool) *unstructured.Unstructured {
		u := obj("serving.kserve.io/v1alpha1", "LLMInferenceService", ns, name, map[string]any{
			"model":  map[string]any{"uri": "hf://example/model"},
			"router": map[string]any{"gateway": map[string]any{"refs": []any{map[string]any{"name": "maas-test", "namespace": ns}}}},
		})
		if stop {
			u.SetAnnotations(map[string]string{stopAnnotation: "true"})
		}
		return u
	}
	b.mustCreate(t, gvrLLMInferenceService, llm("served", false))
	b.mustCreate(t, gvrLLMInferenceService, llm("stopped", true))

	// Up to a minute: the simulated Istio's informers may have started before these CRDs
	// were served, and client-go's reflector then retries its list with a backoff that
	// grows to 30 s (seen twice under a loaded make test: "failed to list ... gateways").
	b.eventually(t, time.Minute, "class Accepted, Gateway not Programmed for lack of its Secret", func(ctx context.Context) (bool, error) {
		gw, err := b.get(ctx, gvrGateway, ns, "maas-test")
		return gw != nil && condString(gw, "Accepted", "Programmed") == "Accepted=True,Programmed=False", err
	})
	assert.Equal(t, "Accepted=True", condString(b.mustGet(t, gvrGatewayClass, "", "openshift-default"), "Accepted"))
	time.Sleep(2 * DefaultLatency) // past the model's rollout: only the gateway holds it back
	served := b.mustGet(t, gvrLLMInferenceService, ns, "served")
	assert.Equal(t, "Ready=False", condString(served, "Ready"))
	assert.Equal(t, "GatewaysNotReady", str(condOf(served, "Ready")["reason"]))

	b.mustCreate(t, gvrSecret, tlsSecret(t, ns, "maas-test-tls"))
	b.eventually(t, 10*time.Second, "Gateway Programmed, model Ready", func(ctx context.Context) (bool, error) {
		gw, err := b.get(ctx, gvrGateway, ns, "maas-test")
		if err != nil || gw == nil {
			return false, err
		}
		m, err := b.get(ctx, gvrLLMInferenceService, ns, "served")
		return m != nil && condString(gw, "Programmed") == "Programmed=True" && condString(m, "Ready") == "Ready=True", err
	})
	stopped := b.mustGet(t, gvrLLMInferenceService, ns, "stopped")
	assert.Equal(t, "Ready=False", condString(stopped, "Ready"))
	assert.Equal(t, "Stopped", str(condOf(stopped, "Ready")["reason"]))
}
