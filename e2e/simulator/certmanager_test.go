package simulator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

// TestCertManagerJudgesCertificates: the simulated cert-manager asks cert-manager's own
// policy chains (cmjudge) about each Certificate. One whose Secret holds a certificate for
// its names, with cert-manager's issuer annotations, is Ready with its dates and renewal
// time and starts no issuance; one whose Secret does not exist is Issuing with
// cert-manager's reason DoesNotExist and not Ready. An ACME ClusterIssuer whose server
// cannot be reached is not Ready, with cert-manager's registration failure reason.
func TestCertManagerJudgesCertificates(t *testing.T) {
	b := getBed(t)
	ctx := t.Context()
	paths, err := testbed.EnsureBinaries(ctx)
	require.NoError(t, err)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, testbed.WriteKubeconfig(kubeconfig, b.cfg))
	opts := b.sim.options()
	opts.CMJudge = &CMJudge{Binary: paths.CMJudge, Kubeconfig: kubeconfig}
	b.sim.SetOptions(opts)
	t.Cleanup(func() {
		opts.CMJudge = nil
		b.sim.SetOptions(opts)
	})
	require.NoError(t, testbed.InstallCRDs(ctx, b.cfg, testbed.CRDSetCertManager))

	const ns = "cm-test"
	require.NoError(t, b.create(ctx, gvrNamespace, obj("v1", "Namespace", "", ns, nil)))
	names := []string{"a.cm-test.example.com", "b.cm-test.example.com"}
	crt := func(name string) *unstructured.Unstructured {
		return obj("cert-manager.io/v1", "Certificate", ns, name, map[string]any{
			"secretName": name,
			"dnsNames":   []any{names[0], names[1]},
			"issuerRef":  map[string]any{"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "cm-test-acme"},
			"privateKey": map[string]any{"algorithm": "ECDSA", "size": int64(256)},
		})
	}
	// The Secret as an issuer would have left it: a certificate for both names, its key,
	// and the issuer annotations cert-manager checks (SecretIssuerAnnotationsMismatch).
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	notBefore := time.Now().Add(-time.Hour).Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{}, DNSNames: names,
		NotBefore: notBefore, NotAfter: notBefore.Add(90 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	sec := obj("v1", "Secret", ns, "issued", nil)
	sec.Object["type"] = "kubernetes.io/tls"
	sec.SetAnnotations(map[string]string{"cert-manager.io/issuer-name": "cm-test-acme",
		"cert-manager.io/issuer-kind": "ClusterIssuer", "cert-manager.io/issuer-group": "cert-manager.io"})
	sec.Object["data"] = map[string]any{
		"tls.crt": base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		"tls.key": base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})),
	}
	b.mustCreate(t, gvrSecret, sec)
	b.mustCreate(t, gvrCertificate, crt("issued"))
	b.mustCreate(t, gvrCertificate, crt("missing"))

	b.eventually(t, time.Minute, "the issued Certificate Ready, the missing one Issuing", func(ctx context.Context) (bool, error) {
		a, err := b.get(ctx, gvrCertificate, ns, "issued")
		if err != nil || a == nil {
			return false, err
		}
		m, err := b.get(ctx, gvrCertificate, ns, "missing")
		return m != nil && condStatus(a.Object, "Ready", "status", "conditions") != "" &&
			condStatus(m.Object, "Issuing", "status", "conditions") != "", err
	})
	issued := b.mustGet(t, gvrCertificate, ns, "issued")
	assert.Equal(t, "Ready=True", condString(issued, "Ready"))
	assert.Empty(t, condStatus(issued.Object, "Issuing", "status", "conditions"), "nothing to re-issue")
	notAfter, _, _ := unstructured.NestedString(issued.Object, "status", "notAfter")
	renewal, _, _ := unstructured.NestedString(issued.Object, "status", "renewalTime")
	assert.Equal(t, tmpl.NotAfter.UTC().Format(time.RFC3339), notAfter)
	// cert-manager's default: renew when a third of the lifetime is left (60 of 90 days).
	assert.Equal(t, notBefore.Add(60*24*time.Hour).UTC().Format(time.RFC3339), renewal)

	missing := b.mustGet(t, gvrCertificate, ns, "missing")
	assert.Equal(t, "Issuing=True,Ready=False", condString(missing, "Issuing", "Ready"))
	for _, typ := range []string{"Issuing", "Ready"} {
		assert.Equal(t, "DoesNotExist", condField(missing, typ, "reason"), typ)
		assert.Equal(t, "Issuing certificate as Secret does not exist", condField(missing, typ, "message"), typ)
	}

	b.mustCreate(t, gvrClusterIssuer, obj("cert-manager.io/v1", "ClusterIssuer", "", "cm-test-acme", map[string]any{
		"acme": map[string]any{"server": "https://127.0.0.1:1/dir", "privateKeySecretRef": map[string]any{"name": "cm-test-acme-account"},
			"solvers": []any{map[string]any{"dns01": map[string]any{"route53": map[string]any{"region": "us-east-1"}}}}},
	}))
	b.eventually(t, time.Minute, "the ClusterIssuer judged", func(ctx context.Context) (bool, error) {
		u, err := b.get(ctx, gvrClusterIssuer, "", "cm-test-acme")
		return u != nil && condStatus(u.Object, "Ready", "status", "conditions") != "", err
	})
	iss := b.mustGet(t, gvrClusterIssuer, "", "cm-test-acme")
	assert.Equal(t, "Ready=False", condString(iss, "Ready"))
	assert.Equal(t, "ErrRegisterACMEAccount", condField(iss, "Ready", "reason"))
	assert.Contains(t, condField(iss, "Ready", "message"), "Failed to register ACME account: ")
	// The account key was made as cert-manager makes it, in its cluster resource namespace.
	acct := b.mustGet(t, gvrSecret, certManagerNS, "cm-test-acme-account")
	assert.Equal(t, "cert-manager", acct.GetLabels()["app.kubernetes.io/managed-by"])
}

// condField is a field of the condition typ ("" when absent).
func condField(u *unstructured.Unstructured, typ, field string) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == typ {
			return str(m[field])
		}
	}
	return ""
}
