package simulator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func coState(u *unstructured.Unstructured) string {
	return condString(u, "Available", "Progressing", "Degraded")
}

func (b *bed) coIs(name, state string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		co, err := b.get(ctx, gvrClusterOperator, "", name)
		return co != nil && coState(co) == state, err
	}
}

const settledCO = "Available=True,Progressing=False,Degraded=False"

func TestClusterOperatorsStartAvailable(t *testing.T) {
	b := getBed(t)
	for _, name := range []string{coIngress, coKubeAPIServer, coAuthentication} {
		b.eventually(t, 10*time.Second, name+" exists", func(ctx context.Context) (bool, error) {
			co, err := b.get(ctx, gvrClusterOperator, "", name)
			return co != nil && condOf(co, "Available") != nil, err
		})
		co := b.mustGet(t, gvrClusterOperator, "", name)
		assert.Equal(t, "True", condOf(co, "Available")["status"], name)
		versions, _, _ := unstructured.NestedSlice(co.Object, "status", "versions")
		assert.Equal(t, OpenShiftVersion, asMap(versions[0])["version"])
	}
}

func TestIngressRolloutAfterCertificatePatch(t *testing.T) {
	b := getBed(t)
	b.mustCreate(t, gvrIngressController, obj("operator.openshift.io/v1", "IngressController", ingressOperatorNS, "default",
		map[string]any{"replicas": int64(2)}))
	b.eventually(t, 10*time.Second, "fresh IngressController Available", func(ctx context.Context) (bool, error) {
		ic, err := b.get(ctx, gvrIngressController, ingressOperatorNS, "default")
		return ic != nil && condString(ic, "Available", "Progressing") == "Available=True,Progressing=False", err
	})
	b.eventually(t, 10*time.Second, "ingress settled", b.coIs(coIngress, settledCO))

	cos := b.record(t, gvrClusterOperator, "")
	b.mustCreate(t, gvrSecret, tlsSecret(t, ingressNS, "apps-cert"))
	start := time.Now()
	ic := b.mergePatch(t, gvrIngressController, ingressOperatorNS, "default",
		map[string]any{"spec": map[string]any{"defaultCertificate": map[string]any{"name": "apps-cert"}}})
	b.eventually(t, 10*time.Second, "IngressController rolled out", func(ctx context.Context) (bool, error) {
		cur, err := b.get(ctx, gvrIngressController, ingressOperatorNS, "default")
		if cur == nil {
			return false, err
		}
		gen, _, _ := unstructured.NestedInt64(cur.Object, "status", "observedGeneration")
		return gen == ic.GetGeneration() && condString(cur, "Progressing", "DeploymentRollingOut") == "Progressing=False,DeploymentRollingOut=False", nil
	})
	b.eventually(t, 10*time.Second, "ingress settled", b.coIs(coIngress, settledCO))
	t.Logf("ingress rollout observed in %s", time.Since(start).Round(time.Millisecond))

	cos.waitStates(t, coIngress, func(u *unstructured.Unstructured) string {
		return condString(u, "Progressing") + "/" + str(condOf(u, "Progressing")["reason"]) + "," + condString(u, "Available")
	}, "Progressing=True/Reconciling,Available=True", "Progressing=False/AsExpected,Available=True")
	cur := b.mustGet(t, gvrIngressController, ingressOperatorNS, "default")
	assert.Equal(t, "apps.sim.example.com", nestedStr(cur, "status", "domain"))

	// A certificate secret that does not exist: Degraded, and no rollout.
	b.mergePatch(t, gvrIngressController, ingressOperatorNS, "default",
		map[string]any{"spec": map[string]any{"defaultCertificate": map[string]any{"name": "missing-cert"}}})
	b.eventually(t, 10*time.Second, "ingress Degraded", b.coIs(coIngress, "Available=True,Progressing=False,Degraded=True"))
	assert.Contains(t, condOf(b.mustGet(t, gvrClusterOperator, "", coIngress), "Degraded")["message"], `"missing-cert" not found`)
	b.mustCreate(t, gvrSecret, tlsSecret(t, ingressNS, "missing-cert"))
	b.eventually(t, 10*time.Second, "ingress recovers once the secret exists", b.coIs(coIngress, settledCO))
}

