package simulator

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/lego"
	r53provider "github.com/go-acme/lego/v5/providers/dns/route53"
	olmv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

// The simulated ACME issuer of CertificateRequests: what cert-manager v1.20.3's
// certificaterequests-issuer-acme (pkg/controller/certificaterequests/acme/acme.go Sign),
// acmeorders (pkg/controller/acmeorders/sync.go) and acmechallenges
// (pkg/controller/acmechallenges/sync.go) controllers achieve together for a
// CertificateRequest whose issuerRef is an ACME ClusterIssuer, with lego doing the ACME
// protocol:
//
//   - only an approved request is signed (cert-manager's issuers wait for Approved=True;
//     the approver, cert-manager's own, runs in cmjudge), and a denied, issued or failed
//     one is left alone;
//   - the order is for the CSR in spec.request, from spec.acme.server as the account the
//     ClusterIssuer registered (status.acme.uri, its key in privateKeySecretRef);
//   - DNS-01 through the issuer's first route53 solver (hostedZoneID, region), with the
//     cert-manager operator's ambient credentials — the Secret its Subscription names in
//     CLOUD_CREDENTIALS_SECRET_NAME, in cert-manager's namespace (openshift/
//     cert-manager-operator docs/cloud_credentials.md), made by the cloud-credential
//     operator from the payload's CredentialsRequest — or the solver's own
//     accessKeyID/secretAccessKeySecretRef. Route53 is reached at Options.AWSEndpoint,
//     where the bed publishes TXT records in the DNS Pebble asks;
//   - before asking the server to validate, the TXT record is looked up on the recursive
//     nameservers only (cert-manager's --dns01-recursive-nameservers with
//     --dns01-recursive-nameservers-only; pkg/issuer/acme/dns/util/wait.go), here
//     Options.DNSResolver;
//   - the result goes into status.certificate (the chain the server returned; ACME gives
//     no separate CA, so status.ca stays empty and the Secret gets no ca.crt) with
//     Ready=True Issued "Certificate fetched from issuer successfully"
//     (pkg/controller/certificaterequests/util/reporter.go Ready); a failed order is
//     Ready=False Failed with status.failureTime (Reporter.Failed), which the issuing
//     controller turns into a failed issuance that the trigger retries after its backoff.
//
// Not made: the Order and Challenge objects cert-manager keeps while it works. Every
// order is written in a ledger (ACMEOrders); a request is never ordered twice, even
// when writing its status fails.

// ACMEOrder is one certificate the simulated ACME issuer ordered.
type ACMEOrder struct {
	// Certificate and Request are namespace/name of the Certificate and its
	// CertificateRequest.
	Certificate, Request string
	Names                []string
	Serial               string
	Server               string
	Time                 time.Time
}

const mgrACMEIssuer = "cert-manager-certificaterequests-issuer-acme"

// ACMEOrders is the ledger of every order the simulated cert-manager placed.
func (s *Simulator) ACMEOrders() []ACMEOrder {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ACMEOrder, 0, len(s.orders))
	for _, o := range s.orders {
		out = append(out, o.ACMEOrder)
	}
	slices.SortFunc(out, func(a, b ACMEOrder) int { return a.Time.Compare(b.Time) })
	return out
}

// signedOrder is a ledger entry with the chain, kept until the request's status holds it.
type signedOrder struct {
	ACMEOrder
	chain []byte
}

