package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Service Quotas codes the fake serves (service code "ec2"). Values are in
// vCPUs, as AWS counts these quotas.
const (
	QuotaStandardOnDemand = "L-1216C47A" // Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances
	QuotaGAndVTOnDemand   = "L-DB2E81BA" // Running On-Demand G and VT instances
	QuotaPOnDemand        = "L-417A185B" // Running On-Demand P instances
	QuotaGAndVTSpot       = "L-3819A6DF" // All G and VT Spot Instance Requests
	QuotaPSpot            = "L-7212CCBC" // All P Spot Instance Requests
)

// quotaNames are the names AWS gives the quotas the fake serves.
var quotaNames = map[string]string{
	QuotaStandardOnDemand: "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
	QuotaGAndVTOnDemand:   "Running On-Demand G and VT instances",
	QuotaPOnDemand:        "Running On-Demand P instances",
	QuotaGAndVTSpot:       "All G and VT Spot Instance Requests",
	QuotaPSpot:            "All P Spot Instance Requests",
}

// DefaultQuotas are the values the fake Service Quotas starts with: enough
// for a few G-family GPU nodes (the happy path); P-family capacity must be
// requested, as on most real accounts. Tests change them with SetQuota.
var DefaultQuotas = map[string]float64{
	QuotaStandardOnDemand: 640,
	QuotaGAndVTOnDemand:   64,
	QuotaPOnDemand:        0,
	QuotaGAndVTSpot:       64,
	QuotaPSpot:            0,
}

// awsProxy sits between AWS SDK clients and moto. It forwards everything to
// moto, and adds what moto lacks: Route53 TXT changes are mirrored into
// pebble-challtestsrv's DNS (so ACME DNS-01 works end to end), and Service
// Quotas is answered in-process from settable values.
type awsProxy struct {
	rp           *httputil.ReverseProxy
	challtestsrv string // management base URL
	region       string
	http         *http.Client
	server       *http.Server
	listener     net.Listener
	mu           sync.Mutex
	quotas       map[string]float64
	// prices are the fake Price List API's on-demand Linux prices, region → type → USD/h.
	prices        map[string]map[string]float64
	pricingDenied bool
	// dnsDelay is how long a TXT change takes to reach DNS (propagation).
	dnsDelay time.Duration
}

// setDNSDelay makes TXT changes visible in DNS only after d, as Route53's propagation
// to its name servers does; 0 mirrors them at once.
func (p *awsProxy) setDNSDelay(d time.Duration) {
	p.mu.Lock()
	p.dnsDelay = d
	p.mu.Unlock()
}

// rrsetPath matches Route53 ChangeResourceRecordSets: POST
// /2013-04-01/hostedzone/<id>/rrset (the SDK may add a trailing slash).
var rrsetPath = regexp.MustCompile(`^/2013-04-01/hostedzone/([^/]+)/rrset/?$`)

type changeBatchKey struct{}

func newAWSProxy(moto *url.URL, challtestsrv, region string) (*awsProxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the AWS proxy: %w", err)
	}
	p := &awsProxy{
		challtestsrv: challtestsrv,
		region:       region,
		http:         &http.Client{Timeout: 10 * time.Second},
		listener:     l,
		quotas:       map[string]float64{},
	}
	p.resetQuotas()
	p.resetPrices()
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(moto)
			// Keep the Host the client signed; moto ignores signatures but
			// builds some URLs from it.
			r.Out.Host = r.In.Host
		},
		ModifyResponse: p.mirrorDNS,
		// A client that went away (a killed rhoai-bootstrap: the kill tests do it on
		// purpose) is not an error; anything else goes back to the client as a 502.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			http.Error(w, "AWS proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.server.Serve(l) }()
	return p, nil
}

// URL is the endpoint AWS clients use (AWS_ENDPOINT_URL).
func (p *awsProxy) URL() string { return "http://" + p.listener.Addr().String() }

func (p *awsProxy) close(ctx context.Context) error {
	return p.server.Shutdown(ctx)
}

