package installer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PlanEntry is one phase of a plan.
type PlanEntry struct {
	Phase string `json:"phase"`
	// State is one of: done, would-change, blocked, skipped, failed.
	State     string   `json:"state"`
	Reason    string   `json:"reason,omitempty"`
	BlockedBy []string `json:"blockedBy,omitempty"`
	Changes   []Change `json:"changes,omitempty"`
	// Inventory is what the phase's inventory holds (see Event.Inventory).
	Inventory []InventoryEntry `json:"inventory,omitempty"`
}

// Plan runs every selected phase's Check with a read-only scope, in graph order, and
// reports what Apply would do. It takes no lock and writes nothing. A phase whose
// dependency is not done is reported as blocked: it cannot be observed before.
func (r *Runner) Plan(ctx context.Context) ([]PlanEntry, error) {
	ex, order, sel, _, err := r.open(ctx, "plan")
	if err != nil {
		return nil, err
	}
	start := r.now()
	var out []PlanEntry
	ready := map[string]bool{}
	for _, p := range order {
		e := PlanEntry{Phase: p.Name()}
		for _, d := range p.DependsOn() {
			if !ready[d] {
				e.BlockedBy = append(e.BlockedBy, d)
			}
		}
		switch {
		case !sel[p.Name()]:
			e.State, e.Reason = "skipped", "not selected"
			ready[p.Name()] = ex.state.IsDone(p.Name())
		case len(e.BlockedBy) > 0:
			e.State, e.Reason = "blocked", "waits for "+strings.Join(e.BlockedBy, ", ")
		default:
			st, err := p.Check(ctx, &Scope{phase: p.Name(), ex: ex, readOnly: true})
			var be *BlockedError
			switch {
			case errors.As(err, &be):
				e.State, e.Reason = "blocked", be.Reason
			case err != nil:
				e.State, e.Reason = "failed", err.Error()
			case st.Done:
				hash := ""
				if h, ok := p.(InputHasher); ok {
					hash, _ = HashInputs(h.Inputs())
				}
				if hash != "" && hash != ex.state.Phase(p.Name()).InputHash {
					e.State, e.Reason = "would-change", "inputs changed since the last run"
				} else {
					e.State, e.Reason = "done", st.Reason
					ready[p.Name()] = true
				}
			default:
				e.State, e.Reason, e.Changes = "would-change", st.Reason, st.Changes
			}
		}
		if r, ok := ex.state.Phases[p.Name()]; ok {
			e.Inventory = cloneEntries(r.Inventory)
		}
		e = redactCopy(ex.bus.Redactor, e)
		ex.bus.Emit(Event{Type: PhasePlanned, Action: "plan", Phase: e.Phase, Outcome: Outcome(e.State), Message: e.Reason, Changes: e.Changes, Inventory: e.Inventory})
		out = append(out, e)
	}
	ex.bus.Emit(Event{Type: RunFinished, Action: "plan", Outcome: OutcomeDone, DurationMS: time.Since(start).Milliseconds()})
	return out, nil
}

// Status returns the saved state (nil when none) without locking.
func (r *Runner) Status(ctx context.Context) (*State, error) {
	return r.Store.Load(ctx)
}

func jsonBytes(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	return b, nil
}
