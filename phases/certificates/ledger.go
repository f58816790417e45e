package certificates

import (
	"fmt"
	"slices"
	"time"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
)

// Order is one certificate the bootstrap obtained. It holds only public facts.
type Order struct {
	Time     time.Time `json:"time"`
	Names    []string  `json:"names"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"notAfter"`
	// Server is the ACME directory URL the certificate came from.
	Server string `json:"server"`
	// Issuer names the issuing CA, for people reading the state.
	Issuer string `json:"issuer,omitempty"`
	// By is "cert-manager" for a certificate cert-manager ordered after the hand-off
	// (empty: the bootstrap's own). Both count against the same rate limit.
	By string `json:"by,omitempty"`
}

// Ledger is every order the bootstrap made for a cluster, oldest first. It lives in the
// state (Record.Ledger) and outlives destroy: rate limits outlive clusters.
type Ledger []Order

// ReadLedger reads the ledger from any phase's scope (preflight uses it to warn).
func ReadLedger(s *installer.Scope) (Ledger, error) {
	rec, err := installer.Load[Record](s)
	return rec.Ledger, err
}

// ForServer keeps the orders made at one ACME directory: each server has its own limits.
func (l Ledger) ForServer(directory string) Ledger {
	var out Ledger
	for _, o := range l {
		if o.Server == directory {
			out = append(out, o)
		}
	}
	return out
}

// has reports whether the ledger records this serial from this server.
func (l Ledger) has(serial, directory string) bool {
	return slices.ContainsFunc(l, func(o Order) bool { return o.Serial == serial && o.Server == directory })
}

// ours reports whether the bootstrap itself ordered this serial from this server.
func (l Ledger) ours(serial, directory string) bool {
	return slices.ContainsFunc(l, func(o Order) bool { return o.Serial == serial && o.Server == directory && o.By == "" })
}

// fromOtherServer reports whether the ledger records this serial from another server
// only (the server was changed after a run was killed holding a pending certificate). A
// serial the ledger does not know at all is a run killed between saving the certificate
// and recording it: that one is ours.
func (l Ledger) fromOtherServer(serial, directory string) bool {
	known := slices.ContainsFunc(l, func(o Order) bool { return o.Serial == serial })
	return known && !l.has(serial, directory)
}

// RateWindow and DuplicateLimit are Let's Encrypt's "duplicate certificate" limit: at most
// 5 certificates for the exact same set of names per 7 days.
const (
	RateWindow     = 168 * time.Hour
	DuplicateLimit = 5
)

// RecentOrders counts the ledger's orders for exactly this set of names (in any order or
// case) in the window before now. Filter with ForServer first: limits are per server.
func RecentOrders(ledger Ledger, names []string, now time.Time, window time.Duration) int {
	return len(recent(ledger, names, now, window))
}

// recent returns the times of the matching orders in the window, oldest first.
func recent(ledger Ledger, names []string, now time.Time, window time.Duration) []time.Time {
	var out []time.Time
	for _, o := range ledger {
		if SameNames(o.Names, names) && now.Sub(o.Time) < window {
			out = append(out, o.Time)
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// NextOrderAt is when an order for these names fits under limit again (now when it does).
func NextOrderAt(ledger Ledger, names []string, now time.Time, window time.Duration, limit int) time.Time {
	times := recent(ledger, names, now, window)
	if len(times) < limit {
		return now
	}
	// The order that has to leave the window for one to be free again.
	return times[len(times)-limit].Add(window)
}

// limitFor is the duplicate-certificate limit of an ACME server (0: none we know of). Only
// Let's Encrypt's production limit is low enough to matter; staging's is thousands.
func limitFor(directory string) int {
	if directory == configs.ACMEServers["letsencrypt"] {
		return DuplicateLimit
	}
	return 0
}

// checkRateLimit refuses an order that Let's Encrypt would refuse anyway, before spending
// a DNS round trip on it, and says when the next one is possible.
func checkRateLimit(ledger Ledger, names []string, directory string, now time.Time) error {
	limit := limitFor(directory)
	if limit == 0 {
		return nil
	}
	l := ledger.ForServer(directory)
	if n := RecentOrders(l, names, now, RateWindow); n >= limit {
		next := NextOrderAt(l, names, now, RateWindow, limit)
		return fmt.Errorf("not ordering: the ledger shows %d certificates for %v in the last 7 days and Let's Encrypt allows %d; the next order is possible after %s (in %s) — set spec.certificates.acme.server to letsencrypt-staging meanwhile",
			n, normalNames(names), limit, stamp(next), human(next.Sub(now)))
	}
	return nil
}

// RateLimitWarning lets preflight warn when the next order would be the last one the
// production limit allows, or over it.
func RateLimitWarning(env *phases.Env) func(*installer.Scope) string {
	return func(s *installer.Scope) string {
		ct := env.Cluster.Spec.Certificates
		if ct == nil {
			return ""
		}
		dir := ct.ACME.ACMEDirectory()
		limit := limitFor(dir)
		if limit == 0 {
			return ""
		}
		ledger, err := ReadLedger(s)
		if err != nil {
			return ""
		}
		l, names, now := ledger.ForServer(dir), Names(env.Cluster), time.Now()
		times := recent(l, names, now, RateWindow)
		switch n := len(times); {
		case n >= limit:
			return fmt.Sprintf("certificates: %d of %d Let's Encrypt orders for these names used in the last 7 days: a new order is refused until %s",
				n, limit, stamp(NextOrderAt(l, names, now, RateWindow, limit)))
		case n == limit-1:
			return fmt.Sprintf("certificates: %d of %d Let's Encrypt orders for these names used in the last 7 days: one left until %s",
				n, limit, stamp(times[0].Add(RateWindow)))
		}
		return ""
	}
}

// Names are the certificate's DNS names: the API host and the apps wildcard, in one
// certificate (see the package documentation for why one).
func Names(c *configs.Cluster) []string {
	return []string{c.APIHost(), "*." + c.AppsDomain()}
}
