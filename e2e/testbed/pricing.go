package testbed

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/pricing"
)

// moto serves no AWS Price List API, so the proxy answers pricing:GetProducts itself, in
// the real API's shape (AWS JSON 1.1, target AWSPriceListService.GetProducts):
// https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html
// — FormatVersion, PriceList (each entry a product document as a JSON string), NextToken.
// A product document has product.attributes and terms.OnDemand.<offer>.priceDimensions.<rate>
// {unit "Hrs", pricePerUnit {"USD": "…"}} as the price list files do
// (https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/reading-service-price-list-file-for-services.html).
// Filters are TERM_MATCH on product attributes (and serviceCode), all of which must
// match; a filter on an attribute a product lacks excludes it (our reading of TERM_MATCH:
// the reference documents equality on the attribute's value and nothing for a missing one).
//
// For each priced instance type the catalog also holds the products a careless query
// would pick up — Windows, RHEL, SQL Server pre-installed, Dedicated tenancy, an unused
// capacity reservation, a capacity block — each at another price, so a client that
// forgets a filter gets a wrong or ambiguous answer instead of passing by luck. EC2's
// DescribeSpotPriceHistory is moto's own (it answers 0.00001 for every offering).

// priceVariant is one product of an instance type: the attributes that differ from the
// on-demand Linux product and a price factor.
type priceVariant struct {
	attrs  map[string]string
	factor float64
}

var priceVariants = []priceVariant{
	{attrs: map[string]string{}, factor: 1},
	{attrs: map[string]string{"operatingSystem": "Windows", "licenseModel": "License included"}, factor: 1.9},
	{attrs: map[string]string{"operatingSystem": "RHEL", "licenseModel": "License included"}, factor: 1.3},
	{attrs: map[string]string{"preInstalledSw": "SQL Std", "licenseModel": "License included"}, factor: 2.7},
	{attrs: map[string]string{"tenancy": "Dedicated"}, factor: 1.1},
	{attrs: map[string]string{"capacitystatus": "UnusedCapacityReservation"}, factor: 0.5},
	{attrs: map[string]string{"marketoption": "CapacityBlock"}, factor: 0.7},
}

// resetPrices seeds the on-demand prices from the binary's built-in table, for its
// region and for the bed's (so a plan on the bed shows realistic figures).
func (p *awsProxy) resetPrices() {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := pricing.BuiltIn()
	p.prices = map[string]map[string]float64{}
	p.pricingDenied = false
	for region, byType := range t.OnDemand {
		for _, r := range []string{region, p.region} {
			if p.prices[r] == nil {
				p.prices[r] = map[string]float64{}
			}
			for it, v := range byType {
				p.prices[r][it] = v
			}
		}
	}
}

// SetPrice sets the on-demand Linux price the fake Price List API gives an instance type
// in a region.
func (p *awsProxy) SetPrice(region, instanceType string, usd float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.prices[region] == nil {
		p.prices[region] = map[string]float64{}
	}
	p.prices[region][instanceType] = usd
}

// SetPriceListDenied makes GetProducts answer AccessDeniedException, as AWS does to a
// principal without pricing:GetProducts.
func (p *awsProxy) SetPriceListDenied(denied bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pricingDenied = denied
}