func TestKubeAPIServerRolloutAfterNamedCertificate(t *testing.T) {
	b := getBed(t)
	b.eventually(t, 10*time.Second, "kube-apiserver settled", b.coIs(coKubeAPIServer, settledCO))
	cos := b.record(t, gvrClusterOperator, "")
	b.mustCreate(t, gvrSecret, tlsSecret(t, openshiftConfigNS, "api-cert"))
	start := time.Now()
	patch := func(names ...any) {
		b.mergePatch(t, gvrAPIServer, "", "cluster", map[string]any{"spec": map[string]any{"servingCerts": map[string]any{
			"namedCertificates": []any{map[string]any{"names": names, "servingCertificate": map[string]any{"name": "api-cert"}}}}}})
	}
	patch("api.sim.example.com")
	b.eventually(t, 10*time.Second, "revision 8 rolled out", func(ctx context.Context) (bool, error) {
		co, err := b.get(ctx, gvrClusterOperator, "", coKubeAPIServer)
		return co != nil && condOf(co, "Progressing")["message"] == "NodeInstallerProgressing: 3 nodes are at revision 8", err
	})
	t.Logf("kube-apiserver rollout observed in %s", time.Since(start).Round(time.Millisecond))
	cos.waitStates(t, coKubeAPIServer, func(u *unstructured.Unstructured) string {
		return condString(u, "Progressing") + "/" + str(condOf(u, "Progressing")["reason"])
	}, "Progressing=True/NodeInstaller", "Progressing=False/AsExpected")
	assert.Equal(t, settledCO, coState(b.mustGet(t, gvrClusterOperator, "", coKubeAPIServer)))

	patch("api.sim.example.com", "api-int.sim.example.com")
	b.eventually(t, 10*time.Second, "revision 9 rolled out", func(ctx context.Context) (bool, error) {
		co, err := b.get(ctx, gvrClusterOperator, "", coKubeAPIServer)
		return co != nil && strings.HasSuffix(str(condOf(co, "Available")["message"]), "3 nodes are at revision 9"), err
	})
}

func TestAuthenticationRolloutAfterIdentityProvider(t *testing.T) {
	b := getBed(t)
	b.eventually(t, 10*time.Second, "authentication settled", b.coIs(coAuthentication, settledCO))
	idp := func(secret string) map[string]any {
		return map[string]any{"spec": map[string]any{"identityProviders": []any{map[string]any{
			"name": "google", "type": "Google", "mappingMethod": "claim",
			"google": map[string]any{"clientID": "id.apps.googleusercontent.com", "hostedDomain": "example.com",
				"clientSecret": map[string]any{"name": secret}}}}}}
	}
	// The IdP names a secret that is not there yet: Degraded, nothing rolls out.
	b.mergePatch(t, gvrOAuth, "", "cluster", idp("google-client-secret"))
	b.eventually(t, 10*time.Second, "authentication Degraded", b.coIs(coAuthentication, "Available=True,Progressing=False,Degraded=True"))

	cos := b.record(t, gvrClusterOperator, "")
	sec := obj("v1", "Secret", openshiftConfigNS, "google-client-secret", nil)
	sec.Object["stringData"] = map[string]any{"clientSecret": "s3cr3t"}
	b.mustCreate(t, gvrSecret, sec)
	b.eventually(t, 10*time.Second, "authentication rolled out", func(ctx context.Context) (bool, error) {
		co, err := b.get(ctx, gvrClusterOperator, "", coAuthentication)
		return co != nil && coState(co) == settledCO && condOf(co, "Progressing")["message"] == "AuthenticatorCertKeyProgressing: All is well", err
	})
	cos.waitStates(t, coAuthentication, coState, "Available=True,Progressing=True,Degraded=False", settledCO)
}

