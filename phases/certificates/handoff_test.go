package certificates

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestSecretsCarryCertManagerMetadata: each Secret names the payload's Certificate of the
// same name and its ClusterIssuer, carries the label cert-manager's controller caches by,
// and the certificate details exactly as cert-manager encodes them. The e2e test has
// cert-manager's own policy chain judge the same Secrets.
func TestSecretsCarryCertManagerMetadata(t *testing.T) {
	b := newCA(t, "Our ACME CA").issue(t, testNow, 90, "api.c.example.com", "*.apps.c.example.com")
	leaf, _, err := b.parse()
	require.NoError(t, err)
	for _, s := range secrets(b) {
		assert.Equal(t, map[string]string{
			"cert-manager.io/certificate-name": s.GetName(),
			"cert-manager.io/issuer-name":      "rhoai-bootstrap-acme",
			"cert-manager.io/issuer-kind":      "ClusterIssuer",
			"cert-manager.io/issuer-group":     "cert-manager.io",
			"cert-manager.io/common-name":      leaf.Subject.CommonName,
			"cert-manager.io/alt-names":        "api.c.example.com,*.apps.c.example.com",
			"cert-manager.io/ip-sans":          "",
			"cert-manager.io/uri-sans":         "",
		}, s.GetAnnotations(), s.GetName())
		assert.Equal(t, "true", s.GetLabels()["controller.cert-manager.io/fao"])
	}
	v, err := joinCSV([]string{"a", "b,c", `d"e`})
	require.NoError(t, err)
	assert.Equal(t, `a,"b,c","d""e"`, v, "CSV as encoding/csv writes it, like cert-manager's JoinWithEscapeCSV")
}

func cmCertificate(ns, name, secret string, gen int64, dns []string, ready string, observed int64) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
		"metadata": map[string]any{"namespace": ns, "name": name, "generation": gen},
		"spec":     map[string]any{"secretName": secret, "dnsNames": toAny(dns)},
		"status": map[string]any{
			"renewalTime": "2027-01-26T12:00:00Z",
			"conditions":  []any{map[string]any{"type": "Ready", "status": ready, "observedGeneration": observed}},
		},
	}}
	return u
}

func TestCertificateReady(t *testing.T) {
	names := []string{"api.c.example.com", "*.apps.c.example.com"}
	ok, renew := certificateReady(cmCertificate("openshift-config", "x", APISecret, 2, []string{"*.apps.c.example.com", "api.c.example.com"}, "True", 2), APISecret, names)
	assert.True(t, ok)
	assert.Equal(t, time.Date(2027, 1, 26, 12, 0, 0, 0, time.UTC), renew)
	for name, crt := range map[string]*unstructured.Unstructured{
		"other secret":          cmCertificate("openshift-config", "x", "other", 1, names, "True", 1),
		"fewer names":           cmCertificate("openshift-config", "x", APISecret, 1, names[:1], "True", 1),
		"not Ready":             cmCertificate("openshift-config", "x", APISecret, 1, names, "False", 1),
		"Ready for an old spec": cmCertificate("openshift-config", "x", APISecret, 3, names, "True", 2),
	} {
		ok, _ := certificateReady(crt, APISecret, names)
		assert.False(t, ok, name)
	}
}

// TestCertManagerOrdersCounted: a certificate cert-manager put in our Secret after the
// hand-off is recorded once, as cert-manager's, and counts against the rate limit.
func TestCertManagerOrdersCounted(t *testing.T) {
	dir := "https://acme-v02.api.letsencrypt.org/directory"
	ca := newCA(t, "Our ACME CA")
	mine := ca.issue(t, testNow.Add(-40*24*time.Hour), 90, testNames...)
	theirs := ca.issue(t, testNow.Add(-time.Hour), 90, testNames...)
	leaf, _, err := mine.parse()
	require.NoError(t, err)
	ledger := Ledger{{Time: testNow.Add(-40 * 24 * time.Hour), Names: testNames, Serial: serialOf(leaf), Server: dir}}
	secret := func(b bundle, manager string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{cmIssuerName: IssuerName},
				ManagedFields: []metav1.ManagedFieldsEntry{{Manager: manager}}},
			Data: map[string][]byte{corev1.TLSCertKey: b.Chain, corev1.TLSPrivateKeyKey: b.Key},
		}
	}
	got := certManagerOrders(ledger, []*corev1.Secret{
		secret(mine, "cert-manager-certificates-issuing"), // ours, already in the ledger
		secret(theirs, "cert-manager-certificates-issuing"),
		secret(theirs, "cert-manager-certificates-issuing"), // the same certificate in the other Secret
		nil,
	}, testNames, dir)
	require.Len(t, got, 1)
	assert.Equal(t, byCertManager, got[0].By)
	assert.Empty(t, certManagerOrders(ledger, []*corev1.Secret{secret(theirs, "rhoai-bootstrap")}, testNames, dir),
		"a Secret only the bootstrap wrote holds no cert-manager order")

	ledger = append(ledger, got...)
	assert.Equal(t, 1, RecentOrders(ledger.ForServer(dir), testNames, testNow, RateWindow), "ours is 40 days old; cert-manager's is in the window")
	assert.False(t, ledger.ours(got[0].Serial, dir), "cert-manager's certificate is not ours to revoke")
	for range 4 {
		ledger = append(ledger, Order{Time: testNow.Add(-time.Hour), Names: testNames, Serial: "x", Server: dir})
	}
	assert.ErrorContains(t, checkRateLimit(ledger, testNames, dir, testNow), "5 certificates", "cert-manager's order counts towards the limit")
}

func TestRenewRefusal(t *testing.T) {
	err := renewRefusal(&HandOff{Certificates: []string{"openshift-config/rhoai-bootstrap-api-tls", "openshift-ingress/rhoai-bootstrap-ingress-tls"},
		RenewalTime: time.Date(2027, 1, 26, 12, 0, 0, 0, time.UTC)})
	assert.EqualError(t, err, "not renewing: cert-manager renews these certificates now, Certificates openshift-config/rhoai-bootstrap-api-tls and "+
		"openshift-ingress/rhoai-bootstrap-ingress-tls are Ready (next renewal 2027-01-26T12:00:00Z). To renew now, ask cert-manager "+
		"(cmctl renew -n openshift-config rhoai-bootstrap-api-tls; cmctl renew -n openshift-ingress rhoai-bootstrap-ingress-tls); "+
		"to order from the bootstrap anyway, run `rhoai-bootstrap certificates renew --force`")
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
