package certificates

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/lego"
	r53provider "github.com/go-acme/lego/v5/providers/dns/route53"
	"github.com/go-acme/lego/v5/registration"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases/preflight"
)

// Side files (0600, next to the state, never in state.json).
const (
	accountKeyFile = "acme/account.key"
	accountFile    = "acme/account.json"
	// pendingFile holds a certificate and its key between the order and the end of the
	// install, so a run killed in between installs it next time instead of ordering again.
	pendingFile = "acme/pending.pem"
)

// accountRecord is acme/account.json: where the account key is registered. One key serves
// every server (ACME returns the existing account when the same key registers again), so
// switching from staging to production and back never piles up accounts.
type accountRecord struct {
	Email string `json:"email"`
	// Registrations maps an ACME directory URL to the account URI there.
	Registrations map[string]string `json:"registrations"`
}

// user is lego's view of the account.
type user struct {
	email, uri string
	key        crypto.Signer
}

func (u *user) GetEmail() string { return u.email }
func (u *user) GetRegistration() *acme.ExtendedAccount {
	if u.uri == "" {
		return nil
	}
	return &acme.ExtendedAccount{Location: u.uri}
}
func (u *user) GetPrivateKey() crypto.Signer { return u.key }

// httpClient trusts the system roots plus caBundleFile, for the ACME server's HTTPS.
func (p *phase) httpClient(a configs.ACME) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if a.CABundleFile != "" {
		b, err := readBundle(a.CABundleFile)
		if err != nil {
			return nil, err
		}
		pool.AppendCertsFromPEM(b)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	var rt http.RoundTripper = tr
	if p.opts.wrapACME != nil {
		rt = p.opts.wrapACME(rt)
	}
	return &http.Client{Transport: rt, Timeout: 30 * time.Second}, nil
}

// readBundle reads caBundleFile and makes sure it holds certificates.
func readBundle(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading spec.certificates.acme.caBundleFile: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("spec.certificates.acme.caBundleFile %s holds no PEM certificate", path)
	}
	return b, nil
}

// bundlePool is caBundleFile as a pool.
func bundlePool(path string) (*x509.CertPool, error) {
	b, err := readBundle(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return pool, nil
}

// trustFor returns the issuing roots of the configured server: Let's Encrypt's roots from
// the system pool, the caBundleFile for any other server that has one (else the system
// pool), and none for Let's Encrypt staging, whose roots no system trusts.
func trustFor(a configs.ACME) (trust, error) {
	switch a.ACMEDirectory() {
	case configs.ACMEServers["letsencrypt-staging"]:
		return trust{}, nil
	case configs.ACMEServers["letsencrypt"]:
		pool, err := x509.SystemCertPool()
		if err != nil {
			return trust{}, fmt.Errorf("loading the system's trusted roots: %w", err)
		}
		return trust{roots: pool, organization: "Internet Security Research Group"}, nil
	}
	if a.CABundleFile != "" {
		pool, err := bundlePool(a.CABundleFile)
		return trust{roots: pool}, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		return trust{}, fmt.Errorf("loading the system's trusted roots: %w", err)
	}
	return trust{roots: pool}, nil
}

// newClient connects to the ACME server (it fetches the directory: one GET). lego's log
// goes to this phase's events from now on.
func (p *phase) newClient(s *installer.Scope, u *user) (*lego.Client, error) {
	routeLegoLogs(s)
	a := p.acme()
	hc, err := p.httpClient(a)
	if err != nil {
		return nil, err
	}
	cfg := lego.NewConfig(u)
	cfg.CADirURL = a.ACMEDirectory()
	cfg.HTTPClient = hc
	cfg.UserAgent = "rhoai-bootstrap"
	c, err := lego.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the ACME server %s (check spec.certificates.acme.server and caBundleFile): %w", cfg.CADirURL, err)
	}
	return c, nil
}

// readClient is a client for reads only (renewal information): it needs no account, so
// plans never register one. The key is throw-away and signs nothing.
func (p *phase) readClient(s *installer.Scope) (*lego.Client, error) {
	key, err := certcrypto.GeneratePrivateKey(certcrypto.EC256)
	if err != nil {
		return nil, fmt.Errorf("generating a throw-away key: %w", err)
	}
	return p.newClient(s, &user{email: p.acme().Email, key: key})
}

