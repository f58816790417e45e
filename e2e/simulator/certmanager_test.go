package simulator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
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
		// The trigger controller sets Issuing, the readiness controller Ready, in that order.
		return m != nil && condStatus(a.Object, "Ready", "status", "conditions") != "" &&
			condStatus(m.Object, "Issuing", "status", "conditions") != "" && condStatus(m.Object, "Ready", "status", "conditions") != "", err
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
	return condValue(u.Object, typ, field)
}

// TestCertManagerIssuesThroughACME: a Certificate whose Secret does not exist is issued
// for real. cert-manager's own controllers (cmjudge -reconcile) make the key and the
// CertificateRequest and approve it; the simulated ACME issuer orders from Pebble, solving
// DNS-01 in moto's Route53 with the credentials the simulated cloud-credential operator
// passed through from kube-system/aws-creds to the Secret the cert-manager operator's
// Subscription names; cert-manager's issuing controller writes the Secret (its secret.go:
// tls.crt and tls.key, no ca.crt for ACME, its annotations and fao label, secretTemplate)
// and its readiness controller Ready with the certificate's dates. cert-manager's chains,
// asked again, find nothing to re-issue, and a later change of the Secret orders nothing:
// one ACME order in all.
func TestCertManagerIssuesThroughACME(t *testing.T) {
	b := getBed(t)
	ctx := t.Context()
	acmeBed, err := testbed.Start(ctx, testbed.Options{NoKube: true}) // Pebble, challtestsrv, moto behind the DNS-bridging proxy
	require.NoError(t, err)
	t.Cleanup(func() { _ = acmeBed.Stop() })
	paths, err := testbed.EnsureBinaries(ctx)
	require.NoError(t, err)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, testbed.WriteKubeconfig(kubeconfig, b.cfg))
	opts := b.sim.options()
	restore := opts
	opts.CMJudge = &CMJudge{Binary: paths.CMJudge, Kubeconfig: kubeconfig}
	opts.AWSEndpoint, opts.DNSResolver = acmeBed.AWSEndpoint(), acmeBed.DNSResolver()
	b.sim.SetOptions(opts)
	t.Cleanup(func() { b.sim.SetOptions(restore) })
	require.NoError(t, testbed.InstallCRDs(ctx, b.cfg, testbed.CRDSetCertManager))
	root, err := testbed.ModuleRoot()
	require.NoError(t, err)
	crCRD, err := readCRDFile(filepath.Join(root, "manifests", "testdata", "crds", "credentialsrequest.yaml"))
	require.NoError(t, err)
	require.NoError(t, b.applyCRDs(ctx, crCRD))

	// What the installer and the payload leave: root credentials, the cert-manager
	// operator's Subscription naming the ambient credentials Secret, the CredentialsRequest
	// for it, an ACME ClusterIssuer on the bed's Pebble with a Route53 solver.
	rootCreds := obj("v1", "Secret", "kube-system", "aws-creds", nil)
	rootCreds.SetAnnotations(map[string]string{ccoModeAnnotation: "passthrough"})
	rootCreds.Object["data"] = map[string]any{"aws_access_key_id": b64("testing"), "aws_secret_access_key": b64("testing")}
	b.mustCreate(t, gvrSecret, rootCreds)
	b.namespace(t, "cmi-operator")
	b.mustCreate(t, gvrSubscription, obj("operators.coreos.com/v1alpha1", "Subscription", "cmi-operator", "openshift-cert-manager-operator", map[string]any{
		"name": "openshift-cert-manager-operator", "channel": "stable-v1", "source": "redhat-operators", "sourceNamespace": "openshift-marketplace",
		"config": map[string]any{"env": []any{map[string]any{"name": "CLOUD_CREDENTIALS_SECRET_NAME", "value": "cmi-aws-creds"}}},
	}))
	b.namespace(t, "cmi-cco")
	b.mustCreate(t, gvrCredentialsRequest, obj("cloudcredential.openshift.io/v1", "CredentialsRequest", "cmi-cco", "cert-manager", map[string]any{
		"providerSpec": map[string]any{"apiVersion": "cloudcredential.openshift.io/v1", "kind": "AWSProviderSpec",
			"statementEntries": []any{map[string]any{"action": []any{"route53:ChangeResourceRecordSets"}, "effect": "Allow", "resource": "*"}}},
		"secretRef": map[string]any{"name": "cmi-aws-creds", "namespace": certManagerNS},
	}))
	ca, err := os.ReadFile(acmeBed.ACMECAFile())
	require.NoError(t, err)
	b.mustCreate(t, gvrClusterIssuer, obj("cert-manager.io/v1", "ClusterIssuer", "", "cmi-acme", map[string]any{
		"acme": map[string]any{"server": acmeBed.ACMEDirectoryURL(), "caBundle": base64.StdEncoding.EncodeToString(ca),
			"email": "ops@" + acmeBed.BaseDomain(), "privateKeySecretRef": map[string]any{"name": "cmi-acme-account"},
			"solvers": []any{map[string]any{"dns01": map[string]any{"route53": map[string]any{
				"hostedZoneID": acmeBed.HostedZoneID(), "region": "us-east-1"}}}}},
	}))

	const ns = "cmi-test"
	name := "gw.cmi." + acmeBed.BaseDomain()
	b.namespace(t, ns)
	b.mustCreate(t, gvrCertificate, obj("cert-manager.io/v1", "Certificate", ns, "gw", map[string]any{
		"secretName":     "gw-tls",
		"dnsNames":       []any{name},
		"issuerRef":      map[string]any{"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "cmi-acme"},
		"privateKey":     map[string]any{"algorithm": "ECDSA", "size": int64(256), "rotationPolicy": "Always"},
		"secretTemplate": map[string]any{"labels": map[string]any{"team": "maas"}, "annotations": map[string]any{"note": "from the template"}},
	}))
	b.eventually(t, 3*time.Minute, "the Certificate issued and Ready", func(ctx context.Context) (bool, error) {
		c, err := b.get(ctx, gvrCertificate, ns, "gw")
		return c != nil && condStatus(c.Object, "Ready", "status", "conditions") == "True", err
	})

	// The Secret, as cert-manager's issuing controller writes it, with a certificate Pebble
	// issued for the name.
	sec := b.mustGet(t, gvrSecret, ns, "gw-tls")
	assert.Equal(t, "kubernetes.io/tls", sec.Object["type"])
	data := func(k string) []byte {
		v, _, _ := unstructured.NestedString(sec.Object, "data", k)
		out, err := base64.StdEncoding.DecodeString(v)
		require.NoError(t, err)
		return out
	}
	chain := data("tls.crt")
	leaf, err := leafOf(chain)
	require.NoError(t, err)
	assert.Equal(t, []string{name}, leaf.DNSNames)
	rootPEM, _, err := acmeBed.ACMEIssuers(ctx)
	require.NoError(t, err)
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(rootPEM))
	inters.AppendCertsFromPEM(chain)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, DNSName: name})
	assert.NoError(t, err, "the chain verifies up to Pebble's issuing root")
	pair, err := tls.X509KeyPair(chain, data("tls.key"))
	require.NoError(t, err, "tls.key is the certificate's key")
	assert.IsType(t, &ecdsa.PrivateKey{}, pair.PrivateKey, "spec.privateKey ECDSA")
	assert.NotContains(t, sec.Object["data"], "ca.crt", "ACME returns no CA: cert-manager writes no ca.crt")
	a := sec.GetAnnotations()
	assert.Equal(t, "gw", a["cert-manager.io/certificate-name"])
	assert.Equal(t, "cmi-acme", a["cert-manager.io/issuer-name"])
	assert.Equal(t, "ClusterIssuer", a["cert-manager.io/issuer-kind"])
	assert.Equal(t, "cert-manager.io", a["cert-manager.io/issuer-group"])
	assert.Equal(t, name, a["cert-manager.io/alt-names"])
	assert.Equal(t, "from the template", a["note"])
	assert.Equal(t, "true", sec.GetLabels()["controller.cert-manager.io/fao"])
	assert.Equal(t, "maas", sec.GetLabels()["team"])
	assert.Contains(t, managers(sec), "cert-manager-certificates-issuing")

	crt := b.mustGet(t, gvrCertificate, ns, "gw")
	revision, _, _ := unstructured.NestedInt64(crt.Object, "status", "revision")
	assert.Equal(t, int64(1), revision)
	assert.Equal(t, "Ready", condField(crt, "Ready", "reason"))
	assert.Equal(t, "Certificate is up to date and has not expired", condField(crt, "Ready", "message"))
	assert.NotEqual(t, "True", condStatus(crt.Object, "Issuing", "status", "conditions"), "the issuance is over")
	for f, want := range map[string]time.Time{"notBefore": leaf.NotBefore, "notAfter": leaf.NotAfter,
		// cert-manager's default: renew when a third of the lifetime is left.
		"renewalTime": leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore) / 3)} {
		got, _, _ := unstructured.NestedString(crt.Object, "status", f)
		assert.Equal(t, want.UTC().Truncate(time.Second).Format(time.RFC3339), got, f)
	}

	// The credentials came the OpenShift way.
	cr := b.mustGet(t, gvrCredentialsRequest, "cmi-cco", "cert-manager")
	provisioned, _, _ := unstructured.NestedBool(cr.Object, "status", "provisioned")
	assert.True(t, provisioned, "the CredentialsRequest is provisioned")
	creds := b.mustGet(t, gvrSecret, certManagerNS, "cmi-aws-creds")
	assert.Equal(t, "cmi-cco/cert-manager", creds.GetAnnotations()[ccoRequestAnnot])

	// cert-manager's chains, asked again: nothing to re-issue.
	v := judgeOnce(t, paths.CMJudge, kubeconfig, ns+"/gw")
	assert.False(t, v.Reissue, "cert-manager would re-issue: %s: %s", v.Reason, v.Message)
	assert.Equal(t, "True", v.Ready, v.ReadyReason)
	assert.Empty(t, v.PostIssuance, "no metadata left to fix")

	orders := b.sim.ACMEOrders()
	require.Len(t, orders, 1, "one ACME order")
	assert.Equal(t, ns+"/gw", orders[0].Certificate)
	assert.Equal(t, leaf.SerialNumber.Text(16), orders[0].Serial)

	// A change to the Secret runs cert-manager's controllers again: they order nothing.
	b.mergePatch(t, gvrSecret, ns, "gw-tls", map[string]any{"metadata": map[string]any{"annotations": map[string]any{"touched": "yes"}}})
	b.eventually(t, time.Minute, "the touched Secret reconciled", func(ctx context.Context) (bool, error) {
		c, err := b.get(ctx, gvrCertificate, ns, "gw")
		if err != nil || c == nil {
			return false, err
		}
		in, err := b.sim.certificateInputs(ctx, c)
		b.sim.mu.Lock()
		defer b.sim.mu.Unlock()
		return b.sim.judged[ns+"/gw"] == in, err
	})
	assert.Len(t, b.sim.ACMEOrders(), 1, "no second order")
	crt = b.mustGet(t, gvrCertificate, ns, "gw")
	revision, _, _ = unstructured.NestedInt64(crt.Object, "status", "revision")
	assert.Equal(t, int64(1), revision, "no second issuance")
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// managers are the field managers of u.
func managers(u *unstructured.Unstructured) []string {
	var out []string
	for _, m := range u.GetManagedFields() {
		out = append(out, m.Manager)
	}
	return out
}

// judgeOnce asks cmjudge, read-only, about one Certificate.
func judgeOnce(t *testing.T, binary, kubeconfig, key string) CertificateVerdict {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), binary, "-kubeconfig", kubeconfig, key).Output()
	require.NoError(t, err, "cmjudge: %s", out)
	var v CertificateVerdict
	require.NoError(t, json.Unmarshal(out, &v))
	return v
}
