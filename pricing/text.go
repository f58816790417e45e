package pricing

import (
	"fmt"
	"io"
	"strings"

	"github.com/rhoai-bootstrap/rhoai-bootstrap/installer"
)

// Headline is the estimate in one line: the totals, the region and the source.
func Headline(c installer.Cost) string {
	src := "AWS Price List API, " + c.SourceDate
	if c.Source == SourceTable {
		src = fmt.Sprintf("built-in table of %s, %d days old", c.SourceDate, c.AgeDays)
	}
	s := fmt.Sprintf("$%.2f/h at min, $%.2f/h at max (on-demand, %s; %s)", c.MinHourly, c.MaxHourly, c.Region, src)
	if c.Limit > 0 {
		s += fmt.Sprintf("; limit $%.2f/h", c.Limit)
	}
	return s
}

// WriteText prints the estimate as a small table: one line per group of machines (count,
// instance type, $/h at min and at max; spot pools with the current spot range per
// machine), the total, then the notes (the source and what is not counted).
func WriteText(w io.Writer, c installer.Cost, indent string) {
	fmt.Fprintf(w, "%s%-16s %9s   %-14s %11s %11s\n", indent, "MACHINES", "", "INSTANCE TYPE", "$/H AT MIN", "$/H AT MAX")
	for _, l := range c.Lines {
		count := fmt.Sprint(l.Min)
		if l.Min != l.Max {
			count = fmt.Sprintf("%d–%d", l.Min, l.Max)
		}
		minH, maxH := money(l.MinHourly), money(l.MaxHourly)
		if l.Unknown {
			minH, maxH = "?", "?"
		}
		extra := ""
		switch {
		case l.Spot && l.SpotLow != nil:
			extra = fmt.Sprintf("spot now %s–%s per machine (on-demand %s)", money(*l.SpotLow), money(*l.SpotHigh), money(l.OnDemand))
		case l.Spot:
			extra = "spot: price now unknown, counted at on-demand (its default maximum)"
		}
		fmt.Fprintf(w, "%s%-16s %9s × %-14s %11s %11s\n", indent, l.Name, count, l.InstanceType, minH, maxH)
		if extra != "" {
			fmt.Fprintf(w, "%s%-16s %9s   %s\n", indent, "", "", extra)
		}
	}
	fmt.Fprintf(w, "%s%-16s %9s   %-14s %11s %11s\n", indent, "total", "", "", money(c.MinHourly), money(c.MaxHourly))
	if c.Source == SourceAPI {
		fmt.Fprintf(w, "%sprices: AWS Price List API (on-demand, Linux, shared tenancy, %s), %s\n", indent, c.Region, c.SourceDate)
	}
	for _, n := range c.Notes {
		fmt.Fprintf(w, "%s%s\n", indent, n)
	}
}

func money(v float64) string {
	s := fmt.Sprintf("$%.2f", v)
	if v > 0 && v < 0.01 {
		s = fmt.Sprintf("$%.5f", v)
	}
	return strings.TrimSpace(s)
}