// syncCertificateRequest signs one CertificateRequest (key namespace/name) if it is the
// simulated ACME issuer's to sign.
func (s *Simulator) syncCertificateRequest(ctx context.Context, key string) (time.Duration, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return 0, nil
	}
	cr, err := s.get(ctx, gvrCertificateRequest, ns, name)
	if err != nil || cr == nil || cr.GetDeletionTimestamp() != nil {
		return 0, err
	}
	if condStatus(cr.Object, "Approved", "status", "conditions") != "True" ||
		condStatus(cr.Object, "Denied", "status", "conditions") == "True" {
		return 0, nil
	}
	switch condValue(cr.Object, "Ready", "reason") {
	case "Issued", "Failed", "Denied", "InvalidRequest":
		return 0, nil
	}
	ref, _, _ := unstructured.NestedStringMap(cr.Object, "spec", "issuerRef")
	if ref["kind"] != "ClusterIssuer" || (ref["group"] != "" && ref["group"] != "cert-manager.io") {
		return 0, nil // an Issuer, or another issuer's kind: not played
	}
	iss, err := s.get(ctx, gvrClusterIssuer, "", ref["name"])
	if err != nil {
		return 0, err
	}
	if iss == nil {
		return 10 * time.Second, s.pending(ctx, cr, "IssuerNotFound", fmt.Sprintf("Referenced %q not found", "ClusterIssuer/"+ref["name"]))
	}
	spec, ok, _ := unstructured.NestedMap(iss.Object, "spec", "acme")
	if !ok {
		return 0, nil
	}
	uri, _, _ := unstructured.NestedString(iss.Object, "status", "acme", "uri")
	if condStatus(iss.Object, "Ready", "status", "conditions") != "True" || uri == "" {
		return 10 * time.Second, s.pending(ctx, cr, "IssuerNotReady", "Referenced issuer does not have a Ready status condition")
	}

	crtKey := ns + "/" + ownerName(cr, "Certificate")
	s.mu.Lock()
	o, ordered := s.orders[cr.GetUID()]
	s.mu.Unlock()
	if !ordered {
		res, err := s.order(ctx, cr, spec, uri)
		var notReady *solverNotReadyError
		switch {
		case errors.As(err, &notReady):
			return 15 * time.Second, s.pending(ctx, cr, "OrderPending", err.Error())
		case err != nil:
			s.logf("cert-manager: the ACME order for %s failed: %v", key, err)
			return 0, s.failed(ctx, cr, fmt.Sprintf("Failed to wait for order resource to become ready: %v", err))
		}
		leaf, err := leafOf(res.Certificate)
		if err != nil {
			return 0, s.failed(ctx, cr, fmt.Sprintf("The ACME server returned an unreadable certificate: %v", err))
		}
		o = signedOrder{ACMEOrder: ACMEOrder{Certificate: crtKey, Request: key, Names: leaf.DNSNames,
			Serial: leaf.SerialNumber.Text(16), Server: str(spec["server"]), Time: time.Now()}, chain: res.Certificate}
		s.mu.Lock()
		s.orders[cr.GetUID()] = o
		s.mu.Unlock()
		s.logf("cert-manager: ordered a certificate for %s (%s) from %s: serial %s", crtKey, strings.Join(o.Names, ", "), o.Server, o.Serial)
	}
	return 0, s.update(ctx, mgrACMEIssuer, gvrCertificateRequest, ns, name, true, func(u *unstructured.Unstructured) (bool, error) {
		if condValue(u.Object, "Ready", "reason") == "Issued" {
			return false, nil
		}
		u.Object["status"] = withCondition(u, map[string]any{"certificate": base64.StdEncoding.EncodeToString(o.chain)},
			cond{Type: "Ready", Status: "True", Reason: "Issued", Message: "Certificate fetched from issuer successfully"})
		return true, nil
	})
}

// withCondition is u's status with fields set and c upserted among its conditions
// (CertificateRequestCondition: no observedGeneration).
func withCondition(u *unstructured.Unstructured, fields map[string]any, c cond) map[string]any {
	st, _, _ := unstructured.NestedMap(u.Object, "status")
	if st == nil {
		st = map[string]any{}
	}
	for k, v := range fields {
		st[k] = v
	}
	setConds(st, []string{"conditions"}, c)
	return st
}

// condValue is a field of the condition typ in status.conditions ("" when absent).
func condValue(obj map[string]any, typ, field string) string {
	conds, _, _ := unstructured.NestedSlice(obj, "status", "conditions")
	for _, c := range conds {
		if m, _ := c.(map[string]any); m["type"] == typ {
			return str(m[field])
		}
	}
	return ""
}

// pending is Reporter.Pending: Ready=False Pending with the reason as message prefix.
func (s *Simulator) pending(ctx context.Context, cr *unstructured.Unstructured, reason, msg string) error {
	s.logf("cert-manager: %s/%s pending: %s: %s", cr.GetNamespace(), cr.GetName(), reason, msg)
	return s.update(ctx, mgrACMEIssuer, gvrCertificateRequest, cr.GetNamespace(), cr.GetName(), true, func(u *unstructured.Unstructured) (bool, error) {
		if condValue(u.Object, "Ready", "message") == msg {
			return false, nil
		}
		u.Object["status"] = withCondition(u, nil, cond{Type: "Ready", Status: "False", Reason: "Pending", Message: msg})
		return true, nil
	})
}