func (p *awsProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if target := r.Header.Get("X-Amz-Target"); strings.HasPrefix(target, "ServiceQuotasV20190624.") {
		p.serveQuotas(w, r, strings.TrimPrefix(target, "ServiceQuotasV20190624."))
		return
	}
	if target := r.Header.Get("X-Amz-Target"); strings.HasPrefix(target, "AWSPriceListService.") {
		p.servePricing(w, r, strings.TrimPrefix(target, "AWSPriceListService."))
		return
	}
	if r.Method == http.MethodPost && rrsetPath.MatchString(r.URL.Path) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "reading request: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req changeResourceRecordSetsRequest
		if err := xml.Unmarshal(body, &req); err == nil {
			r = r.WithContext(context.WithValue(r.Context(), changeBatchKey{}, req.ChangeBatch.Changes))
		}
		// A body moto cannot parse either is forwarded as is: moto's
		// error is the realistic answer.
	}
	p.rp.ServeHTTP(w, r)
}

// changeResourceRecordSetsRequest is the part of Route53's
// ChangeResourceRecordSets XML the DNS bridge reads.
type changeResourceRecordSetsRequest struct {
	ChangeBatch struct {
		Changes []rrChange `xml:"Changes>Change"`
	} `xml:"ChangeBatch"`
}

type rrChange struct {
	Action            string `xml:"Action"`
	ResourceRecordSet struct {
		Name   string   `xml:"Name"`
		Type   string   `xml:"Type"`
		Values []string `xml:"ResourceRecords>ResourceRecord>Value"`
	} `xml:"ResourceRecordSet"`
}

// mirrorDNS copies the TXT changes of a ChangeResourceRecordSets that moto
// accepted into challtestsrv: CREATE adds values, UPSERT replaces them,
// DELETE removes the name. Changes moto rejected are not mirrored, so DNS
// never shows a record that Route53 refused.
func (p *awsProxy) mirrorDNS(resp *http.Response) error {
	changes, _ := resp.Request.Context().Value(changeBatchKey{}).([]rrChange)
	if len(changes) == 0 || resp.StatusCode/100 != 2 {
		return nil
	}
	p.mu.Lock()
	delay := p.dnsDelay
	p.mu.Unlock()
	if delay > 0 {
		time.AfterFunc(delay, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = p.mirror(ctx, changes)
		})
		return nil
	}
	return p.mirror(resp.Request.Context(), changes)
}