// accountClient is a client acting as our ACME account. The account key is created and
// saved (0600) before registering, so a kill right after registering cannot lead to a
// second account: registering the same key again returns the existing one. Without
// register, it returns nil when there is no registered account yet.
func (p *phase) accountClient(ctx context.Context, s *installer.Scope, register bool) (*lego.Client, error) {
	a := p.acme()
	dir := a.ACMEDirectory()
	rec := accountRecord{Registrations: map[string]string{}}
	switch b, err := s.GetFile(ctx, accountFile); {
	case err == nil:
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("reading %s: %w", accountFile, err)
		}
		if rec.Registrations == nil {
			rec.Registrations = map[string]string{}
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("reading %s: %w", accountFile, err)
	}
	var key crypto.Signer
	switch b, err := s.GetFile(ctx, accountKeyFile); {
	case err == nil:
		redactPEM(s, b) // registered as soon as it is read, as when it is made
		if key, err = certcrypto.ParsePEMPrivateKey(b); err != nil {
			return nil, fmt.Errorf("the saved ACME account key %s is unreadable: %w", accountKeyFile, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if !register {
			return nil, nil
		}
		if key, err = certcrypto.GeneratePrivateKey(certcrypto.EC256); err != nil {
			return nil, fmt.Errorf("generating the ACME account key: %w", err)
		}
		pemKey := certcrypto.PEMEncode(key)
		redactPEM(s, pemKey)
		if err := s.PutFile(ctx, accountKeyFile, pemKey); err != nil {
			return nil, fmt.Errorf("saving the ACME account key: %w", err)
		}
	default:
		return nil, fmt.Errorf("reading %s: %w", accountKeyFile, err)
	}
	u := &user{email: a.Email, uri: rec.Registrations[dir], key: key}
	if u.uri == "" && !register {
		return nil, nil
	}
	c, err := p.newClient(s, u)
	if err != nil {
		return nil, err
	}
	if u.uri != "" {
		return c, nil
	}
	reg, err := c.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
	if err != nil {
		return nil, fmt.Errorf("registering the ACME account at %s: %w", dir, err)
	}
	if reg.Location == "" {
		return nil, fmt.Errorf("registering the ACME account at %s: the server returned no account URL", dir)
	}
	rec.Email = a.Email
	rec.Registrations[dir] = reg.Location
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := s.PutFile(ctx, accountFile, b); err != nil {
		return nil, fmt.Errorf("saving %s: %w", accountFile, err)
	}
	s.Changed(installer.Change{Action: installer.Create, Target: "ACME account " + reg.Location})
	u.uri = reg.Location // lego's client signs as the new account from now on
	return c, nil
}

// renewalWindow asks the ACME server for its suggested renewal window (ARI); nil when it
// offers none or cannot be reached, which falls back to the lifetime rule.
func renewalWindow(ctx context.Context, s *installer.Scope, c *lego.Client, leaf *x509.Certificate) *Window {
	info, err := c.Certificate.GetRenewalInfo(ctx, leaf)
	if err != nil {
		if !errors.Is(err, api.ErrNoARI) {
			s.Debugf("renewal information unavailable (%v): using the lifetime rule", err)
		}
		return nil
	}
	return &Window{Start: info.SuggestedWindow.Start, End: info.SuggestedWindow.End}
}

// obtain orders one certificate for names through DNS-01 on Route53. replaces, when set,
// is the ARI identifier of the certificate this one renews (RFC 9773 §5): Let's Encrypt
// then treats the order as a renewal.
func (p *phase) obtain(ctx context.Context, s *installer.Scope, c *lego.Client, names []string, replaces string) (*certificate.Resource, error) {
	a := p.acme()
	awsCfg, err := p.env.AWS(ctx)
	if err != nil {
		return nil, err
	}
	zone := a.Route53.HostedZoneID
	if zone == "" {
		if zone, err = preflight.FindPublicZone(ctx, awsCfg, p.env.Cluster.Spec.BaseDomain); err != nil {
			return nil, err
		}
	}
	timeout, err := time.ParseDuration(a.PropagationTimeout)
	if err != nil || timeout <= 0 {
		timeout, _ = time.ParseDuration(configs.DefaultPropagationTimeout)
	}
	provider, err := r53provider.NewDNSProviderConfig(&r53provider.Config{
		Client:                   route53.NewFromConfig(awsCfg),
		HostedZoneID:             zone,
		MaxRetries:               5,
		TTL:                      60,
		WaitForRecordSetsChanged: true,
		PropagationTimeout:       timeout,
		PollingInterval:          2 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("setting up Route53 for DNS-01: %w", err)
	}
	if len(a.Resolvers) > 0 {
		// lego's DNS client is process-wide, as its CLI's --dns.resolvers.
		opts := dns01.NewOptions()
		opts.RecursiveNameservers = a.Resolvers
		opts.Timeout = 10 * time.Second
		dns01.SetDefaultClient(dns01.NewClient(opts))
	}
	if err := c.Challenge.SetDNS01Provider(provider,
		dns01.CondOptions(a.DisableAuthoritativeNSCheck, dns01.DisableAuthoritativeNssPropagationRequirement())); err != nil {
		return nil, fmt.Errorf("setting up DNS-01: %w", err)
	}
	s.Progress("ordering a certificate for %s from %s (DNS-01 in Route53 zone %s)", strings.Join(names, ", "), a.ACMEDirectory(), zone)
	res, err := c.Certificate.Obtain(ctx, certificate.ObtainRequest{
		Domains: names, Bundle: true, KeyType: certcrypto.EC256, Profile: a.Profile, ReplacesCertID: replaces,
	})
	if err != nil {
		return nil, fmt.Errorf("ordering the certificate for %s from %s: %w", strings.Join(names, ", "), a.ACMEDirectory(), err)
	}
	return res, nil
}

// redactPEM registers a private key's base64 lines with the redactor, so it cannot leave
// the process even by a bug. Short lines (the tail of the last one) are skipped: they
// would redact common text.
func redactPEM(s *installer.Scope, pemBytes []byte) {
	for line := range strings.SplitSeq(string(pemBytes), "\n") {
		if len(line) >= 32 && !strings.HasPrefix(line, "-----") {
			s.Redactor().Add(line)
		}
	}
}
