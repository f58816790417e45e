package certificates

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Decision says whether to order a certificate, and why, in the words `plan` shows.
type Decision struct {
	Order  bool
	Reason string
	// DueAt is when the installed certificate becomes due (zero when ordering).
	DueAt time.Time
}

// Window is an ACME renewal information (ARI, RFC 9773) suggested renewal window.
type Window struct{ Start, End time.Time }

// Installed is the certificate the cluster serves, as read from our TLS secret.
type Installed struct {
	Leaf *x509.Certificate
	// ChainsToCA reports that the certificate comes from the configured ACME server: its
	// chain verifies up to one of that server's issuing roots, or — for a server whose
	// roots we do not have (Let's Encrypt staging, a private server whose caBundleFile
	// holds only its HTTPS CA) — our ledger says we ordered this very serial from it and
	// its signature checks against the issuer in the chain.
	ChainsToCA bool
}

// Decide chooses between reusing the installed certificate and ordering a new one. It is
// pure, so the whole policy is in one table test:
//   - no certificate, other names, another CA, or expired: order;
//   - the ACME server offers renewal information (ARI): due when its window opens. We take
//     the start of the window rather than a random moment in it: RFC 9773 randomises to
//     spread a fleet of clients that wake up often; a bootstrap run is rare and
//     human-scheduled, and one that finds itself inside the window should renew now;
//   - otherwise: due when less than a third of the lifetime is left (Let's Encrypt's own
//     advice, which holds for 90-, 64- and 45-day and for short-lived certificates alike).
func Decide(now time.Time, want []string, cur *Installed, ari *Window) Decision {
	switch {
	case cur == nil || cur.Leaf == nil:
		return Decision{Order: true, Reason: "order: no certificate installed"}
	case !SameNames(cur.Leaf.DNSNames, want):
		return Decision{Order: true, Reason: fmt.Sprintf("order: names changed (%s → %s)",
			strings.Join(normalNames(cur.Leaf.DNSNames), ", "), strings.Join(normalNames(want), ", "))}
	case !now.Before(cur.Leaf.NotAfter):
		return Decision{Order: true, Reason: "order: the installed certificate expired " + stamp(cur.Leaf.NotAfter)}
	case !cur.ChainsToCA:
		return Decision{Order: true, Reason: "order: the installed certificate does not chain to the configured ACME server's CA"}
	}
	if ari != nil && !ari.Start.IsZero() {
		if !now.Before(ari.Start) {
			return Decision{Order: true, Reason: "order: due (the ACME server's renewal window opened " + stamp(ari.Start) + ")"}
		}
		return Decision{Reason: "reuse, due in " + human(ari.Start.Sub(now)) + " (ACME renewal information)", DueAt: ari.Start}
	}
	lifetime := cur.Leaf.NotAfter.Sub(cur.Leaf.NotBefore)
	due := cur.Leaf.NotAfter.Add(-lifetime / 3)
	if !now.Before(due) {
		return Decision{Order: true, Reason: "order: due (less than a third of its lifetime left; expires " + stamp(cur.Leaf.NotAfter) + ")"}
	}
	return Decision{Reason: "reuse, due in " + human(due.Sub(now)), DueAt: due}
}

// trust is the set of issuing roots certificates from the configured ACME server must
// chain to.
type trust struct {
	// roots is nil when we have no roots for the server (Let's Encrypt staging).
	roots *x509.CertPool
	// organization, when set, is required in the root's subject: Let's Encrypt's roots sit
	// in the system pool among every other public CA's.
	organization string
}

// verify returns the root the leaf chains up to through intermediates, or nil. Expiry is
// Decide's business, so the chain is judged at a moment inside the leaf's validity.
func (t trust) verify(leaf *x509.Certificate, intermediates []*x509.Certificate, now time.Time) *x509.Certificate {
	if t.roots == nil || leaf == nil {
		return nil
	}
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	at := now
	if !at.Before(leaf.NotAfter) {
		at = leaf.NotAfter.Add(-time.Second)
	}
	if at.Before(leaf.NotBefore) {
		at = leaf.NotBefore
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: t.roots, Intermediates: pool, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return nil
	}
	for _, chain := range chains {
		root := chain[len(chain)-1]
		if t.organization == "" || slices.Contains(root.Subject.Organization, t.organization) {
			return root
		}
	}
	return nil
}

// normalNames lower-cases, sorts and de-duplicates DNS names: Let's Encrypt counts "the
// same set of names" that way.
func normalNames(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToLower(strings.TrimSuffix(n, "."))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// SameNames reports whether two lists name the same set of DNS names.
func SameNames(a, b []string) bool { return slices.Equal(normalNames(a), normalNames(b)) }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// human renders a duration as days, or hours and minutes below two days.
func human(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return d.Round(time.Second).String()
}
