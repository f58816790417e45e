package certificates

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
)

func TestLedger(t *testing.T) {
	prod, staging := configs.ACMEServers["letsencrypt"], configs.ACMEServers["letsencrypt-staging"]
	day := 24 * time.Hour
	var ledger Ledger
	for _, ago := range []time.Duration{6 * day, 5 * day, 3 * day, 2 * day, day} {
		ledger = append(ledger, Order{Time: testNow.Add(-ago), Names: testNames, Server: prod})
	}
	ledger = append(ledger,
		Order{Time: testNow.Add(-8 * day), Names: testNames, Server: prod}, // out of the window
		Order{Time: testNow.Add(-time.Hour), Names: testNames, Server: staging},
		Order{Time: testNow.Add(-time.Hour), Names: []string{"api.c.example.com"}, Server: prod})

	reordered := []string{"*.APPS.c.example.com", "api.c.example.com."}
	assert.Equal(t, 5, RecentOrders(ledger.ForServer(prod), reordered, testNow, RateWindow), "same set: order, case and a trailing dot do not matter")
	assert.Equal(t, 6, RecentOrders(ledger, testNames, testNow, RateWindow), "unfiltered, staging counts too")
	assert.Equal(t, 1, RecentOrders(ledger.ForServer(prod), []string{"api.c.example.com"}, testNow, RateWindow), "another set is another bucket")
	assert.Equal(t, 0, RecentOrders(nil, testNames, testNow, RateWindow))
	assert.Equal(t, testNow.Add(day), NextOrderAt(ledger.ForServer(prod), testNames, testNow, RateWindow, DuplicateLimit),
		"the order of 6 days ago leaves the window in a day")
	assert.Equal(t, testNow, NextOrderAt(ledger.ForServer(staging), testNames, testNow, RateWindow, DuplicateLimit))

	err := checkRateLimit(ledger, testNames, prod, testNow)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the next order is possible after 2026-11-29T12:00:00Z (in 24h00m)")
	assert.Contains(t, err.Error(), "letsencrypt-staging meanwhile")
	assert.NoError(t, checkRateLimit(ledger, testNames, prod, testNow.Add(day)), "a day later one order has left the window")
	assert.NoError(t, checkRateLimit(ledger, testNames, staging, testNow), "staging's limit is far away")
	assert.NoError(t, checkRateLimit(ledger, testNames, "https://acme.example.com/directory", testNow), "no known limit for a private server")
	assert.NoError(t, checkRateLimit(ledger[1:], testNames, prod, testNow), "4 of 5")

	ledger = append(ledger, Order{Serial: "abc", Server: staging})
	assert.True(t, ledger.has("abc", staging))
	assert.False(t, ledger.has("abc", prod))
	assert.True(t, ledger.fromOtherServer("abc", prod))
	assert.False(t, ledger.fromOtherServer("abc", staging))
	assert.False(t, ledger.fromOtherServer("def", prod), "unknown serial: a run killed before recording its order")
}

func TestNames(t *testing.T) {
	c := &configs.Cluster{Metadata: configs.ObjectMeta{Name: "dev"}, Spec: configs.ClusterSpec{BaseDomain: "example.com"}}
	assert.Equal(t, []string{"api.dev.example.com", "*.apps.dev.example.com"}, Names(c))
}
