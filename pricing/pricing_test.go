package pricing_test

import (
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/pricing"
)

// The table covers every instance type the GPU catalog offers and the control plane's
// and workers' defaults, and says when and where it was taken from.
func TestBuiltInTable(t *testing.T) {
	tab := pricing.BuiltIn()
	assert.False(t, tab.Date.IsZero())
	assert.Contains(t, tab.Source, "karpenter-provider-aws")
	types := []string{configs.DefaultControlPlaneType, configs.DefaultWorkerType, "m6i.xlarge"}
	for _, g := range configs.Catalog {
		for it := range g.Sizes {
			types = append(types, it)
		}
	}
	for _, it := range types {
		p, region, ok := tab.Lookup("us-east-1", it)
		assert.True(t, ok, "no built-in price for %s", it)
		assert.Equal(t, "us-east-1", region)
		assert.Greater(t, p, 0.0, it)
	}
	_, region, ok := tab.Lookup("eu-west-3", "g4dn.xlarge")
	assert.True(t, ok)
	assert.Equal(t, "us-east-1", region, "a region the table lacks is stood in for, and said so")
}

func load(t *testing.T, path string) *configs.Cluster {
	t.Helper()
	c, err := configs.Load(path)
	require.NoError(t, err)
	return c
}

// expected works the totals out from the table, line by line, the way a reader would.
func expected(t *testing.T, c *configs.Cluster) (minH, maxH float64) {
	tab := pricing.BuiltIn()
	price := func(it string) float64 {
		p, _, ok := tab.Lookup("us-east-1", it)
		require.True(t, ok, it)
		return p
	}
	fixed := float64(*c.Spec.ControlPlane.Replicas)*price(c.Spec.ControlPlane.InstanceType) +
		float64(*c.Spec.Workers.Replicas)*price(c.Spec.Workers.InstanceType)
	minH, maxH = fixed, fixed
	for _, p := range c.Spec.GPUPools {
		minH += float64(p.Min) * price(p.InstanceType)
		maxH += float64(p.Max) * price(p.InstanceType)
	}
	return minH, maxH
}

func TestEstimateFromTheTable(t *testing.T) {
	c := load(t, "../configs/examples/dev.yaml")
	now := pricing.BuiltIn().Date.Add(40 * 24 * time.Hour)
	cost := pricing.Estimator{Now: func() time.Time { return now }}.Estimate(t.Context(), c)

	assert.Equal(t, pricing.SourceTable, cost.Source)
	assert.Equal(t, 40, cost.AgeDays)
	assert.Equal(t, "us-west-2", cost.Region)
	minH, maxH := expected(t, c)
	assert.InDelta(t, minH, cost.MinHourly, 0.001)
	assert.InDelta(t, maxH, cost.MaxHourly, 0.001)
	require.Len(t, cost.Lines, 2+len(c.Spec.GPUPools))
	assert.Equal(t, "control-plane", cost.Lines[0].Name)
	assert.Equal(t, 3, cost.Lines[0].Max)
	h100 := cost.Lines[len(cost.Lines)-1]
	assert.Equal(t, "h100-private", h100.Name)
	assert.Equal(t, "p5.48xlarge", h100.InstanceType)
	assert.Zero(t, h100.MinHourly)
	assert.InDelta(t, h100.OnDemand, h100.MaxHourly, 0.0001)
	spot := cost.Lines[5]
	require.True(t, spot.Spot)
	assert.Nil(t, spot.SpotLow, "no spot price without the API")
	assert.InDelta(t, 2*spot.OnDemand, spot.MaxHourly, 0.0001, "spot at its ceiling, the on-demand price")
	assert.Contains(t, cost.Notes, "the built-in table has no prices for us-west-2: us-east-1 prices are shown, which may differ")
	assert.Contains(t, cost.Notes[0], "40 days old")
}

// No AWS to ask (a closed port): the table, the reason, and the age.
func TestEstimateFallsBackWhenTheAPIIsUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	cfg := aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "not-a-secret", ""),
		BaseEndpoint:     aws.String("http://" + addr),
		RetryMaxAttempts: 1,
	}
	c := load(t, "../configs/examples/prod.yaml")
	cost := pricing.Estimator{AWS: &cfg, Timeout: 10 * time.Second}.Estimate(t.Context(), c)
	assert.Equal(t, pricing.SourceTable, cost.Source)
	assert.Contains(t, cost.Notes[0], "the AWS Price List API could not be asked")
	minH, maxH := expected(t, c)
	assert.InDelta(t, minH, cost.MinHourly, 0.001)
	assert.InDelta(t, maxH, cost.MaxHourly, 0.001)

	cfg.Credentials = nil
	cost = pricing.Estimator{AWS: &cfg}.Estimate(t.Context(), c)
	assert.Contains(t, cost.Notes[0], "could not be asked: no AWS credentials")
}

// On a cluster the bootstrap does not install, only the GPU pools are its spending.
func TestExistingClusterCountsOnlyThePools(t *testing.T) {
	c := load(t, "../configs/examples/existing-cluster.yaml")
	cost := pricing.Estimator{}.Estimate(t.Context(), c)
	require.Len(t, cost.Lines, len(c.Spec.GPUPools))
	for _, l := range cost.Lines {
		assert.NotContains(t, []string{"control-plane", "workers"}, l.Name)
	}
	assert.Contains(t, cost.Notes[0], "platform.existing")
}

func TestCheckLimit(t *testing.T) {
	c := load(t, "../configs/examples/dev.yaml")
	cost := pricing.Estimator{}.Estimate(t.Context(), c)
	require.NoError(t, pricing.CheckLimit(cost, 0, "--max-hourly-cost"), "no limit")
	require.NoError(t, pricing.CheckLimit(cost, cost.MaxHourly, "--max-hourly-cost"), "exactly at the limit")

	err := pricing.CheckLimit(cost, 60, "spec.maxHourlyCost")
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "spec.maxHourlyCost: the machines could cost $110.79/h at the GPU pools' max, over the limit of $60.00/h")
	assert.Contains(t, msg, "control plane and workers $3.46/h, GPU pools $107.33/h")
	assert.Contains(t, msg, "h100-private 1 × p5.48xlarge $55.04/h")
	assert.Contains(t, msg, "prices: built-in table of 2026-07-20, us-west-2")
	assert.Contains(t, msg, "raise spec.maxHourlyCost; nothing was changed")

	c.Spec.GPUPools[0].InstanceType = "g4dn.unheardof"
	cost = pricing.Estimator{}.Estimate(t.Context(), c)
	assert.True(t, cost.Lines[2].Unknown)
	err = pricing.CheckLimit(cost, 1000, "--max-hourly-cost")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--max-hourly-cost: cannot tell whether the machines stay under $1000.00/h: no price in us-west-2 for t4-shared (g4dn.unheardof)")
}
