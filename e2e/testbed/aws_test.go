package testbed_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	sqtypes "github.com/aws/aws-sdk-go-v2/service/servicequotas/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
)

// loadAWS loads the SDK configuration the way the bootstrap does — from the
// environment alone — with the bed's Env() in place.
func loadAWS(t *testing.T) aws.Config {
	t.Helper()
	envFromBed(t)
	cfg, err := config.LoadDefaultConfig(t.Context())
	require.NoError(t, err)
	return cfg
}

// Every AWS call the preflight makes reaches moto (or the fake Service
// Quotas) through AWS_ENDPOINT_URL, with no per-service endpoint setting.
func TestAWSThroughEndpointURL(t *testing.T) {
	cfg := loadAWS(t)
	ctx := t.Context()

	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, "123456789012", aws.ToString(id.Account))

	zones, err := route53.NewFromConfig(cfg).ListHostedZonesByName(ctx, &route53.ListHostedZonesByNameInput{
		DNSName: aws.String("bed.example.com"),
	})
	require.NoError(t, err)
	require.NotEmpty(t, zones.HostedZones)
	assert.Equal(t, "bed.example.com.", aws.ToString(zones.HostedZones[0].Name))
	assert.Equal(t, "/hostedzone/"+bed.HostedZoneID(), aws.ToString(zones.HostedZones[0].Id))
	assert.False(t, zones.HostedZones[0].Config.PrivateZone)

	offers, err := ec2.NewFromConfig(cfg).DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters:      []ec2types.Filter{{Name: aws.String("instance-type"), Values: []string{"g6e.xlarge"}}},
	})
	require.NoError(t, err)
	require.NotEmpty(t, offers.InstanceTypeOfferings)
	for _, o := range offers.InstanceTypeOfferings {
		assert.Equal(t, ec2types.InstanceType("g6e.xlarge"), o.InstanceType)
		assert.True(t, strings.HasPrefix(aws.ToString(o.Location), "us-east-1"), aws.ToString(o.Location))
	}

	sq := servicequotas.NewFromConfig(cfg)
	getQuota := func() float64 {
		out, err := sq.GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{
			ServiceCode: aws.String("ec2"), QuotaCode: aws.String(testbed.QuotaGAndVTOnDemand),
		})
		require.NoError(t, err)
		assert.Equal(t, "Running On-Demand G and VT instances", aws.ToString(out.Quota.QuotaName))
		return aws.ToFloat64(out.Quota.Value)
	}
	assert.Equal(t, testbed.DefaultQuotas[testbed.QuotaGAndVTOnDemand], getQuota())
	bed.SetQuota(testbed.QuotaGAndVTOnDemand, 8)
	t.Cleanup(func() {
		bed.SetQuota(testbed.QuotaGAndVTOnDemand, testbed.DefaultQuotas[testbed.QuotaGAndVTOnDemand])
	})
	assert.Equal(t, 8.0, getQuota())

	list, err := sq.ListServiceQuotas(ctx, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("ec2")})
	require.NoError(t, err)
	var codes []string
	for _, q := range list.Quotas {
		codes = append(codes, aws.ToString(q.QuotaCode))
	}
	assert.ElementsMatch(t, []string{"L-1216C47A", "L-DB2E81BA", "L-417A185B", "L-3819A6DF", "L-7212CCBC"}, codes)

	_, err = sq.GetServiceQuota(ctx, &servicequotas.GetServiceQuotaInput{
		ServiceCode: aws.String("ec2"), QuotaCode: aws.String("L-00000000"),
	})
	var notFound *sqtypes.NoSuchResourceException
	assert.True(t, errors.As(err, &notFound), "want NoSuchResourceException, got %v", err)
}

// A TXT record written to Route53 is served by challtestsrv's DNS until it
// is deleted; a change Route53 refuses is not mirrored.
func TestRoute53TXTBridge(t *testing.T) {
	cfg := loadAWS(t)
	ctx := t.Context()
	r53 := route53.NewFromConfig(cfg)
	name := "_acme-challenge.bridge.rhoai-local.bed.example.com."
	change := func(action r53types.ChangeAction, values ...string) error {
		var rrs []r53types.ResourceRecord
		for _, v := range values {
			rrs = append(rrs, r53types.ResourceRecord{Value: aws.String(v)})
		}
		_, err := r53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
			HostedZoneId: aws.String(bed.HostedZoneID()),
			ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{{
				Action: action,
				ResourceRecordSet: &r53types.ResourceRecordSet{
					Name: aws.String(name), Type: r53types.RRTypeTxt, TTL: aws.Int64(10), ResourceRecords: rrs,
				},
			}}},
		})
		return err
	}

	require.NoError(t, change(r53types.ChangeActionUpsert, `"first"`, `"two" "parts"`))
	assert.ElementsMatch(t, []string{"first", "twoparts"}, lookupTXT(t, name))

	require.NoError(t, change(r53types.ChangeActionUpsert, `"replaced"`))
	assert.Equal(t, []string{"replaced"}, lookupTXT(t, name))

	// Route53 refuses to delete a record set that does not match exactly.
	require.Error(t, change(r53types.ChangeActionDelete, `"not-the-value"`))
	assert.Equal(t, []string{"replaced"}, lookupTXT(t, name))

	require.NoError(t, change(r53types.ChangeActionDelete, `"replaced"`))
	assert.Empty(t, lookupTXT(t, name))
}

// lookupTXT asks challtestsrv's DNS (over TCP, like Pebble) for name's TXT
// values.
func lookupTXT(t *testing.T, name string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeTXT)
	resp, _, err := (&dns.Client{Net: "tcp"}).ExchangeContext(ctx, m, bed.DNSResolver())
	require.NoError(t, err)
	var values []string
	for _, rr := range resp.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			values = append(values, strings.Join(txt.Txt, ""))
		}
	}
	return values
}
