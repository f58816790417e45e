package certificates

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	testNow   = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	testNames = []string{"api.c.example.com", "*.apps.c.example.com"}
)

func TestDecide(t *testing.T) {
	day := 24 * time.Hour
	cert := func(issued time.Time, days int, dns ...string) *x509.Certificate {
		if dns == nil {
			dns = []string{"*.apps.c.example.com", "api.c.example.com"}
		}
		return &x509.Certificate{NotBefore: issued, NotAfter: issued.Add(time.Duration(days) * day), DNSNames: dns}
	}
	ours := func(c *x509.Certificate) *Installed { return &Installed{Leaf: c, ChainsToCA: true} }
	cases := []struct {
		name  string
		cur   *Installed
		ari   *Window
		order bool
		want  string
	}{
		{"missing", nil, nil, true, "order: no certificate installed"},
		{"unreadable secret counts as missing", &Installed{}, nil, true, "order: no certificate installed"},
		{"names changed", ours(cert(testNow.Add(-day), 90, "api.old.example.com", "*.apps.old.example.com")), nil, true,
			"order: names changed (*.apps.old.example.com, api.old.example.com → *.apps.c.example.com, api.c.example.com)"},
		{"one name more is another set", ours(cert(testNow.Add(-day), 90, "api.c.example.com")), nil, true, "order: names changed"},
		{"same names, other case and order", ours(cert(testNow.Add(-19*day), 90, "API.c.example.com", "*.apps.C.example.com")), nil, false, "reuse, due in 41 days"},
		{"wrong CA", &Installed{Leaf: cert(testNow.Add(-day), 90)}, nil, true, "does not chain to the configured ACME server's CA"},
		{"expired", ours(cert(testNow.Add(-91*day), 90)), nil, true, "order: the installed certificate expired 2026-11-27T12:00:00Z"},
		{"expired, even with an ARI window ahead", ours(cert(testNow.Add(-91*day), 90)), &Window{Start: testNow.Add(day)}, true, "expired"},
		{"1/3 rule: fresh 90-day certificate", ours(cert(testNow.Add(-19*day), 90)), nil, false, "reuse, due in 41 days"},
		{"1/3 rule: exactly a third left", ours(cert(testNow.Add(-60*day), 90)), nil, true, "less than a third of its lifetime left"},
		{"1/3 rule: 64-day certificate (Feb 2027), day 42", ours(cert(testNow.Add(-42*day), 64)), nil, false, "reuse, due in"},
		{"1/3 rule: 64-day certificate, day 43", ours(cert(testNow.Add(-43*day), 64)), nil, true, "less than a third"},
		{"1/3 rule: 45-day certificate (Feb 2028), day 29", ours(cert(testNow.Add(-29*day), 45)), nil, false, "reuse, due in 24h00m"},
		{"1/3 rule: 45-day certificate, day 31", ours(cert(testNow.Add(-31*day), 45)), nil, true, "less than a third"},
		{"1/3 rule: 6-day short-lived, 3 days in", ours(cert(testNow.Add(-3*day), 6)), nil, false, "reuse, due in 24h00m"},
		{"ARI window ahead wins over the 1/3 rule", ours(cert(testNow.Add(-70*day), 90)), &Window{Start: testNow.Add(3 * day), End: testNow.Add(4 * day)}, false,
			"reuse, due in 3 days (ACME renewal information)"},
		{"ARI window open: early renewal (e.g. the CA will revoke)", ours(cert(testNow.Add(-2*day), 90)), &Window{Start: testNow.Add(-time.Hour), End: testNow.Add(time.Hour)}, true,
			"order: due (the ACME server's renewal window opened 2026-11-28T11:00:00Z)"},
		{"ARI window starting right now", ours(cert(testNow.Add(-2*day), 90)), &Window{Start: testNow, End: testNow.Add(time.Hour)}, true, "renewal window opened"},
		{"empty ARI window falls back to the 1/3 rule", ours(cert(testNow.Add(-19*day), 90)), &Window{}, false, "reuse, due in 41 days"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(testNow, testNames, tc.cur, tc.ari)
			assert.Equal(t, tc.order, d.Order, d.Reason)
			assert.Contains(t, d.Reason, tc.want)
			if !d.Order {
				assert.True(t, d.DueAt.After(testNow), "a reused certificate has a due date ahead")
			}
		})
	}
}

// testCA is a root and an intermediate that sign leaves, like an ACME CA.
type testCA struct {
	root, inter       *x509.Certificate
	rootKey, interKey crypto.Signer
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

var serial int64 = 100

func sign(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return c
}

func newCA(t *testing.T, org string) *testCA {
	t.Helper()
	ca := &testCA{rootKey: newKey(t), interKey: newKey(t)}
	ca.root = sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: org + " Root", Organization: []string{org}},
		NotBefore: testNow.Add(-365 * 24 * time.Hour), NotAfter: testNow.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, ca.rootKey.Public(), ca.rootKey)
	ca.inter = sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: org + " Intermediate", Organization: []string{org}},
		NotBefore: testNow.Add(-365 * 24 * time.Hour), NotAfter: testNow.Add(5 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, ca.root, ca.interKey.Public(), ca.rootKey)
	return ca
}

// issue returns a bundle (leaf + intermediate) for names, valid from issued for days.
func (ca *testCA) issue(t *testing.T, issued time.Time, days int, names ...string) bundle {
	t.Helper()
	key := newKey(t)
	leaf := sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: issued, NotAfter: issued.Add(time.Duration(days) * 24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca.inter, key.Public(), ca.interKey)
	der, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return bundle{
		Key:   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
		Chain: append(pemCert(leaf), pemCert(ca.inter)...),
	}
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.root)
	return p
}

func TestTrustVerify(t *testing.T) {
	ours, other := newCA(t, "Our ACME CA"), newCA(t, "Someone Else")
	good := ours.issue(t, testNow.Add(-24*time.Hour), 90, testNames...)
	leaf, issuers, err := good.parse()
	require.NoError(t, err)

	root := trust{roots: ours.pool()}.verify(leaf, issuers, testNow)
	require.NotNil(t, root)
	assert.Equal(t, ours.root.Raw, root.Raw, "the root is the anchor from the configured pool")

	assert.Nil(t, trust{roots: other.pool()}.verify(leaf, issuers, testNow), "another CA's roots")
	assert.Nil(t, trust{}.verify(leaf, issuers, testNow), "no roots known (Let's Encrypt staging)")
	assert.Nil(t, trust{roots: ours.pool()}.verify(leaf, nil, testNow), "the chain lacks its intermediate")

	both := ours.pool()
	both.AddCert(other.root)
	assert.NotNil(t, trust{roots: both, organization: "Our ACME CA"}.verify(leaf, issuers, testNow))
	assert.Nil(t, trust{roots: both, organization: "Internet Security Research Group"}.verify(leaf, issuers, testNow),
		"a publicly trusted root of another organization is not Let's Encrypt")

	expired := ours.issue(t, testNow.Add(-100*24*time.Hour), 90, testNames...)
	el, ei, err := expired.parse()
	require.NoError(t, err)
	assert.NotNil(t, trust{roots: ours.pool()}.verify(el, ei, testNow), "expiry is Decide's business, not the chain's")
	assert.True(t, Decide(testNow, testNames, &Installed{Leaf: el, ChainsToCA: true}, nil).Order)
}
