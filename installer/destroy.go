package installer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Destroy walks the graph backwards: a phase is destroyed once every phase that depends on
// it has been. Phases with nothing recorded are skipped (we remove only what we made). A
// failed destroy blocks the phases it depends on — Argo CD must outlive an application
// stuck on its finalizer, or nothing could ever finish that cascade — and independent
// branches go on. Running destroy again resumes, like install.
func (r *Runner) Destroy(ctx context.Context) (sum *Summary, err error) {
	ex, order, sel, lock, err := r.open(ctx, "destroy")
	if err != nil {
		return nil, err
	}
	defer func() { err = ex.release(lock, err) }()
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	ex.stop = stop
	start := r.now()
	ex.bus.Emit(Event{Type: RunStarted, Action: "destroy", Message: fmt.Sprintf("destroy %s (state %s)", r.Cluster, r.Store.Location())})
	dependents := map[string][]string{}
	for _, p := range order {
		for _, d := range p.DependsOn() {
			dependents[d] = append(dependents[d], p.Name())
		}
	}
	results, failures := walk(order, dependents, r.MaxParallel, func(p Phase, before map[string]Outcome) (Outcome, error) {
		var blockers []string
		for _, d := range dependents[p.Name()] {
			if o := before[d]; o == OutcomeFailed || o == OutcomeBlocked || o == OutcomeInterrupted {
				blockers = append(blockers, d)
			}
		}
		if len(blockers) > 0 {
			ex.bus.Emit(Event{Type: PhaseSkipped, Action: "destroy", Phase: p.Name(), Outcome: OutcomeBlocked, Message: "kept: " + strings.Join(blockers, ", ") + " could not be removed"})
			return OutcomeBlocked, nil
		}
		if !sel[p.Name()] {
			ex.bus.Emit(Event{Type: PhaseSkipped, Action: "destroy", Phase: p.Name(), Outcome: OutcomeSkipped, Message: "not selected"})
			return OutcomeSkipped, nil
		}
		ex.mu.Lock()
		rec, ok := ex.state.Phases[p.Name()]
		nothing := !ok || rec.Outcome == OutcomeDestroyed || (rec.Outcome != OutcomeDone && rec.Attempts == 0 && rec.empty())
		ex.mu.Unlock()
		if nothing {
			ex.bus.Emit(Event{Type: PhaseSkipped, Action: "destroy", Phase: p.Name(), Outcome: OutcomeSkipped, Message: "nothing recorded to remove"})
			return OutcomeSkipped, nil
		}
		if ctx.Err() != nil {
			return OutcomeInterrupted, nil
		}
		return ex.destroy(ctx, p)
	})
	return r.finish(ctx, ex, "destroy", start, order, results, failures)
}

func (ex *execution) destroy(ctx context.Context, p Phase) (Outcome, error) {
	name := p.Name()
	start := ex.now()
	ex.bus.Emit(Event{Type: PhaseStarted, Action: "destroy", Phase: name})
	startedAt := start.UTC()
	if err := ex.record(ctx, name, func(r *PhaseRecord) {
		r.journal(JournalEntry{Action: "destroy", Started: startedAt, Outcome: OutcomeRunning})
	}); err != nil {
		return OutcomeFailed, err
	}
	err := p.Destroy(ctx, &Scope{phase: name, ex: ex})
	finished := ex.now().UTC()
	o := OutcomeDestroyed
	if err != nil {
		o = outcomeOf(ctx, err)
	}
	rerr := ex.record(ctx, name, func(r *PhaseRecord) {
		j := &r.Journal[len(r.Journal)-1]
		j.Finished, j.Outcome = finished, o
		if err != nil {
			j.Error, r.Error = err.Error(), err.Error()
			return
		}
		// Keep the data (ledgers, serials): a later install or rate-limit check needs them.
		r.Outcome, r.Error, r.InputHash, r.Reason = OutcomeDestroyed, "", "", ""
	})
	switch {
	case rerr == nil:
	case err == nil:
		// Removed, but the state does not know: the next destroy will try again.
		o, err = OutcomeFailed, fmt.Errorf("removed, but recording that failed: %w", rerr)
	default:
		var unsaved *SaveError
		if !errors.As(err, &unsaved) && !errors.Is(rerr, ErrLockLost) {
			o, err = OutcomeFailed, fmt.Errorf("%w; recording this failure in the state failed too: %w", err, rerr)
		}
	}
	if err != nil {
		ex.bus.Emit(Event{Type: PhaseFailed, Action: "destroy", Phase: name, Outcome: o, Error: err.Error(), DurationMS: time.Since(start).Milliseconds()})
		return o, err
	}
	ex.bus.Emit(Event{Type: PhaseDone, Action: "destroy", Phase: name, Outcome: OutcomeDestroyed, Message: "removed", DurationMS: time.Since(start).Milliseconds()})
	return OutcomeDestroyed, nil
}

// Names lists phase names in graph order.
func (r *Runner) Names() ([]string, error) {
	order, _, err := r.graph()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(order))
	for i, p := range order {
		out[i] = p.Name()
	}
	return out, nil
}

// Describe renders the graph as "name ← deps" lines, for `plan --graph` and docs.
func (r *Runner) Describe() (string, error) {
	order, _, err := r.graph()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range order {
		fmt.Fprintf(&b, "%s", p.Name())
		if d := p.DependsOn(); len(d) > 0 {
			fmt.Fprintf(&b, " ← %s", strings.Join(d, ", "))
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}
