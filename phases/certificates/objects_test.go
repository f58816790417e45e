package certificates

import (
	"encoding/base64"
	"encoding/pem"
	"testing"

	configv1 "github.com/openshift/api/config/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

func TestSecrets(t *testing.T) {
	b := newCA(t, "Our ACME CA").issue(t, testNow, 90, testNames...)
	objs := secrets(b)
	require.Len(t, objs, 2)
	for i, want := range [][2]string{{"openshift-ingress", "rhoai-bootstrap-ingress-tls"}, {"openshift-config", "rhoai-bootstrap-api-tls"}} {
		s := objs[i]
		assert.Equal(t, want, [2]string{s.GetNamespace(), s.GetName()})
		assert.Equal(t, "kubernetes.io/tls", s.Object["type"])
		data := s.Object["data"].(map[string]any)
		crt, err := base64.StdEncoding.DecodeString(data["tls.crt"].(string))
		require.NoError(t, err)
		key, err := base64.StdEncoding.DecodeString(data["tls.key"].(string))
		require.NoError(t, err)
		assert.Equal(t, b.Chain, crt, "the whole chain, leaf first")
		assert.Equal(t, b.Key, key)
		assert.Equal(t, "rhoai-bootstrap", s.GetLabels()["app.kubernetes.io/managed-by"])
	}

	// The pending side file round-trips.
	back, err := splitPEM(b.pemFile())
	require.NoError(t, err)
	assert.Equal(t, b, back)
	_, err = splitPEM(b.Chain)
	assert.Error(t, err, "a chain without its key is no use")
}

func TestIngressPatch(t *testing.T) {
	p := ingressPatch(IngressSecret)
	assert.Equal(t, map[string]any{"defaultCertificate": map[string]any{"name": IngressSecret}}, p.Object["spec"])
	assert.Equal(t, []string{"openshift-ingress-operator", "default"}, []string{p.GetNamespace(), p.GetName()})
	assert.Equal(t, map[string]any{}, ingressPatch("").Object["spec"], "restoring the cluster's own certificate drops our field")
}

func entry(secret string, names ...string) configv1.APIServerNamedServingCert {
	return configv1.APIServerNamedServingCert{Names: names, ServingCertificate: configv1.SecretNameReference{Name: secret}}
}

type namedCerts = []configv1.APIServerNamedServingCert

func TestNamedCertificates(t *testing.T) {
	host := "api.c.example.com"
	other := entry("corp-cert", "api-internal.example.com")
	shared := entry("admin-cert", host, "api.alias.example.com")
	only := entry("admin-only", host)

	t.Run("merge keeps others and adds ours once", func(t *testing.T) {
		out := mergeNamedCerts(namedCerts{other}, host)
		assert.Equal(t, namedCerts{other, namedCert(host)}, out)
		assert.True(t, sameList(out, mergeNamedCerts(out, host)), "merging again changes nothing")
	})
	t.Run("merge replaces our old entry (cluster renamed)", func(t *testing.T) {
		out := mergeNamedCerts(namedCerts{namedCert("api.old.example.com"), other}, host)
		assert.Equal(t, namedCerts{other, namedCert(host)}, out)
	})
	t.Run("merge takes our host away from someone else's entry", func(t *testing.T) {
		out := mergeNamedCerts(namedCerts{shared, only, other}, host)
		assert.Equal(t, namedCerts{entry("admin-cert", "api.alias.example.com"), other, namedCert(host)}, out)
		assert.Equal(t, []string{host, "api.alias.example.com"}, shared.Names, "the live entry itself is not modified")
	})
}

func TestTrustRoot(t *testing.T) {
	clusterCA, acmeCA := newCA(t, "Cluster"), newCA(t, "ACME")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://api.c.example.com:6443", CertificateAuthorityData: pemCert(clusterCA.root)}
	cfg.Clusters["system-trust"] = &clientcmdapi.Cluster{Server: "https://other.example.com"}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["admin"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "admin"}
	cfg.CurrentContext = "admin"
	raw, err := clientcmd.Write(*cfg)
	require.NoError(t, err)

	out, changed, err := trustRoot(raw, acmeCA.root)
	require.NoError(t, err)
	assert.True(t, changed)
	got, err := clientcmd.Load(out)
	require.NoError(t, err)
	ca := got.Clusters["c"].CertificateAuthorityData
	blocks := 0
	for rest := ca; ; blocks++ {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
	}
	assert.Equal(t, 2, blocks, "the cluster's CA is kept and the new root added")
	assert.Contains(t, string(ca), string(pemCert(clusterCA.root)))
	assert.Contains(t, string(ca), string(pemCert(acmeCA.root)))
	assert.Empty(t, got.Clusters["system-trust"].CertificateAuthorityData, "a cluster trusting the system roots is left alone")
	assert.Equal(t, "t", got.AuthInfos["admin"].Token)

	again, changed, err := trustRoot(out, acmeCA.root)
	require.NoError(t, err)
	assert.False(t, changed, "idempotent")
	assert.Equal(t, out, again)

	_, _, err = trustRoot([]byte("{not yaml"), acmeCA.root)
	assert.Error(t, err)
}