// failed is Reporter.Failed: Ready=False Failed and the failure time.
func (s *Simulator) failed(ctx context.Context, cr *unstructured.Unstructured, msg string) error {
	return s.update(ctx, mgrACMEIssuer, gvrCertificateRequest, cr.GetNamespace(), cr.GetName(), true, func(u *unstructured.Unstructured) (bool, error) {
		u.Object["status"] = withCondition(u, map[string]any{"failureTime": now()},
			cond{Type: "Ready", Status: "False", Reason: "Failed", Message: msg})
		return true, nil
	})
}

// solverNotReadyError: what the order needs from the cluster is not there yet (the
// credentials Secret); cert-manager's challenge would keep retrying, so the request stays
// Pending.
type solverNotReadyError struct{ msg string }

func (e *solverNotReadyError) Error() string { return e.msg }

// acmeUser is lego's view of the ClusterIssuer's account.
type acmeUser struct {
	email, uri string
	key        crypto.Signer
}

func (u *acmeUser) GetEmail() string { return u.email }
func (u *acmeUser) GetRegistration() *legoacme.ExtendedAccount {
	return &legoacme.ExtendedAccount{Location: u.uri}
}
func (u *acmeUser) GetPrivateKey() crypto.Signer { return u.key }

// order places one ACME order for the request's CSR and solves its DNS-01 challenges.
func (s *Simulator) order(ctx context.Context, cr *unstructured.Unstructured, spec map[string]any, accountURI string) (*certificate.Resource, error) {
	opts := s.options()
	csrB64, _, _ := unstructured.NestedString(cr.Object, "spec", "request")
	csrPEM, err := base64.StdEncoding.DecodeString(csrB64)
	if err != nil {
		return nil, fmt.Errorf("spec.request: %w", err)
	}
	blk, _ := pem.Decode(csrPEM)
	if blk == nil {
		return nil, errors.New("spec.request holds no PEM CSR")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("spec.request: %w", err)
	}
	r53, err := route53Solver(spec)
	if err != nil {
		return nil, err
	}
	creds, err := s.route53Credentials(ctx, r53)
	if err != nil {
		return nil, err
	}
	if opts.AWSEndpoint == "" || opts.DNSResolver == "" {
		return nil, errors.New("the simulator was given no AWS endpoint or DNS resolver (Options.AWSEndpoint, Options.DNSResolver)")
	}
	key, err := s.acmeAccountKey(ctx, spec)
	if err != nil {
		return nil, err
	}
	hc, err := acmeHTTPClient(spec)
	if err != nil {
		return nil, err
	}
	cfg := lego.NewConfig(&acmeUser{email: str(spec["email"]), uri: accountURI, key: key})
	cfg.CADirURL = str(spec["server"])
	cfg.HTTPClient = hc
	cfg.UserAgent = acmeUserAgent
	client, err := lego.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the ACME server %s: %w", cfg.CADirURL, err)
	}
	awsCfg := aws.Config{
		Region:       str(r53["region"]),
		Credentials:  credentials.NewStaticCredentialsProvider(creds[0], creds[1], ""),
		BaseEndpoint: aws.String(opts.AWSEndpoint),
	}
	provider, err := r53provider.NewDNSProviderConfig(&r53provider.Config{
		Client:                   route53.NewFromConfig(awsCfg),
		HostedZoneID:             str(r53["hostedZoneID"]),
		MaxRetries:               5,
		TTL:                      60,
		WaitForRecordSetsChanged: true,
		PropagationTimeout:       2 * time.Minute,
		PollingInterval:          time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("setting up Route53 for DNS-01: %w", err)
	}
	resolver := opts.DNSResolver
	if err := client.Challenge.SetDNS01Provider(provider, dns01.WrapPreCheck(func(ctx context.Context, _, fqdn, value string, _ dns01.PreCheckFunc) (bool, error) {
		return txtPublished(ctx, resolver, fqdn, value), nil
	})); err != nil {
		return nil, fmt.Errorf("setting up DNS-01: %w", err)
	}
	return client.Certificate.ObtainForCSR(ctx, certificate.ObtainForCSRRequest{CSR: csr, Bundle: true})
}

