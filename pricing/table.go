// Package pricing tells what the machines of a cluster file cost per hour before anything
// is spent: on-demand prices from the AWS Price List API, spot price ranges from EC2's spot
// price history, and, when the API cannot be asked, a dated table built into the binary.
// GPU pools are the expensive part of the platform (one H100 node costs more per hour than
// the rest of a small cluster per day), so `plan` shows the bill at the pools' min and max
// and `install` can refuse a file whose max goes over a limit.
package pricing

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"time"
)

// prices.json is written by ./internal/gentable from Karpenter's generated price list
// (see its doc comment for the source and the command); never edit it by hand.
//
//go:embed prices.json
var pricesJSON []byte

// Table is the built-in on-demand price list: USD per hour, per region and instance type.
type Table struct {
	// Date is the day the prices were read from the Price List API.
	Date time.Time
	// Source names where the table was taken from.
	Source   string
	OnDemand map[string]map[string]float64
}

// tableRegion is the region whose prices stand in for a region the table lacks.
const tableRegion = "us-east-1"

// BuiltIn returns the embedded table. It panics only if the embedded file is broken,
// which TestBuiltInTable rules out.
func BuiltIn() *Table {
	var raw struct {
		Date     string                        `json:"date"`
		Source   string                        `json:"source"`
		OnDemand map[string]map[string]float64 `json:"onDemand"`
	}
	if err := json.Unmarshal(pricesJSON, &raw); err != nil {
		panic(fmt.Sprintf("pricing: the embedded prices.json is invalid: %v", err))
	}
	d, err := time.Parse(time.DateOnly, raw.Date)
	if err != nil {
		panic(fmt.Sprintf("pricing: the embedded prices.json has no valid date: %v", err))
	}
	return &Table{Date: d, Source: raw.Source, OnDemand: raw.OnDemand}
}

// Lookup returns an instance type's on-demand price in a region. When the table has no
// prices for the region, the stand-in region's price is returned with fromRegion set to it.
func (t *Table) Lookup(region, instanceType string) (price float64, fromRegion string, ok bool) {
	byType, found := t.OnDemand[region]
	fromRegion = region
	if !found {
		byType, fromRegion = t.OnDemand[tableRegion], tableRegion
	}
	price, ok = byType[instanceType]
	return price, fromRegion, ok
}
