package testbed_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/providers/dns/route53"
	"github.com/go-acme/lego/v5/registration"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type acmeUser struct {
	key crypto.Signer
	reg *acme.ExtendedAccount
}

func (u *acmeUser) GetEmail() string                       { return "" }
func (u *acmeUser) GetRegistration() *acme.ExtendedAccount { return u.reg }
func (u *acmeUser) GetPrivateKey() crypto.Signer           { return u.key }

// Pebble issues the cluster's wildcard + API certificate over DNS-01, with
// lego writing the challenge to Route53 (moto) and the bridge publishing it
// in challtestsrv's DNS, where Pebble's validation authority looks.
func TestACMEWildcardCertificateThroughRoute53(t *testing.T) {
	envFromBed(t)
	ctx := t.Context()
	start := time.Now()

	// lego resolves through challtestsrv; the authoritative nameservers of
	// bed.example.com do not exist.
	prev := dns01.DefaultClient()
	dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: []string{bed.DNSResolver()}}))
	t.Cleanup(func() { dns01.SetDefaultClient(prev) })

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	user := &acmeUser{key: key}
	cfg := lego.NewConfig(user)
	cfg.CADirURL = bed.ACMEDirectoryURL()
	cfg.HTTPClient = pebbleHTTPClient(t)
	client, err := lego.NewClient(cfg)
	require.NoError(t, err)

	r53cfg := route53.NewDefaultConfig()
	r53cfg.HostedZoneID = bed.HostedZoneID()
	r53cfg.PropagationTimeout = time.Minute
	r53cfg.PollingInterval = 500 * time.Millisecond
	provider, err := route53.NewDNSProviderConfig(r53cfg)
	require.NoError(t, err)
	require.NoError(t, client.Challenge.SetDNS01Provider(provider, dns01.DisableAuthoritativeNssPropagationRequirement()))

	user.reg, err = client.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
	require.NoError(t, err)

	wildcard, api := "*.apps.rhoai-local.bed.example.com", "api.rhoai-local.bed.example.com"
	res, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{wildcard, api}, KeyType: certcrypto.EC256, Bundle: true, Profile: "default"})
	require.NoError(t, err)
	t.Logf("wildcard + api certificate issued in %s", time.Since(start).Round(time.Millisecond))

	leaf, intermediates := parseChain(t, res.Certificate)
	assert.ElementsMatch(t, []string{wildcard, api}, leaf.DNSNames)
	assert.InDelta(t, (90 * 24 * time.Hour).Hours(), leaf.NotAfter.Sub(leaf.NotBefore).Hours(), 1)

	rootPEM, _, err := bed.ACMEIssuers(ctx)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(rootPEM))
	for _, name := range []string{"console-openshift-console.apps.rhoai-local.bed.example.com", api} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, DNSName: name})
		assert.NoError(t, err, "verifying for %s", name)
	}

	// The short-lived profile (offered because TestMain asks for it) issues
	// certificates with its own validity.
	start = time.Now()
	short, err := client.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: []string{api}, KeyType: certcrypto.EC256, Bundle: true, Profile: "shortlived"})
	require.NoError(t, err)
	t.Logf("short-lived api certificate issued in %s", time.Since(start).Round(time.Millisecond))
	shortLeaf, _ := parseChain(t, short.Certificate)
	assert.InDelta(t, 160.0, shortLeaf.NotAfter.Sub(shortLeaf.NotBefore).Hours(), 1)
}

// pebbleHTTPClient trusts the CA of Pebble's own HTTPS endpoint.
func pebbleHTTPClient(t *testing.T) *http.Client {
	t.Helper()
	caPEM, err := os.ReadFile(bed.ACMECAFile())
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
}

// parseChain splits a PEM bundle into its leaf and the rest.
func parseChain(t *testing.T, bundle []byte) (*x509.Certificate, *x509.CertPool) {
	t.Helper()
	var leaf *x509.Certificate
	rest := x509.NewCertPool()
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		if leaf == nil {
			leaf = c
		} else {
			rest.AddCert(c)
		}
	}
	require.NotNil(t, leaf, "no certificate in bundle")
	return leaf, rest
}
