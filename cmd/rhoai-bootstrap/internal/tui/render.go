package tui

import (
	"fmt"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// styles are the few colours the views use. With NO_COLOR every style is the zero
// style, so the output is plain text that a screen reader or a log file reads as well.
type styles struct {
	title, faint, ok, bad, warn, active, key lipgloss.Style
}

func newStyles(noColor bool) styles {
	if noColor {
		return styles{}
	}
	return styles{
		title:  lipgloss.NewStyle().Bold(true),
		faint:  lipgloss.NewStyle().Faint(true),
		ok:     lipgloss.NewStyle().Foreground(lipgloss.Green),
		bad:    lipgloss.NewStyle().Foreground(lipgloss.Red).Bold(true),
		warn:   lipgloss.NewStyle().Foreground(lipgloss.Yellow),
		active: lipgloss.NewStyle().Foreground(lipgloss.Cyan),
		key:    lipgloss.NewStyle().Bold(true),
	}
}

// fit cuts every line of s to width display columns, so a long error or path never makes
// the terminal wrap a line and push the frame out of place.
func fit(s string, width int) string {
	if width <= 0 {
		return s
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, width, "…")
	}
	return strings.Join(lines, "\n")
}

// oneLine flattens a multi-line message for a single row.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i]) + " …"
	}
	return strings.ReplaceAll(s, "\t", " ")
}

// indentWrap word-wraps s to width, indenting the first line with first and the rest
// with rest, for text that must be read in full (errors in the final summary), not cut.
func indentWrap(s, first, rest string, width int) string {
	var out []string
	for i, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		indent := rest
		if i == 0 {
			indent = first
		}
		wrapped := strings.Split(wrap(l, max(width-ansi.StringWidth(indent), 20)), "\n")
		out = append(out, indent+wrapped[0])
		if len(wrapped) > 1 {
			rw := max(width-ansi.StringWidth(rest), 20)
			for _, wl := range strings.Split(wrap(strings.Join(wrapped[1:], " "), rw), "\n") {
				out = append(out, rest+wl)
			}
		}
	}
	return strings.Join(out, "\n")
}

// wrap word-wraps s within width columns. ansi.Wrap may keep a trailing hyphen one
// column past its limit, so it is given one column less and hard-wrapped as a guard.
func wrap(s string, width int) string {
	return ansi.Hardwrap(ansi.Wrap(s, max(width-1, 1), " /,"), width, true)
}

// fmtDur prints a duration the way people read elapsed time: 4s, 2m05s, 1h03m.
func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// clock prints a wall-clock time in the local zone, as people read deadlines.
func clock(t time.Time) string { return t.Local().Format("15:04") }
