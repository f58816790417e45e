package certificates

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/kube"
)

// Hand-off to cert-manager. The GitOps payload (manifests/gitops/components/configs/
// certificates) has cert-manager Certificates for our two Secrets, with the same names,
// key type and ACME server, issued by the ClusterIssuer IssuerName. The Secrets this phase
// writes carry what cert-manager's re-issuance policy checks, so cert-manager takes them
// as already issued and orders nothing until they are due. The checks are the trigger
// chain of cert-manager v1.20.3 (the version the cert-manager Operator for Red Hat
// OpenShift runs), internal/controller/certificates/policies/policies.go
// NewTriggerPolicyChain, each in checks.go:
//
//   - SecretDoesNotExist, SecretIsMissingData, SecretPublicKeysDiffer: the Secret holds
//     tls.crt and tls.key of one key pair.
//   - SecretIssuerAnnotationsMismatch: cert-manager.io/issuer-name, -kind, -group name the
//     payload's ClusterIssuer. Without them the kind compares as "Issuer" and fails.
//   - SecretCertificateNameAnnotationsMismatch: cert-manager.io/certificate-name is the
//     Certificate's name (the same as the Secret's).
//   - SecretPrivateKeyMismatchesSpec: the key is ECDSA P-256 (lego's EC256), as the
//     Certificates' spec.privateKey says.
//   - SecretPublicKeyDiffersFromCurrentCertificateRequest: a Certificate that has never
//     issued has no status.revision, hence no current CertificateRequest: skipped.
//   - CurrentCertificateRequestMismatchesSpec: without a CertificateRequest it compares
//     the certificate with the spec (pki.FuzzyX509AltNamesMatchSpec): DNS names and
//     common name as a set equal to dnsNames; no IP, URI or e-mail names. Our one
//     certificate has both names, and so do both Certificates.
//   - CurrentCertificateNearingExpiry: the renewal time, two thirds into the lifetime by
//     default (pki.RenewalTime), is the moment our own rule (Decide) renews at, so a
//     certificate this phase keeps is never due for cert-manager either.
//
// Every check can be met: the hand-off costs no order. What cert-manager changes on first
// sight is metadata only (its issuing controller's post-issuance chain,
// NewSecretPostIssuancePolicyChain, wants its own field manager to own the annotations
// and the controller.cert-manager.io/fao label; it re-applies them without ordering).
// e2e/testbin builds a judge from those very packages; the e2e tests run it on our
// Secrets.
const (
	// IssuerName is the payload's ClusterIssuer.
	IssuerName = "rhoai-bootstrap-acme"

	// cert-manager's keys, pkg/apis/certmanager/v1/types.go.
	cmCertificateName = "cert-manager.io/certificate-name"
	cmIssuerName      = "cert-manager.io/issuer-name"
	cmIssuerKind      = "cert-manager.io/issuer-kind"
	cmIssuerGroup     = "cert-manager.io/issuer-group"
	cmCommonName      = "cert-manager.io/common-name"
	cmAltNames        = "cert-manager.io/alt-names"
	cmIPSANs          = "cert-manager.io/ip-sans"
	cmURISANs         = "cert-manager.io/uri-sans"
	// cmPartOfLabel marks Secrets cert-manager's controller caches in full
	// (PartOfCertManagerControllerLabelKey).
	cmPartOfLabel = "controller.cert-manager.io/fao"
	// cmManagerPrefix starts the field managers of cert-manager's controllers
	// (cert-manager-certificates-issuing writes the Secrets it issues).
	cmManagerPrefix = "cert-manager"
	// byCertManager marks ledger orders cert-manager made.
	byCertManager = "cert-manager"
)

var certificateGVK = kube.GVK("cert-manager.io/v1", "Certificate")

// secretRefs are our two Secrets; each has a cert-manager Certificate of the same name in
// the payload.
var secretRefs = [][2]string{{ConfigNS, APISecret}, {IngressNS, IngressSecret}}

// handOffMetadata is what cert-manager reads on a Secret it takes over: the annotations
// its trigger policies check (above) and the certificate details its issuing controller
// writes (internal/controller/certificates/secrets.go AnnotationsForCertificate, values
// as it encodes them: CSV, empty kept for common name, IP and URI names).
func handOffMetadata(certificate string, leaf *x509.Certificate) (map[string]string, error) {
	alt, err := joinCSV(leaf.DNSNames)
	if err != nil {
		return nil, err
	}
	ips := make([]string, len(leaf.IPAddresses))
	for i, ip := range leaf.IPAddresses {
		ips[i] = ip.String()
	}
	ipCSV, err := joinCSV(ips)
	if err != nil {
		return nil, err
	}
	uris := make([]string, len(leaf.URIs))
	for i, u := range leaf.URIs {
		uris[i] = u.String()
	}
	uriCSV, err := joinCSV(uris)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		cmCertificateName: certificate,
		cmIssuerName:      IssuerName,
		cmIssuerKind:      "ClusterIssuer",
		cmIssuerGroup:     "cert-manager.io",
		cmCommonName:      leaf.Subject.CommonName,
		cmAltNames:        alt,
		cmIPSANs:          ipCSV,
		cmURISANs:         uriCSV,
	}, nil
}