func (p *awsProxy) mirror(ctx context.Context, changes []rrChange) error {
	for _, c := range changes {
		rrs := c.ResourceRecordSet
		if !strings.EqualFold(rrs.Type, "TXT") {
			continue
		}
		host := strings.ToLower(rrs.Name)
		if !strings.HasSuffix(host, ".") {
			host += "."
		}
		switch strings.ToUpper(c.Action) {
		case "UPSERT", "DELETE":
			if err := p.challtest(ctx, "/clear-txt", map[string]string{"host": host}); err != nil {
				return err
			}
		}
		switch strings.ToUpper(c.Action) {
		case "UPSERT", "CREATE":
			for _, v := range rrs.Values {
				if err := p.challtest(ctx, "/set-txt", map[string]string{"host": host, "value": txtValue(v)}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (p *awsProxy) challtest(ctx context.Context, path string, body map[string]string) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.challtestsrv+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("mirroring Route53 TXT change to challtestsrv %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("mirroring Route53 TXT change to challtestsrv %s: %s: %s", path, resp.Status, msg)
	}
	return nil
}

// txtValue turns a Route53 TXT value (one or more quoted character strings,
// with backslash escapes) into the text a DNS client sees: the strings
// concatenated.
func txtValue(v string) string {
	v = strings.TrimSpace(v)
	if !strings.HasPrefix(v, `"`) {
		return v
	}
	var out strings.Builder
	inQuotes := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			inQuotes = !inQuotes
		case !inQuotes:
			// whitespace between character strings
		case c == '\\' && i+3 < len(v) && isOctal(v[i+1]) && isOctal(v[i+2]) && isOctal(v[i+3]):
			out.WriteByte((v[i+1]-'0')*64 + (v[i+2]-'0')*8 + (v[i+3] - '0'))
			i += 3
		case c == '\\' && i+1 < len(v):
			out.WriteByte(v[i+1])
			i++
		default:
			out.WriteByte(c)
		}
	}
	return out.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// SetQuota sets the value the fake Service Quotas returns for an ec2 quota
// code (one of the Quota* constants, or any other L- code to add one).
func (p *awsProxy) SetQuota(code string, value float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.quotas[code] = value
}

func (p *awsProxy) resetQuotas() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.quotas)
	for k, v := range DefaultQuotas {
		p.quotas[k] = v
	}
}

// serviceQuota is the ServiceQuota shape of the Service Quotas API.
type serviceQuota struct {
	Adjustable          bool
	GlobalQuota         bool
	QuotaAppliedAtLevel string
	QuotaArn            string
	QuotaCode           string
	QuotaName           string
	ServiceCode         string
	ServiceName         string
	Unit                string
	Value               float64
}

func (p *awsProxy) quota(code string, value float64) serviceQuota {
	name := quotaNames[code]
	if name == "" {
		name = code
	}
	return serviceQuota{
		Adjustable:          true,
		QuotaAppliedAtLevel: "ACCOUNT",
		QuotaArn:            fmt.Sprintf("arn:aws:servicequotas:%s:123456789012:ec2/%s", p.region, code),
		QuotaCode:           code,
		QuotaName:           name,
		ServiceCode:         "ec2",
		ServiceName:         "Amazon Elastic Compute Cloud (Amazon EC2)",
		Unit:                "None",
		Value:               value,
	}
}

// serveQuotas answers the Service Quotas API (AWS JSON 1.1 protocol) for
// service code ec2. Get/List return the current values; the AWSDefault
// variants return DefaultQuotas.
func (p *awsProxy) serveQuotas(w http.ResponseWriter, r *http.Request, op string) {
	var in struct {
		ServiceCode string
		QuotaCode   string
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		awsJSONError(w, http.StatusBadRequest, "ValidationException", "reading request: "+err.Error())
		return
	}
	if in.ServiceCode != "ec2" {
		awsJSONError(w, http.StatusBadRequest, "NoSuchResourceException", fmt.Sprintf("The request failed because the specified service %q does not exist.", in.ServiceCode))
		return
	}
	p.mu.Lock()
	values := map[string]float64{}
	if strings.Contains(op, "AWSDefault") {
		for k, v := range DefaultQuotas {
			values[k] = v
		}
	} else {
		for k, v := range p.quotas {
			values[k] = v
		}
	}
	p.mu.Unlock()

	switch op {
	case "GetServiceQuota", "GetAWSDefaultServiceQuota":
		v, ok := values[in.QuotaCode]
		if !ok {
			awsJSONError(w, http.StatusBadRequest, "NoSuchResourceException", fmt.Sprintf("The request failed because the specified quota %q does not exist.", in.QuotaCode))
			return
		}
		awsJSON(w, map[string]any{"Quota": p.quota(in.QuotaCode, v)})
	case "ListServiceQuotas", "ListAWSDefaultServiceQuotas":
		codes := make([]string, 0, len(values))
		for k := range values {
			if in.QuotaCode == "" || in.QuotaCode == k {
				codes = append(codes, k)
			}
		}
		sort.Strings(codes)
		quotas := make([]serviceQuota, 0, len(codes))
		for _, c := range codes {
			quotas = append(quotas, p.quota(c, values[c]))
		}
		awsJSON(w, map[string]any{"Quotas": quotas})
	default:
		awsJSONError(w, http.StatusBadRequest, "UnknownOperationException", "the test bed does not fake Service Quotas operation "+op)
	}
}

func awsJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(v)
}

func awsJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
