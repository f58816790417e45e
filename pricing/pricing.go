package pricing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	awspricing "github.com/aws/aws-sdk-go-v2/service/pricing"
	pricingtypes "github.com/aws/aws-sdk-go-v2/service/pricing/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/configs"
	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// Sources of the on-demand prices (installer.Cost.Source).
const (
	SourceAPI   = "price-list-api"
	SourceTable = "built-in-table"
)

// NotCounted is what the figures leave out, said on every estimate.
const NotCounted = "EC2 instances only: EBS volumes, load balancers, NAT gateways, data transfer and the OpenShift subscription are not counted"

// DefaultTimeout bounds the price look-ups; past it the built-in table is used.
const DefaultTimeout = 15 * time.Second

// Estimator works out a cluster file's hourly cost.
type Estimator struct {
	// AWS is the configuration to ask the Price List API and EC2 with (the cluster's
	// region); nil uses the built-in table only (init's review screen, which works offline).
	AWS *aws.Config
	// Table is the fallback; BuiltIn() when nil.
	Table *Table
	// Timeout bounds the API look-ups; DefaultTimeout when 0.
	Timeout time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

// machines is one group of identical machines of the file.
type machines struct {
	name, instanceType string
	min, max           int
	spot               bool
	zones              []string
}

// groups lists the machines the file asks for: the control plane and workers when the
// bootstrap installs the cluster (on platform.existing they are not ours to pay for or
// not), then each GPU pool with its min and max over all its zones.
func groups(c *configs.Cluster) []machines {
	var out []machines
	s := c.Spec
	if c.Installs() {
		for _, mp := range []struct {
			name string
			p    configs.MachinePool
		}{{"control-plane", s.ControlPlane}, {"workers", s.Workers}} {
			n := 0
			if mp.p.Replicas != nil {
				n = *mp.p.Replicas
			}
			out = append(out, machines{name: mp.name, instanceType: mp.p.InstanceType, min: n, max: n})
		}
	}
	for _, p := range s.GPUPools {
		out = append(out, machines{name: p.Name, instanceType: p.InstanceType, min: p.Min, max: p.Max, spot: p.Spot, zones: p.Zones})
	}
	return out
}

// Estimate prices the file's machines. It never fails: when the Price List API cannot be
// asked (no credentials, no network, access denied, timeout) the built-in table is used and
// the estimate says so, why, and how old the table is. Lines whose instance type has no
// price anywhere are marked Unknown.
func (e Estimator) Estimate(ctx context.Context, c *configs.Cluster) installer.Cost {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	table := e.Table
	if table == nil {
		table = BuiltIn()
	}
	region := ""
	if c.Spec.Platform.AWS != nil {
		region = c.Spec.Platform.AWS.Region
	}
	gs := groups(c)
	cost := installer.Cost{Currency: "USD", Region: region}
	if !c.Installs() {
		cost.Notes = append(cost.Notes, "platform.existing: the control plane and workers are not made by the bootstrap and not counted")
	}

	onDemand := map[string]float64{}
	spot := map[string][2]float64{} // line name → low, high
	var apiErr error
	if e.AWS != nil {
		timeout := e.Timeout
		if timeout == 0 {
			timeout = DefaultTimeout
		}
		actx, cancel := context.WithTimeout(ctx, timeout)
		if e.AWS.Credentials == nil {
			apiErr = errNoCredentials
		} else if _, err := e.AWS.Credentials.Retrieve(actx); err != nil {
			apiErr = errNoCredentials
		}
		if apiErr == nil {
			onDemand, apiErr = e.askOnDemand(actx, region, gs)
		}
		if apiErr == nil {
			var spotErr error
			spot, spotErr = e.askSpot(actx, gs)
			if spotErr != nil {
				cost.Notes = append(cost.Notes, "spot prices could not be read ("+brief(spotErr)+"): spot pools are counted at the on-demand price, their default maximum")
			}
		}
		cancel()
	}
	if e.AWS != nil && apiErr == nil {
		cost.Source, cost.SourceDate = SourceAPI, now().UTC().Format(time.DateOnly)
	} else {
		cost.Source, cost.SourceDate = SourceTable, table.Date.Format(time.DateOnly)
		cost.AgeDays = int(now().Sub(table.Date).Hours() / 24)
		why := "offline: plan asks the AWS Price List API"
		if apiErr != nil {
			why = "the AWS Price List API could not be asked: " + brief(apiErr)
		}
		cost.Notes = append(cost.Notes,
			fmt.Sprintf("prices: the built-in table of %s, %d days old (%s)", cost.SourceDate, cost.AgeDays, why),
			"table source: "+table.Source)
		onDemand = map[string]float64{}
		stoodIn := false
		for _, g := range gs {
			if p, from, ok := table.Lookup(region, g.instanceType); ok {
				onDemand[g.instanceType] = p
				stoodIn = stoodIn || from != region
			}
		}
		if stoodIn {
			cost.Notes = append(cost.Notes, fmt.Sprintf("the built-in table has no prices for %s: %s prices are shown, which may differ", region, tableRegion))
		}
	}

	for _, g := range gs {
		l := installer.CostLine{Name: g.name, InstanceType: g.instanceType, Min: g.min, Max: g.max, Spot: g.spot}
		p, ok := onDemand[g.instanceType]
		l.OnDemand, l.Unknown = p, !ok
		perMachine := p
		if r, ok := spot[g.name]; ok && g.spot {
			l.SpotLow, l.SpotHigh = &r[0], &r[1]
			perMachine = r[1]
		}
		l.MinHourly, l.MaxHourly = round(float64(g.min)*perMachine), round(float64(g.max)*perMachine)
		cost.MinHourly += l.MinHourly
		cost.MaxHourly += l.MaxHourly
		cost.Lines = append(cost.Lines, l)
		if l.Unknown {
			cost.Notes = append(cost.Notes, fmt.Sprintf("%s: no price for %s in %s", g.name, g.instanceType, region))
		}
	}
	cost.MinHourly, cost.MaxHourly = round(cost.MinHourly), round(cost.MaxHourly)
	cost.Notes = append(cost.Notes, NotCounted)
	return cost
}

// round keeps amounts to a millionth of a dollar, so JSON shows 110.79, not 110.78999999999999.
func round(v float64) float64 { return math.Round(v*1e6) / 1e6 }

// apiRegion is the Price List API endpoint serving a region's prices. The API is served
// from us-east-1, eu-central-1 and ap-south-1 only; the choice follows Karpenter's
// (aws/karpenter-provider-aws pkg/providers/pricing/pricing.go, NewAPI).
func apiRegion(region string) string {
	switch {
	case strings.HasPrefix(region, "ap-"):
		return "ap-south-1"
	case strings.HasPrefix(region, "eu-"):
		return "eu-central-1"
	case strings.HasPrefix(region, "cn-"):
		return "cn-northwest-1"
	}
	return "us-east-1"
}

// productFilters select one instance type's on-demand Linux price in a region, as
// documented for GetProducts (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html,
// attribute names from https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/using-price-list-query-api.html)
// and as Karpenter asks (pkg/providers/pricing/pricing.go, fetchOnDemandPricing):
// Linux with no pre-installed software (OpenShift's RHCOS nodes are billed as Linux; the
// OpenShift subscription is billed apart), shared tenancy — bare metal is listed under
// Dedicated —, capacitystatus Used (not an unused capacity reservation), market OnDemand.
func productFilters(region, instanceType string) []pricingtypes.Filter {
	tenancy := "Shared"
	if strings.HasSuffix(instanceType, ".metal") || strings.Contains(instanceType, ".metal-") {
		tenancy = "Dedicated"
	}
	f := func(field, value string) pricingtypes.Filter {
		return pricingtypes.Filter{Type: pricingtypes.FilterTypeTermMatch, Field: aws.String(field), Value: aws.String(value)}
	}
	return []pricingtypes.Filter{
		f("instanceType", instanceType),
		f("regionCode", region),
		f("operatingSystem", "Linux"),
		f("preInstalledSw", "NA"),
		f("tenancy", tenancy),
		f("capacitystatus", "Used"),
		f("marketoption", "OnDemand"),
	}
}

// askOnDemand reads each distinct instance type's on-demand price, a few at a time.
// An instance type the API has no product for is left out (the line shows it unknown);
// any failure of the API itself fails the whole look-up, so one estimate never mixes
// sources.
func (e Estimator) askOnDemand(ctx context.Context, region string, gs []machines) (map[string]float64, error) {
	cfg := e.AWS.Copy()
	cfg.Region = apiRegion(region)
	client := awspricing.NewFromConfig(cfg)
	var mu sync.Mutex
	out := map[string]float64{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	seen := map[string]bool{}
	for _, m := range gs {
		if seen[m.instanceType] {
			continue
		}
		seen[m.instanceType] = true
		it := m.instanceType
		g.Go(func() error {
			p, ok, err := onDemandPrice(gctx, client, region, it)
			if err != nil {
				return fmt.Errorf("GetProducts %s: %w", it, err)
			}
			if ok {
				mu.Lock()
				out[it] = p
				mu.Unlock()
			}
			return nil
		})
	}
	return out, g.Wait()
}

// product is the part of a Price List product document the estimate reads: the
// instance type and the on-demand terms' hourly USD price (the document's shape:
// https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/reading-service-price-list-file-for-services.html).
type product struct {
	Product struct {
		Attributes struct {
			InstanceType string `json:"instanceType"`
		} `json:"attributes"`
	} `json:"product"`
	Terms struct {
		OnDemand map[string]struct {
			PriceDimensions map[string]struct {
				Unit         string            `json:"unit"`
				PricePerUnit map[string]string `json:"pricePerUnit"`
			} `json:"priceDimensions"`
		} `json:"OnDemand"`
	} `json:"terms"`
}

// onDemandPrice returns the hourly USD price of the products GetProducts finds. Should
// the filters leave more than one product, the highest price is taken: an estimate that
// guards a budget errs on the dear side.
func onDemandPrice(ctx context.Context, client *awspricing.Client, region, instanceType string) (float64, bool, error) {
	found, price := false, 0.0
	pages := awspricing.NewGetProductsPaginator(client, &awspricing.GetProductsInput{
		ServiceCode:   aws.String("AmazonEC2"),
		Filters:       productFilters(region, instanceType),
		FormatVersion: aws.String("aws_v1"),
		MaxResults:    aws.Int32(100),
	})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return 0, false, err
		}
		for _, doc := range out.PriceList {
			var p product
			if err := json.Unmarshal([]byte(doc), &p); err != nil {
				return 0, false, fmt.Errorf("reading a price list product: %w", err)
			}
			if p.Product.Attributes.InstanceType != instanceType {
				continue
			}
			for _, term := range p.Terms.OnDemand {
				for _, d := range term.PriceDimensions {
					v, err := strconv.ParseFloat(d.PricePerUnit["USD"], 64)
					if err != nil || v == 0 || !strings.EqualFold(d.Unit, "Hrs") {
						continue
					}
					found, price = true, max(price, v)
				}
			}
		}
	}
	return price, found, nil
}

