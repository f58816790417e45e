package installer

import (
	"golang.org/x/sync/errgroup"
)

// walk visits every phase of order exactly once, each after all the phases after[name]
// names have been visited, at most limit at a time (0: no limit). It is the one scheduler
// of install (after = a phase's dependencies) and destroy (after = the phases that depend
// on it). visit gets the outcomes of those phases and decides itself what a failed one
// means (install blocks its dependents; destroy keeps what a failed phase depends on).
//
// Phases start in the order given (a topological order), so with limit 1 a run is
// sequential and reproducible. Failures come back in that order too.
func walk(order []Phase, after map[string][]string, limit int, visit func(p Phase, before map[string]Outcome) (Outcome, error)) (map[string]Outcome, []*PhaseError) {
	waiting := map[string]int{}   // how many of after[name] are still unvisited
	next := map[string][]string{} // the phases waiting for name
	for _, p := range order {
		waiting[p.Name()] = len(after[p.Name()])
		for _, d := range after[p.Name()] {
			next[d] = append(next[d], p.Name())
		}
	}
	byName := map[string]Phase{}
	for _, p := range order {
		byName[p.Name()] = p
	}
	results := make(map[string]Outcome, len(order))
	errs := map[string]error{}
	// Only the loop below reads and writes results and errs: a visit hands its outcome
	// over on finished, whose buffer lets it end (and free its slot) without waiting.
	type result struct {
		name    string
		outcome Outcome
		err     error
	}
	finished := make(chan result, len(order))
	var g errgroup.Group
	if limit > 0 {
		g.SetLimit(limit)
	}
	start := func(p Phase) {
		before := make(map[string]Outcome, len(after[p.Name()]))
		for _, d := range after[p.Name()] {
			before[d] = results[d]
		}
		g.Go(func() error { // blocks while limit visits run
			o, err := visit(p, before)
			finished <- result{p.Name(), o, err}
			return nil
		})
	}
	for _, p := range order {
		if waiting[p.Name()] == 0 {
			start(p)
		}
	}
	for range order {
		r := <-finished
		results[r.name], errs[r.name] = r.outcome, r.err
		for _, n := range next[r.name] {
			if waiting[n]--; waiting[n] == 0 {
				start(byName[n])
			}
		}
	}
	_ = g.Wait() // every visit has reported; visits return no error
	var failures []*PhaseError
	for _, p := range order {
		if err := errs[p.Name()]; err != nil && results[p.Name()] == OutcomeFailed {
			failures = append(failures, &PhaseError{Phase: p.Name(), Err: err})
		}
	}
	return results, failures
}
