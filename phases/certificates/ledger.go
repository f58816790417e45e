package certificates

import (
	"fmt"
	"time"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
)

// Order is one certificate the bootstrap obtained; the ledger keeps every one.
type Order struct {
	Time     time.Time `json:"time"`
	Names    []string  `json:"names"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"notAfter"`
	Server   string    `json:"server"`
	// IssuerSubject names the issuing CA, for people reading the state.
	IssuerSubject string `json:"issuer,omitempty"`
}

// RateWindow and the production limit: Let's Encrypt issues at most 5 certificates per
// exact set of names per 7 days ("duplicate certificate" limit).
const (
	RateWindow      = 168 * time.Hour
	productionLimit = 5
)

// limitFor is the per-name-set weekly limit of a server (0: none we know of).
func limitFor(server string) int {
	if server == configs.ACMEServers["letsencrypt"] {
		return productionLimit
	}
	return 0
}

// RecentOrders counts ledger orders for exactly these names at this server in the window.
func RecentOrders(ledger []Order, names []string, server string, now time.Time, window time.Duration) (n int, oldest time.Time) {
	for _, o := range ledger {
		if o.Server == server && sameNames(o.Names, names) && now.Sub(o.Time) < window {
			if n == 0 || o.Time.Before(oldest) {
				oldest = o.Time
			}
			n++
		}
	}
	return n, oldest
}

// checkRateLimit refuses an order that would go over the server's weekly limit.
func checkRateLimit(ledger []Order, names []string, server string, now time.Time) error {
	limit := limitFor(server)
	if limit == 0 {
		return nil
	}
	n, oldest := RecentOrders(ledger, names, server, now, RateWindow)
	if n >= limit {
		return fmt.Errorf("not ordering: %d certificates for these names in the last 7 days already (Let's Encrypt allows %d); the next order is possible after %s — use letsencrypt-staging meanwhile",
			n, limit, oldest.Add(RateWindow).UTC().Format(time.RFC3339))
	}
	return nil
}

// RateLimitWarning lets preflight warn before a run would hit the limit.
func RateLimitWarning(env *phases.Env) func(*installer.Scope) string {
	return func(s *installer.Scope) string {
		ct := env.Cluster.Spec.Certificates
		if ct == nil {
			return ""
		}
		server := ct.ACME.ACMEDirectory()
		limit := limitFor(server)
		if limit == 0 {
			return ""
		}
		var ledger []Order
		_, _ = s.Lookup(Name, "ledger", &ledger)
		n, oldest := RecentOrders(ledger, Names(env.Cluster), server, time.Now(), RateWindow)
		if n >= limit-1 {
			return fmt.Sprintf("certificates: %d of %d Let's Encrypt orders for these names used in the last 7 days (the oldest frees up %s)", n, limit, oldest.Add(RateWindow).UTC().Format(time.RFC3339))
		}
		return ""
	}
}

// Names are the certificate's DNS names: the API and the apps wildcard, in one order.
func Names(c *configs.Cluster) []string {
	return []string{c.APIHost(), "*." + c.AppsDomain()}
}
