package certificates

import (
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestChoose is the phase's whole order / reuse / renew / install-saved policy, from
// observed facts alone.
func TestChoose(t *testing.T) {
	const here, elsewhere = "https://acme.example/dir", "https://other.example/dir"
	day := 24 * time.Hour
	next := int64(1000)
	leaf := func(issued time.Time, days int, dns ...string) *x509.Certificate {
		next++
		if dns == nil {
			dns = []string{"api.c.example.com", "*.apps.c.example.com"}
		}
		return &x509.Certificate{SerialNumber: big.NewInt(next), NotBefore: issued, NotAfter: issued.Add(time.Duration(days) * day), DNSNames: dns}
	}
	fresh := leaf(testNow.Add(-10*day), 90)
	due := leaf(testNow.Add(-70*day), 90)
	expired := leaf(testNow.Add(-91*day), 90)
	otherNames := leaf(testNow.Add(-day), 90, "api.old.example.com")
	saved := leaf(testNow.Add(-time.Hour), 90)
	orderOf := func(c *x509.Certificate, server string) Order {
		return Order{Serial: serialOf(c), Server: server, Names: c.DNSNames, NotAfter: c.NotAfter}
	}
	both := &HandOff{Certificates: []string{"openshift-config/rhoai-bootstrap-api-tls", "openshift-ingress/rhoai-bootstrap-ingress-tls"}, RenewalTime: testNow.Add(59 * day)}
	one := &HandOff{Certificates: []string{"openshift-config/rhoai-bootstrap-api-tls"}}
	base := func(mod func(*Facts)) Facts {
		f := Facts{Now: testNow, Names: testNames, Directory: here}
		mod(&f)
		return f
	}
	cases := []struct {
		name      string
		facts     Facts
		step      Step
		reason    string
		dropSaved bool
		ari       bool // NeedsRenewalInfo
	}{
		{"nothing served", base(func(*Facts) {}), StepOrder, "order: no certificate installed", false, false},
		{"ours, fresh, roots verify", base(func(f *Facts) { f.Served, f.ServedVerifies = fresh, true }), StepReuse, "reuse, due in 50 days", false, true},
		{"ours, due by lifetime", base(func(f *Facts) { f.Served, f.ServedVerifies = due, true }), StepRenew, "less than a third of its lifetime left", false, true},
		{"ours, the renewal window opened", base(func(f *Facts) {
			f.Served, f.ServedVerifies, f.RenewalWindow = fresh, true, &Window{Start: testNow.Add(-time.Hour)}
		}), StepRenew, "renewal window opened", false, true},
		{"ours by the ledger (no roots held: staging)", base(func(f *Facts) {
			f.Served, f.ServedSignedByIssuer, f.Ledger = fresh, true, Ledger{orderOf(fresh, here)}
		}), StepReuse, "reuse", false, true},
		{"in the ledger, but the signature does not check", base(func(f *Facts) {
			f.Served, f.Ledger = fresh, Ledger{orderOf(fresh, here)}
		}), StepOrder, "does not chain to the configured ACME server's CA", false, false},
		{"ordered from another server (staging → production)", base(func(f *Facts) {
			f.Served, f.ServedSignedByIssuer, f.Ledger = fresh, true, Ledger{orderOf(fresh, elsewhere)}
		}), StepOrder, "does not chain", false, false},
		{"someone else's certificate", base(func(f *Facts) { f.Served, f.ServedSignedByIssuer = fresh, true }), StepOrder, "does not chain", false, false},
		{"expired", base(func(f *Facts) { f.Served, f.ServedVerifies = expired, true }), StepOrder, "expired", false, false},
		{"other names", base(func(f *Facts) { f.Served, f.ServedVerifies = otherNames, true }), StepOrder, "names changed", false, false},

		{"saved by an interrupted run, nothing served", base(func(f *Facts) {
			f.SavedFile, f.Saved, f.Ledger = true, saved, Ledger{orderOf(saved, here)}
		}), StepInstallSaved, "install certificate " + serialOf(saved) + ", ordered by an interrupted run", false, false},
		{"saved renewal beats a due served certificate", base(func(f *Facts) {
			f.Served, f.ServedVerifies, f.SavedFile, f.Saved = due, true, true, saved
		}), StepInstallSaved, "ordered by an interrupted run", false, true},
		{"saved but not yet in the ledger (killed between saving and recording)", base(func(f *Facts) {
			f.SavedFile, f.Saved = true, saved
		}), StepInstallSaved, "install certificate", false, false},
		{"saved and installed already: tidy up", base(func(f *Facts) {
			f.Served, f.ServedVerifies, f.SavedFile, f.Saved = saved, true, true, saved
		}), StepReuse, "reuse", true, true},
		{"saved but expired", base(func(f *Facts) { f.SavedFile, f.Saved = true, expired }), StepOrder, "no certificate installed", true, false},
		{"saved for other names", base(func(f *Facts) { f.SavedFile, f.Saved = true, otherNames }), StepOrder, "no certificate installed", true, false},
		{"saved from another server", base(func(f *Facts) {
			f.SavedFile, f.Saved, f.Ledger = true, saved, Ledger{orderOf(saved, elsewhere)}
		}), StepOrder, "no certificate installed", true, false},
		{"saved file unreadable", base(func(f *Facts) {
			f.Served, f.ServedVerifies, f.SavedFile = fresh, true, true
		}), StepReuse, "reuse", true, true},

		{"--force renews a fresh certificate", base(func(f *Facts) { f.Served, f.ServedVerifies, f.Force = fresh, true, true }), StepRenew,
			"order: renewal forced (--force); reuse, due in 50 days", false, true},
		{"--force installs a saved one rather than ordering twice", base(func(f *Facts) {
			f.Force, f.SavedFile, f.Saved = true, true, saved
		}), StepInstallSaved, "ordered by an interrupted run", false, false},
		{"--force when an order is due anyway says why", base(func(f *Facts) { f.Force = true }), StepOrder, "order: no certificate installed", false, false},

		{"handed off: cert-manager's, whatever the served certificate", base(func(f *Facts) {
			f.Served, f.ServedVerifies, f.HandOff = fresh, true, both
		}), StepHandedOff, "handed-off: cert-manager renews *.apps.c.example.com, api.c.example.com (Certificates openshift-config/rhoai-bootstrap-api-tls, openshift-ingress/rhoai-bootstrap-ingress-tls Ready; next renewal 2027-01-26T12:00:00Z)", false, true},
		{"handed off and due: cert-manager's business", base(func(f *Facts) { f.Served, f.ServedVerifies, f.HandOff = due, true, both }), StepHandedOff, "handed-off", false, true},
		{"handed off, nothing readable served", base(func(f *Facts) { f.HandOff = both }), StepHandedOff, "handed-off", false, false},
		{"handed off beats a saved certificate (kept for --force)", base(func(f *Facts) { f.SavedFile, f.Saved, f.HandOff = true, saved, both }), StepHandedOff, "handed-off", false, false},
		{"one Certificate Ready only: the bootstrap still renews", base(func(f *Facts) { f.Served, f.ServedVerifies, f.HandOff = due, true, one }), StepRenew, "less than a third", false, true},
		{"--force orders even when handed off", base(func(f *Facts) { f.Served, f.ServedVerifies, f.HandOff, f.Force = fresh, true, both, true }), StepRenew,
			"order: renewal forced (--force); handed-off", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Choose(tc.facts)
			assert.Equal(t, tc.step, c.Step, c.Reason)
			assert.Contains(t, c.Reason, tc.reason)
			assert.Equal(t, tc.dropSaved, c.DropSaved, "drop the saved file")
			assert.Equal(t, tc.ari, tc.facts.NeedsRenewalInfo(), "ask for renewal information")
		})
	}
}