func TestMachineSetFollowsReplicas(t *testing.T) {
	b := getBed(t)
	labels := map[string]any{"machine.openshift.io/cluster-api-cluster": "sim-x7k2p",
		"machine.openshift.io/cluster-api-machineset": "sim-x7k2p-gpu-t4-us-west-2a"}
	name := "sim-x7k2p-gpu-t4-us-west-2a"
	ms := obj("machine.openshift.io/v1beta1", "MachineSet", machineAPINS, name, map[string]any{
		"replicas": int64(2),
		"selector": map[string]any{"matchLabels": labels},
		"template": map[string]any{
			"metadata": map[string]any{"labels": labels},
			"spec": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"cluster-api/accelerator": "T4-SHARED"}},
				"taints":   []any{map[string]any{"key": "nvidia.com/gpu", "value": "T4-SHARED", "effect": "NoSchedule"}},
				"providerSpec": map[string]any{"value": map[string]any{"apiVersion": "machine.openshift.io/v1beta1",
					"kind": "AWSMachineProviderConfig", "instanceType": "g4dn.xlarge"}},
			},
		},
	})
	sets := b.record(t, gvrMachineSet, machineAPINS)
	start := time.Now()
	b.mustCreate(t, gvrMachineSet, ms)
	ready := func(n int64) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			cur, err := b.get(ctx, gvrMachineSet, machineAPINS, name)
			if cur == nil {
				return false, err
			}
			st, _, _ := unstructured.NestedMap(cur.Object, "status")
			gen, _, _ := unstructured.NestedInt64(st, "observedGeneration")
			for _, f := range []string{"replicas", "readyReplicas", "availableReplicas", "fullyLabeledReplicas"} {
				if v, _, _ := unstructured.NestedInt64(st, f); v != n {
					return false, nil
				}
			}
			return gen == cur.GetGeneration(), nil
		}
	}
	b.eventually(t, 10*time.Second, "2 replicas ready", ready(2))
	t.Logf("MachineSet 2 replicas ready in %s", time.Since(start).Round(time.Millisecond))
	machines := b.machinesOf(t, name)
	require.Len(t, machines, 2)
	for _, m := range machines {
		assert.Regexp(t, "^"+name+"-[a-z0-9]{5}$", m.GetName())
		assert.Equal(t, "Running", nestedStr(&m, "status", "phase"))
		assert.Equal(t, name, m.GetLabels()["machine.openshift.io/cluster-api-machineset"])
		assert.Equal(t, "g4dn.xlarge", nestedStr(&m, "spec", "providerSpec", "value", "instanceType"))
	}
	assert.Equal(t, "machine.openshift.io/cluster-api-cluster=sim-x7k2p,machine.openshift.io/cluster-api-machineset="+name,
		nestedStr(b.mustGet(t, gvrMachineSet, machineAPINS, name), "status", "labelSelector"))

	scale := func(n int64) {
		b.mergePatch(t, gvrMachineSet, machineAPINS, name, map[string]any{"spec": map[string]any{"replicas": n}})
	}
	scale(3)
	b.eventually(t, 10*time.Second, "3 replicas ready", ready(3))
	// New machines count in status.replicas at once, in readyReplicas only once Running.
	sets.waitStates(t, name, func(u *unstructured.Unstructured) string {
		r, _, _ := unstructured.NestedInt64(u.Object, "status", "replicas")
		rr, _, _ := unstructured.NestedInt64(u.Object, "status", "readyReplicas")
		return fmt.Sprintf("%d/%d", rr, r)
	}, "2/2", "2/3", "3/3")

	scale(1)
	b.eventually(t, 10*time.Second, "1 replica", ready(1))
	assert.Len(t, b.machinesOf(t, name), 1)
	scale(0)
	b.eventually(t, 10*time.Second, "0 replicas", ready(0))
	assert.Empty(t, b.machinesOf(t, name))

	scale(1)
	b.eventually(t, 10*time.Second, "1 replica again", ready(1))
	b.mustDelete(t, gvrMachineSet, machineAPINS, name)
	b.eventually(t, 10*time.Second, "machines of a deleted MachineSet are deleted", func(context.Context) (bool, error) {
		return len(b.machinesOf(t, name)) == 0, nil
	})
}

func (b *bed) machinesOf(t *testing.T, ms string) []unstructured.Unstructured {
	t.Helper()
	l, err := b.dyn.Resource(gvrMachine).Namespace(machineAPINS).List(t.Context(), listAll)
	require.NoError(t, err)
	var out []unstructured.Unstructured
	for _, m := range l.Items {
		if m.GetLabels()["machine.openshift.io/cluster-api-machineset"] == ms {
			out = append(out, m)
		}
	}
	return out
}
