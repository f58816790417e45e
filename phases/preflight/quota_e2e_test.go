//go:build e2e

package preflight

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/phases"
)

const poolsFile = `apiVersion: rhoai-bootstrap.io/v1alpha1
kind: Cluster
metadata: {name: quotas}
spec:
  baseDomain: bed.example.com
  platform: {aws: {region: us-east-1, zones: [us-east-1a]}}
  openshift: {pullSecretFile: ps.json}
  gpuPools:
    - {name: t4, gpu: T4, min: 0, max: 5}                   # g4dn.xlarge, 4 vCPUs: up to 20 on-demand
    - {name: l40s, gpu: L40S, min: 0, max: 8, spot: true}   # g6e.xlarge, 4 vCPUs: up to 32 spot
`

// The GPU quotas are compared with what the pools may grow to after what already runs
// in the account: moto serves DescribeInstances, so instances are really run there.
func TestQuotasNetOfWhatRuns(t *testing.T) {
	ctx := t.Context()
	bed, err := testbed.Start(ctx, testbed.Options{NoKube: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bed.Stop() })
	cfg := bed.AWSConfig()
	client := ec2.NewFromConfig(cfg)
	images, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"}})
	require.NoError(t, err)
	require.NotEmpty(t, images.Images)
	ami := images.Images[0].ImageId
	runInstance := func(typ string, spot bool) string {
		in := &ec2.RunInstancesInput{ImageId: ami, InstanceType: ec2types.InstanceType(typ), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}
		if spot {
			in.InstanceMarketOptions = &ec2types.InstanceMarketOptionsRequest{MarketType: ec2types.MarketTypeSpot}
		}
		out, err := client.RunInstances(ctx, in)
		require.NoError(t, err)
		return aws.ToString(out.Instances[0].InstanceId)
	}

	c, err := configs.Parse([]byte(poolsFile), "quotas.yaml")
	require.NoError(t, err)
	p := &phase{env: &phases.Env{Cluster: c}}

	// Nothing runs: 20 of 64 on-demand and 32 of 64 spot G vCPUs fit.
	assert.Empty(t, p.checkQuotas(ctx, cfg))

	busy := runInstance("g4dn.12xlarge", false) // 48 vCPUs on-demand
	stopped := runInstance("g4dn.12xlarge", false)
	_, err = client.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{stopped}})
	require.NoError(t, err)
	gone := runInstance("p4d.24xlarge", false)
	_, err = client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{gone}})
	require.NoError(t, err)
	runInstance("m6i.8xlarge", false) // another quota (Standard)
	runInstance("g5.2xlarge", true)   // 8 vCPUs spot

	problems := p.checkQuotas(ctx, cfg)
	require.Len(t, problems, 1, "problems: %q", problems)
	assert.Contains(t, problems[0], `EC2 quota "Running On-Demand G and VT instances" (L-DB2E81BA): quota 64 vCPUs, in use 48, this file needs up to 20`)

	bed.SetQuota(testbed.QuotaGAndVTSpot, 36) // 36 - 8 spot in use < 32
	problems = p.checkQuotas(ctx, cfg)
	require.Len(t, problems, 2, "problems: %q", problems)
	assert.Contains(t, strings.Join(problems, "\n"), `EC2 quota "All G and VT Spot Instance Requests" (L-3819A6DF): quota 36 vCPUs, in use 8, this file needs up to 32`)

	_, err = client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{busy}})
	require.NoError(t, err)
	problems = p.checkQuotas(context.Background(), cfg)
	require.Len(t, problems, 1, "problems: %q", problems)
	assert.Contains(t, problems[0], "L-3819A6DF")
}
