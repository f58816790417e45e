package installer

import (
	"errors"
	"fmt"
	"strings"
)

// Plural counts a noun in words: "1 admin", "2 admins", "0 GPU pools". Every noun the
// bootstrap counts takes an s.
func Plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Problems is a failure made of several independent problems found at once (preflight
// reports every one it finds, each with its fix). The failed event carries their number,
// so a summary can point at them ("preflight (2 problems above)") instead of repeating them.
type Problems struct {
	// What names the check, e.g. "preflight".
	What string
	List []string
}

func (p *Problems) Error() string {
	return fmt.Sprintf("%s:\n  - %s", Plural(len(p.List), p.What+" problem"), strings.Join(p.List, "\n  - "))
}

// ProblemCount is how many problems err reports: the length of a *Problems in its chain,
// else 1.
func ProblemCount(err error) int {
	var p *Problems
	if errors.As(err, &p) && len(p.List) > 0 {
		return len(p.List)
	}
	return 1
}
