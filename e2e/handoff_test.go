//go:build e2e

package e2e_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
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

// devOverlayApps are the applications the dev overlay's root application makes, and itself.
var devOverlayApps = []string{"rhoai-root",
	"config-autoscaling", "config-certificates", "config-console", "config-maas", "config-maas-access",
	"config-maas-analytics", "config-maas-platform", "config-project-template", "config-rbac",
	"instance-hardware-profiles", "instance-kueue", "instance-leader-worker-set", "instance-nfd",
	"instance-nvidia-gpu", "instance-openshift-ai", "instance-workbench-images",
	"operator-cert-manager", "operator-cluster-observability", "operator-connectivity-link", "operator-kueue",
	"operator-leader-worker-set", "operator-nfd", "operator-nvidia-gpu", "operator-openshift-ai",
	"operator-opentelemetry", "operator-pipelines", "operators-extra"}

// payloadCertificates are the payload's cert-manager Certificates (config-certificates).
var payloadCertificates = []string{"openshift-config/rhoai-bootstrap-api-tls",
	"openshift-ingress/rhoai-bootstrap-ingress-tls", "openshift-ingress/maas-default-gateway-tls"}

// assertCertManagerIssuedOnce checks the cert-manager side of a hand-off: the simulated
// cert-manager placed exactly one ACME order, for the MaaS gateway's Certificate (the API
// and *.apps ones took over the bootstrap's certificate); every Certificate is Ready
// and cert-manager's own chains, asked read-only, find nothing to re-issue and no metadata
// to fix; the MaaS gateway's Secret holds the ordered certificate.
func assertCertManagerIssuedOnce(t *testing.T, r *harness.Rehearsal) {
	t.Helper()
	orders := r.Sim.ACMEOrders()
	require.Len(t, orders, 1, "one ACME order by cert-manager: %+v", orders)
	maas := "openshift-ingress/maas-default-gateway-tls"
	assert.Equal(t, maas, orders[0].Certificate)
	assert.Equal(t, []string{"maas.apps.rhoai-local.bed.example.com"}, orders[0].Names)

	ctx := context.Background()
	d := dyn(t, r)
	for _, name := range payloadCertificates {
		ns, n, _ := strings.Cut(name, "/")
		crt, err := d.Resource(certificatesGVR).Namespace(ns).Get(ctx, n, metav1.GetOptions{})
		require.NoError(t, err, "Argo CD created %s", name)
		assert.Equal(t, "True", condition(crt, "Ready", "status"), name)
		assert.NotEqual(t, "True", condition(crt, "Issuing", "status"), "%s: no issuance in progress", name)
		for _, f := range []string{"notBefore", "notAfter", "renewalTime"} {
			v, _, _ := unstructured.NestedString(crt.Object, "status", f)
			assert.NotEmpty(t, v, "%s status.%s", name, f)
		}
	}
	sec, err := d.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace("openshift-ingress").
		Get(ctx, "maas-default-gateway-tls", metav1.GetOptions{})
	require.NoError(t, err, "cert-manager wrote the MaaS gateway's Secret")
	crtB64, _, _ := unstructured.NestedString(sec.Object, "data", "tls.crt")
	pemChain, err := base64.StdEncoding.DecodeString(crtB64)
	require.NoError(t, err)
	blk, _ := pem.Decode(pemChain)
	require.NotNil(t, blk, "tls.crt holds a PEM certificate")
	leaf, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	assert.Equal(t, orders[0].Serial, leaf.SerialNumber.Text(16), "the Secret holds the ordered certificate")

	out, err := exec.CommandContext(ctx, r.Bed.CMJudge(), append([]string{"-kubeconfig", r.Bed.Kubeconfig()}, payloadCertificates...)...).Output()
	require.NoError(t, err, "cmjudge: %s", out)
	dec := json.NewDecoder(bytes.NewReader(out))
	for range payloadCertificates {
		var v verdict
		require.NoError(t, dec.Decode(&v))
		t.Logf("cert-manager's verdict: %+v", v)
		assert.False(t, v.Reissue, "%s: cert-manager would order: %s: %s", v.Certificate, v.Reason, v.Message)
		assert.Equal(t, "True", v.Ready, "%s: %s", v.Certificate, v.ReadyReason)
		assert.Empty(t, v.PostIssuance, "%s: metadata left to fix", v.Certificate)
	}
}

// TestHandOffToCertManager: the real Argo CD syncs the bed's certificates overlay
// (operator-cert-manager, then config-certificates with the root application's patches
// for this cluster); cert-manager's own controllers (cmjudge) take the bootstrap's API and
// *.apps Secrets as issued — nothing to re-issue, Ready, no order — and issue the MaaS
// gateway's Certificate through Pebble: one ACME order, the Secret written by
// cert-manager's issuing controller. The install ends with every child Synced/Healthy. A
// re-run orders nothing, by the bootstrap or by cert-manager, and reports handed-off;
// plan shows it; `certificates renew` refuses pointing at cert-manager.
func TestHandOffToCertManager(t *testing.T) {
	t.Parallel()
	r := rehearsal(t, testbed.BedCertificatesOverlay)
	state := filepath.Join(r.WorkDir, "state")
	env := r.Env()
	res := install(t, r, state, env)
	requireSuccess(t, res)
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
	// The Route53 credentials came from the payload's CredentialsRequest.
	_, err = secrets.Namespace("cert-manager").Get(ctx, "aws-creds", metav1.GetOptions{})
	assert.NoError(t, err, "the cloud-credential operator made cert-manager/aws-creds")

	// The Certificates Argo CD created, as cert-manager's controllers left them.
	assertCertManagerIssuedOnce(t, r)
	for _, name := range payloadCertificates[:2] {
		ns, n, _ := strings.Cut(name, "/")
		crt, err := d.Resource(certificatesGVR).Namespace(ns).Get(ctx, n, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Empty(t, condition(crt, "Issuing", "status"), "%s: cert-manager started no issuance", name)
	}

	// Handed off: a re-run orders nothing and records the hand-off; plan shows it.
	res = install(t, r, state, env)
	requireSuccess(t, res)
	assert.Equal(t, 1, ledgerOrders(t, state), "no order at or after the hand-off")
	assertCertManagerIssuedOnce(t, r)
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
