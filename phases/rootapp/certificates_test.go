package rootapp

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/payload"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
)

func devCluster(t *testing.T) *configs.Cluster {
	t.Helper()
	file := filepath.Join("..", "..", "configs", "examples", "dev.yaml")
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	c, err := configs.Parse(data, file)
	require.NoError(t, err)
	c.Spec.Certificates.ACME.Route53.HostedZoneID = "Z123EXAMPLE"
	c.Spec.GitOps.Root.Path = "manifests/gitops/clusters/overlays/dev"
	return c
}

// renderChild renders the root application the phase would apply the way Argo CD does,
// then the child application name the same way.
func renderChild(t *testing.T, c *configs.Cluster, name string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := (&phase{env: &phases.Env{Cluster: c}}).objects(context.Background())
	require.NoError(t, err)
	r := payload.Renderer{Root: filepath.Join("..", "..")}
	children, err := r.RenderApp(objs[1])
	require.NoError(t, err)
	for _, ch := range children {
		if ch.GetKind() == "Application" && ch.GetName() == name {
			out, err := r.RenderApp(ch)
			require.NoError(t, err)
			return out
		}
	}
	return nil
}

func byKindName(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		out[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] = o
	}
	return out
}

// TestRootAppMakesCertificatesThisCluster: the payload's Certificates and ClusterIssuer,
// rendered through the root application as Argo CD would, carry the cluster file's names,
// ACME server and zone; the payload's placeholders are gone.
func TestRootAppMakesCertificatesThisCluster(t *testing.T) {
	c := devCluster(t)
	objs := byKindName(renderChild(t, c, CertificatesApp))
	for _, key := range []string{"Certificate/openshift-config/rhoai-bootstrap-api-tls", "Certificate/openshift-ingress/rhoai-bootstrap-ingress-tls"} {
		require.Contains(t, objs, key)
		dns, _, _ := unstructured.NestedStringSlice(objs[key].Object, "spec", "dnsNames")
		assert.Equal(t, []string{"api.rhoai-dev.example.com", "*.apps.rhoai-dev.example.com"}, dns, key)
	}
	dns, _, _ := unstructured.NestedStringSlice(objs["Certificate/openshift-ingress/maas-default-gateway-tls"].Object, "spec", "dnsNames")
	assert.Equal(t, []string{"maas.apps.rhoai-dev.example.com"}, dns)
	iss := objs["ClusterIssuer//rhoai-bootstrap-acme"]
	require.NotNil(t, iss)
	acme, _, _ := unstructured.NestedMap(iss.Object, "spec", "acme")
	assert.Equal(t, c.Spec.Certificates.ACME.ACMEDirectory(), acme["server"], "the cluster file's ACME server")
	assert.Equal(t, "https://acme-v02.api.letsencrypt.org/directory", acme["server"], "dev.yaml chooses production")
	assert.Equal(t, "ops@example.com", acme["email"])
	solvers, _, _ := unstructured.NestedSlice(iss.Object, "spec", "acme", "solvers")
	require.Len(t, solvers, 1)
	route53, _, _ := unstructured.NestedMap(solvers[0].(map[string]any), "dns01", "route53")
	assert.Equal(t, map[string]any{"hostedZoneID": "Z123EXAMPLE", "region": "us-west-2"}, route53, "ambient credentials: no key in the issuer")
	assert.NotContains(t, acme, "caBundle")
	assert.NotContains(t, objs, "ClusterCertificates//cluster", "local-config is never applied")
}

func TestRootAppCertificatesPrivateCA(t *testing.T) {
	c := devCluster(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o600))
	c.Spec.Certificates.ACME.CABundleFile = ca
	objs := byKindName(renderChild(t, c, CertificatesApp))
	got, _, _ := unstructured.NestedString(objs["ClusterIssuer//rhoai-bootstrap-acme"].Object, "spec", "acme", "caBundle")
	want, _ := os.ReadFile(ca)
	assert.Equal(t, base64.StdEncoding.EncodeToString(want), got)
}

// TestRootAppWithoutCertificates: no spec.certificates, nothing to hand over: the child
// application is not rendered at all (rather than issuing for placeholder names).
func TestRootAppWithoutCertificates(t *testing.T) {
	c := devCluster(t)
	c.Spec.Certificates = nil
	objs, err := (&phase{env: &phases.Env{Cluster: c}}).objects(context.Background())
	require.NoError(t, err)
	children, err := payload.Renderer{Root: filepath.Join("..", "..")}.RenderApp(objs[1])
	require.NoError(t, err)
	require.NotEmpty(t, children)
	for _, ch := range children {
		assert.NotEqual(t, CertificatesApp, ch.GetName())
	}
}