// products builds the catalog for one query, sorted for stable pages.
func (p *awsProxy) products() []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	regions := make([]string, 0, len(p.prices))
	for r := range p.prices {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	for _, region := range regions {
		types := make([]string, 0, len(p.prices[region]))
		for it := range p.prices[region] {
			types = append(types, it)
		}
		sort.Strings(types)
		for _, it := range types {
			for i, v := range priceVariants {
				attrs := map[string]string{
					"servicecode": "AmazonEC2", "instanceType": it, "regionCode": region,
					"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA",
					"capacitystatus": "Used", "marketoption": "OnDemand", "licenseModel": "No License required",
					"usagetype": "BoxUsage:" + it,
				}
				for k, val := range v.attrs {
					attrs[k] = val
				}
				sku := fmt.Sprintf("BED%s%s%d", strings.ToUpper(strings.ReplaceAll(region, "-", "")), strings.ToUpper(strings.ReplaceAll(it, ".", "")), i)
				price := strconv.FormatFloat(p.prices[region][it]*v.factor, 'f', 10, 64)
				out = append(out, map[string]any{
					"serviceCode": "AmazonEC2",
					"product":     map[string]any{"productFamily": "Compute Instance", "sku": sku, "attributes": attrs},
					"terms": map[string]any{"OnDemand": map[string]any{sku + ".JRTCKXETXF": map[string]any{
						"sku": sku, "offerTermCode": "JRTCKXETXF", "effectiveDate": "2026-07-01T00:00:00Z", "termAttributes": map[string]any{},
						"priceDimensions": map[string]any{sku + ".JRTCKXETXF.6YS6EN2CT7": map[string]any{
							"rateCode": sku + ".JRTCKXETXF.6YS6EN2CT7", "unit": "Hrs", "beginRange": "0", "endRange": "Inf",
							"description": "$" + price + " per On Demand " + attrs["operatingSystem"] + " " + it + " Instance Hour",
							"appliesTo":   []string{}, "pricePerUnit": map[string]string{"USD": price},
						}},
					}}},
					"version": "20260701000000", "publicationDate": "2026-07-01T00:00:00Z",
				})
			}
		}
	}
	return out
}

// servePricing answers the Price List API's GetProducts.
func (p *awsProxy) servePricing(w http.ResponseWriter, r *http.Request, op string) {
	if op != "GetProducts" {
		awsJSONError(w, http.StatusBadRequest, "UnknownOperationException", "the test bed does not fake Price List operation "+op)
		return
	}
	var in struct {
		ServiceCode string
		Filters     []struct{ Type, Field, Value string }
		NextToken   string
		MaxResults  int
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		awsJSONError(w, http.StatusBadRequest, "InvalidParameterException", "reading request: "+err.Error())
		return
	}
	p.mu.Lock()
	denied := p.pricingDenied
	p.mu.Unlock()
	if denied {
		awsJSONError(w, http.StatusBadRequest, "AccessDeniedException", "User is not authorized to perform: pricing:GetProducts")
		return
	}
	if in.ServiceCode != "AmazonEC2" {
		awsJSONError(w, http.StatusBadRequest, "InvalidParameterException", fmt.Sprintf("the test bed prices only AmazonEC2, not %q", in.ServiceCode))
		return
	}
	var matched []string
	for _, prod := range p.products() {
		attrs := prod["product"].(map[string]any)["attributes"].(map[string]string)
		ok := true
		for _, f := range in.Filters {
			if f.Type != "TERM_MATCH" {
				awsJSONError(w, http.StatusBadRequest, "InvalidParameterException", "the test bed supports TERM_MATCH filters only, not "+f.Type)
				return
			}
			v, has := attrs[f.Field]
			if strings.EqualFold(f.Field, "serviceCode") {
				v, has = "AmazonEC2", true
			}
			ok = ok && has && v == f.Value
		}
		if ok {
			b, _ := json.Marshal(prod)
			matched = append(matched, string(b))
		}
	}
	start := 0
	if in.NextToken != "" {
		n, err := strconv.Atoi(in.NextToken)
		if err != nil || n < 0 || n > len(matched) {
			awsJSONError(w, http.StatusBadRequest, "InvalidNextTokenException", "The pagination token is invalid.")
			return
		}
		start = n
	}
	size := in.MaxResults
	if size <= 0 || size > 100 {
		size = 100
	}
	end := min(start+size, len(matched))
	out := map[string]any{"FormatVersion": "aws_v1", "PriceList": matched[start:end]}
	if end < len(matched) {
		out["NextToken"] = strconv.Itoa(end)
	}
	awsJSON(w, out)
}
