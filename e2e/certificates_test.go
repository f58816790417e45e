//go:build e2e

package e2e_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/harness"
)

// servedCertificate reads the ingress TLS secret's chain.
func servedCertificate(t *testing.T, r *harness.Rehearsal) (*x509.Certificate, []*x509.Certificate) {
	t.Helper()
	d := dyn(t, r)
	sec, err := d.Resource(gvr("", "v1", "secrets")).Namespace("openshift-ingress").Get(context.Background(), "rhoai-bootstrap-ingress-tls", metav1.GetOptions{})
	require.NoError(t, err)
	data, _, _ := unstructured.NestedString(sec.Object, "data", "tls.crt")
	raw, err := base64Decode(data)
	require.NoError(t, err)
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, raw = pem.Decode(raw)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		certs = append(certs, c)
	}
	require.NotEmpty(t, certs)
	return certs[0], certs[1:]
}

// assertCertificateFromPebble checks what the certificates phase left: one order in the
// ledger, served on the ingress and named for the API server, and a chain that verifies
// up to Pebble's issuing root for both names. Renewal (by the clock, by ARI, forced),
// other names, a bad ACME server and kill safety are driven in-process, with a movable
// clock, by phases/certificates' own e2e tests on the same kind of bed.
func assertCertificateFromPebble(t *testing.T, r *harness.Rehearsal, state string) *x509.Certificate {
	t.Helper()
	ctx := context.Background()
	require.Equal(t, 1, ledgerOrders(t, state))
	leaf, chain := servedCertificate(t, r)
	rootPEM, interPEM, err := r.Bed.ACMEIssuers(ctx)
	require.NoError(t, err)
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(rootPEM))
	inters.AppendCertsFromPEM(interPEM)
	for _, c := range chain {
		inters.AddCert(c)
	}
	for _, name := range []string{"api.rhoai-local.bed.example.com", "console-openshift-console.apps.rhoai-local.bed.example.com"} {
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: name})
		require.NoError(t, err, "the served certificate chains to Pebble's issuing root for %s", name)
	}
	ic, err := dyn(t, r).Resource(gvr("operator.openshift.io", "v1", "ingresscontrollers")).Namespace("openshift-ingress-operator").Get(ctx, "default", metav1.GetOptions{})
	require.NoError(t, err)
	name, _, _ := unstructured.NestedString(ic.Object, "spec", "defaultCertificate", "name")
	assert.Equal(t, "rhoai-bootstrap-ingress-tls", name)
	as, err := dyn(t, r).Resource(gvr("config.openshift.io", "v1", "apiservers")).Get(ctx, "cluster", metav1.GetOptions{})
	require.NoError(t, err)
	nc, _, _ := unstructured.NestedSlice(as.Object, "spec", "servingCerts", "namedCertificates")
	require.Len(t, nc, 1)
	assert.Equal(t, []any{"api.rhoai-local.bed.example.com"}, nc[0].(map[string]any)["names"])
	return leaf
}

func base64Decode(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
