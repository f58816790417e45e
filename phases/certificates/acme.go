package certificates

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
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
	pendingFile    = "acme/pending.pem"
)

type account struct {
	Email  string `json:"email"`
	URI    string `json:"uri"`
	Server string `json:"server"`
	key    crypto.Signer
}

func (a *account) GetEmail() string { return a.Email }
func (a *account) GetRegistration() *acme.ExtendedAccount {
	if a.URI == "" {
		return nil
	}
	return &acme.ExtendedAccount{Location: a.URI}
}
func (a *account) GetPrivateKey() crypto.Signer { return a.key }

// httpClient trusts the system roots plus caBundleFile (private ACME servers, Pebble).
func httpClient(a configs.ACME) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if a.CABundleFile != "" {
		b, err := os.ReadFile(a.CABundleFile)
		if err != nil {
			return nil, fmt.Errorf("reading spec.certificates.acme.caBundleFile: %w", err)
		}
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("spec.certificates.acme.caBundleFile %s holds no PEM certificate", a.CABundleFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// loadAccount reads the saved account key; nil when there is none yet.
func (p *phase) loadAccount(ctx context.Context, s *installer.Scope) (*account, error) {
	keyPEM, err := s.GetFile(ctx, accountKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, fmt.Errorf("the saved ACME account key is not PEM")
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing the saved ACME account key: %w", err)
	}
	acct := &account{Email: p.acme().Email, key: key}
	if b, err := s.GetFile(ctx, accountFile); err == nil {
		var saved account
		if json.Unmarshal(b, &saved) == nil && saved.Server == p.acme().ACMEDirectory() {
			acct.URI = saved.URI
		}
	}
	return acct, nil
}

// client builds a lego client. With register set it creates the account key (saved
// before registering, so a kill right after cannot lead to a second account: ACME
// returns the same account for the same key) and registers it once.
func (p *phase) client(ctx context.Context, s *installer.Scope, register bool) (*lego.Client, *account, error) {
	a := p.acme()
	routeLegoLogs(s)
	acct, err := p.loadAccount(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	if acct == nil {
		if !register {
			return nil, nil, nil
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		der, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		if err := s.PutFile(ctx, accountKeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})); err != nil {
			return nil, nil, err
		}
		acct = &account{Email: a.Email, key: key}
	}
	hc, err := httpClient(a)
	if err != nil {
		return nil, nil, err
	}
	cfg := lego.NewConfig(acct)
	cfg.CADirURL = a.ACMEDirectory()
	cfg.HTTPClient = hc
	cfg.UserAgent = "rhoai-bootstrap"
	c, err := lego.NewClient(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the ACME server %s (check spec.certificates.acme.server and caBundleFile): %w", cfg.CADirURL, err)
	}
	if register && acct.URI == "" {
		reg, err := c.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
		if err != nil {
			return nil, nil, fmt.Errorf("registering the ACME account: %w", err)
		}
		acct.URI = reg.Location
		acct.Server = cfg.CADirURL
		b, _ := json.Marshal(acct)
		if err := s.PutFile(ctx, accountFile, b); err != nil {
			return nil, nil, err
		}
		s.Changed(installer.Change{Action: installer.Create, Target: "ACME account " + acct.URI})
	}
	return c, acct, nil
}

// renewalWindow asks the ACME server for ARI; nil when it offers none.
func renewalWindow(ctx context.Context, c *lego.Client, leaf *x509.Certificate) *Window {
	if c == nil || leaf == nil {
		return nil
	}
	info, err := c.Certificate.GetRenewalInfo(ctx, leaf)
	if err != nil || info == nil {
		// api.ErrNoARI (not offered) or a failure: fall back to the lifetime rule.
		_ = api.ErrNoARI
		return nil
	}
	return &Window{Start: info.SuggestedWindow.Start, End: info.SuggestedWindow.End}
}

// obtain orders one certificate for the names through DNS-01 on Route53.
func (p *phase) obtain(ctx context.Context, s *installer.Scope, c *lego.Client, names []string) (*certificate.Resource, error) {
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
	timeout, _ := time.ParseDuration(a.PropagationTimeout)
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
		dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{RecursiveNameservers: a.Resolvers, Timeout: 10 * time.Second}))
	}
	var opts []dns01.ChallengeOption
	if a.DisableAuthoritativeNSCheck {
		opts = append(opts, dns01.DisableAuthoritativeNssPropagationRequirement())
	}
	if err := c.Challenge.SetDNS01Provider(provider, opts...); err != nil {
		return nil, err
	}
	s.Progress("ordering a certificate for %v from %s (DNS-01 on Route53 zone %s)", names, a.ACMEDirectory(), zone)
	res, err := c.Certificate.Obtain(ctx, certificate.ObtainRequest{Domains: names, Bundle: true, KeyType: certcrypto.EC256, Profile: a.Profile})
	if err != nil {
		return nil, fmt.Errorf("ordering the certificate: %w", err)
	}
	return res, nil
}
