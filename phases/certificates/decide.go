package certificates

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Decision says whether to order a certificate, and why, in words `plan` shows.
type Decision struct {
	Order  bool
	Reason string
	// DueAt is when the installed certificate becomes due (zero when ordering).
	DueAt time.Time
}

// Window is an ACME renewal information (ARI, RFC 9773) suggested window.
type Window struct{ Start, End time.Time }

// Installed is what the cluster serves, as read from our TLS secret.
type Installed struct {
	Leaf *x509.Certificate
	// FromConfiguredCA: our ledger says this serial was issued by the configured ACME
	// server, and the leaf's signature checks against the issuer in the secret's chain.
	FromConfiguredCA bool
}

// Decide chooses between reusing the installed certificate and ordering a new one:
//   - no certificate, other names, another CA, or expired: order;
//   - the ACME server offers renewal information: due when its window opens (we take the
//     start of the window rather than a random moment in it: a bootstrap run is a rare,
//     human-scheduled event, not a fleet of clients to spread out);
//   - otherwise due when less than a third of the lifetime is left (Let's Encrypt's own
//     advice, and safe for 90-, 64- and 45-day certificates alike).
func Decide(now time.Time, want []string, cur *Installed, ari *Window) Decision {
	switch {
	case cur == nil || cur.Leaf == nil:
		return Decision{Order: true, Reason: "order: no certificate installed"}
	case !sameNames(cur.Leaf.DNSNames, want):
		return Decision{Order: true, Reason: fmt.Sprintf("order: names changed (%s → %s)", strings.Join(sorted(cur.Leaf.DNSNames), ", "), strings.Join(sorted(want), ", "))}
	case !cur.FromConfiguredCA:
		return Decision{Order: true, Reason: "order: the installed certificate was not issued by the configured ACME server"}
	case !now.Before(cur.Leaf.NotAfter):
		return Decision{Order: true, Reason: "order: the installed certificate expired " + cur.Leaf.NotAfter.UTC().Format(time.RFC3339)}
	}
	if ari != nil && !ari.Start.IsZero() {
		if !now.Before(ari.Start) {
			return Decision{Order: true, Reason: "order: due (the ACME server's renewal window opened " + ari.Start.UTC().Format(time.RFC3339) + ")"}
		}
		return Decision{Reason: "reuse, due in " + human(ari.Start.Sub(now)) + " (renewal information from the ACME server)", DueAt: ari.Start}
	}
	lifetime := cur.Leaf.NotAfter.Sub(cur.Leaf.NotBefore)
	due := cur.Leaf.NotAfter.Add(-lifetime / 3)
	if !now.Before(due) {
		return Decision{Order: true, Reason: "order: due (less than a third of its lifetime left)"}
	}
	return Decision{Reason: "reuse, due in " + human(due.Sub(now)), DueAt: due}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func sameNames(a, b []string) bool { return slices.Equal(sorted(a), sorted(b)) }

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