// txtPublished asks the recursive nameserver at resolver whether fqdn has the TXT value,
// as cert-manager's DNS-01 self-check does before it lets the ACME server validate.
func txtPublished(ctx context.Context, resolver, fqdn, value string) bool {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, resolver)
	}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	txts, err := r.LookupTXT(ctx, fqdn)
	return err == nil && slices.Contains(txts, value)
}

// route53Solver is the ClusterIssuer's first solver's dns01.route53 (the payload has one
// solver, without selector).
func route53Solver(spec map[string]any) (map[string]any, error) {
	solvers, _ := spec["solvers"].([]any)
	for _, sv := range solvers {
		m, _ := sv.(map[string]any)
		dns, _ := m["dns01"].(map[string]any)
		if r53, ok := dns["route53"].(map[string]any); ok {
			return r53, nil
		}
	}
	return nil, errors.New("the ClusterIssuer has no dns01.route53 solver; the bed's ACME issuer plays DNS-01 on Route53 only")
}

// route53Credentials are the solver's explicit access key or, without one, the ambient
// credentials the cert-manager operator hands to cert-manager.
func (s *Simulator) route53Credentials(ctx context.Context, r53 map[string]any) ([2]string, error) {
	if id := str(r53["accessKeyID"]); id != "" {
		ref, _ := r53["secretAccessKeySecretRef"].(map[string]any)
		sec, err := s.get(ctx, gvrSecret, certManagerNS, str(ref["name"]))
		if err != nil || sec == nil {
			return [2]string{}, &solverNotReadyError{fmt.Sprintf("the solver's secretAccessKeySecretRef %s/%s does not exist yet", certManagerNS, str(ref["name"]))}
		}
		v, err := secretValue(sec, str(ref["key"]))
		return [2]string{id, v}, err
	}
	name, err := s.ambientCredentialsSecret(ctx)
	if err != nil {
		return [2]string{}, err
	}
	sec, err := s.get(ctx, gvrSecret, certManagerNS, name)
	if err != nil {
		return [2]string{}, err
	}
	if sec == nil {
		return [2]string{}, &solverNotReadyError{fmt.Sprintf("no AWS credentials yet: the Secret %s/%s (CLOUD_CREDENTIALS_SECRET_NAME of the cert-manager operator) does not exist", certManagerNS, name)}
	}
	id, err := secretValue(sec, "aws_access_key_id")
	if err != nil {
		return [2]string{}, err
	}
	key, err := secretValue(sec, "aws_secret_access_key")
	return [2]string{id, key}, err
}

// ambientCredentialsSecret is the Secret name the cert-manager operator's Subscription
// gives in CLOUD_CREDENTIALS_SECRET_NAME (openshift/cert-manager-operator
// docs/cloud_credentials.md).
func (s *Simulator) ambientCredentialsSecret(ctx context.Context) (string, error) {
	subs, err := listAs[olmv1alpha1.Subscription](ctx, s, gvrSubscription, "")
	if err != nil {
		return "", err
	}
	for _, sub := range subs {
		if sub.Spec == nil || sub.Spec.Package != "openshift-cert-manager-operator" {
			continue
		}
		if name := subscriptionEnv(sub, "CLOUD_CREDENTIALS_SECRET_NAME"); name != "" {
			return name, nil
		}
	}
	return "", &solverNotReadyError{"no AWS credentials: the cert-manager operator's Subscription sets no CLOUD_CREDENTIALS_SECRET_NAME and the route53 solver names no accessKeyID"}
}

// secretValue is one key of a Secret's data.
func secretValue(sec *unstructured.Unstructured, key string) (string, error) {
	v, _, _ := unstructured.NestedString(sec.Object, "data", key)
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) == 0 {
		return "", fmt.Errorf("the Secret %s/%s has no %s", sec.GetNamespace(), sec.GetName(), key)
	}
	return string(b), nil
}

// leafOf is the first certificate of a PEM chain.
func leafOf(chain []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(chain)
	if blk == nil {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// ownerName is the name of u's controller of kind ("" if none).
func ownerName(u *unstructured.Unstructured, kind string) string {
	for _, o := range u.GetOwnerReferences() {
		if o.Kind == kind && o.Controller != nil && *o.Controller {
			return o.Name
		}
	}
	return ""
}