// askSpot reads the current spot price of each spot pool's instance type in its zones
// (DescribeSpotPriceHistory with StartTime now returns the price in force per zone, as
// Karpenter reads it: pkg/providers/pricing/pricing.go, UpdateSpotPricing). A pool with
// no answer is left out (counted at on-demand).
func (e Estimator) askSpot(ctx context.Context, gs []machines) (map[string][2]float64, error) {
	out := map[string][2]float64{}
	var client *ec2.Client
	for _, g := range gs {
		if !g.spot {
			continue
		}
		if client == nil {
			client = ec2.NewFromConfig(*e.AWS)
		}
		in := &ec2.DescribeSpotPriceHistoryInput{
			InstanceTypes:       []ec2types.InstanceType{ec2types.InstanceType(g.instanceType)},
			ProductDescriptions: []string{"Linux/UNIX", "Linux/UNIX (Amazon VPC)"},
			StartTime:           aws.Time(time.Now()),
		}
		if len(g.zones) > 0 {
			in.Filters = []ec2types.Filter{{Name: aws.String("availability-zone"), Values: g.zones}}
		}
		low, high, any := math.Inf(1), 0.0, false
		pages := ec2.NewDescribeSpotPriceHistoryPaginator(client, in)
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return out, fmt.Errorf("DescribeSpotPriceHistory %s: %w", g.instanceType, err)
			}
			for _, h := range page.SpotPriceHistory {
				v, err := strconv.ParseFloat(aws.ToString(h.SpotPrice), 64)
				if err != nil {
					continue
				}
				low, high, any = min(low, v), max(high, v), true
			}
		}
		if any {
			out[g.name] = [2]float64{low, high}
		}
	}
	return out, nil
}

// errNoCredentials is why the API was not asked when no credentials resolve.
var errNoCredentials = errors.New("no AWS credentials")

// brief says in a few words why an AWS call failed: the service's error code and message,
// else the last link of the chain (the SDK's full chain goes to the debug log).
func brief(err error) string {
	if errors.Is(err, errNoCredentials) {
		return err.Error()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer in time"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		s = s[i+2:]
	}
	return s
}
