package certificates

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecide(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	names := []string{"api.c.example.com", "*.apps.c.example.com"}
	cert := func(issued time.Time, days int, dns ...string) *x509.Certificate {
		if dns == nil {
			dns = []string{"*.apps.c.example.com", "api.c.example.com"}
		}
		return &x509.Certificate{NotBefore: issued, NotAfter: issued.Add(time.Duration(days) * 24 * time.Hour), DNSNames: dns}
	}
	ours := func(c *x509.Certificate) *Installed { return &Installed{Leaf: c, FromConfiguredCA: true} }
	cases := []struct {
		name  string
		cur   *Installed
		ari   *Window
		order bool
		want  string
	}{
		{"nothing installed", nil, nil, true, "order: no certificate installed"},
		{"names changed", ours(cert(now.Add(-24*time.Hour), 90, "api.old.example.com", "*.apps.old.example.com")), nil, true, "order: names changed"},
		{"wrong CA", &Installed{Leaf: cert(now.Add(-24*time.Hour), 90)}, nil, true, "not issued by the configured ACME server"},
		{"expired", ours(cert(now.Add(-91*24*time.Hour), 90)), nil, true, "expired"},
		{"fresh 90-day: reuse", ours(cert(now.Add(-19*24*time.Hour), 90)), nil, false, "reuse, due in 41 days"},
		{"a third left: due", ours(cert(now.Add(-61*24*time.Hour), 90)), nil, true, "less than a third"},
		{"45-day certificate, day 29: reuse", ours(cert(now.Add(-29*24*time.Hour), 45)), nil, false, "reuse, due in"},
		{"45-day certificate, day 31: due", ours(cert(now.Add(-31*24*time.Hour), 45)), nil, true, "less than a third"},
		{"ARI window ahead wins over the 1/3 rule", ours(cert(now.Add(-70*24*time.Hour), 90)), &Window{Start: now.Add(72 * time.Hour), End: now.Add(96 * time.Hour)}, false, "reuse, due in 3 days (renewal information"},
		{"ARI window open (early renewal, e.g. revocation)", ours(cert(now.Add(-2*24*time.Hour), 90)), &Window{Start: now.Add(-time.Hour), End: now.Add(time.Hour)}, true, "renewal window opened"},
		{"short-lived, hours left", ours(cert(now.Add(-3*24*time.Hour), 6)), nil, false, "reuse, due in 24h00m"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(now, names, tc.cur, tc.ari)
			assert.Equal(t, tc.order, d.Order, d.Reason)
			assert.Contains(t, d.Reason, tc.want)
		})
	}
}

func TestRateLimit(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	prod := "https://acme-v02.api.letsencrypt.org/directory"
	names := []string{"api.c.example.com", "*.apps.c.example.com"}
	var ledger []Order
	for i := range 5 {
		ledger = append(ledger, Order{Time: now.Add(-time.Duration(i+1) * 24 * time.Hour), Names: names, Server: prod})
	}
	n, oldest := RecentOrders(ledger, []string{"*.apps.c.example.com", "api.c.example.com"}, prod, now, RateWindow)
	assert.Equal(t, 5, n)
	assert.Equal(t, now.Add(-5*24*time.Hour), oldest)
	err := checkRateLimit(ledger, names, prod, now)
	require.ErrorContains(t, err, "next order is possible after 2026-11-30T12:00:00Z")
	assert.NoError(t, checkRateLimit(ledger, names, "https://acme-staging-v02.api.letsencrypt.org/directory", now), "staging has no such low limit")
	assert.NoError(t, checkRateLimit(ledger[:4], names, prod, now))
	assert.NoError(t, checkRateLimit(ledger, []string{"api.other.example.com"}, prod, now), "another name set is another bucket")
}
