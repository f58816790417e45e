package pricing

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// CheckLimit refuses an estimate whose cost at the pools' max could go over limit
// dollars per hour. field names where the limit was set (--max-hourly-cost or
// spec.maxHourlyCost) so the error says which to change; an estimate with a machine of
// unknown price is refused too, since it cannot be shown to stay under.
func CheckLimit(c installer.Cost, limit float64, field string) error {
	if limit <= 0 {
		return nil
	}
	var unknown []string
	for _, l := range c.Lines {
		if l.Unknown && l.Max > 0 {
			unknown = append(unknown, l.Name+" ("+l.InstanceType+")")
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("%s: cannot tell whether the machines stay under $%.2f/h: no price in %s for %s; choose an instance type with a known price, or drop the limit",
			field, limit, c.Region, strings.Join(unknown, ", "))
	}
	if c.MaxHourly <= limit {
		return nil
	}
	var fixed, pools float64
	var dear []string
	for _, l := range c.Lines {
		if l.Name == "control-plane" || l.Name == "workers" {
			fixed += l.MaxHourly
			continue
		}
		pools += l.MaxHourly
		if l.MaxHourly > 0 {
			dear = append(dear, fmt.Sprintf("%s %d × %s $%.2f/h", l.Name, l.Max, l.InstanceType, l.MaxHourly))
		}
	}
	src := "AWS Price List API"
	if c.Source == SourceTable {
		src = "built-in table of " + c.SourceDate
	}
	return fmt.Errorf("%s: the machines could cost $%.2f/h at the GPU pools' max, over the limit of $%.2f/h (control plane and workers $%.2f/h, GPU pools $%.2f/h: %s; prices: %s, %s): lower the pools' max, or raise %s; nothing was changed",
		field, c.MaxHourly, limit, fixed, pools, strings.Join(dear, ", "), src, c.Region, field)
}
