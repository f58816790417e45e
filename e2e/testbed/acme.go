package testbed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/miekg/dns"
)

// acme holds the Pebble ACME server and its DNS, pebble-challtestsrv.
type acme struct {
	directoryURL  string
	managementURL string // pebble's management API (roots, intermediates)
	caFile        string // signs pebble's HTTPS certificate
	dnsAddr       string // challtestsrv's DNS server
	challtestURL  string // challtestsrv's management API
	client        *http.Client
}

// startACME starts pebble-challtestsrv (DNS only) and Pebble, whose
// validation authority resolves through challtestsrv. The TLS files come
// from the pebble module in the Go module cache.
func (b *Bed) startACME(ctx context.Context) error {
	dirs, err := moduleDirs(ctx, pebbleModule)
	if err != nil {
		return err
	}
	certs := filepath.Join(dirs[pebbleModule], "test", "certs")
	a := &acme{caFile: filepath.Join(certs, "pebble.minica.pem")}
	b.acme = a
	pem, err := os.ReadFile(a.caFile)
	if err != nil {
		return fmt.Errorf("reading pebble's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no certificate in %s", a.caFile)
	}
	a.client = &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}

	err = retryOnPortClash(func() error {
		port, err := freePorts(2)
		if err != nil {
			return err
		}
		a.dnsAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port[0]))
		a.challtestURL = "http://127.0.0.1:" + strconv.Itoa(port[1])
		chall, err := b.start("pebble-challtestsrv", b.childEnv(), filepath.Join(b.paths.Pebble, "pebble-challtestsrv"),
			"-dnsserver", a.dnsAddr,
			"-management", "127.0.0.1:"+strconv.Itoa(port[1]),
			"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "")
		if err != nil {
			return err
		}
		if err := chall.waitReady(ctx, 30*time.Second, httpAnswers(a.client, a.challtestURL+"/dns-request-history")); err != nil {
			return err
		}
		return chall.waitReady(ctx, 30*time.Second, dnsAnswers(a.dnsAddr))
	})
	if err != nil {
		return err
	}

	return retryOnPortClash(func() error {
		ports, err := freePorts(4)
		if err != nil {
			return err
		}
		listen, mgmt, httpPort, tlsPort := ports[0], ports[1], ports[2], ports[3]
		cfgPath := filepath.Join(b.workDir, "pebble-config.json")
		if err := writePebbleConfig(cfgPath, certs, listen, mgmt, httpPort, tlsPort, b.opts.ShortLivedValidity); err != nil {
			return err
		}
		env := append(b.childEnv(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
		pebble, err := b.start("pebble", env, filepath.Join(b.paths.Pebble, "pebble"),
			"-config", cfgPath, "-dnsserver", a.dnsAddr)
		if err != nil {
			return err
		}
		a.directoryURL = "https://127.0.0.1:" + strconv.Itoa(listen) + "/dir"
		a.managementURL = "https://127.0.0.1:" + strconv.Itoa(mgmt)
		if err := pebble.waitReady(ctx, 30*time.Second, httpOK(a.client, a.directoryURL)); err != nil {
			return err
		}
		return pebble.waitReady(ctx, 30*time.Second, httpOK(a.client, a.managementURL+"/roots/0"))
	})
}

// writePebbleConfig writes Pebble's JSON configuration: free ports, the
// module's localhost certificate, the "default" profile (90 days, as Let's
// Encrypt) and, if shortLived is set, a "shortlived" profile.
func writePebbleConfig(path, certs string, listen, mgmt, httpPort, tlsPort int, shortLived time.Duration) error {
	type profile struct {
		Description    string `json:"description"`
		ValidityPeriod uint64 `json:"validityPeriod"`
	}
	profiles := map[string]profile{
		"default": {Description: "90-day certificates, as Let's Encrypt's classic profile", ValidityPeriod: uint64((90 * 24 * time.Hour).Seconds())},
	}
	if shortLived > 0 {
		profiles["shortlived"] = profile{Description: "short-lived certificates", ValidityPeriod: uint64(shortLived.Seconds())}
	}
	cfg := map[string]any{
		"pebble": map[string]any{
			"listenAddress":           "127.0.0.1:" + strconv.Itoa(listen),
			"managementListenAddress": "127.0.0.1:" + strconv.Itoa(mgmt),
			"certificate":             filepath.Join(certs, "localhost", "cert.pem"),
			"privateKey":              filepath.Join(certs, "localhost", "key.pem"),
			"httpPort":                httpPort,
			"tlsPort":                 tlsPort,
			"ocspResponderURL":        "",
			// One-second Retry-After keeps ACME clients polling briskly.
			"retryAfter":   map[string]int{"authz": 1, "order": 1},
			"keyAlgorithm": "ecdsa",
			"profiles":     profiles,
		},
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("writing pebble config: %w", err)
	}
	return nil
}

// httpOK reports whether url answers 200.
func httpOK(client *http.Client, url string) func(context.Context) bool {
	return httpProbe(client, url, func(code int) bool { return code == http.StatusOK })
}

// dnsAnswers reports whether the DNS server at addr answers a query over
// TCP, the transport Pebble's validation authority uses (any reply counts).
func dnsAnswers(addr string) func(context.Context) bool {
	client := &dns.Client{Net: "tcp", Timeout: time.Second}
	return func(ctx context.Context) bool {
		m := new(dns.Msg)
		m.SetQuestion("ready.testbed.invalid.", dns.TypeTXT)
		_, _, err := client.ExchangeContext(ctx, m, addr)
		return err == nil
	}
}

// ACMEDirectoryURL is Pebble's ACME directory.
func (b *Bed) ACMEDirectoryURL() string { return b.acme.directoryURL }

// ACMECAFile is the PEM file of the CA that signs Pebble's own HTTPS
// certificate (not the certificates it issues): ACME clients must trust it.
func (b *Bed) ACMECAFile() string { return b.acme.caFile }

// DNSResolver is challtestsrv's DNS server ("127.0.0.1:port"), where the
// Route53 → DNS bridge publishes TXT records; ACME clients use it as their
// recursive nameserver.
func (b *Bed) DNSResolver() string { return b.acme.dnsAddr }

// ChallTestSrvURL is challtestsrv's management API (set-txt, clear-txt,
// dns-request-history, ...).
func (b *Bed) ChallTestSrvURL() string { return b.acme.challtestURL }

// ACMEManagementURL is Pebble's management API.
func (b *Bed) ACMEManagementURL() string { return b.acme.managementURL }

// ACMEIssuers fetches Pebble's current root and intermediate certificates
// (PEM) from its management API. Pebble makes a new root at every start, so
// they cannot be known in advance; certificates it issues chain up to them.
func (b *Bed) ACMEIssuers(ctx context.Context) (rootPEM, intermediatePEM []byte, err error) {
	if rootPEM, err = b.acme.get(ctx, "/roots/0"); err != nil {
		return nil, nil, err
	}
	if intermediatePEM, err = b.acme.get(ctx, "/intermediates/0"); err != nil {
		return nil, nil, err
	}
	return rootPEM, intermediatePEM, nil
}

func (a *acme) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.managementURL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching pebble %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("fetching pebble %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching pebble %s: %s", path, resp.Status)
	}
	return body, nil
}
