//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

type verdict struct {
	Certificate  string
	Reissue      bool
	Reason       string
	Message      string
	Ready        string
	ReadyReason  string
	PostIssuance string
}

var (
	certificatesGVR  = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "certificates"}
	clusterIssuerGVR = schema.GroupVersionResource{Group: "cert-manager.io", Version: "v1", Resource: "clusterissuers"}
)

// maasCertificateWhy is the root-app phase's line for config-certificates while the MaaS
// gateway's Certificate waits for an issuance the bed does not play: Argo CD's
// Certificate health check reads cert-manager's Issuing condition (trigger chain reason
// DoesNotExist) as Progressing.
const maasCertificateWhy = "config-certificates: Synced/Progressing: Certificate openshift-ingress/maas-default-gateway-tls Progressing: Issuing certificate as Secret does not exist"

// TestHandOffToCertManager: the real Argo CD syncs the bed's certificates overlay
// (operator-cert-manager, then config-certificates with the root application's patches
// for this cluster); the simulated cert-manager judges each Certificate with
// cert-manager's own policy chains (cmjudge). The bootstrap's API and *.apps Secrets are
// accepted as issued: nothing to re-issue, Ready. The MaaS gateway's Certificate, whose
// Secret nobody made, stays Issuing (the bed plays no issuance), so the root-app phase
// ends at its deadline naming exactly that child and resource. A re-run orders nothing
// and reports handed-off, plan shows it, `certificates renew` refuses pointing at
// cert-manager.
func TestHandOffToCertManager(t *testing.T) {
	t.Parallel()
	r := rehearsal(t, testbed.BedCertificatesOverlay)
	state := filepath.Join(r.WorkDir, "state")
	env := r.Env()
	res := install(t, r, state, env)
	assertOnlyMaaSCertificatePending(t, res)
	require.Equal(t, 1, ledgerOrders(t, state))

	ctx := context.Background()
	d := dyn(t, r)
	secrets := d.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"})
	for _, ref := range [][2]string{{"openshift-config", "rhoai-bootstrap-api-tls"}, {"openshift-ingress", "rhoai-bootstrap-ingress-tls"}} {
		sec, err := secrets.Namespace(ref[0]).Get(ctx, ref[1], metav1.GetOptions{})
		require.NoError(t, err)
		a := sec.GetAnnotations()
		assert.Equal(t, ref[1], a["cert-manager.io/certificate-name"])
		assert.Equal(t, "rhoai-bootstrap-acme", a["cert-manager.io/issuer-name"])
		assert.Equal(t, "ClusterIssuer", a["cert-manager.io/issuer-kind"])
		assert.Equal(t, "cert-manager.io", a["cert-manager.io/issuer-group"])
		// The certificate's own DNS names in its order (cert-manager writes them so); the
		// ACME server chooses that order.
		assert.ElementsMatch(t, []string{"api.rhoai-local.bed.example.com", "*.apps.rhoai-local.bed.example.com"},
			strings.Split(a["cert-manager.io/alt-names"], ","))
	}

	// The ClusterIssuer Argo CD applied, with this cluster's ACME server (the bed's
	// Pebble, its CA from the root application's patch): the account registered for real.
	iss, err := d.Resource(clusterIssuerGVR).Get(ctx, "rhoai-bootstrap-acme", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "True", condition(iss, "Ready", "status"), "ClusterIssuer: %v", iss.Object["status"])
	uri, _, _ := unstructured.NestedString(iss.Object, "status", "acme", "uri")
	assert.NotEmpty(t, uri, "the ACME account's URI")

	// The Certificates Argo CD created, as the simulated cert-manager left them.
	for _, name := range []string{"openshift-config/rhoai-bootstrap-api-tls", "openshift-ingress/rhoai-bootstrap-ingress-tls"} {
		ns, n, _ := strings.Cut(name, "/")
		crt, err := d.Resource(certificatesGVR).Namespace(ns).Get(ctx, n, metav1.GetOptions{})
		require.NoError(t, err, "Argo CD created %s", name)
		assert.Equal(t, "True", condition(crt, "Ready", "status"), name)
		assert.Empty(t, condition(crt, "Issuing", "status"), "%s: cert-manager starts no issuance", name)
		for _, f := range []string{"notBefore", "notAfter", "renewalTime"} {
			v, _, _ := unstructured.NestedString(crt.Object, "status", f)
			assert.NotEmpty(t, v, "%s status.%s", name, f)
		}
	}
	maas, err := d.Resource(certificatesGVR).Namespace("openshift-ingress").Get(ctx, "maas-default-gateway-tls", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "True/DoesNotExist", condition(maas, "Issuing", "status")+"/"+condition(maas, "Issuing", "reason"))
	assert.Equal(t, "False/DoesNotExist", condition(maas, "Ready", "status")+"/"+condition(maas, "Ready", "reason"))

	// cert-manager's verdict asked again, read-only, outside the simulator.
	names := []string{"openshift-config/rhoai-bootstrap-api-tls", "openshift-ingress/rhoai-bootstrap-ingress-tls"}
	out, err := exec.CommandContext(ctx, r.Bed.CMJudge(), append([]string{"-kubeconfig", r.Bed.Kubeconfig()}, names...)...).Output()
	require.NoError(t, err, "cmjudge: %s", out)
	dec := json.NewDecoder(bytes.NewReader(out))
	for range names {
		var v verdict
		require.NoError(t, dec.Decode(&v))
		t.Logf("cert-manager's verdict: %+v", v)
		assert.False(t, v.Reissue, "%s: cert-manager would order: %s: %s", v.Certificate, v.Reason, v.Message)
		assert.Equal(t, "True", v.Ready, "%s: %s", v.Certificate, v.ReadyReason)
	}

	// Handed off: a re-run orders nothing and records the hand-off; plan shows it. Its
	// root-app phase meets the same pending Certificate; everything else is converged, so
	// it is given a short deadline.
	res = install(t, r, state, env, "--timeout-factor", "0.02")
	assertOnlyMaaSCertificatePending(t, res)
	assert.Equal(t, 1, ledgerOrders(t, state), "no order at or after the hand-off")
	var reason string
	for _, e := range res.Events {
		if e.Phase == "certificates" && e.Type == "phase-done" {
			reason = e.Message
		}
	}
	assert.Contains(t, reason, "handed-off", "the certificates phase reports the hand-off")
	b, err := os.ReadFile(filepath.Join(state, "state.json"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"handedOff"`, "the state records the hand-off (%s)", reason)
	plan := r.Run(ctx, env, append([]string{"plan", "-f", r.Config()}, r.Flags(state)...)...)
	assert.Equal(t, 0, plan.Code, plan.Stderr)
	assert.True(t, hasMessage(plan, "handed-off"), "plan shows the hand-off")

	renew := r.Run(ctx, env, append([]string{"certificates", "renew", "-f", r.Config()}, r.Flags(state)...)...)
	assert.NotEqual(t, 0, renew.Code, "renew refuses once cert-manager renews")
	assert.True(t, hasMessage(renew, "cert-manager renews these certificates"), "renew names cert-manager: %s", renew.Stderr)
	assert.Equal(t, 1, ledgerOrders(t, state))
}

// assertOnlyMaaSCertificatePending checks that an install ended with every phase done but
// root-app, and that root-app's failure names exactly one unhealthy child: config-certificates,
// for the MaaS gateway's Certificate, in Argo CD's words.
func assertOnlyMaaSCertificatePending(t *testing.T, res harness.Result) {
	t.Helper()
	require.NotEqual(t, 0, res.Code, "the MaaS gateway's Certificate keeps the root application Progressing")
	for phase, o := range res.Summary().Summary.Phases {
		if phase != "root-app" {
			assert.Equal(t, "done", o, phase)
		}
	}
	var why string
	for _, e := range res.Events {
		if e.Phase == "root-app" && e.Type == "phase-failed" {
			why = e.Error
		}
	}
	_, children, found := strings.Cut(why, "unhealthy child applications:\n")
	require.True(t, found, "root-app names its unhealthy children: %s", why)
	var lines []string
	for _, l := range strings.Split(children, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	assert.Equal(t, []string{maasCertificateWhy}, lines)
}

// condition is a status condition's field ("" when the condition is absent).
func condition(u *unstructured.Unstructured, typ, field string) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			v, _ := m[field].(string)
			return v
		}
	}
	return ""
}

// hasMessage reports whether any event's message or error, or stderr, contains s.
func hasMessage(res harness.Result, s string) bool {
	for _, e := range res.Events {
		if strings.Contains(e.Message, s) || strings.Contains(e.Error, s) {
			return true
		}
	}
	return strings.Contains(res.Stderr, s)
}
