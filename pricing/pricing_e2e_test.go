//go:build e2e

package pricing_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/e2e/testbed"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/pricing"
)

const bedFile = `apiVersion: rhoai-bootstrap.io/v1alpha1
kind: Cluster
metadata: {name: prices}
spec:
  baseDomain: bed.example.com
  platform: {aws: {region: us-east-1, zones: [us-east-1a, us-east-1b]}}
  openshift: {pullSecretFile: ps.json}
  workers: {instanceType: m6i.xlarge, replicas: 2}
  gpuPools:
    - {name: t4, gpu: T4, min: 1, max: 3}
    - {name: l40s, gpu: L40S, min: 0, max: 2, spot: true}
`

// Both paths against the bed's AWS: the Price List API (the proxy answers GetProducts in
// the API's shape, with decoy Windows/RHEL/Dedicated/reservation products at other prices
// so a missing filter shows) and moto's spot price history; then, with the API refusing
// the caller, the built-in table.
func TestPricesFromTheBedsAWS(t *testing.T) {
	ctx := t.Context()
	bed, err := testbed.Start(ctx, testbed.Options{NoKube: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bed.Stop() })
	c, err := configs.Parse([]byte(bedFile), "prices.yaml")
	require.NoError(t, err)
	cfg := bed.AWSConfig()

	// A price no table holds, so the figure can only have come from the API.
	bed.SetPrice("us-east-1", "g4dn.xlarge", 0.6131)
	cost := pricing.Estimator{AWS: &cfg}.Estimate(ctx, c)
	require.Equal(t, pricing.SourceAPI, cost.Source, "notes: %q", cost.Notes)
	byName := map[string]int{}
	for i, l := range cost.Lines {
		byName[l.Name] = i
		assert.False(t, l.Unknown, l.Name)
	}
	t4 := cost.Lines[byName["t4"]]
	assert.Equal(t, 0.6131, t4.OnDemand)
	assert.InDelta(t, 0.6131, t4.MinHourly, 1e-9)
	assert.InDelta(t, 3*0.6131, t4.MaxHourly, 1e-9)
	table := pricing.BuiltIn()
	for _, name := range []string{"control-plane", "workers", "l40s"} {
		l := cost.Lines[byName[name]]
		want, _, _ := table.Lookup("us-east-1", l.InstanceType)
		assert.Equal(t, want, l.OnDemand, "%s: the Linux/Shared/Used on-demand product, not a decoy", name)
	}
	// moto answers DescribeSpotPriceHistory with 0.00001 for every offering in the zones.
	l40s := cost.Lines[byName["l40s"]]
	require.NotNil(t, l40s.SpotLow, "notes: %q", cost.Notes)
	assert.Equal(t, 0.00001, *l40s.SpotLow)
	assert.Equal(t, 0.00001, *l40s.SpotHigh)
	assert.InDelta(t, 2*0.00001, l40s.MaxHourly, 1e-9)
	require.NoError(t, pricing.CheckLimit(cost, 100, "--max-hourly-cost"))
	err = pricing.CheckLimit(cost, 2, "--max-hourly-cost")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "prices: AWS Price List API, us-east-1")

	bed.SetPriceListDenied(true)
	cost = pricing.Estimator{AWS: &cfg}.Estimate(ctx, c)
	assert.Equal(t, pricing.SourceTable, cost.Source)
	assert.Contains(t, cost.Notes[0], "the AWS Price List API could not be asked: AccessDeniedException")
	want, _, _ := table.Lookup("us-east-1", "g4dn.xlarge")
	assert.Equal(t, want, cost.Lines[byName["t4"]].OnDemand)
	assert.Nil(t, cost.Lines[byName["l40s"]].SpotLow, "one estimate never mixes sources")
}
