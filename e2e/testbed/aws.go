package testbed

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	route53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
)

// Fake AWS credentials; moto accepts any.
const (
	awsAccessKeyID     = "testing"
	awsSecretAccessKey = "testing"
)

// motoFallback is where the machine image installs moto_server when it is
// not on PATH.
const motoFallback = "/root/.pyenv/shims/moto_server"

// startMoto starts moto_server on a free port and waits until it answers.
func (b *Bed) startMoto(ctx context.Context) error {
	bin := b.opts.MotoServer
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("moto_server"); err != nil {
			bin = motoFallback
		}
	}
	return retryOnPortClash(func() error {
		port, err := freePort()
		if err != nil {
			return err
		}
		p, err := b.start("moto", b.childEnv(), bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
		if err != nil {
			return err
		}
		b.motoURL = &url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(port)}
		return p.waitReady(ctx, 60*time.Second, httpAnswers(http.DefaultClient, b.motoURL.String()+"/moto-api/"))
	})
}

// AWSConfig returns an SDK configuration that talks to the bed's AWS (moto
// behind the proxy) without reading the environment or ~/.aws, for tests
// that call AWS directly.
func (b *Bed) AWSConfig() aws.Config {
	return aws.Config{
		Region:       b.opts.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(awsAccessKeyID, awsSecretAccessKey, ""),
		BaseEndpoint: aws.String(b.proxy.URL()),
	}
}

// createHostedZone creates the public hosted zone of the base domain, as the
// user of a real account has before running the bootstrap.
func (b *Bed) createHostedZone(ctx context.Context) error {
	r53 := route53.NewFromConfig(b.AWSConfig())
	out, err := r53.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{
		Name:             aws.String(b.opts.BaseDomain),
		CallerReference:  aws.String(fmt.Sprintf("rhoai-testbed-%d", time.Now().UnixNano())),
		HostedZoneConfig: &route53types.HostedZoneConfig{PrivateZone: false, Comment: aws.String("rhoai-bootstrap test bed")},
	})
	if err != nil {
		return fmt.Errorf("creating the Route53 hosted zone %s: %w", b.opts.BaseDomain, err)
	}
	b.mu.Lock()
	b.hostedZoneID = strings.TrimPrefix(aws.ToString(out.HostedZone.Id), "/hostedzone/")
	b.mu.Unlock()
	return nil
}

// ResetAWS wipes moto's state (POST /moto-api/reset), restores DefaultQuotas
// and creates the base domain's hosted zone again. The zone gets a new ID:
// read it from HostedZoneID (the env file written earlier keeps the old one).
func (b *Bed) ResetAWS(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.motoURL.String()+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("resetting moto: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("resetting moto: %s", resp.Status)
	}
	b.proxy.resetQuotas()
	b.proxy.resetPrices()
	b.proxy.setDNSDelay(0)
	return b.createHostedZone(ctx)
}

// SetDNSPropagation makes Route53 TXT changes reach the bed's DNS (what Pebble and
// lego's propagation check query) only after d; ResetAWS sets it back to 0.
func (b *Bed) SetDNSPropagation(d time.Duration) { b.proxy.setDNSDelay(d) }

// SetQuota sets the value (in vCPUs) that the fake Service Quotas returns
// for an ec2 quota code, e.g. SetQuota(QuotaGAndVTOnDemand, 0) to make a GPU
// preflight fail.
func (b *Bed) SetQuota(code string, value float64) { b.proxy.SetQuota(code, value) }

// SetPrice sets the on-demand Linux price (USD per hour) that the bed's Price List API
// gives an instance type in a region; ResetAWS puts back the built-in table's.
func (b *Bed) SetPrice(region, instanceType string, usd float64) {
	b.proxy.SetPrice(region, instanceType, usd)
}

// SetPriceListDenied makes the bed's Price List API refuse every call
// (AccessDeniedException), as AWS does to a principal without pricing:GetProducts.
func (b *Bed) SetPriceListDenied(denied bool) { b.proxy.SetPriceListDenied(denied) }

// HostedZoneID is the ID (without "/hostedzone/") of the base domain's
// public Route53 zone.
func (b *Bed) HostedZoneID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hostedZoneID
}

// AWSEndpoint is the URL of the AWS proxy (what AWS_ENDPOINT_URL says).
func (b *Bed) AWSEndpoint() string { return b.proxy.URL() }

// MotoURL is moto_server's own URL, bypassing the proxy (for /moto-api).
func (b *Bed) MotoURL() string { return b.motoURL.String() }