// joinCSV encodes values as one CSV record, as cert-manager's util.JoinWithEscapeCSV.
func joinCSV(values []string) (string, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write(values); err != nil {
		return "", fmt.Errorf("encoding %v: %w", values, err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return "", fmt.Errorf("encoding %v: %w", values, err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// HandOff lists the cert-manager Certificates found Ready for our Secrets and names.
type HandOff struct {
	// Certificates are "namespace/name" of the Ready ones, in secretRefs order.
	Certificates []string
	// RenewalTime is the earliest status.renewalTime among them (zero if unknown).
	RenewalTime time.Time
}

// complete reports whether every one of our Secrets has a Ready Certificate: only then
// does cert-manager renew all the bootstrap ordered.
func (h *HandOff) complete() bool { return h != nil && len(h.Certificates) == len(secretRefs) }

// readHandOff finds, for each of our Secrets, a cert-manager Certificate in its namespace
// that writes it (spec.secretName), names exactly our names and is Ready for its current
// generation. A cluster that does not serve cert-manager's API has none.
func readHandOff(ctx context.Context, c *kube.Clients, names []string) (*HandOff, error) {
	h := &HandOff{}
	for _, ref := range secretRefs {
		ri, err := c.Resource(certificateGVK, ref[0])
		if err != nil {
			if kube.IsNotServed(err) {
				return h, nil
			}
			return nil, err
		}
		list, err := ri.List(ctx, metav1.ListOptions{})
		if err != nil {
			if kube.IsNotServed(err) {
				return h, nil
			}
			return nil, fmt.Errorf("listing cert-manager Certificates in %s: %w", ref[0], err)
		}
		for i := range list.Items {
			crt := &list.Items[i]
			if ready, renew := certificateReady(crt, ref[1], names); ready {
				h.Certificates = append(h.Certificates, ref[0]+"/"+crt.GetName())
				if !renew.IsZero() && (h.RenewalTime.IsZero() || renew.Before(h.RenewalTime)) {
					h.RenewalTime = renew
				}
				break
			}
		}
	}
	return h, nil
}

// certificateReady reports whether crt writes secret for exactly names and its Ready
// condition is True for its current generation, and when cert-manager plans to renew it.
func certificateReady(crt *unstructured.Unstructured, secret string, names []string) (bool, time.Time) {
	if s, _, _ := unstructured.NestedString(crt.Object, "spec", "secretName"); s != secret {
		return false, time.Time{}
	}
	dns, _, _ := unstructured.NestedStringSlice(crt.Object, "spec", "dnsNames")
	if !SameNames(dns, names) {
		return false, time.Time{}
	}
	conds, _, _ := unstructured.NestedSlice(crt.Object, "status", "conditions")
	ready := slices.ContainsFunc(conds, func(c any) bool {
		m, _ := c.(map[string]any)
		gen, ok := m["observedGeneration"].(int64)
		return m["type"] == "Ready" && m["status"] == "True" && (!ok || gen == crt.GetGeneration())
	})
	var renew time.Time
	if s, _, _ := unstructured.NestedString(crt.Object, "status", "renewalTime"); s != "" {
		renew, _ = time.Parse(time.RFC3339, s)
	}
	return ready, renew
}

// managedByCertManager reports whether one of cert-manager's controllers has written to
// the Secret: from then on its content is cert-manager's.
func managedByCertManager(sec *corev1.Secret) bool {
	return slices.ContainsFunc(sec.ManagedFields, func(f metav1.ManagedFieldsEntry) bool {
		return strings.HasPrefix(f.Manager, cmManagerPrefix)
	})
}

// certManagerOrders returns the certificates cert-manager put in our Secrets that the
// ledger does not know yet, as orders to record: every order for these names counts
// against the same Let's Encrypt limit, whoever made it. An order's time is the
// certificate's notBefore (the ACME server's issuance time, give or take its backdating).
func certManagerOrders(ledger Ledger, secrets []*corev1.Secret, names []string, directory string) []Order {
	var out []Order
	for _, sec := range secrets {
		if sec == nil || sec.Annotations[cmIssuerName] != IssuerName || !managedByCertManager(sec) {
			continue
		}
		b := bundle{Key: sec.Data[corev1.TLSPrivateKeyKey], Chain: sec.Data[corev1.TLSCertKey]}
		leaf, issuers, err := b.parse()
		if err != nil || !SameNames(leaf.DNSNames, names) {
			continue
		}
		serial := serialOf(leaf)
		if ledger.has(serial, directory) || slices.ContainsFunc(out, func(o Order) bool { return o.Serial == serial }) {
			continue
		}
		o := Order{Time: leaf.NotBefore.UTC(), Names: leaf.DNSNames, Serial: serial, NotAfter: leaf.NotAfter.UTC(), Server: directory, By: byCertManager}
		if len(issuers) > 0 {
			o.Issuer = issuers[0].Subject.CommonName
		}
		out = append(out, o)
	}
	return out
}

// handOffRecord is what the state keeps of the hand-off: destroy must leave cert-manager's
// Secrets alone even after the Certificates are gone (the root application's cascade
// deletes them first).
type handOffRecord struct {
	Since        time.Time `json:"since"`
	Certificates []string  `json:"certificates"`
}

// renewRefusal is the error `certificates renew` gives once cert-manager renews.
func renewRefusal(h *HandOff) error {
	when := ""
	if !h.RenewalTime.IsZero() {
		when = " (next renewal " + stamp(h.RenewalTime) + ")"
	}
	var cmds []string
	for _, c := range h.Certificates {
		ns, name, _ := strings.Cut(c, "/")
		cmds = append(cmds, "cmctl renew -n "+ns+" "+name)
	}
	return fmt.Errorf("not renewing: cert-manager renews these certificates now, Certificates %s are Ready%s. "+
		"To renew now, ask cert-manager (%s); to order from the bootstrap anyway, run `rhoai-bootstrap certificates renew --force`",
		strings.Join(h.Certificates, " and "), when, strings.Join(cmds, "; "))
}
