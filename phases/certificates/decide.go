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

// Step is what the phase does about the certificate.
type Step string

// Steps.
const (
	// StepReuse keeps the served certificate.
	StepReuse Step = "reuse"
	// StepOrder orders a certificate: none usable is served (none, other names, expired,
	// not from the configured CA).
	StepOrder Step = "order"
	// StepRenew orders a successor of our own certificate: it is due, or --force.
	StepRenew Step = "renew"
	// StepInstallSaved installs the certificate an interrupted run ordered and saved
	// (acme/pending.pem) instead of ordering again.
	StepInstallSaved Step = "install-saved"
	// StepHandedOff stands down: cert-manager renews the certificates (handoff.go). The
	// phase records the hand-off and keeps only its ingress and API server patches.
	StepHandedOff Step = "handed-off"
)

// Facts are what the phase observed — the cluster's TLS secret, the saved certificate,
// the ledger, the ACME server's renewal information — reduced to what the decision needs.
// Gathering them is I/O (observe); deciding from them is Choose, which is pure.
type Facts struct {
	Now time.Time
	// Names are the names the certificate must carry; Directory the ACME server's URL.
	Names     []string
	Directory string
	Ledger    Ledger
	// Served is the leaf of the certificate in our TLS secret (nil: none, or unreadable).
	Served *x509.Certificate
	// ServedVerifies: its chain verifies up to the configured CA's roots.
	ServedVerifies bool
	// ServedSignedByIssuer: its signature checks against the first issuer in its chain
	// (what is left to check for a server whose roots we do not hold).
	ServedSignedByIssuer bool
	// SavedFile: acme/pending.pem exists; Saved is its leaf (nil: unreadable).
	SavedFile bool
	Saved     *x509.Certificate
	// RenewalWindow is the ACME server's renewal information for Served (nil: none
	// offered, or not asked: see NeedsRenewalInfo).
	RenewalWindow *Window
	// Force is `certificates renew --force`, not yet done in this process.
	Force bool
	// HandOff is what cert-manager's Certificates for our Secrets say (nil: none Ready).
	HandOff *HandOff
}

// Choice is what Choose decided.
type Choice struct {
	Step   Step
	Reason string
	// Decision is Decide's verdict on the served certificate.
	Decision Decision
	// DropSaved: the saved certificate is of no use (unreadable, other names, expired,
	// from another server, or installed already): its file is removed.
	DropSaved bool
}

// installed is the served certificate as Decide sees it. It comes "from the configured
// CA" when its chain verifies up to that CA's roots, or — for a server whose roots we do
// not hold — when the ledger says we ordered this serial from this server and its
// signature checks against its issuer.
func (f Facts) installed() *Installed {
	if f.Served == nil {
		return nil
	}
	ok := f.ServedVerifies || (f.Ledger.has(serialOf(f.Served), f.Directory) && f.ServedSignedByIssuer)
	return &Installed{Leaf: f.Served, ChainsToCA: ok}
}

// NeedsRenewalInfo reports whether the ACME server's renewal information could change
// the decision: only for a served certificate of ours that is otherwise fine.
func (f Facts) NeedsRenewalInfo() bool {
	cur := f.installed()
	return cur != nil && cur.ChainsToCA && SameNames(cur.Leaf.DNSNames, f.Names) && f.Now.Before(cur.Leaf.NotAfter)
}

// savedUsable reports whether the saved certificate is to be installed: ours (the ledger
// does not place it at another server; one it does not know at all is from a run killed
// between saving and recording it), for these names, not expired, not installed yet.
func (f Facts) savedUsable() bool {
	s := f.Saved
	switch {
	case s == nil, !SameNames(s.DNSNames, f.Names), !f.Now.Before(s.NotAfter), f.Ledger.fromOtherServer(serialOf(s), f.Directory):
		return false
	case f.Served != nil && serialOf(f.Served) == serialOf(s):
		return false // installed already; the run died before tidying up
	}
	return true
}

// Choose decides between reusing the served certificate, installing the one an
// interrupted run saved, ordering, renewing and standing down, from facts alone. In order:
//   - once cert-manager has a Ready Certificate for each of our Secrets and these names,
//     it renews them and the bootstrap stands down, whatever it would have decided
//     (`certificates renew --force` is the one way to order anyway);
//   - a usable saved certificate is installed: it was paid for with an order;
//   - else Decide's verdict on the served one: order when none usable is served, renew
//     when ours is due;
//   - else --force renews;
//   - else reuse.
func Choose(f Facts) Choice {
	d := Decide(f.Now, f.Names, f.installed(), f.RenewalWindow)
	usable := f.savedUsable()
	c := Choice{Decision: d, DropSaved: f.SavedFile && !usable}
	switch {
	case f.HandOff.complete() && !f.Force:
		c.Step, c.Reason = StepHandedOff, handedOffReason(f.Names, f.HandOff)
	case usable:
		c.Step, c.Reason = StepInstallSaved, "install certificate "+serialOf(f.Saved)+", ordered by an interrupted run"
	case d.Order && f.NeedsRenewalInfo():
		c.Step, c.Reason = StepRenew, d.Reason // ours, fine but due
	case d.Order:
		c.Step, c.Reason = StepOrder, d.Reason
	case f.Force && f.HandOff.complete():
		c.Step, c.Reason = StepRenew, "order: renewal forced (--force); "+handedOffReason(f.Names, f.HandOff)
	case f.Force:
		c.Step, c.Reason = StepRenew, "order: renewal forced (--force); "+d.Reason
	default:
		c.Step, c.Reason = StepReuse, d.Reason
	}
	return c
}

// handedOffReason says who renews what, in the words `plan` shows.
func handedOffReason(names []string, h *HandOff) string {
	reason := "handed-off: cert-manager renews " + strings.Join(normalNames(names), ", ") + " (Certificates " + strings.Join(h.Certificates, ", ") + " Ready"
	if !h.RenewalTime.IsZero() {
		reason += "; next renewal " + stamp(h.RenewalTime)
	}
	return reason + ")"
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
